"""SQLite persistence (SQLAlchemy 2 Core): the ``UnitOfWork`` port and its repositories.

Wiring: ``engine = create_sqlite_engine(data_dir / "stacksdb.sqlite3")``, then
``SqlUnitOfWork(engine)`` per unit of work (``functools.partial(SqlUnitOfWork, engine)``
is a ``UnitOfWorkFactory``); ``engine.dispose()`` at shutdown.
"""

from adapters.persistence.sqlite.engine import create_sqlite_engine, ensure_schema
from adapters.persistence.sqlite.repositories import (
    SqlChunkRepository,
    SqlDocumentRepository,
    SqlLibraryRepository,
)
from adapters.persistence.sqlite.unit_of_work import SqlUnitOfWork

__all__ = [
    "SqlChunkRepository",
    "SqlDocumentRepository",
    "SqlLibraryRepository",
    "SqlUnitOfWork",
    "create_sqlite_engine",
    "ensure_schema",
]
