"""The embedder factory builds one embedder per spec and shares it: equal specs (as a
library stores and reloads them) get the same embedder, the bundled model is built once,
and ``close`` releases every embedder it built."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from adapters.embedders.remote import RemoteEmbedder, RetryPolicy
from bootstrap.embedders import Embedders, embedders_of
from bootstrap.settings import Settings
from domain.embedding import EMBEDDER_SPEC, CohereSpec, MiniLmSpec, OpenAiSpec, Purpose


class CountedModel:
    """Stands in for the bundled model: counts how often it is built and closed."""

    built = 0

    def __init__(self) -> None:
        CountedModel.built += 1
        self.closed = False

    name = "counted"
    dimension = 3

    def embed(self, texts: Sequence[str], purpose: Purpose) -> NDArray[np.float32]:
        return np.zeros((len(texts), 3), dtype=np.float32)

    def close(self) -> None:
        self.closed = True


def test_equal_specs_share_one_embedder_and_the_model_is_built_once() -> None:
    CountedModel.built = 0
    embedders = Embedders(RetryPolicy(), CountedModel)
    minilm = embedders(MiniLmSpec())
    assert embedders(EMBEDDER_SPEC.validate_python({"provider": "minilm"})) is minilm
    assert CountedModel.built == 1
    openai = OpenAiSpec(url="http://127.0.0.1:9/v1", model="a", api_key_env="KEY")
    reloaded = EMBEDDER_SPEC.validate_json(openai.model_dump_json())
    assert embedders(openai) is embedders(reloaded)
    assert embedders(openai) is not embedders(OpenAiSpec(url="http://127.0.0.1:9/v1", model="b"))
    assert isinstance(embedders(CohereSpec(model="embed-v3")), RemoteEmbedder)
    assert embedders(CohereSpec(model="embed-v3")).name == "cohere:embed-v3"


def test_close_releases_every_embedder_built() -> None:
    embedders = Embedders(RetryPolicy(), CountedModel)
    model = embedders(MiniLmSpec())
    assert isinstance(model, CountedModel)
    embedders.close()
    assert model.closed
    assert embedders(MiniLmSpec()) is not model  # built again after a close


def test_the_settings_configure_the_remote_discipline() -> None:
    settings = Settings(
        storage="memory", embedder_timeout=2.5, embedder_retries=1, embedder_max_wait=0.5
    )
    embedder = embedders_of(settings)(OpenAiSpec(url="http://127.0.0.1:9", model="m"))
    assert isinstance(embedder, RemoteEmbedder)
    assert embedder.policy == RetryPolicy(timeout=2.5, retries=1, max_wait=0.5)
