"""Any OpenAI-compatible ``/v1/embeddings`` endpoint: OpenAI, Ollama, vLLM, text-embeddings-
inference (implements ``domain.embedding.Embedder`` through ``RemoteEmbedder``).

Request ``{"model": ..., "input": [texts]}``; answer ``{"data": [{"embedding": [...],
"index": i}, ...], ...}``, one item per input, which the API does not promise to send in
order: rows are placed by ``index``. The model is symmetric, so ``Purpose`` is not sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from adapters.embedders.remote import MalformedAnswer, RemoteEmbedder, RetryPolicy, endpoint
from domain.embedding import OpenAiSpec, Purpose

# OpenAI's documented limit on inputs per request.
OPENAI_BATCH = 2_048


class OpenAiWire:
    """The OpenAI embeddings request and answer (``adapters.embedders.remote.WireFormat``)."""

    batch_limit = OPENAI_BATCH

    def __init__(self, model: str) -> None:
        self._model = model

    def body(self, texts: Sequence[str], purpose: Purpose) -> dict[str, Any]:
        return {"model": self._model, "input": list(texts)}

    def rows(self, answer: Any, count: int) -> list[Any]:
        data = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(data, list):
            raise MalformedAnswer("no 'data' list")
        if len(data) != count:
            raise MalformedAnswer(f"{len(data)} items for {count} inputs")
        rows: list[Any] = [None] * count
        for item in data:
            index = item.get("index") if isinstance(item, dict) else None
            if not isinstance(index, int) or not 0 <= index < count or rows[index] is not None:
                raise MalformedAnswer("items without one distinct 'index' per input")
            rows[index] = item.get("embedding")
        return rows


def openai_embedder(spec: OpenAiSpec, policy: RetryPolicy) -> RemoteEmbedder:
    """The embedder of ``spec``; ``spec.url`` is the API's base (``.../v1``) or the full
    ``.../embeddings`` endpoint."""
    return RemoteEmbedder(
        f"openai:{spec.model}",
        endpoint(spec.url, "/embeddings"),
        OpenAiWire(spec.model),
        spec.api_key_env,
        policy,
    )
