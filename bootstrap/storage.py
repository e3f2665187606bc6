"""Opening the configured store: embedded SQLite (the default) or memory only."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from adapters.persistence.memory import MemoryStore, MemoryUnitOfWork
from adapters.persistence.sqlite import SqlUnitOfWork, create_sqlite_engine
from bootstrap.settings import Settings
from domain.ports import UnitOfWorkFactory


@dataclass(frozen=True, slots=True)
class Storage:
    uow_factory: UnitOfWorkFactory
    readiness: Callable[[], str | None]
    close: Callable[[], None]


def open_storage(settings: Settings) -> Storage:
    if settings.storage == "memory":
        store = MemoryStore()
        return Storage(partial(MemoryUnitOfWork, store), lambda: None, lambda: None)
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
