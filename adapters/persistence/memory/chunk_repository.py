"""``MemoryChunkRepository``: the ``ChunkRepository`` port over a ``MemoryStore``.

A chunk lives in two tables of its library: ``chunks`` (by id) and, at the same seq,
``chunks_by_document`` (its document's members); ``_place`` and ``_unplace`` keep the two
in step.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from adapters.persistence.cursor import check_page_size, chunks_listing, decode_cursor, page_of
from adapters.persistence.memory.copies import copy_chunk, copy_metadata
from adapters.persistence.memory.store import LibraryData, MemoryStore, SeqTable
from adapters.persistence.memory.transaction import MemoryTransaction
from domain.errors import DocumentNotFound, LibraryNotFound
from domain.filters import datetime_micros
from domain.models import Chunk, ChunkColumns, Page


class MemoryChunkRepository:
    """``ChunkRepository`` over a ``MemoryStore``; used through ``MemoryUnitOfWork``."""

    def __init__(self, tx: MemoryTransaction) -> None:
        self._tx = tx

    def save_many(self, chunks: Sequence[Chunk]) -> None:
        """Insert or replace each chunk, keyed by (library_id, id); a replaced chunk keeps
        its place in listings. Every chunk's document must exist: otherwise nothing is
        written and ``DocumentNotFound`` (or ``LibraryNotFound``) names the first missing,
        in sorted order."""
        store = self._tx.writing()
        _check_documents_exist(store, chunks)
        replaced: list[tuple[LibraryData, str, tuple[int, Chunk] | None]] = []
        for chunk in chunks:
            data = store.data[chunk.library_id]
            previous = _unplace(data, chunk.id)
            seq = previous[0] if previous is not None else store.next_seq()
            _place(data, copy_chunk(chunk), seq)
            replaced.append((data, chunk.id, previous))

        def undo_save() -> None:
            for data, chunk_id, previous in reversed(replaced):
                _unplace(data, chunk_id)
                if previous is not None:
                    _place(data, previous[1], previous[0])

        self._tx.undo.append(undo_save)

    def get(self, library_id: str, chunk_id: str) -> Chunk | None:
        data = self._tx.reading().data.get(library_id)
        entry = None if data is None else data.chunks.get(chunk_id)
        return None if entry is None else copy_chunk(entry[1])

    def get_many(self, library_id: str, chunk_ids: Sequence[str]) -> dict[str, Chunk]:
        """The found chunks by id; unknown ids are left out."""
        data = self._tx.reading().data.get(library_id)
        if data is None:
            return {}
        found: dict[str, Chunk] = {}
        for chunk_id in chunk_ids:
            entry = data.chunks.get(chunk_id)
            if entry is not None:
                found[chunk_id] = copy_chunk(entry[1])
        return found

    def existing_ids(self, library_id: str, chunk_ids: Iterable[str]) -> set[str]:
        data = self._tx.reading().data.get(library_id)
        if data is None:
            return set()
        return {i for i in chunk_ids if i in data.chunks}

    def ids_of_document(self, library_id: str, document_id: str) -> list[str]:
        """The document's chunk ids in insertion order."""
        data = self._tx.reading().data.get(library_id)
        members = None if data is None else data.chunks_by_document.get(document_id)
        return [] if members is None else members.keys_in_order()

    def delete_many(self, library_id: str, chunk_ids: Iterable[str]) -> None:
        """Delete the chunks; unknown ids are ignored."""
        data = self._tx.writing().data.get(library_id)
        if data is None:
            return
        removed = [(cid, entry) for cid in chunk_ids if (entry := _unplace(data, cid)) is not None]

        def undo_delete() -> None:
            for _, (seq, chunk) in reversed(removed):
                _place(data, chunk, seq)

        self._tx.undo.append(undo_delete)

    def scan_columns(
        self, library_id: str, batch_size: int = 10_000, *, with_text: bool = False
    ) -> Iterator[ChunkColumns]:
        """Every chunk of the library in insertion order, ``batch_size`` rows at a time, as
        columns: one float32 matrix per batch and no per-row copies but the metadata of the
        rows that have any, and the texts only ``with_text``. Resumes by seq between
        batches, so writes made through the same unit of work while scanning do not break
        the iteration."""
        check_page_size(batch_size)
        after = 0
        while True:
            data = self._tx.reading().data.get(library_id)
            rows = [] if data is None else data.chunks.after(after, batch_size)
            if not rows:
                return
            stored = [chunk for _, _, chunk in rows]
            yield ChunkColumns(
                ids=[c.id for c in stored],
                document_ids=[c.document_id for c in stored],
                embeddings=np.stack([c.embedding for c in stored]).astype(np.float32, copy=False),
                metadata={i: copy_metadata(c.metadata) for i, c in enumerate(stored) if c.metadata},
                created_micros=np.fromiter(
                    (datetime_micros(c.created_at) for c in stored), np.int64, len(stored)
                ),
                updated_micros=np.fromiter(
                    (datetime_micros(c.updated_at) for c in stored), np.int64, len(stored)
                ),
                texts=[c.text for c in stored] if with_text else None,
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
        data = self._tx.reading().data.get(library_id)
        if data is None:
            return page_of([], limit, listing)
        if document_id is None:
            rows = [(s, copy_chunk(c)) for s, _, c in data.chunks.after(after, limit + 1)]
            return page_of(rows, limit, listing)
        members = data.chunks_by_document.get(document_id)
        found = [] if members is None else members.after(after, limit + 1)
        rows = []
        for seq, chunk_id, _ in found:
            entry = data.chunks.get(chunk_id)
            if entry is not None:
                rows.append((seq, copy_chunk(entry[1])))
        return page_of(rows, limit, listing)


def _check_documents_exist(store: MemoryStore, chunks: Sequence[Chunk]) -> None:
    wanted: dict[str, set[str]] = {}
    for chunk in chunks:
        wanted.setdefault(chunk.library_id, set()).add(chunk.document_id)
    for library_id in sorted(wanted):
        data = store.data.get(library_id)
        if data is None:
            raise LibraryNotFound(library_id)
        missing = sorted(d for d in wanted[library_id] if d not in data.documents)
        if missing:
            raise DocumentNotFound(library_id, missing[0])


def _place(data: LibraryData, chunk: Chunk, seq: int) -> None:
    data.chunks.put(chunk.id, chunk, seq)
    members = data.chunks_by_document.get(chunk.document_id)
    if members is None:
        members = data.chunks_by_document[chunk.document_id] = SeqTable()
    members.put(chunk.id, None, seq)


def _unplace(data: LibraryData, chunk_id: str) -> tuple[int, Chunk] | None:
    entry = data.chunks.pop(chunk_id)
    if entry is None:
        return None
    members = data.chunks_by_document.get(entry[1].document_id)
    if members is not None:
        members.pop(chunk_id)
        if not members:
            del data.chunks_by_document[entry[1].document_id]
    return entry
