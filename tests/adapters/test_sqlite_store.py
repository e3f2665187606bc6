"""What only the SQLite adapter promises: durable settings, restarts, and many threads."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine, create_engine

from adapters.persistence.sqlite import SqlUnitOfWork, create_sqlite_engine
from adapters.persistence.sqlite.tables import SCHEMA_VERSION
from domain.embedding import MiniLmSpec
from domain.errors import StoreUnavailable
from domain.models import Chunk, Document, Library, TextIndexSpec, TextIndexType

DIM = 16


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "stacksdb.sqlite3"


@pytest.fixture
def engine(db_path: Path) -> Iterator[Engine]:
    engine = create_sqlite_engine(db_path)
    yield engine
    engine.dispose()


def _library_with_chunks(engine: Engine, chunk_count: int) -> tuple[Library, list[Chunk]]:
    library = Library(name="lib", dimension=DIM, metadata={"k": "v"})
    rng = np.random.default_rng(chunk_count)
    chunks = [
        Chunk(
            library_id=library.id,
            document_id="doc",
            text=f"text {i}",
            embedding=rng.standard_normal(DIM).astype(np.float32),
            metadata={"i": i},
        )
        for i in range(chunk_count)
    ]
    with SqlUnitOfWork(engine) as uow:
        uow.libraries.save(library)
        uow.documents.save(Document(library_id=library.id, id="doc"))
        uow.chunks.save_many(chunks)
        uow.commit()
    return library, chunks


def test_every_pooled_connection_runs_wal_synchronous_full_and_foreign_keys(
    engine: Engine,
) -> None:
    connections = [engine.connect() for _ in range(3)]
    try:
        for connection in connections:
            pragma = connection.exec_driver_sql
            assert pragma("PRAGMA journal_mode").scalar_one() == "wal"
            assert pragma("PRAGMA synchronous").scalar_one() == 2  # FULL
            assert pragma("PRAGMA foreign_keys").scalar_one() == 1
            assert pragma("PRAGMA busy_timeout").scalar_one() == 30_000
    finally:
        for connection in connections:
            connection.close()


def test_chunks_are_indexed_by_library_and_document(engine: Engine) -> None:
    with engine.connect() as connection:
        indexes = {
            row[1]: [c[2] for c in connection.exec_driver_sql(f"PRAGMA index_info('{row[1]}')")]
            for row in connection.exec_driver_sql("PRAGMA index_list('chunks')")
        }
    assert ["library_id", "document_id", "seq"] in indexes.values()
    assert ["library_id", "seq"] in indexes.values()


def test_data_survives_closing_and_reopening_the_engine(db_path: Path, engine: Engine) -> None:
    library, chunks = _library_with_chunks(engine, 50)
    engine.dispose()

    reopened = create_sqlite_engine(db_path)
    try:
        with SqlUnitOfWork(reopened, read_only=True) as uow:
            assert uow.libraries.get(library.id) == library
            stored: list[Chunk] = []
            cursor: str | None = None
            while True:
                page = uow.chunks.list(library.id, 16, cursor)
                stored.extend(page.items)
                if page.next_cursor is None:
                    break
                cursor = page.next_cursor
    finally:
        reopened.dispose()
    assert [c.id for c in stored] == [c.id for c in chunks]
    assert all(
        s.embedding.tobytes() == c.embedding.tobytes() and s.metadata == c.metadata
        for s, c in zip(stored, chunks, strict=True)
    )


def test_a_committed_write_survives_the_process_dying_right_after_commit(db_path: Path) -> None:
    # The child commits, says so, and dies without closing anything: no dispose, no
    # checkpoint, no atexit. Only what COMMIT made durable can be found afterwards.
    script = f"""
import os, sys
sys.path.insert(0, {str(Path.cwd())!r})
from adapters.persistence.sqlite import SqlUnitOfWork, create_sqlite_engine
from domain.models import Library
engine = create_sqlite_engine({str(db_path)!r})
with SqlUnitOfWork(engine) as uow:
    uow.libraries.save(Library(name="acked", dimension=3, id="acked-id"))
    uow.commit()
    print("committed", flush=True)
    os._exit(0)
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "committed"
    engine = create_sqlite_engine(db_path)
    try:
        with SqlUnitOfWork(engine, read_only=True) as uow:
            library = uow.libraries.get("acked-id")
    finally:
        engine.dispose()
    assert library is not None
    assert library.name == "acked"


def test_concurrent_writers_to_different_libraries_all_commit(engine: Engine) -> None:
    threads_count, rounds, batch = 8, 15, 40
    barrier = threading.Barrier(threads_count)
    errors: list[BaseException] = []
    libraries = [Library(name=f"lib-{t}", dimension=DIM) for t in range(threads_count)]

    def writer(library: Library) -> None:
        try:
            with SqlUnitOfWork(engine) as uow:
                uow.libraries.save(library)
                uow.documents.save(Document(library_id=library.id, id="doc"))
                uow.commit()
            barrier.wait()
            for r in range(rounds):
                # Read, then write: the pattern that fails with SQLITE_BUSY under deferred
                # transactions when another thread commits in between.
                with SqlUnitOfWork(engine) as uow:
                    current = uow.libraries.get(library.id)
                    assert current is not None
                    chunks = [
                        Chunk(
                            library_id=library.id,
                            document_id="doc",
                            text=f"{r}-{i}",
                            embedding=np.full(DIM, r, dtype=np.float32),
                        )
                        for i in range(batch)
                    ]
                    uow.chunks.save_many(chunks)
                    current.revision += 1
                    uow.libraries.save(current)
                    uow.commit()
        except BaseException as exc:  # collected and asserted on the main thread
            errors.append(exc)

    workers = [threading.Thread(target=writer, args=(lib,)) for lib in libraries]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert errors == []
    with SqlUnitOfWork(engine, read_only=True) as uow:
        for library in libraries:
            stored = uow.libraries.get(library.id)
            assert stored is not None
            assert stored.revision == rounds
            assert uow.libraries.counts(library.id) == (1, rounds * batch)


def test_concurrent_read_modify_write_of_one_library_loses_no_update(engine: Engine) -> None:
    library = Library(name="shared", dimension=DIM)
    with SqlUnitOfWork(engine) as uow:
        uow.libraries.save(library)
        uow.commit()
    threads_count, rounds = 8, 25
    errors: list[BaseException] = []

    def bump() -> None:
        try:
            for _ in range(rounds):
                with SqlUnitOfWork(engine) as uow:
                    current = uow.libraries.get(library.id)
                    assert current is not None
                    current.revision += 1
                    uow.libraries.save(current)
                    uow.commit()
        except BaseException as exc:  # collected and asserted on the main thread
            errors.append(exc)

    workers = [threading.Thread(target=bump) for _ in range(threads_count)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert errors == []
    with SqlUnitOfWork(engine, read_only=True) as uow:
        stored = uow.libraries.get(library.id)
    assert stored is not None
    assert stored.revision == threads_count * rounds


def test_a_reader_is_not_blocked_by_an_open_writer_and_sees_only_committed_data(
    engine: Engine,
) -> None:
    before = Library(name="before", dimension=DIM)
    with SqlUnitOfWork(engine) as uow:
        uow.libraries.save(before)
        uow.commit()
    written = threading.Event()
    release = threading.Event()
    pending = Library(name="pending", dimension=DIM)

    def slow_writer() -> None:
        with SqlUnitOfWork(engine) as uow:
            uow.libraries.save(pending)
            written.set()
            release.wait(timeout=30)
            uow.commit()

    writer = threading.Thread(target=slow_writer)
    writer.start()
    try:
        assert written.wait(timeout=30)
        started = time.monotonic()
        with SqlUnitOfWork(engine, read_only=True) as reader:
            assert reader.libraries.get(before.id) == before
            assert reader.libraries.get(pending.id) is None
        assert time.monotonic() - started < 1.0
    finally:
        release.set()
        writer.join(timeout=30)
    with SqlUnitOfWork(engine, read_only=True) as reader:
        assert reader.libraries.get(pending.id) == pending


def test_a_writer_waits_for_another_connection_holding_the_write_lock(
    db_path: Path, engine: Engine
) -> None:
    other = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    releaser = threading.Timer(0.3, lambda: other.execute("COMMIT"))
    releaser.start()
    try:
        library = Library(name="patient", dimension=DIM)
        with SqlUnitOfWork(engine) as uow:
            uow.libraries.save(library)
            uow.commit()
    finally:
        releaser.join()
        other.close()
    with SqlUnitOfWork(engine, read_only=True) as uow:
        assert uow.libraries.get(library.id) == library


def test_a_write_lock_held_past_the_busy_timeout_raises_store_unavailable(db_path: Path) -> None:
    engine = create_sqlite_engine(db_path, busy_timeout=0.2)
    other = sqlite3.connect(db_path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreUnavailable), SqlUnitOfWork(engine):
            pass
        other.execute("ROLLBACK")
        with SqlUnitOfWork(engine) as uow:
            uow.libraries.save(Library(name="after", dimension=DIM))
            uow.commit()
    finally:
        other.close()
        engine.dispose()


def test_a_database_of_a_newer_schema_is_refused(db_path: Path, engine: Engine) -> None:
    engine.dispose()
    raw = sqlite3.connect(db_path)
    raw.execute("PRAGMA user_version = 999")
    raw.close()
    with pytest.raises(StoreUnavailable, match="newer"):
        create_sqlite_engine(db_path)


# The libraries table as schema version 1 wrote it, before embedders and keyword indexes.
_VERSION_1_LIBRARIES = """
CREATE TABLE libraries (
    id VARCHAR NOT NULL PRIMARY KEY, seq BIGINT NOT NULL UNIQUE, name VARCHAR NOT NULL,
    description TEXT NOT NULL, metadata_json TEXT NOT NULL, dimension INTEGER NOT NULL,
    metric VARCHAR NOT NULL, index_type VARCHAR NOT NULL, index_params_json TEXT NOT NULL,
    revision BIGINT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL
)"""


def test_a_version_1_database_is_migrated_and_its_libraries_get_the_defaults(
    tmp_path: Path,
) -> None:
    path = tmp_path / "v1.sqlite3"
    raw = sqlite3.connect(path)
    raw.execute("CREATE TABLE sequences (name VARCHAR PRIMARY KEY, value BIGINT NOT NULL)")
    raw.execute("INSERT INTO sequences VALUES ('seq', 1)")
    raw.execute(_VERSION_1_LIBRARIES)
    raw.execute(
        "INSERT INTO libraries VALUES ('lib', 1, 'old', '', '{}', 3, 'l2', 'hnsw', "
        "'{\"m\": 8}', 4, 0, 0)"
    )
    raw.execute("PRAGMA user_version = 1")
    raw.commit()
    raw.close()
    engine = create_sqlite_engine(path)
    try:
        with SqlUnitOfWork(engine, read_only=True) as uow:
            old = uow.libraries.get("lib")
        assert old is not None
        assert (old.name, old.dimension, old.revision, old.embedder) == ("old", 3, 4, None)
        assert old.text_index == TextIndexSpec()
        with SqlUnitOfWork(engine) as uow:
            uow.libraries.save(
                Library(
                    name="new",
                    dimension=384,
                    id="new",
                    embedder=MiniLmSpec(),
                    text_index=TextIndexSpec(type=TextIndexType.NONE),
                )
            )
            uow.commit()
        with SqlUnitOfWork(engine, read_only=True) as uow:
            new = uow.libraries.get("new")
        assert new is not None
        assert new.embedder == MiniLmSpec()
        assert new.text_index.type is TextIndexType.NONE
    finally:
        engine.dispose()
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    raw.close()


def test_an_engine_not_made_by_the_factory_is_refused(tmp_path: Path) -> None:
    plain = create_engine(f"sqlite:///{tmp_path / 'plain.sqlite3'}")
    with pytest.raises(ValueError, match="create_sqlite_engine"):
        SqlUnitOfWork(plain)
    plain.dispose()


def test_save_many_writes_ten_thousand_384_dimensional_chunks_quickly(engine: Engine) -> None:
    library = Library(name="bulk", dimension=384)
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((10_000, 384)).astype(np.float32)
    chunks = [
        Chunk(
            library_id=library.id,
            document_id="doc",
            text="lorem ipsum " * 20,
            embedding=vectors[i],
            metadata={"i": i},
        )
        for i in range(10_000)
    ]
    with SqlUnitOfWork(engine) as uow:
        uow.libraries.save(library)
        uow.documents.save(Document(library_id=library.id, id="doc"))
        uow.commit()
    started = time.perf_counter()
    with SqlUnitOfWork(engine) as uow:
        uow.chunks.save_many(chunks)
        uow.commit()
    elapsed = time.perf_counter() - started
    # Measured well under a second; the bound only catches a row-by-row regression.
    assert elapsed < 5.0
    with SqlUnitOfWork(engine, read_only=True) as uow:
        stored = np.concatenate([b.embeddings for b in uow.chunks.scan_columns(library.id, 4096)])
    assert stored.tobytes() == vectors.tobytes()
