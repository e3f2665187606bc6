"""``SqlUnitOfWork``: the ``UnitOfWork`` port on SQLite."""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Self

from sqlalchemy import Connection, Engine

from adapters.persistence.errors import UnitOfWorkError
from adapters.persistence.sqlite.engine import (
    BEGIN_MODE_OPTION,
    DEFAULT_BUSY_TIMEOUT,
    driver_connection_of,
    is_stacksdb_engine,
    reclaim_free_pages,
    write_lock_for,
)
from adapters.persistence.sqlite.log import SqlLogRepository
from adapters.persistence.sqlite.repositories import (
    SqlChunkRepository,
    SqlDocumentRepository,
    SqlLibraryRepository,
)
from adapters.persistence.sqlite.transaction import SqlTransaction, translated_errors
from domain.errors import StoreUnavailable
from domain.ports import ChunkRepository, DocumentRepository, LibraryRepository
from domain.replication import LogRepository


class SqlUnitOfWork:
    """All or nothing on SQLite: ``with SqlUnitOfWork(engine) as uow: ...; uow.commit()``.

    Each unit of work checks out its own pooled connection on ``__enter__`` and returns it
    on ``__exit__``, so units of work may run on many threads at once (one unit of work
    itself belongs to one thread). A write is durable once ``commit`` returns (WAL with
    ``synchronous=FULL``, see ``engine``). ``rollback``, or leaving the block without
    committing, discards every change since the last commit. The unit of work stays usable
    after ``commit`` or ``rollback`` (a new transaction begins on its next statement) until
    the block ends.

    Writers and SQLITE_BUSY. SQLite has one writer at a time. A ``DEFERRED`` transaction
    that reads and then writes fails at once with SQLITE_BUSY(_SNAPSHOT), which no busy
    timeout retries, when another writer committed since its read: that would be a spurious
    failure of the usual "get, check, save" use case. So a unit of work (the default,
    ``read_only=False``) is a writer from the start: it first takes a process-wide lock per
    database file, then opens ``BEGIN IMMEDIATE`` (SQLite's write lock). The in-process lock
    queues this process's writers fairly in Python instead of in SQLite's sleeping busy
    handler, and the busy timeout still covers any other process on the file. Its cost is
    that writers in one process are serialised, which SQLite imposes anyway.

    ``read_only=True`` takes neither lock: it opens ``BEGIN DEFERRED`` and reads a
    consistent WAL snapshot concurrently with the writer and other readers; its writes
    raise ``ReadOnlyUnitOfWork``. Use it for read paths that want to scale.

    Waiting for the write lock is bounded by ``lock_timeout`` seconds (default: the busy
    timeout); past it ``StoreUnavailable`` is raised, which also turns an accidental
    nesting of two writers on one thread into an error instead of a deadlock.
    ``engine`` must come from ``create_sqlite_engine``.
    """

    libraries: LibraryRepository
    documents: DocumentRepository
    chunks: ChunkRepository
    log: LogRepository

    def __init__(
        self,
        engine: Engine,
        *,
        read_only: bool = False,
        lock_timeout: float = DEFAULT_BUSY_TIMEOUT,
    ) -> None:
        if not is_stacksdb_engine(engine):
            raise ValueError("SqlUnitOfWork needs an engine made by create_sqlite_engine")
        self._engine = engine
        self._lock_timeout = lock_timeout
        self._write_lock: threading.Lock | None = None if read_only else write_lock_for(engine)
        self._tx = SqlTransaction(read_only)
        self.libraries = SqlLibraryRepository(self._tx)
        self.documents = SqlDocumentRepository(self._tx)
        self.chunks = SqlChunkRepository(self._tx)
        # The replication log, in the same transaction as the data (domain.replication).
        self.log = SqlLogRepository(self._tx)

    def __enter__(self) -> Self:
        if self._tx.connection is not None:
            raise UnitOfWorkError("this unit of work is already active")
        lock = self._write_lock
        if lock is not None and not lock.acquire(timeout=self._lock_timeout):
            raise StoreUnavailable(
                f"the SQLite store stayed busy for {self._lock_timeout:g} s",
                retry_after=self._lock_timeout,
            )
        try:
            self._tx.connection = self._open()
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        connection = self._tx.connection
        if connection is None:
            return
        try:
            with translated_errors():
                connection.rollback()
        finally:
            self._tx.connection = None
            connection.close()
            if self._write_lock is not None:
                self._write_lock.release()

    def commit(self) -> None:
        """Make every change since the last commit durable; returns once it is on disk."""
        connection = self._tx.reading()
        with translated_errors():
            connection.commit()
        if self._write_lock is not None:
            # Still holding the write lock: no other writer can be in a transaction.
            reclaim_free_pages(driver_connection_of(connection))

    def rollback(self) -> None:
        """Discard every change since the last commit."""
        connection = self._tx.reading()
        with translated_errors():
            connection.rollback()

    def _open(self) -> Connection:
        mode = "DEFERRED" if self._write_lock is None else "IMMEDIATE"
        with translated_errors():
            connection = self._engine.connect()
            try:
                connection.execution_options(**{BEGIN_MODE_OPTION: mode})
                connection.begin()
            except BaseException:
                connection.close()
                raise
        return connection
