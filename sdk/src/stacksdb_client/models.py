"""The server's answers as typed, validated Pydantic models (the shapes of API.md).

Every model keeps fields it does not know (``extra="allow"``), so a newer server that adds
fields never breaks an older client.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Literal, TypedDict, TypeVar

from pydantic import BaseModel, ConfigDict

T = TypeVar("T")

Metric = Literal["cosine", "dot", "l2"]
IndexType = Literal["flat", "ivf", "hnsw"]
Include = Literal["text", "metadata", "embedding"]
SearchMode = Literal["vector", "keyword", "hybrid"]


class Hybrid(TypedDict, total=False):
    """How a hybrid search fuses its sides: ``fusion`` ``"rrf"`` (default, with ``rrf_k``,
    default 60) or ``"weighted"`` (``alpha``, the vector side's weight, default 0.5);
    ``candidates``: how deep each side is searched (default max(10, k))."""

    fusion: Literal["rrf", "weighted"]
    rrf_k: int
    alpha: float
    candidates: int


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class IndexStatus(_Model):
    """A library's index: ``state`` is ``building`` until a (re)build finishes; ``error``
    says why the last build failed (the previous index keeps serving)."""

    type: str
    params: dict[str, Any]
    state: Literal["building", "ready"]
    progress: float
    vector_count: int
    built_at: datetime | None = None
    error: str | None = None

    @property
    def ready(self) -> bool:
        return self.state == "ready"


class LibraryInfo(_Model):
    """A library as the server describes it (the ``Library`` of API.md)."""

    id: str
    name: str
    description: str
    metadata: dict[str, Any]
    dimension: int
    metric: Metric
    # {"provider": "minilm"}, {"provider": "openai", "url", "model", "api_key_env"?}, ...
    embedder: dict[str, Any] | None = None
    index: IndexStatus
    # {"type": "bm25", "params": {"k1", "b", "language"}} or {"type": "none"}.
    text_index: dict[str, Any] = {"type": "bm25"}
    document_count: int
    chunk_count: int
    created_at: datetime
    updated_at: datetime


class Document(_Model):
    id: str
    library_id: str
    metadata: dict[str, Any]
    chunk_count: int
    created_at: datetime
    updated_at: datetime


class Chunk(_Model):
    """A chunk; ``embedding`` is None where the server left it out (listings, batch writes)."""

    id: str
    library_id: str
    document_id: str
    text: str
    embedding: list[float] | None = None
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class SearchResult(_Model):
    """One hit; ``text``, ``metadata`` and ``embedding`` are set when the search asked for
    them with ``include``. In vector mode ``score`` is a similarity for cosine and dot
    (higher is better) and a distance for l2 (lower is better); in keyword mode the BM25
    score; in hybrid mode the fused score, with each side's own score in ``vector_score``
    and ``keyword_score`` (None where that side did not return the chunk)."""

    chunk_id: str
    document_id: str
    score: float
    vector_score: float | None = None
    keyword_score: float | None = None
    text: str | None = None
    metadata: dict[str, Any] | None = None
    embedding: list[float] | None = None


class SearchGroup(_Model):
    """One group of a grouped search: the value its hits share and its hits, best first."""

    key: str | int | float | bool
    hits: list[SearchResult]


class SearchResponse(_Model):
    """The hits, best first, and which index answered; with ``group_by``, ``groups`` (best
    group first) instead of ``results`` (then empty)."""

    results: list[SearchResult] = []
    groups: list[SearchGroup] | None = None
    mode: SearchMode = "vector"
    index: str
    took_ms: float
    strategy: str | None = None


class ChunkBatch(_Model):
    items: list[Chunk]


class _Listing(_Model, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a listing; pass ``next_cursor`` back as ``cursor=`` for the next one
    (None on the last page)."""

    items: list[T]
    next_cursor: str | None


class _SearchBatch(_Model):
    results: list[SearchResponse]


class _Count(_Model):
    count: int


class _Deleted(_Model):
    deleted: int
