"""``MemoryLibraryRepository``: the ``LibraryRepository`` port over a ``MemoryStore``."""

from __future__ import annotations

from adapters.persistence.cursor import LIBRARIES_LISTING, check_page_size, decode_cursor, page_of
from adapters.persistence.memory.copies import copy_library
from adapters.persistence.memory.store import LibraryData
from adapters.persistence.memory.transaction import MemoryTransaction
from domain.models import Library, Page


class MemoryLibraryRepository:
    """``LibraryRepository`` over a ``MemoryStore``; used through ``MemoryUnitOfWork``."""

    def __init__(self, tx: MemoryTransaction) -> None:
        self._tx = tx

    def save(self, library: Library) -> None:
        """Insert or replace the library; a replaced library keeps its place in listings."""
        store = self._tx.writing()
        stored = copy_library(library)
        previous = store.libraries.get(library.id)
        store.libraries.put(library.id, stored, store.next_seq())
        if previous is not None:
            self._tx.undo.append(lambda: store.libraries.put(library.id, previous[1], 0))
            return
        store.data[library.id] = LibraryData()

        def undo_insert() -> None:
            store.libraries.pop(library.id)
            store.data.pop(library.id, None)

        self._tx.undo.append(undo_insert)

    def get(self, library_id: str) -> Library | None:
        entry = self._tx.reading().libraries.get(library_id)
        return None if entry is None else copy_library(entry[1])

    def delete(self, library_id: str) -> None:
        """Delete the library with its documents and chunks; a missing id is a no-op."""
        store = self._tx.writing()
        entry = store.libraries.pop(library_id)
        if entry is None:
            return
        data = store.data.pop(library_id)

        def undo_delete() -> None:
            store.libraries.put(library_id, entry[1], entry[0])
            store.data[library_id] = data

        self._tx.undo.append(undo_delete)

    def counts(self, library_id: str) -> tuple[int, int]:
        """(document count, chunk count); (0, 0) for an unknown library."""
        data = self._tx.reading().data.get(library_id)
        if data is None:
            return 0, 0
        return len(data.documents), len(data.chunks)

    def list(self, limit: int, cursor: str | None) -> Page[Library]:
        """Libraries in creation order; raises ``InvalidCursor`` for a foreign cursor."""
        check_page_size(limit)
        after = decode_cursor(cursor, LIBRARIES_LISTING)
        rows = self._tx.reading().libraries.after(after, limit + 1)
        return page_of([(s, copy_library(v)) for s, _, v in rows], limit, LIBRARIES_LISTING)
