"""Where ``GET /v1/cluster/snapshot`` gets its copy of the store."""

from __future__ import annotations

from pathlib import Path

from adapters.replication.store_snapshot import take_snapshot
from bootstrap.settings import Settings
from domain.errors import StoreUnavailable


def snapshot_source(settings: Settings) -> Path:
    """A consistent copy of the store in the data folder; the caller deletes it."""
    if settings.storage != "sqlite":
        raise StoreUnavailable("snapshots need the SQLite store")
    return take_snapshot(settings.database_path, settings.data_dir)
