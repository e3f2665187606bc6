"""Index snapshots and background builds on real servers (``stacksdb serve`` over SQLite).

A built HNSW index is saved to ``<data_dir>/indexes/`` and served again after a restart
without a rebuild; a snapshot with flipped bytes, or one older than the store (writes after
it, then kill -9 so no new one is saved) is rebuilt from the store, never served; searches
during a background build all succeed."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.support.server import ServerProcess

pytestmark = pytest.mark.e2e

DIM = 32
COUNT = 3_000
HNSW = {"type": "hnsw", "params": {"m": 8, "ef_construction": 64}}
LOADED = "loaded from its snapshot"


def clustered(count: int, seed: int) -> np.ndarray[Any, np.dtype[np.float32]]:
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(0).standard_normal((30, DIM))
    points = centres[rng.integers(0, 30, count)] + rng.standard_normal((count, DIM))
    return points.astype(np.float32)


VECTORS = clustered(COUNT, 1)
QUERIES = clustered(25, 2)


def server(data_dir: Path) -> ServerProcess:
    # info: the log line saying where each index came from is part of what is tested.
    return ServerProcess(data_dir, args=["--log-level", "info"]).start()


def add_chunks(client: httpx.Client, library_id: str, ids: list[str], vectors: Any) -> None:
    for start in range(0, len(ids), 1_000):
        chunks = [
            {"id": i, "document_id": f"doc{n % 10}", "text": i, "embedding": v.tolist()}
            for n, (i, v) in enumerate(
                zip(ids[start : start + 1_000], vectors[start : start + 1_000], strict=True)
            )
        ]
        response = client.post(f"/v1/libraries/{library_id}/chunks/batch", json={"chunks": chunks})
        assert response.status_code in (200, 201), response.text


def wait_ready(client: httpx.Client, library_id: str, timeout: float = 60) -> list[dict[str, Any]]:
    """Poll GET .../index until ready; every status seen, in order."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.get(f"/v1/libraries/{library_id}/index").json()
        seen.append(status)
        if status["state"] == "ready":
            return seen
        time.sleep(0.02)
    raise TimeoutError(f"index not ready: {seen[-1]}")


def search(client: httpx.Client, library_id: str, query: Any, **extra: Any) -> dict[str, Any]:
    body = {"vector": query.tolist(), "k": 10, **extra}
    response = client.post(f"/v1/libraries/{library_id}/search", json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def answers(client: httpx.Client, library_id: str) -> list[list[tuple[str, float]]]:
    return [
        [(r["chunk_id"], round(r["score"], 5)) for r in search(client, library_id, q)["results"]]
        for q in QUERIES
    ]


def recall(client: httpx.Client, library_id: str) -> float:
    found = 0
    for q in QUERIES:
        approx = {r["chunk_id"] for r in search(client, library_id, q)["results"]}
        exact = {r["chunk_id"] for r in search(client, library_id, q, exact=True)["results"]}
        found += len(approx & exact)
    return found / (10 * len(QUERIES))


@dataclass(frozen=True)
class Built:
    data_dir: Path
    library_id: str
    answers: list[list[tuple[str, float]]]
    status: dict[str, Any]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """A stopped node's data folder: an HNSW library built by PUT .../index, then SIGTERM."""
    data_dir = tmp_path_factory.mktemp("built") / "data"
    node = server(data_dir)
    try:
        with httpx.Client(base_url=node.url, timeout=60) as client:
            created = client.post("/v1/libraries", json={"name": "snap", "dimension": DIM})
            library_id = created.json()["id"]
            add_chunks(client, library_id, [f"c{i}" for i in range(COUNT)], VECTORS)
            assert client.put(f"/v1/libraries/{library_id}/index", json=HNSW).status_code == 202
            status = wait_ready(client, library_id)[-1]
            assert status["type"] == "hnsw"
            before = answers(client, library_id)
        assert node.stop() == 0
    finally:
        node.kill()
    assert (data_dir / "indexes").is_dir()
    return Built(data_dir, library_id, before, status)


@pytest.fixture
def copy(built: Built, tmp_path: Path) -> Iterator[Path]:
    """The built data folder, copied so each test may damage its own."""
    target = tmp_path / "data"
    shutil.copytree(built.data_dir, target)
    yield target


def full_log(node: ServerProcess) -> str:
    assert node.log_path is not None
    return node.log_path.read_text(errors="replace")


def snapshot_file(data_dir: Path) -> Path:
    (path,) = (data_dir / "indexes").glob("*.npz")
    return path


def test_a_restart_serves_the_saved_hnsw_index_at_once_with_the_same_answers(
    built: Built, copy: Path
) -> None:
    node = server(copy)
    try:
        with httpx.Client(base_url=node.url, timeout=30) as client:
            status = client.get(f"/v1/libraries/{built.library_id}/index").json()
            assert status["state"] == "ready"
            assert status["vector_count"] == built.status["vector_count"] == COUNT
            assert status == {**built.status, "built_at": status["built_at"]}
            assert answers(client, built.library_id) == built.answers
        assert LOADED in full_log(node)
    finally:
        node.kill()


def test_a_snapshot_with_flipped_bytes_is_rebuilt_from_the_store(built: Built, copy: Path) -> None:
    path = snapshot_file(copy)
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(b ^ 0x5A for b in data[middle : middle + 64])
    path.write_bytes(bytes(data))

    node = server(copy)
    try:
        with httpx.Client(base_url=node.url, timeout=30) as client:
            status = client.get(f"/v1/libraries/{built.library_id}/index").json()
            assert (status["state"], status["vector_count"]) == ("ready", COUNT)
            assert recall(client, built.library_id) >= 0.9
        log = full_log(node)
        assert "index snapshot ignored: corrupt" in log
        assert LOADED not in log
    finally:
        node.kill()


def test_a_snapshot_older_than_the_store_is_rebuilt_after_kill_9(built: Built, copy: Path) -> None:
    late = clustered(20, 3)
    late_ids = [f"late{i}" for i in range(20)]
    gone = [f"c{i}" for i in range(0, 40, 2)]
    node = server(copy)
    try:
        with httpx.Client(base_url=node.url, timeout=30) as client:
            add_chunks(client, built.library_id, late_ids, late)
            for chunk_id in gone:
                response = client.delete(f"/v1/libraries/{built.library_id}/chunks/{chunk_id}")
                assert response.status_code == 204
    finally:
        node.kill()  # SIGKILL: no snapshot is saved at shutdown

    node = server(copy)
    try:
        with httpx.Client(base_url=node.url, timeout=30) as client:
            status = client.get(f"/v1/libraries/{built.library_id}/index").json()
            assert (status["state"], status["vector_count"]) == ("ready", COUNT + 20 - 20)
            for chunk_id, vector in zip(late_ids, late, strict=True):
                top = search(client, built.library_id, vector)["results"][0]["chunk_id"]
                assert top == chunk_id
            for i in range(0, 40, 2):
                found = {
                    r["chunk_id"] for r in search(client, built.library_id, VECTORS[i])["results"]
                }
                assert not found & set(gone)
        log = full_log(node)
        assert "index snapshot ignored: stale" in log
        assert LOADED not in log
    finally:
        node.kill()


def test_searches_during_a_background_hnsw_build_all_succeed(tmp_path: Path) -> None:
    node = ServerProcess(tmp_path / "data").start()
    stop = threading.Event()
    codes: list[int] = []
    used: set[str] = set()

    def searcher(seed: int) -> None:
        rng = np.random.default_rng(seed)
        with httpx.Client(base_url=node.url, timeout=30) as client:
            while not stop.is_set():
                query = VECTORS[rng.integers(0, COUNT)]
                body = {"vector": query.tolist(), "k": 10}
                response = client.post(f"/v1/libraries/{library_id}/search", json=body)
                codes.append(response.status_code)
                if response.status_code == 200:
                    used.add(response.json()["index"])

    try:
        with httpx.Client(base_url=node.url, timeout=30) as client:
            library_id = client.post(
                "/v1/libraries", json={"name": "busy", "dimension": DIM}
            ).json()["id"]
            add_chunks(client, library_id, [f"c{i}" for i in range(COUNT)], VECTORS)
            threads = [threading.Thread(target=searcher, args=(s,)) for s in range(3)]
            for thread in threads:
                thread.start()
            time.sleep(0.3)
            params = {"type": "hnsw", "params": {"m": 16, "ef_construction": 200}}
            accepted = client.put(f"/v1/libraries/{library_id}/index", json=params)
            assert accepted.status_code == 202
            assert accepted.json()["state"] == "building"
            seen = wait_ready(client, library_id, timeout=120)
            time.sleep(0.3)
            stop.set()
            for thread in threads:
                thread.join()
            assert recall(client, library_id) >= 0.9
    finally:
        stop.set()
        node.kill()

    assert len(codes) > 20 and set(codes) == {200}
    assert used == {"flat", "hnsw"}  # the swap happened under the searches
    states = [s["state"] for s in seen]
    assert states[0] == "building" and states[-1] == "ready"
    progress = [s["progress"] for s in seen if s["state"] == "building"]
    assert progress == sorted(progress)
    assert len(set(progress)) > 1, "progress never moved"
    assert seen[-1]["vector_count"] == COUNT
