"""``MemoryDocumentRepository``: the ``DocumentRepository`` port over a ``MemoryStore``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from adapters.persistence.cursor import check_page_size, decode_cursor, documents_listing, page_of
from adapters.persistence.memory.copies import copy_document
from adapters.persistence.memory.store import SeqTable
from adapters.persistence.memory.transaction import MemoryTransaction
from domain.errors import LibraryNotFound
from domain.models import Document, Page


class MemoryDocumentRepository:
    """``DocumentRepository`` over a ``MemoryStore``; used through ``MemoryUnitOfWork``."""

    def __init__(self, tx: MemoryTransaction) -> None:
        self._tx = tx

    def save(self, document: Document) -> None:
        """Insert or replace the document; its chunks stay. ``LibraryNotFound`` if the
        library does not exist."""
        store = self._tx.writing()
        data = store.data.get(document.library_id)
        if data is None:
            raise LibraryNotFound(document.library_id)
        previous = data.documents.get(document.id)
        data.documents.put(document.id, copy_document(document), store.next_seq())
        if previous is not None:
            self._tx.undo.append(lambda: data.documents.put(document.id, previous[1], 0))
            return
        self._tx.undo.append(lambda: data.documents.pop(document.id))

    def get(self, library_id: str, document_id: str) -> Document | None:
        data = self._tx.reading().data.get(library_id)
        entry = None if data is None else data.documents.get(document_id)
        return None if entry is None else copy_document(entry[1])

    def existing_ids(self, library_id: str, document_ids: Iterable[str]) -> set[str]:
        data = self._tx.reading().data.get(library_id)
        if data is None:
            return set()
        return {i for i in document_ids if i in data.documents}

    def delete(self, library_id: str, document_id: str) -> None:
        """Delete the document and its chunks; a missing id is a no-op."""
        data = self._tx.writing().data.get(library_id)
        entry = None if data is None else data.documents.pop(document_id)
        if data is None or entry is None:
            return
        members = data.chunks_by_document.pop(document_id, SeqTable[None]())
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
        data = self._tx.reading().data.get(library_id)
        if data is None:
            return dict.fromkeys(document_ids, 0)
        by_document = data.chunks_by_document
        return {d: len(by_document[d]) if d in by_document else 0 for d in document_ids}

    def list(self, library_id: str, limit: int, cursor: str | None) -> Page[Document]:
        """Documents in insertion order; raises ``InvalidCursor`` for a foreign cursor."""
        check_page_size(limit)
        listing = documents_listing(library_id)
        after = decode_cursor(cursor, listing)
        data = self._tx.reading().data.get(library_id)
        rows = [] if data is None else data.documents.after(after, limit + 1)
        return page_of([(s, copy_document(v)) for s, _, v in rows], limit, listing)
