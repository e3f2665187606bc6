"""Snapshots of a node's SQLite store, with SQLite's online backup API.

A snapshot is a consistent copy of the whole file (data and replication log), taken while
writers go on: ``sqlite3.Connection.backup`` copies every page in one step under a read
transaction. Restoring copies the snapshot's pages into the live file the same way, in one
write transaction, so readers see the old store or the new one, never a mix.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from contextlib import closing
from pathlib import Path


def take_snapshot(database: Path, directory: Path) -> Path:
    """A consistent copy of ``database`` in a new file under ``directory``."""
    handle, name = tempfile.mkstemp(prefix="snapshot-", suffix=".sqlite3", dir=directory)
    os.close(handle)
    target = Path(name)
    with closing(sqlite3.connect(database)) as source, closing(sqlite3.connect(target)) as copy:
        source.backup(copy)
    return target


def restore_snapshot(snapshot: Path, database: Path) -> None:
    """Replace the content of ``database`` (open elsewhere in this process) by ``snapshot``."""
    with closing(sqlite3.connect(snapshot)) as source:
        check = source.execute("PRAGMA quick_check").fetchone()
        if check is None or check[0] != "ok":
            raise ValueError(f"the snapshot is damaged: {check}")
        with closing(sqlite3.connect(database, timeout=30)) as live:
            source.backup(live)
