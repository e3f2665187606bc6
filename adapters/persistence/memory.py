"""In-memory persistence: implements the ``UnitOfWork`` port and its three repositories.

Used for fast service tests and as a real "no persistence" option: it keeps every
behaviour the SQLite adapter has (insertion-order pagination with the same cursors,
cascading deletes, all-or-nothing units of work), only not past the process's life.

Concurrency: a unit of work holds the store's lock from ``__enter__`` to ``__exit__``, so
units of work run one at a time and none ever sees another's uncommitted changes.
Writes go straight into the store and are recorded in an undo journal; ``commit`` forgets
the journal, ``rollback`` (or leaving the block without committing) replays it backwards.

Isolation from callers: the store keeps its own copies of entities and hands out fresh
copies, so mutating a saved or fetched entity never changes what is stored.
"""

from __future__ import annotations

import bisect
import dataclasses
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from types import TracebackType
from typing import Generic, Self, TypeVar

import numpy as np

from adapters.persistence.cursor import (
    LIBRARIES_LISTING,
    check_page_size,
    chunks_listing,
    decode_cursor,
    documents_listing,
    page_of,
)
from adapters.persistence.errors import InactiveUnitOfWork, ReadOnlyUnitOfWork, UnitOfWorkError
from domain.errors import DocumentNotFound, LibraryNotFound, StoreUnavailable
from domain.filters import datetime_micros
from domain.models import Chunk, ChunkColumns, Document, Library, Metadata, Page
from domain.ports import ChunkRepository, DocumentRepository, LibraryRepository

V = TypeVar("V")

DEFAULT_LOCK_TIMEOUT = 30.0


class _SeqTable(Generic[V]):
    """Values keyed by id and ordered by ``seq``, for keyset pagination in O(log n + page).

    Replacing a value keeps its ``seq`` (its place in listings). ``_order`` is a sorted
    list of seqs that may still hold those of removed keys; they are skipped when paging
    and swept out once they outnumber the live ones, so removal stays O(1) amortised.
    """

    __slots__ = ("_ids_by_seq", "_items", "_order")

    def __init__(self) -> None:
        self._items: dict[str, tuple[int, V]] = {}
        self._ids_by_seq: dict[int, str] = {}
        self._order: list[int] = []

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: str) -> bool:
        return key in self._items

    def get(self, key: str) -> tuple[int, V] | None:
        return self._items.get(key)

    def put(self, key: str, value: V, seq: int) -> int:
        """Insert ``key`` at ``seq``, or replace its value in place; returns its seq."""
        current = self._items.get(key)
        if current is not None:
            self._items[key] = (current[0], value)
            return current[0]
        self._items[key] = (seq, value)
        self._ids_by_seq[seq] = key
        if not self._order or seq > self._order[-1]:
            self._order.append(seq)
            return seq
        # Only an undo restores an old seq; it may still sit in _order as a dead entry.
        at = bisect.bisect_left(self._order, seq)
        if at == len(self._order) or self._order[at] != seq:
            self._order.insert(at, seq)
        return seq

    def pop(self, key: str) -> tuple[int, V] | None:
        entry = self._items.pop(key, None)
        if entry is None:
            return None
        del self._ids_by_seq[entry[0]]
        if len(self._order) > 2 * len(self._items) + 64:
            self._order = [s for s in self._order if s in self._ids_by_seq]
        return entry

    def after(self, seq: int, limit: int) -> list[tuple[int, str, V]]:
        """Up to ``limit`` live (seq, key, value) triples with a seq above ``seq``."""
        found: list[tuple[int, str, V]] = []
        at = bisect.bisect_right(self._order, seq)
        while at < len(self._order) and len(found) < limit:
            s = self._order[at]
            at += 1
            key = self._ids_by_seq.get(s)
            if key is not None:
                found.append((s, key, self._items[key][1]))
        return found

    def keys_in_order(self) -> list[str]:
        return [self._ids_by_seq[s] for s in self._order if s in self._ids_by_seq]


@dataclasses.dataclass(slots=True)
class _LibraryData:
    """Everything stored under one library; dropping it is the cascade of a delete."""

    documents: _SeqTable[Document] = dataclasses.field(default_factory=_SeqTable)
    chunks: _SeqTable[Chunk] = dataclasses.field(default_factory=_SeqTable)
    # document id -> the ids of its chunks, each at the chunk's own seq, so a document's
    # chunks page in the same order as the library's.
    chunks_by_document: dict[str, _SeqTable[None]] = dataclasses.field(default_factory=dict)


class MemoryStore:
    """The data of the in-memory adapter, shared by every ``MemoryUnitOfWork`` over it.

    Only a unit of work reads or writes it, and only while holding ``lock``.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._libraries: _SeqTable[Library] = _SeqTable()
        self._data: dict[str, _LibraryData] = {}
        self._last_seq = 0

    def _next_seq(self) -> int:
        self._last_seq += 1
        return self._last_seq


def _copy_metadata(metadata: Metadata) -> Metadata:
    # Metadata values are scalars or lists of scalars (see domain.models.MetadataValue):
    # copying the lists is a full deep copy, at a fraction of copy.deepcopy's cost.
    return {
        key: list(value) if isinstance(value, list) else value for key, value in metadata.items()
    }


def _copy_library(library: Library) -> Library:
    return dataclasses.replace(library, metadata=_copy_metadata(library.metadata))


def _copy_document(document: Document) -> Document:
    return dataclasses.replace(document, metadata=_copy_metadata(document.metadata))


def _copy_chunk(chunk: Chunk) -> Chunk:
    # float32 like the SQLite adapter stores, so both adapters return the same bits.
    embedding = np.array(chunk.embedding, dtype=np.float32, order="C", copy=True)
    return dataclasses.replace(chunk, embedding=embedding, metadata=_copy_metadata(chunk.metadata))


class _MemoryTransaction:
    """The state one unit of work shares with its repositories: mode, activity, journal."""

    def __init__(self, store: MemoryStore, read_only: bool) -> None:
        self.store = store
        self.read_only = read_only
        self.active = False
        # Inverse operations, newest last; their results are ignored.
        self.undo: list[Callable[[], object]] = []

    def reading(self) -> MemoryStore:
        if not self.active:
            raise InactiveUnitOfWork()
        return self.store

    def writing(self) -> MemoryStore:
        store = self.reading()
        if self.read_only:
            raise ReadOnlyUnitOfWork()
        return store


class MemoryLibraryRepository:
    """``LibraryRepository`` over a ``MemoryStore``; used through ``MemoryUnitOfWork``."""

    def __init__(self, tx: _MemoryTransaction) -> None:
        self._tx = tx

    def save(self, library: Library) -> None:
        """Insert or replace the library; a replaced library keeps its place in listings."""
        store = self._tx.writing()
        stored = _copy_library(library)
        previous = store._libraries.get(library.id)
        store._libraries.put(library.id, stored, store._next_seq())
        if previous is not None:
            self._tx.undo.append(lambda: store._libraries.put(library.id, previous[1], 0))
            return
        store._data[library.id] = _LibraryData()

        def undo_insert() -> None:
            store._libraries.pop(library.id)
            store._data.pop(library.id, None)

        self._tx.undo.append(undo_insert)

    def get(self, library_id: str) -> Library | None:
        entry = self._tx.reading()._libraries.get(library_id)
        return None if entry is None else _copy_library(entry[1])

    def delete(self, library_id: str) -> None:
        """Delete the library with its documents and chunks; a missing id is a no-op."""
        store = self._tx.writing()
        entry = store._libraries.pop(library_id)
        if entry is None:
            return
        data = store._data.pop(library_id)

        def undo_delete() -> None:
            store._libraries.put(library_id, entry[1], entry[0])
            store._data[library_id] = data

        self._tx.undo.append(undo_delete)

    def counts(self, library_id: str) -> tuple[int, int]:
        """(document count, chunk count); (0, 0) for an unknown library."""
        data = self._tx.reading()._data.get(library_id)
        if data is None:
            return 0, 0
        return len(data.documents), len(data.chunks)

    def list(self, limit: int, cursor: str | None) -> Page[Library]:
        """Libraries in creation order; raises ``InvalidCursor`` for a foreign cursor."""
        check_page_size(limit)
        after = decode_cursor(cursor, LIBRARIES_LISTING)
        rows = self._tx.reading()._libraries.after(after, limit + 1)
        return page_of([(s, _copy_library(v)) for s, _, v in rows], limit, LIBRARIES_LISTING)


class MemoryDocumentRepository:
    """``DocumentRepository`` over a ``MemoryStore``; used through ``MemoryUnitOfWork``."""

    def __init__(self, tx: _MemoryTransaction) -> None:
        self._tx = tx

    def save(self, document: Document) -> None:
        """Insert or replace the document; its chunks stay. ``LibraryNotFound`` if the
        library does not exist."""
        store = self._tx.writing()
        data = store._data.get(document.library_id)
        if data is None:
            raise LibraryNotFound(document.library_id)
        previous = data.documents.get(document.id)
        data.documents.put(document.id, _copy_document(document), store._next_seq())
        if previous is not None:
            self._tx.undo.append(lambda: data.documents.put(document.id, previous[1], 0))
            return
        self._tx.undo.append(lambda: data.documents.pop(document.id))

    def get(self, library_id: str, document_id: str) -> Document | None:
        data = self._tx.reading()._data.get(library_id)
        entry = None if data is None else data.documents.get(document_id)
        return None if entry is None else _copy_document(entry[1])

    def existing_ids(self, library_id: str, document_ids: Iterable[str]) -> set[str]:
        data = self._tx.reading()._data.get(library_id)
        if data is None:
            return set()
        return {i for i in document_ids if i in data.documents}

    def delete(self, library_id: str, document_id: str) -> None:
        """Delete the document and its chunks; a missing id is a no-op."""
        data = self._tx.writing()._data.get(library_id)
        entry = None if data is None else data.documents.pop(document_id)
        if data is None or entry is None:
            return
        members = data.chunks_by_document.pop(document_id, _SeqTable[None]())
        removed = [(cid, data.chunks.pop(cid)) for cid in members.keys_in_order()]

        def undo_delete() -> None:
            data.documents.put(document_id, entry[1], entry[0])
            data.chunks_by_document[document_id] = members
            for cid, chunk_entry in removed:
                if chunk_entry is not None:
                    data.chunks.put(cid, chunk_entry[1], chunk_entry[0])

        self._tx.undo.append(undo_delete)

    def chunk_counts(self, library_id: str, document_ids: Sequence[str]) -> dict[str, int]:
        """Chunk count of each given document (0 for one with none or unknown)."""
        data = self._tx.reading()._data.get(library_id)
        if data is None:
            return dict.fromkeys(document_ids, 0)
        by_document = data.chunks_by_document
        return {d: len(by_document[d]) if d in by_document else 0 for d in document_ids}

    def list(self, library_id: str, limit: int, cursor: str | None) -> Page[Document]:
        """Documents in insertion order; raises ``InvalidCursor`` for a foreign cursor."""
        check_page_size(limit)
        listing = documents_listing(library_id)
        after = decode_cursor(cursor, listing)
        data = self._tx.reading()._data.get(library_id)
        rows = [] if data is None else data.documents.after(after, limit + 1)
        return page_of([(s, _copy_document(v)) for s, _, v in rows], limit, listing)


class MemoryChunkRepository:
    """``ChunkRepository`` over a ``MemoryStore``; used through ``MemoryUnitOfWork``."""

    def __init__(self, tx: _MemoryTransaction) -> None:
        self._tx = tx

    def save_many(self, chunks: Sequence[Chunk]) -> None:
        """Insert or replace each chunk, keyed by (library_id, id); a replaced chunk keeps
        its place in listings. Every chunk's document must exist: otherwise nothing is
        written and ``DocumentNotFound`` (or ``LibraryNotFound``) names the first missing,
        in sorted order."""
        store = self._tx.writing()
        _check_documents_exist(store, chunks)
        replaced: list[tuple[_LibraryData, str, tuple[int, Chunk] | None]] = []
        for chunk in chunks:
            data = store._data[chunk.library_id]
            previous = _unplace(data, chunk.id)
            seq = previous[0] if previous is not None else store._next_seq()
            _place(data, _copy_chunk(chunk), seq)
            replaced.append((data, chunk.id, previous))

        def undo_save() -> None:
            for data, chunk_id, previous in reversed(replaced):
                _unplace(data, chunk_id)
                if previous is not None:
                    _place(data, previous[1], previous[0])

        self._tx.undo.append(undo_save)

    def get(self, library_id: str, chunk_id: str) -> Chunk | None:
        data = self._tx.reading()._data.get(library_id)
        entry = None if data is None else data.chunks.get(chunk_id)
        return None if entry is None else _copy_chunk(entry[1])

    def get_many(self, library_id: str, chunk_ids: Sequence[str]) -> dict[str, Chunk]:
        """The found chunks by id; unknown ids are left out."""
        data = self._tx.reading()._data.get(library_id)
        if data is None:
            return {}
        found: dict[str, Chunk] = {}
        for chunk_id in chunk_ids:
            entry = data.chunks.get(chunk_id)
            if entry is not None:
                found[chunk_id] = _copy_chunk(entry[1])
        return found

    def existing_ids(self, library_id: str, chunk_ids: Iterable[str]) -> set[str]:
        data = self._tx.reading()._data.get(library_id)
        if data is None:
            return set()
        return {i for i in chunk_ids if i in data.chunks}

    def ids_of_document(self, library_id: str, document_id: str) -> list[str]:
        """The document's chunk ids in insertion order."""
        data = self._tx.reading()._data.get(library_id)
        members = None if data is None else data.chunks_by_document.get(document_id)
        return [] if members is None else members.keys_in_order()

    def delete_many(self, library_id: str, chunk_ids: Iterable[str]) -> None:
        """Delete the chunks; unknown ids are ignored."""
        data = self._tx.writing()._data.get(library_id)
        if data is None:
            return
        removed = [(cid, entry) for cid in chunk_ids if (entry := _unplace(data, cid)) is not None]

        def undo_delete() -> None:
            for _, (seq, chunk) in reversed(removed):
                _place(data, chunk, seq)

        self._tx.undo.append(undo_delete)

    def scan_columns(self, library_id: str, batch_size: int = 10_000) -> Iterator[ChunkColumns]:
        """Every chunk of the library in insertion order, ``batch_size`` rows at a time, as
        columns: one float32 matrix per batch and no per-row copies but the metadata of the
        rows that have any. Resumes by seq between batches, so writes made through the same
        unit of work while scanning do not break the iteration."""
        check_page_size(batch_size)
        after = 0
        while True:
            data = self._tx.reading()._data.get(library_id)
            rows = [] if data is None else data.chunks.after(after, batch_size)
            if not rows:
                return
            stored = [chunk for _, _, chunk in rows]
            yield ChunkColumns(
                ids=[c.id for c in stored],
                document_ids=[c.document_id for c in stored],
                embeddings=np.stack([c.embedding for c in stored]).astype(np.float32, copy=False),
                metadata={
                    i: _copy_metadata(c.metadata) for i, c in enumerate(stored) if c.metadata
                },
                created_micros=np.fromiter(
                    (datetime_micros(c.created_at) for c in stored), np.int64, len(stored)
                ),
                updated_micros=np.fromiter(
                    (datetime_micros(c.updated_at) for c in stored), np.int64, len(stored)
                ),
            )
            after = rows[-1][0]

    def list(
        self, library_id: str, limit: int, cursor: str | None, document_id: str | None = None
    ) -> Page[Chunk]:
        """Chunks in insertion order, optionally of one document; raises ``InvalidCursor``
        for a foreign cursor."""
        check_page_size(limit)
        listing = chunks_listing(library_id, document_id)
        after = decode_cursor(cursor, listing)
        data = self._tx.reading()._data.get(library_id)
        if data is None:
            return page_of([], limit, listing)
        if document_id is None:
            rows = [(s, _copy_chunk(c)) for s, _, c in data.chunks.after(after, limit + 1)]
            return page_of(rows, limit, listing)
        members = data.chunks_by_document.get(document_id)
        found = [] if members is None else members.after(after, limit + 1)
        rows = []
        for seq, chunk_id, _ in found:
            entry = data.chunks.get(chunk_id)
            if entry is not None:
                rows.append((seq, _copy_chunk(entry[1])))
        return page_of(rows, limit, listing)


def _check_documents_exist(store: MemoryStore, chunks: Sequence[Chunk]) -> None:
    wanted: dict[str, set[str]] = {}
    for chunk in chunks:
        wanted.setdefault(chunk.library_id, set()).add(chunk.document_id)
    for library_id in sorted(wanted):
        data = store._data.get(library_id)
        if data is None:
            raise LibraryNotFound(library_id)
        missing = sorted(d for d in wanted[library_id] if d not in data.documents)
        if missing:
            raise DocumentNotFound(library_id, missing[0])


def _place(data: _LibraryData, chunk: Chunk, seq: int) -> None:
    data.chunks.put(chunk.id, chunk, seq)
    members = data.chunks_by_document.get(chunk.document_id)
    if members is None:
        members = data.chunks_by_document[chunk.document_id] = _SeqTable()
    members.put(chunk.id, None, seq)


def _unplace(data: _LibraryData, chunk_id: str) -> tuple[int, Chunk] | None:
    entry = data.chunks.pop(chunk_id)
    if entry is None:
        return None
    members = data.chunks_by_document.get(entry[1].document_id)
    if members is not None:
        members.pop(chunk_id)
        if not members:
            del data.chunks_by_document[entry[1].document_id]
    return entry


class MemoryUnitOfWork:
    """``UnitOfWork`` over a ``MemoryStore``: all or nothing, one unit of work at a time.

    ``with MemoryUnitOfWork(store) as uow: ...; uow.commit()``. Changes are visible to
    later units of work once ``commit`` returns; ``rollback`` or leaving the block without
    committing undoes every change since the last commit. The unit of work stays usable
    after ``commit`` or ``rollback`` until the block ends.

    ``read_only=True`` refuses writes with ``ReadOnlyUnitOfWork`` (the SQLite adapter lets
    such units of work read concurrently; here they still take the store's lock).
    Entering waits up to ``lock_timeout`` seconds for the store, then raises
    ``StoreUnavailable`` rather than deadlock (e.g. a unit of work nested in another on
    the same thread).
    """

    libraries: LibraryRepository
    documents: DocumentRepository
    chunks: ChunkRepository

    def __init__(
        self,
        store: MemoryStore,
        *,
        read_only: bool = False,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    ) -> None:
        self._tx = _MemoryTransaction(store, read_only)
        self._lock_timeout = lock_timeout
        self.libraries = MemoryLibraryRepository(self._tx)
        self.documents = MemoryDocumentRepository(self._tx)
        self.chunks = MemoryChunkRepository(self._tx)

    def __enter__(self) -> Self:
        if self._tx.active:
            raise UnitOfWorkError("this unit of work is already active")
        if not self._tx.store.lock.acquire(timeout=self._lock_timeout):
            raise StoreUnavailable(
                f"the in-memory store stayed busy for {self._lock_timeout:g} s",
                retry_after=self._lock_timeout,
            )
        self._tx.active = True
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.rollback()
        finally:
            self._tx.active = False
            self._tx.store.lock.release()

    def commit(self) -> None:
        """Make every change since the last commit permanent (for the process's life)."""
        self._tx.reading()
        self._tx.undo.clear()

    def rollback(self) -> None:
        """Undo every change since the last commit, newest first."""
        self._tx.reading()
        undo = self._tx.undo
        while undo:
            undo.pop()()
