"""A store that cannot write (the disk is full) answers 503, keeps serving reads, applies no
write by half, and recovers by itself once there is room again.

Two ways to fill the disk:

- ``test_a_full_disk_...``: the real thing. The data dir sits on a 1 MiB tmpfs; the server
  (``stacksdb serve``) writes until SQLite reports SQLITE_FULL; the tmpfs is then grown.
  It needs the right to mount (root in a container); elsewhere it is skipped with the
  reason.
- ``test_services_over_a_full_sqlite_file_...``: portable. The same services the container
  wires, over the real SQLite adapter, on a file capped with ``PRAGMA max_page_count``, so
  SQLite itself answers SQLITE_FULL ("database or disk is full") to the commit.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from sqlalchemy import Engine, event

from adapters.persistence.sqlite import SqlUnitOfWork, create_sqlite_engine
from application.dto import ChunkInput, NewLibrary, SearchQuery
from domain.errors import ChunkNotFound, StoreUnavailable
from tests.support.server import ServerProcess
from tests.support.services import service_container

PROBLEM_JSON = "application/problem+json"
DIM = 32
BATCH = 20


def batch(tag: str, rng: np.random.Generator) -> list[dict[str, Any]]:
    return [
        {
            "id": f"{tag}-{i}",
            "document_id": f"doc-{tag}",
            "text": f"{tag} " * 60,
            "embedding": rng.standard_normal(DIM).round(4).tolist(),
            "metadata": {"tag": tag, "i": i},
        }
        for i in range(BATCH)
    ]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs; the test grows it with ``grow``. Skipped where mounting is refused."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def grow(mount_point: Path, size: str) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(mount_point)], check=True)


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert int(response.headers["retry-after"]) >= 1
    body = response.json()
    assert body["status"] == 503 and body["type"] and body["title"]
    assert "full" in body["detail"], body


@pytest.mark.e2e
def test_a_full_disk_is_503_with_retry_after_reads_go_on_and_writes_resume_when_space_returns(
    small_disk: Path,
) -> None:
    rng = np.random.default_rng(7)
    server = ServerProcess(small_disk / "data").start()
    http = httpx.Client(base_url=server.url, timeout=30)
    try:
        url = "/v1/libraries/full/chunks/batch"
        created = http.post("/v1/libraries", json={"id": "full", "name": "f", "dimension": DIM})
        assert created.status_code == 201, created.text
        acknowledged: dict[str, dict[str, Any]] = {}
        refused: list[dict[str, Any]] = []
        for n in range(1000):
            chunks = batch(f"b{n}", rng)
            response = http.post(url, json={"chunks": chunks})
            if response.status_code != 201:
                assert_unavailable(response)
                refused = chunks
                break
            acknowledged.update((c["id"], c) for c in chunks)
        assert refused, "the 1 MiB disk never filled up"

        # Reads go on, and show exactly the acknowledged writes.
        assert_store_holds(http, acknowledged, refused)
        search = http.post(
            "/v1/libraries/full/search", json={"vector": refused[0]["embedding"], "k": 3}
        )
        assert search.status_code == 200
        assert_unavailable(http.post(url, json={"chunks": refused}))

        grow(small_disk, "16m")
        resumed = http.post(url, json={"chunks": refused})
        assert resumed.status_code == 201, resumed.text
        acknowledged.update((c["id"], c) for c in refused)
        assert_store_holds(http, acknowledged, [])

        # And it is all durable: a crash and a restart find the same state.
        server.kill()
        server.start()
        assert_store_holds(http, acknowledged, [])
    finally:
        http.close()
        server.kill()


def assert_store_holds(
    http: httpx.Client, acknowledged: dict[str, dict[str, Any]], absent: list[dict[str, Any]]
) -> None:
    library = http.get("/v1/libraries/full").json()
    assert library["chunk_count"] == len(acknowledged)
    assert library["document_count"] == len({c["document_id"] for c in acknowledged.values()})
    for chunk in absent:
        assert http.get(f"/v1/libraries/full/chunks/{chunk['id']}").status_code == 404
    stored: dict[str, Any] = {}
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 1000, "include_embedding": True}
        if cursor:
            params["cursor"] = cursor
        page = http.get("/v1/libraries/full/chunks", params=params).json()
        stored.update((c["id"], c) for c in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert stored.keys() == acknowledged.keys()
    for chunk_id, sent in acknowledged.items():
        got = stored[chunk_id]
        assert (got["text"], got["metadata"], got["document_id"]) == (
            sent["text"],
            sent["metadata"],
            sent["document_id"],
        )
        assert np.array_equal(
            np.asarray(got["embedding"], np.float32), np.asarray(sent["embedding"], np.float32)
        )


def capped_engine(path: Path, quota: dict[str, int]) -> Engine:
    """The adapter's engine, with every connection capped at ``quota["pages"]`` pages."""
    engine = create_sqlite_engine(path)

    def cap(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute(f"PRAGMA max_page_count = {quota['pages']}")

    event.listen(engine, "connect", cap)
    engine.dispose()  # connections opened before the listener are dropped
    return engine


def test_services_over_a_full_sqlite_file_refuse_writes_without_touching_store_or_index(
    tmp_path: Path,
) -> None:
    quota = {"pages": 1_000_000}
    engine = capped_engine(tmp_path / "stacksdb.sqlite3", quota)
    uow_factory = partial(SqlUnitOfWork, engine)
    container = service_container(uow_factory)
    live = container.live()
    libraries = container.library_service()
    chunks = container.chunk_service()
    searches = container.search_service()
    library_id = libraries.create(NewLibrary(name="capped", dimension=DIM)).library.id
    rng = np.random.default_rng(3)

    def inputs(tag: str) -> list[ChunkInput]:
        return [
            ChunkInput(c["document_id"], c["text"], c["embedding"], c["metadata"], c["id"])
            for c in batch(tag, rng)
        ]

    def visible() -> tuple[Any, ...]:
        info = libraries.get(library_id)
        hits = searches.search(library_id, SearchQuery(vector=probe, k=50, exact=True)).hits
        return (
            info.chunk_count,
            info.document_count,
            len(live.get(library_id).index),
            [(h.chunk_id, round(h.score, 5)) for h in hits],
        )

    probe = rng.standard_normal(DIM).tolist()
    chunks.write_batch(library_id, inputs("first"))
    with engine.connect() as connection:
        quota["pages"] = int(connection.exec_driver_sql("PRAGMA page_count").scalar_one())
    engine.dispose()
    before = visible()

    # Pages freed inside the file may still take a batch or two; then SQLite is full.
    refused: list[ChunkInput] = []
    for attempt in range(50):
        refused = inputs(f"try-{attempt}")
        try:
            chunks.write_batch(library_id, refused)
        except StoreUnavailable as exc:
            assert "full" in exc.detail
            break
        before = visible()
    else:
        pytest.fail("the capped SQLite file never filled up")

    assert visible() == before
    for item in refused:
        with pytest.raises(ChunkNotFound):
            chunks.get(library_id, str(item.id))

    quota["pages"] = 1_000_000
    engine.dispose()
    written = chunks.write_batch(library_id, refused)
    assert [c.id for c in written] == [item.id for item in refused]
    assert visible()[0] == before[0] + BATCH
    assert visible()[2] == before[2] + BATCH
    engine.dispose()
