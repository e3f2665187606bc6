"""Logging every committed write: a unit of work that records what it commits.

``RecordingUnitOfWork`` wraps the store's unit of work. Services use it unchanged; it
records each mutation its repositories make and, at ``commit``, appends one ``LogEntry``
(the next index, the leader's term) in the same transaction, after the fencing check
(``WriteAuthority.ensure_writable``). So every write, whichever service made it, has a log
entry iff it committed.
"""

from __future__ import annotations

import builtins
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from types import TracebackType
from typing import Self

from application.replication.log_feed import LogFeed
from domain.models import Chunk, ChunkColumns, Document, Library, Page
from domain.ports import ChunkRepository, DocumentRepository, LibraryRepository, UnitOfWork
from domain.replication import (
    LogEntry,
    LoggedUnitOfWork,
    LoggedUnitOfWorkFactory,
    LogPosition,
    Op,
    WriteAuthority,
    delete_chunks_op,
    delete_document_op,
    delete_library_op,
    save_chunks_op,
    save_document_op,
    save_library_op,
)


class _Ops(list[Op]):
    """The mutations a unit of work made since its last commit or rollback."""


class _RecordingLibraries:
    def __init__(self, inner: LibraryRepository, ops: _Ops) -> None:
        self._inner = inner
        self._ops = ops

    def save(self, library: Library) -> None:
        self._inner.save(library)
        self._ops.append(save_library_op(library))

    def get(self, library_id: str) -> Library | None:
        return self._inner.get(library_id)

    def list(self, limit: int, cursor: str | None) -> Page[Library]:
        return self._inner.list(limit, cursor)

    def delete(self, library_id: str) -> None:
        self._inner.delete(library_id)
        self._ops.append(delete_library_op(library_id))

    def counts(self, library_id: str) -> tuple[int, int]:
        return self._inner.counts(library_id)


class _RecordingDocuments:
    def __init__(self, inner: DocumentRepository, ops: _Ops) -> None:
        self._inner = inner
        self._ops = ops

    def save(self, document: Document) -> None:
        self._inner.save(document)
        self._ops.append(save_document_op(document))

    def get(self, library_id: str, document_id: str) -> Document | None:
        return self._inner.get(library_id, document_id)

    def existing_ids(self, library_id: str, document_ids: Iterable[str]) -> set[str]:
        return self._inner.existing_ids(library_id, document_ids)

    def list(self, library_id: str, limit: int, cursor: str | None) -> Page[Document]:
        return self._inner.list(library_id, limit, cursor)

    def delete(self, library_id: str, document_id: str) -> None:
        self._inner.delete(library_id, document_id)
        self._ops.append(delete_document_op(library_id, document_id))

    def chunk_counts(self, library_id: str, document_ids: Sequence[str]) -> dict[str, int]:
        return self._inner.chunk_counts(library_id, document_ids)


class _RecordingChunks:
    def __init__(self, inner: ChunkRepository, ops: _Ops) -> None:
        self._inner = inner
        self._ops = ops

    def save_many(self, chunks: Sequence[Chunk]) -> None:
        self._inner.save_many(chunks)
        by_library: dict[str, list[Chunk]] = defaultdict(list)
        for chunk in chunks:
            by_library[chunk.library_id].append(chunk)
        self._ops.extend(save_chunks_op(lib, group) for lib, group in by_library.items())

    def get(self, library_id: str, chunk_id: str) -> Chunk | None:
        return self._inner.get(library_id, chunk_id)

    def get_many(self, library_id: str, chunk_ids: Sequence[str]) -> dict[str, Chunk]:
        return self._inner.get_many(library_id, chunk_ids)

    def existing_ids(self, library_id: str, chunk_ids: Iterable[str]) -> set[str]:
        return self._inner.existing_ids(library_id, chunk_ids)

    def ids_of_document(self, library_id: str, document_id: str) -> builtins.list[str]:
        return self._inner.ids_of_document(library_id, document_id)

    def list(
        self, library_id: str, limit: int, cursor: str | None, document_id: str | None = None
    ) -> Page[Chunk]:
        return self._inner.list(library_id, limit, cursor, document_id)

    def delete_many(self, library_id: str, chunk_ids: Iterable[str]) -> None:
        ids = builtins.list(chunk_ids)
        self._inner.delete_many(library_id, ids)
        self._ops.append(delete_chunks_op(library_id, ids))

    def scan_columns(
        self, library_id: str, batch_size: int = 10_000, *, with_text: bool = False
    ) -> Iterator[ChunkColumns]:
        return self._inner.scan_columns(library_id, batch_size, with_text=with_text)


class RecordingUnitOfWork:
    """A ``UnitOfWork`` that logs what it commits; see the module docstring."""

    libraries: LibraryRepository
    documents: DocumentRepository
    chunks: ChunkRepository

    def __init__(self, inner: LoggedUnitOfWork, authority: WriteAuthority, feed: LogFeed) -> None:
        self._inner = inner
        self._authority = authority
        self._feed = feed
        self._ops = _Ops()
        self.libraries = _RecordingLibraries(inner.libraries, self._ops)
        self.documents = _RecordingDocuments(inner.documents, self._ops)
        self.chunks = _RecordingChunks(inner.chunks, self._ops)

    def __enter__(self) -> Self:
        self._inner.__enter__()
        self._ops.clear()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._ops.clear()
        self._inner.__exit__(exc_type, exc, tb)

    def commit(self) -> int | None:
        """Commit the changes with their log entry and return its index, or raise
        ``NotLeader`` and keep nothing. A commit of no change logs nothing (None)."""
        if not self._ops:
            self._inner.commit()
            return None
        self._authority.ensure_writable()
        last = self._inner.log.last()
        entry = LogEntry(last.index + 1, self._authority.term(), tuple(self._ops))
        self._inner.log.append(entry)
        self._inner.commit()
        self._ops.clear()
        self._feed.advance(LogPosition(entry.index, entry.term))
        return entry.index

    def rollback(self) -> None:
        self._ops.clear()
        self._inner.rollback()


class RecordingUnitOfWorkFactory:
    """A ``UnitOfWorkFactory``: read-only units of work go straight to the store (they
    cannot write, so there is nothing to log); the others record what they commit."""

    def __init__(
        self, inner: LoggedUnitOfWorkFactory, authority: WriteAuthority, feed: LogFeed
    ) -> None:
        self._inner = inner
        self._authority = authority
        self._feed = feed

    def __call__(self, *, read_only: bool = False) -> UnitOfWork:
        if read_only:
            return self._inner(read_only=True)
        return RecordingUnitOfWork(self._inner(), self._authority, self._feed)
