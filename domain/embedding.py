"""Embedders: text in, vectors out. The port the core uses and the specs a library stores.

A library may name an embedder (``EmbedderSpec``); the server then embeds chunk texts on the
leader before the commit, and search queries before the vector search. The adapters live in
``adapters/embedders/`` (the bundled MiniLM, OpenAI-compatible and Cohere endpoints); the
core sees only ``Embedder`` and asks ``EmbedderFactory`` for one per spec.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Annotated, Any, Literal, Protocol

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

# Where a key may come from: the name of an environment variable of the server, never the
# key itself, so that no key is stored, logged or echoed.
EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")]
Url = Annotated[str, Field(min_length=1, max_length=2_048, pattern=r"^https?://")]
ModelName = Annotated[str, Field(min_length=1, max_length=256)]


class Purpose(StrEnum):
    """What a text is embedded for. Asymmetric models (Cohere's ``input_type``) embed a
    stored passage and a search query differently; symmetric ones ignore it."""

    DOCUMENT = "document"
    QUERY = "query"


def _provider_required(schema: dict[str, Any]) -> None:
    """``provider`` picks the spec (the union's discriminator): a request must name it, even
    though each spec fills in its own when built in code."""
    schema["required"] = ["provider", *(k for k in schema.get("required", []) if k != "provider")]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_provider_required)


class MiniLmSpec(_Spec):
    """all-MiniLM-L6-v2, bundled with the server and run on its CPU (384 dimensions)."""

    provider: Literal["minilm"] = "minilm"


class OpenAiSpec(_Spec):
    """Any OpenAI-compatible ``/v1/embeddings`` endpoint (OpenAI, Ollama, vLLM, TEI)."""

    provider: Literal["openai"] = "openai"
    url: Url = Field(
        description="The API's base (https://api.openai.com/v1, http://ollama:11434/v1) or "
        "the full embeddings endpoint (.../v1/embeddings)."
    )
    model: ModelName = Field(
        description="The model the endpoint serves, e.g. text-embedding-3-small."
    )
    api_key_env: EnvName | None = Field(
        default=None,
        description="The name of an environment variable of the server that holds the key.",
    )


class CohereSpec(_Spec):
    """Cohere's embed API; ``url`` defaults to Cohere's own."""

    provider: Literal["cohere"] = "cohere"
    model: ModelName = Field(description="A Cohere embed model, e.g. embed-english-v3.0.")
    url: Url | None = Field(
        default=None,
        description="The API's base or its /v2/embed endpoint; Cohere's own by default.",
    )
    api_key_env: EnvName | None = Field(
        default=None,
        description="The name of an environment variable of the server that holds the key.",
    )


EmbedderSpec = Annotated[MiniLmSpec | OpenAiSpec | CohereSpec, Field(discriminator="provider")]

EMBEDDER_SPEC: TypeAdapter[EmbedderSpec] = TypeAdapter(EmbedderSpec)
"""Parses a stored or logged spec (``EMBEDDER_SPEC.validate_python(payload)``)."""


class Embedder(Protocol):
    """Turns texts into float32 vectors of one fixed dimension."""

    @property
    def name(self) -> str:
        """A short label for logs and metrics (provider and model)."""

    @property
    def dimension(self) -> int:
        """The length of every vector this embedder returns."""

    def embed(self, texts: Sequence[str], purpose: Purpose) -> NDArray[np.float32]:
        """One row per text, in order, as a C-contiguous float32 ``(len(texts), dimension)``
        matrix. Raises ``EmbedderFailed`` or ``EmbedderTimedOut`` when a remote provider
        cannot answer; never returns fewer rows or another dimension."""


class EmbedderFactory(Protocol):
    def __call__(self, spec: EmbedderSpec) -> Embedder:
        """The embedder a spec names (built once and shared per spec)."""
