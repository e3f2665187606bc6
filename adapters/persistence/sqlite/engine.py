"""Opening a StacksDB SQLite database: the engine, its per-connection settings, the schema,
and the process-wide write lock.

Durability. Every connection runs ``journal_mode=WAL`` and ``synchronous=FULL``: a commit
appends the transaction to the write-ahead log and fsyncs it before ``COMMIT`` returns, so a
committed write survives a crash of the process or the machine. (With ``synchronous=NORMAL``
a power cut could lose the last commits; that is the trade we refuse.) In WAL mode readers
read a snapshot and never block the writer, nor the writer them.

Transactions. ``pysqlite`` (Python < 3.12) opens transactions behind our back and only
before DML, which breaks snapshot reads and makes ``BEGIN IMMEDIATE`` impossible. So the
driver is put in autocommit mode (``isolation_level=None``) and the engine's ``begin``
event emits ``BEGIN <mode>`` itself, the recipe in SQLAlchemy's SQLite dialect docs; the
mode comes from the connection's ``BEGIN_MODE_OPTION`` execution option.

Space. Deleted rows leave free pages inside the file. ``ensure_schema`` puts the file in
``auto_vacuum=INCREMENTAL`` mode (one ``VACUUM`` the first time, instant on a new file),
and a unit of work calls ``reclaim_free_pages`` after its commit: once the free pages are
many (``RECLAIM_MIN_PAGES`` and a tenth of the file), ``PRAGMA incremental_vacuum`` hands
them back to the file system, so small deletes cost nothing and a large delete shrinks the
file at the next checkpoint. ``journal_size_limit`` likewise truncates the WAL after a
checkpoint instead of keeping it at its largest size for ever.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import weakref
from functools import partial
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Connection, Engine, create_engine, event, insert, select, text
from sqlalchemy.engine import URL
from sqlalchemy.pool import QueuePool

from adapters.persistence.sqlite.tables import SCHEMA_VERSION, SEQ_COUNTER, schema, sequences
from domain.errors import StoreUnavailable

BEGIN_MODE_OPTION: Final = "stacksdb_begin_mode"
_BEGIN_MODES = frozenset({"DEFERRED", "IMMEDIATE"})

DEFAULT_BUSY_TIMEOUT = 30.0

RECLAIM_MIN_PAGES = 256
RECLAIM_FRACTION = 0.1
JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024
_INCREMENTAL = 2  # PRAGMA auto_vacuum's value for INCREMENTAL

log = logging.getLogger(__name__)

# One lock per database file for the whole process: see SqlUnitOfWork for why writers
# queue on it. Keyed by the resolved path, so two engines on one file share it.
_write_locks: dict[str, threading.Lock] = {}
_write_locks_guard = threading.Lock()
_configured_engines: weakref.WeakSet[Engine] = weakref.WeakSet()


def create_sqlite_engine(
    path: str | os.PathLike[str],
    *,
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
    pool_size: int = 8,
    max_overflow: int = 64,
    create_schema: bool = True,
) -> Engine:
    """An engine on the SQLite file at ``path`` (its folder is created if missing).

    Every connection gets ``journal_mode=WAL``, ``synchronous=FULL``, ``foreign_keys=ON``
    and ``busy_timeout`` (seconds; also how long a unit of work waits for the write lock and
    for a pooled connection). With ``create_schema`` the tables are created if absent;
    ``StoreUnavailable`` is raised for a file written by a newer schema version. The file
    must be a real path: an in-memory database would differ per pooled connection.

    Dispose of the engine (``engine.dispose()``) to close its connections.
    """
    db_path = Path(path).expanduser().resolve()
    db_path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        URL.create("sqlite+pysqlite", database=str(db_path)),
        poolclass=QueuePool,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=busy_timeout,
        # Connections move between threads through the pool, one thread at a time.
        connect_args={"check_same_thread": False, "timeout": busy_timeout},
    )
    event.listen(engine, "connect", partial(_configure_connection, int(busy_timeout * 1000)))
    event.listen(engine, "begin", _begin)
    _configured_engines.add(engine)
    if create_schema:
        ensure_schema(engine)
    return engine


def is_stacksdb_engine(engine: Engine) -> bool:
    """Whether ``engine`` came from ``create_sqlite_engine`` (and so has its settings)."""
    return engine in _configured_engines


def write_lock_for(engine: Engine) -> threading.Lock:
    """The process-wide lock that write transactions on ``engine``'s file take first."""
    key = str(engine.url.database)
    with _write_locks_guard:
        lock = _write_locks.get(key)
        if lock is None:
            lock = _write_locks[key] = threading.Lock()
        return lock


# ``MIGRATIONS[v - 1]`` takes a version ``v`` file to version ``v + 1``; a new file (version 0)
# gets the whole schema from ``create_all`` instead.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "ALTER TABLE libraries ADD COLUMN embedder_json TEXT",
        "ALTER TABLE libraries ADD COLUMN text_index_json TEXT",
    ),
)


def ensure_schema(engine: Engine) -> None:
    """Create the tables and the seq counter if absent, migrate an older schema in the same
    transaction; refuse a newer schema version."""
    with write_lock_for(engine), engine.connect() as conn:
        _ensure_incremental_vacuum(_sqlite(conn.connection.driver_connection))
        conn.execution_options(**{BEGIN_MODE_OPTION: "IMMEDIATE"})
        with conn.begin():
            version = conn.exec_driver_sql("PRAGMA user_version").scalar_one()
            if version > SCHEMA_VERSION:
                raise StoreUnavailable(
                    f"the database schema is version {version}, newer than this "
                    f"server's {SCHEMA_VERSION}; upgrade the server"
                )
            if version > 0:
                for statements in MIGRATIONS[version - 1 :]:
                    for statement in statements:
                        conn.exec_driver_sql(statement)
            schema.create_all(conn)
            exists = conn.execute(
                select(sequences.c.value).where(sequences.c.name == SEQ_COUNTER)
            ).first()
            if exists is None:
                conn.execute(insert(sequences).values(name=SEQ_COUNTER, value=0))
            conn.execute(text(f"PRAGMA user_version = {SCHEMA_VERSION}"))


def reclaim_free_pages(dbapi_connection: sqlite3.Connection) -> int:
    """Give the file's free pages back to the file system when they are many (see the
    module docstring); returns how many were reclaimed. Call with no transaction open.

    Never raises: space is reclaimed again after a later commit, and the caller's commit,
    already durable, must not be reported as failed.
    """
    try:
        free = int(dbapi_connection.execute("PRAGMA freelist_count").fetchone()[0])
        if free < RECLAIM_MIN_PAGES:
            return 0
        pages = int(dbapi_connection.execute("PRAGMA page_count").fetchone()[0])
        if free < pages * RECLAIM_FRACTION:
            return 0
        # executescript steps the pragma to the end; execute() would free a single page.
        dbapi_connection.executescript("PRAGMA incremental_vacuum;")
    except sqlite3.Error as exc:
        log.warning("could not reclaim free pages (will retry after a later commit): %s", exc)
        return 0
    return free


def _sqlite(driver_connection: Any) -> sqlite3.Connection:
    """The pysqlite connection under a pooled SQLAlchemy one."""
    assert isinstance(driver_connection, sqlite3.Connection)
    return driver_connection


def driver_connection_of(connection: Connection) -> sqlite3.Connection:
    return _sqlite(connection.connection.driver_connection)


def _ensure_incremental_vacuum(dbapi_connection: sqlite3.Connection) -> None:
    """Switch the file to ``auto_vacuum=INCREMENTAL``: one VACUUM, once (instant on a new
    file). Not set per connection: on a file in use that pragma waits for the write lock."""
    mode = dbapi_connection.execute("PRAGMA auto_vacuum").fetchone()[0]
    if mode == _INCREMENTAL:
        return
    log.info("converting the store to auto_vacuum=INCREMENTAL (one VACUUM)")
    dbapi_connection.execute("PRAGMA auto_vacuum = INCREMENTAL")
    dbapi_connection.execute("VACUUM")


def _configure_connection(busy_timeout_ms: int, dbapi_connection: Any, _record: Any) -> None:
    # Autocommit at the driver level: the ``begin`` event opens transactions instead.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")
        mode = cursor.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreUnavailable(f"SQLite refused WAL mode (got {mode!r}) for this file")
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute(f"PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT}")
        # Outside any transaction, or SQLite silently ignores it.
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _begin(conn: Connection) -> None:
    mode = conn.get_execution_options().get(BEGIN_MODE_OPTION, "DEFERRED")
    if mode not in _BEGIN_MODES:
        raise ValueError(f"unknown SQLite transaction mode {mode!r}")
    conn.exec_driver_sql(f"BEGIN {mode}")
