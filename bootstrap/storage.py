"""Opening the configured store: embedded SQLite (the default) or memory only."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from adapters.persistence.memory import MemoryStore
from adapters.persistence.sqlite import SqlUnitOfWork, create_sqlite_engine
from adapters.replication.memory_log import MemoryLog, memory_uow_factory
from bootstrap.settings import Settings
from domain.replication import LoggedUnitOfWorkFactory


@dataclass(frozen=True, slots=True)
class Storage:
    uow_factory: LoggedUnitOfWorkFactory
    readiness: Callable[[], str | None]
    close: Callable[[], None]


def open_storage(settings: Settings) -> Storage:
    if settings.storage == "memory":
        store = MemoryStore()
        memory_uow = memory_uow_factory(store, MemoryLog())
        return Storage(memory_uow, lambda: None, lambda: None)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_sqlite_engine(settings.database_path)

    def readiness() -> str | None:
        try:
            with engine.connect() as connection:
                connection.exec_driver_sql("SELECT 1")
        except Exception as exc:  # any failure to reach the file means "not ready"
            return f"the store cannot be read: {exc}"
        return None

    return Storage(partial(SqlUnitOfWork, engine), readiness, engine.dispose)
