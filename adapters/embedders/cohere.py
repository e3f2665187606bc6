"""Cohere's embed API, version 2 (implements ``domain.embedding.Embedder`` through
``RemoteEmbedder``).

Request ``POST /v2/embed`` ``{"model", "texts": [...], "input_type", "embedding_types":
["float"]}``; answer ``{"embeddings": {"float": [[...], ...]}, ...}``, one row per text in
order. Cohere's models are asymmetric: chunks are embedded as ``search_document`` and
queries as ``search_query``, and the two must not be mixed up.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from adapters.embedders.remote import MalformedAnswer, RemoteEmbedder, RetryPolicy, endpoint
from domain.embedding import CohereSpec, Purpose

COHERE_URL = "https://api.cohere.com"
# Cohere's documented limit on texts per request.
COHERE_BATCH = 96
INPUT_TYPES = {Purpose.DOCUMENT: "search_document", Purpose.QUERY: "search_query"}


class CohereWire:
    """Cohere's v2 embed request and answer (``adapters.embedders.remote.WireFormat``)."""

    batch_limit = COHERE_BATCH

    def __init__(self, model: str) -> None:
        self._model = model

    def body(self, texts: Sequence[str], purpose: Purpose) -> dict[str, Any]:
        return {
            "model": self._model,
            "texts": list(texts),
            "input_type": INPUT_TYPES[purpose],
            "embedding_types": ["float"],
        }

    def rows(self, answer: Any, count: int) -> list[Any]:
        embeddings = answer.get("embeddings") if isinstance(answer, dict) else None
        floats = embeddings.get("float") if isinstance(embeddings, dict) else None
        if not isinstance(floats, list):
            raise MalformedAnswer("no 'embeddings.float' list")
        if len(floats) != count:
            raise MalformedAnswer(f"{len(floats)} vectors for {count} texts")
        return floats


def cohere_embedder(spec: CohereSpec, policy: RetryPolicy) -> RemoteEmbedder:
    """The embedder of ``spec``; ``spec.url`` (default Cohere's own) is the API's base or the
    full ``.../v2/embed`` endpoint."""
    return RemoteEmbedder(
        f"cohere:{spec.model}",
        endpoint(spec.url or COHERE_URL, "/v2/embed"),
        CohereWire(spec.model),
        spec.api_key_env,
        policy,
    )
