"""Ports: what the core needs from the outside, as protocols the adapters implement."""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Executor
from types import TracebackType
from typing import Protocol, Self

from domain.index.index_snapshot import IndexSnapshot
from domain.index.scoring import Hits, IndexQuery, Labels, Mask, SearchParams, StateArrays
from domain.models import (
    Chunk,
    ChunkColumns,
    Document,
    IndexSpec,
    Library,
    Matrix,
    Metric,
    Page,
    Vector,
)


class LibraryRepository(Protocol):
    def save(self, library: Library) -> None:
        """Insert or replace the library."""

    def get(self, library_id: str) -> Library | None: ...

    def list(self, limit: int, cursor: str | None) -> Page[Library]:
        """Libraries in creation order; raises ``InvalidCursor`` for a foreign cursor."""

    def delete(self, library_id: str) -> None:
        """Delete the library with its documents and chunks; a missing id is a no-op."""

    def counts(self, library_id: str) -> tuple[int, int]:
        """(document count, chunk count)."""


class DocumentRepository(Protocol):
    def save(self, document: Document) -> None:
        """Insert or replace the document."""

    def get(self, library_id: str, document_id: str) -> Document | None: ...

    def existing_ids(self, library_id: str, document_ids: Iterable[str]) -> set[str]: ...

    def list(self, library_id: str, limit: int, cursor: str | None) -> Page[Document]: ...

    def delete(self, library_id: str, document_id: str) -> None:
        """Delete the document and its chunks; a missing id is a no-op."""

    def chunk_counts(self, library_id: str, document_ids: Sequence[str]) -> dict[str, int]:
        """Chunk count of each given document (0 for one with none)."""


class ChunkRepository(Protocol):
    def save_many(self, chunks: Sequence[Chunk]) -> None:
        """Insert or replace each chunk, keyed by (library_id, id)."""

    def get(self, library_id: str, chunk_id: str) -> Chunk | None: ...

    def get_many(self, library_id: str, chunk_ids: Sequence[str]) -> dict[str, Chunk]: ...

    def existing_ids(self, library_id: str, chunk_ids: Iterable[str]) -> set[str]: ...

    def ids_of_document(self, library_id: str, document_id: str) -> list[str]: ...

    def list(
        self, library_id: str, limit: int, cursor: str | None, document_id: str | None = None
    ) -> Page[Chunk]:
        """Chunks in insertion order, optionally of one document."""

    def delete_many(self, library_id: str, chunk_ids: Iterable[str]) -> None: ...

    def scan_columns(
        self, library_id: str, batch_size: int = 10_000, *, with_text: bool = False
    ) -> Iterator[ChunkColumns]:
        """Every chunk of the library in insertion order, ``batch_size`` rows at a time, as
        columns: the lean read that rebuilds in-memory state at start-up. The text is read
        only ``with_text`` (for a keyword index)."""


class UnitOfWork(Protocol):
    """All or nothing: changes made through the repositories are durable once ``commit``
    returns, and are undone by ``rollback`` or by leaving the block without committing."""

    libraries: LibraryRepository
    documents: DocumentRepository
    chunks: ChunkRepository

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def commit(self) -> int | None:
        """Make the changes durable. Returns the index of the replication log entry that
        recorded them, or None when nothing was logged (no change, or a store without a
        log)."""

    def rollback(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    """Opens a unit of work. A ``read_only`` one refuses writes and, in exchange, may run
    beside the writer (SQLite WAL readers see the last committed state)."""

    def __call__(self, *, read_only: bool = False) -> UnitOfWork: ...


class VectorIndex(Protocol):
    """A nearest-neighbour index over labelled vectors of one library.

    Labels are non-negative int64s chosen by the caller, one live vector per label. Vectors
    are given raw; the index prepares them for its metric (unit length for cosine).

    Concurrency: callers hold the library's lock, shared for reads and exclusive for
    writes. Any number of ``search`` calls (and the other reads) run at once under the
    shared lock, so a search writes nothing that another search can see: its scratch
    (visited sets, heaps, buffers) is its own or taken from a pool and given back. Only
    ``add`` and ``remove``, under the exclusive lock, change the index.
    """

    @property
    def spec(self) -> IndexSpec: ...

    @property
    def metric(self) -> Metric: ...

    @property
    def dimension(self) -> int: ...

    def __len__(self) -> int: ...

    @property
    def needs_rebuild(self) -> bool:
        """True when rebuilding the index from its own vectors with the same spec would
        serve searches better (IVF: its lists drifted since training). An index that keeps
        itself in shape (Flat; HNSW compacts its own tombstones) always says False."""

    def add(self, labels: Labels, vectors: Matrix) -> None:
        """Insert or replace the vector of each label."""

    def remove(self, labels: Labels) -> None:
        """Forget these labels; unknown ones are ignored. No later search returns them."""

    def search(
        self,
        query: Vector,
        k: int,
        *,
        allowed: Mask | None = None,
        params: SearchParams | None = None,
        exact: bool = False,
    ) -> Hits:
        """Up to ``k`` nearest labels, best first. ``allowed`` (indexed by label) restricts
        the candidates; ``exact`` asks for a full scan whatever the index type."""

    def search_many(
        self, queries: Sequence[IndexQuery], *, executor: Executor | None = None
    ) -> builtins.list[Hits]:
        """What ``search`` answers for each query, in order, the same labels, order and
        scores, with the batch's work shared: Flat and IVF score it with one matrix product
        (per block of queries), HNSW runs its walks on ``executor``'s threads. Like
        ``search``, writes nothing another search can see."""

    def items(self) -> tuple[Labels, Matrix]:
        """Copies of every live label and its stored vector, to rebuild another index."""

    def nbytes(self) -> int:
        """Memory held by the index's arrays."""

    def to_state(self) -> StateArrays:
        """A snapshot as named arrays (an .npz), restored by the class's ``from_state``."""

    @classmethod
    def from_state(cls, state: StateArrays) -> Self:
        """The index ``to_state`` saved, identical in its search results; ``ValueError`` when
        the arrays are not a consistent snapshot of this index type."""


class IndexSnapshotStore(Protocol):
    """Built indexes kept across restarts, one per library (see ``domain/index/snapshot.py``).

    A snapshot only saves the rebuild: the store stays the source of truth, and a reader
    must check that a snapshot still matches it before serving it."""

    def save(self, library_id: str, snapshot: IndexSnapshot) -> None:
        """Replace the library's snapshot atomically: a crash leaves the old one or the new one."""

    def load(self, library_id: str) -> IndexSnapshot | None:
        """The library's snapshot, None when there is none; ``ValueError`` when it is there
        but unreadable or fails its checksum."""

    def delete(self, library_id: str) -> None:
        """Forget the library's snapshot; a missing one is a no-op."""

    def library_ids(self) -> builtins.list[str]:
        """The libraries that have a snapshot."""
