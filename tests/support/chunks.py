"""Helpers for end-to-end tests that keep a model of what the server acknowledged."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
from numpy.typing import NDArray

Float32s = NDArray[np.float32]


def float32_vector(rng: np.random.Generator, dimension: int) -> list[float]:
    """A vector of float32 values as JSON floats: each one round-trips to the same bits."""
    return [float(x) for x in rng.standard_normal(dimension).astype(np.float32)]


def bits(values: list[float]) -> bytes:
    """The float32 bit pattern of ``values``, for bit-exact comparison."""
    return np.asarray(values, dtype=np.float32).tobytes()


@dataclass(frozen=True)
class ChunkRecord:
    """What the server must hold for a chunk it acknowledged."""

    document_id: str
    text: str
    embedding: list[float]
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of_body(cls, body: dict[str, Any]) -> ChunkRecord:
        return cls(body["document_id"], body["text"], body["embedding"], body.get("metadata", {}))

    def matches(self, served: dict[str, Any]) -> bool:
        return (
            served["document_id"] == self.document_id
            and served["text"] == self.text
            and served["metadata"] == self.metadata
            and bits(served["embedding"]) == bits(self.embedding)
        )


def list_all_chunks(client: httpx.Client, library_id: str) -> dict[str, dict[str, Any]]:
    """Every chunk of the library with its embedding, following ``next_cursor``."""
    chunks: dict[str, dict[str, Any]] = {}
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 1000, "include_embedding": "true"}
        if cursor is not None:
            params["cursor"] = cursor
        response = client.get(f"/v1/libraries/{library_id}/chunks", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        for item in page["items"]:
            assert item["id"] not in chunks, f"chunk {item['id']} listed twice"
            chunks[item["id"]] = item
        cursor = page["next_cursor"]
        if cursor is None:
            return chunks


def exact_top_ids(
    records: dict[str, ChunkRecord], query: list[float], k: int
) -> list[tuple[str, float]]:
    """Cosine top-k over ``records`` in NumPy: the truth a search is compared to."""
    ids = sorted(records)
    matrix = np.asarray([records[i].embedding for i in ids], dtype=np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    q = np.asarray(query, dtype=np.float32)
    scores = matrix @ (q / np.linalg.norm(q))
    order = np.argsort(-scores, kind="stable")[:k]
    return [(ids[i], float(scores[i])) for i in order]
