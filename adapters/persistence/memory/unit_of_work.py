"""``MemoryUnitOfWork``: the ``UnitOfWork`` port over a ``MemoryStore``."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from adapters.persistence.errors import UnitOfWorkError
from adapters.persistence.memory.chunk_repository import MemoryChunkRepository
from adapters.persistence.memory.document_repository import MemoryDocumentRepository
from adapters.persistence.memory.library_repository import MemoryLibraryRepository
from adapters.persistence.memory.store import MemoryStore
from adapters.persistence.memory.transaction import MemoryTransaction
from domain.errors import StoreUnavailable
from domain.ports import ChunkRepository, DocumentRepository, LibraryRepository

DEFAULT_LOCK_TIMEOUT = 30.0


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
        self._tx = MemoryTransaction(store, read_only)
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
