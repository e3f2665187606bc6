"""What the use cases take in and give back, apart from the entities themselves."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from application.hybrid_search import HybridOptions, Mode
from domain.embedding import EmbedderSpec
from domain.index.scoring import SearchParams
from domain.models import Document, IndexStatus, Library, Metadata, TextIndexSpec, Vector

Embedding = Sequence[float] | Vector


@dataclass(slots=True)
class CommitReceipt:
    """Where a write committed: the index of the replication log entry that holds it.

    A route hands one to a write use case, which records the index its unit of work's
    ``commit`` returned; the route then answers it as ``X-StacksDB-Index``. It stays None
    when the write logged nothing.
    """

    log_index: int | None = None

    def record(self, log_index: int | None) -> None:
        if log_index is not None:
            self.log_index = log_index


@dataclass(frozen=True, slots=True)
class ChunkInput:
    """A chunk to write; without ``embedding`` the library's embedder makes one."""

    document_id: str
    text: str
    embedding: Embedding | None
    metadata: Metadata = field(default_factory=dict)
    id: str | None = None


@dataclass(frozen=True, slots=True)
class ChunkPatch:
    """Fields to change; None leaves a field as it is."""

    text: str | None = None
    embedding: Embedding | None = None
    metadata: Metadata | None = None


@dataclass(frozen=True, slots=True)
class LibraryPatch:
    name: str | None = None
    description: str | None = None
    metadata: Metadata | None = None
    # A new keyword index, built in the background (none: dropped at once).
    text_index: TextIndexSpec | None = None


@dataclass(frozen=True, slots=True)
class NewLibrary:
    """A library to create; ``dimension`` may be left to its ``embedder``."""

    name: str
    dimension: int | None
    metric: str = "cosine"
    description: str = ""
    metadata: Metadata = field(default_factory=dict)
    index_type: str = "flat"
    index_params: dict[str, Any] | None = None
    id: str | None = None
    embedder: EmbedderSpec | None = None
    text_index: TextIndexSpec = field(default_factory=TextIndexSpec)


@dataclass(frozen=True, slots=True)
class LibraryInfo:
    library: Library
    index: IndexStatus
    document_count: int
    chunk_count: int


@dataclass(frozen=True, slots=True)
class DocumentInfo:
    document: Document
    chunk_count: int


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """One search. ``vector``, ``text`` or both (``application.hybrid_search`` picks the mode
    when ``mode`` is None)."""

    vector: Embedding | None = None
    k: int = 10
    filter: dict[str, Any] | None = None
    include: frozenset[str] = frozenset({"metadata"})
    params: SearchParams = field(default_factory=SearchParams)
    exact: bool = False
    # Keep hits scoring at least this (cosine, dot) or at most this distance (l2).
    score_threshold: float | None = None
    # Group hits by "document_id" or a chunk metadata key; k then counts groups.
    group_by: str | None = None
    group_size: int = 1
    # The text query of the keyword side (and, with an embedder, of the vector side).
    text: str | None = None
    mode: Mode | None = None
    hybrid: HybridOptions = field(default_factory=HybridOptions)


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One result; ``text``, ``metadata`` and ``embedding`` are set when included."""

    chunk_id: str
    document_id: str
    score: float
    text: str | None = None
    metadata: Metadata | None = None
    embedding: Vector | None = None
    # Hybrid mode: what each side scored the chunk; None where that side did not return it.
    vector_score: float | None = None
    keyword_score: float | None = None


@dataclass(frozen=True, slots=True)
class SearchGroup:
    """The hits of one group of a grouped search, best first; ``key`` is the value they share."""

    key: str | int | float | bool
    hits: list[SearchHit]


@dataclass(frozen=True, slots=True)
class SearchOutcome:
    """A search's answer: ``hits``, or for a grouped search ``groups`` (best group first)."""

    hits: list[SearchHit]
    index_type: str
    strategy: str
    took_ms: float
    groups: list[SearchGroup] | None = None
    mode: Mode = "vector"
