"""Deleting data gives the disk space back: the SQLite file shrinks after a large delete."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine

from adapters.persistence.sqlite import SqlUnitOfWork, create_sqlite_engine
from domain.models import Chunk, Document, Library

DIM = 64


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_sqlite_engine(tmp_path / "stacksdb.sqlite3")
    yield engine
    engine.dispose()


def file_bytes(engine: Engine) -> int:
    """The size of the database file once the WAL is checkpointed into it."""
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    return Path(str(engine.url.database)).stat().st_size


def fill(engine: Engine, count: int) -> tuple[Library, list[Chunk]]:
    library = Library(name="big", dimension=DIM)
    rng = np.random.default_rng(0)
    chunks = [
        Chunk(
            library_id=library.id,
            document_id=f"doc-{i % 10}",
            text="some words " * 40,
            embedding=rng.standard_normal(DIM).astype(np.float32),
            metadata={"i": i},
        )
        for i in range(count)
    ]
    with SqlUnitOfWork(engine) as uow:
        uow.libraries.save(library)
        for d in range(10):
            uow.documents.save(Document(library_id=library.id, id=f"doc-{d}"))
        uow.chunks.save_many(chunks)
        uow.commit()
    return library, chunks


def test_a_new_store_file_is_in_incremental_auto_vacuum_mode(engine: Engine) -> None:
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA auto_vacuum").scalar_one() == 2


def test_deleting_most_chunks_shrinks_the_file(engine: Engine) -> None:
    library, chunks = fill(engine, 4000)
    full = file_bytes(engine)

    with SqlUnitOfWork(engine) as uow:
        uow.chunks.delete_many(library.id, [c.id for c in chunks[: int(len(chunks) * 0.9)]])
        uow.commit()

    assert file_bytes(engine) < full * 0.3


def test_deleting_a_library_shrinks_the_file(engine: Engine) -> None:
    library, _ = fill(engine, 4000)
    full = file_bytes(engine)

    with SqlUnitOfWork(engine) as uow:
        uow.libraries.delete(library.id)
        uow.commit()

    assert file_bytes(engine) < full * 0.2


def test_a_file_made_without_auto_vacuum_is_converted_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as old:
        old.execute("CREATE TABLE leftover (x)")
        assert old.execute("PRAGMA auto_vacuum").fetchone()[0] == 0

    engine = create_sqlite_engine(path)
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA auto_vacuum").scalar_one() == 2
    finally:
        engine.dispose()
