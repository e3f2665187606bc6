"""Durability on a real server over SQLite: no acknowledged write is lost to kill -9, nothing
is half applied, a SIGTERM shuts down cleanly, and the index is rebuilt from the store."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.support.chunks import (
    ChunkRecord,
    exact_top_ids,
    float32_vector,
    list_all_chunks,
)
from tests.support.server import ServerProcess

pytestmark = pytest.mark.e2e

DIM = 16
ACKNOWLEDGED_BEFORE_KILL = 120  # writes acknowledged before the SIGKILL lands mid-stream


@dataclass
class Pending:
    """The one write in flight when the server died: it may or may not have committed."""

    outcomes: dict[str, ChunkRecord | None]
    batch: bool = False


@dataclass
class WriteLog:
    """What a single client was told: the chunks as acknowledged, in order."""

    acked: dict[str, ChunkRecord] = field(default_factory=dict)
    acked_deletes: set[str] = field(default_factory=set)
    acked_count: int = 0
    pending: Pending | None = None
    unexpected: list[str] = field(default_factory=list)


def start_server(data_dir: Path) -> ServerProcess:
    return ServerProcess(data_dir).start()


def create_library(client: httpx.Client) -> str:
    response = client.post("/v1/libraries", json={"name": "durable", "dimension": DIM})
    assert response.status_code == 201, response.text
    library_id: str = response.json()["id"]
    return library_id


def chunk_body(rng: np.random.Generator, chunk_id: str, step: int) -> dict[str, Any]:
    return {
        "id": chunk_id,
        "document_id": f"doc{step % 5}",
        "text": f"chunk {chunk_id} written at step {step} ✓",
        "embedding": float32_vector(rng, DIM),
        "metadata": {"step": step, "tags": ["a", str(step % 3)], "ratio": step / 7},
    }


def write_until_the_server_dies(url: str, library_id: str, log: WriteLog) -> None:
    """Batches, single creates, upserts and deletes, one at a time; each is recorded as
    acknowledged only once its 2xx answer is in hand."""
    rng = np.random.default_rng(2024)
    base = f"/v1/libraries/{library_id}/chunks"
    with httpx.Client(base_url=url, timeout=30) as client:
        step = 0
        while True:
            step += 1
            kind = step % 4
            live_ids = sorted(log.acked)
            try:
                if kind == 0 or not live_ids:
                    bodies = [chunk_body(rng, f"b{step}-{j}", step) for j in range(6)]
                    log.pending = Pending(
                        {b["id"]: ChunkRecord.of_body(b) for b in bodies}, batch=True
                    )
                    response = client.post(f"{base}/batch", json={"chunks": bodies})
                    expected = 201
                elif kind == 1:
                    body = chunk_body(rng, f"s{step}", step)
                    log.pending = Pending({body["id"]: ChunkRecord.of_body(body)})
                    response = client.post(base, json=body)
                    expected = 201
                elif kind == 2:
                    victim = live_ids[int(rng.integers(len(live_ids)))]
                    log.pending = Pending({victim: None})
                    response = client.delete(f"{base}/{victim}")
                    expected = 204
                else:
                    target = live_ids[int(rng.integers(len(live_ids)))]
                    body = chunk_body(rng, target, step)
                    del body["id"]
                    log.pending = Pending({target: ChunkRecord.of_body(body)})
                    response = client.put(f"{base}/{target}", json=body)
                    expected = 200
            except httpx.TransportError:
                return  # the server is gone; ``pending`` is the write in doubt
            if response.status_code != expected:
                log.unexpected.append(f"{response.status_code}: {response.text}")
                return
            for chunk_id, record in log.pending.outcomes.items():
                if record is None:
                    log.acked.pop(chunk_id, None)
                    log.acked_deletes.add(chunk_id)
                else:
                    log.acked[chunk_id] = record
                    log.acked_deletes.discard(chunk_id)
            log.pending = None
            log.acked_count += 1


def assert_search_agrees_with_the_store(
    client: httpx.Client, library_id: str, served: dict[str, dict[str, Any]]
) -> None:
    records = {cid: ChunkRecord.of_body(body) for cid, body in served.items()}
    rng = np.random.default_rng(7)
    k = min(len(records), 25)
    for _ in range(5):
        query = float32_vector(rng, DIM)
        truth = exact_top_ids(records, query, k)
        for exact in (True, False):
            response = client.post(
                f"/v1/libraries/{library_id}/search",
                json={"vector": query, "k": k, "exact": exact},
            )
            assert response.status_code == 200, response.text
            results = response.json()["results"]
            assert [r["chunk_id"] for r in results] == [cid for cid, _ in truth]
            assert [r["score"] for r in results] == pytest.approx([s for _, s in truth], abs=1e-5)


def test_kill_9_loses_no_acknowledged_write_and_applies_nothing_by_half(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = start_server(data_dir)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        library_id = create_library(client)
    log = WriteLog()
    writer = threading.Thread(
        target=write_until_the_server_dies, args=(server.url, library_id, log), daemon=True
    )
    writer.start()
    deadline = time.monotonic() + 60
    while log.acked_count < ACKNOWLEDGED_BEFORE_KILL and writer.is_alive():
        assert time.monotonic() < deadline, "the client made too little progress"
        time.sleep(0.005)
    server.kill()
    writer.join(30)
    assert not writer.is_alive()
    assert log.unexpected == []
    assert log.acked_count >= ACKNOWLEDGED_BEFORE_KILL

    restarted = start_server(data_dir)
    try:
        with httpx.Client(base_url=restarted.url, timeout=30) as client:
            served = list_all_chunks(client, library_id)
            in_doubt = log.pending.outcomes if log.pending is not None else {}

            for chunk_id, record in log.acked.items():
                if chunk_id in in_doubt:
                    continue
                assert chunk_id in served, f"acknowledged chunk {chunk_id} was lost"
                assert record.matches(served[chunk_id]), f"chunk {chunk_id} differs"
            for chunk_id in log.acked_deletes - in_doubt.keys():
                assert chunk_id not in served, f"acknowledged delete of {chunk_id} undone"
            unknown = served.keys() - log.acked.keys() - in_doubt.keys()
            assert unknown == set(), f"chunks nobody acknowledged: {sorted(unknown)}"

            # The write in doubt either committed whole or not at all.
            if log.pending is not None:
                committed = [
                    (record is None and cid not in served)
                    or (record is not None and cid in served and record.matches(served[cid]))
                    for cid, record in in_doubt.items()
                ]
                before = [
                    (cid not in served)
                    if cid not in log.acked
                    else (cid in served and log.acked[cid].matches(served[cid]))
                    for cid in in_doubt
                ]
                assert all(committed) or all(before), "a write was applied by half"

            library = client.get(f"/v1/libraries/{library_id}").json()
            assert library["chunk_count"] == len(served)
            assert library["index"]["vector_count"] == len(served)
            assert library["index"]["state"] == "ready"
            assert_search_agrees_with_the_store(client, library_id, served)
    finally:
        restarted.kill()


def test_sigterm_exits_cleanly_and_everything_written_is_there_after_restart(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    server = start_server(data_dir)
    rng = np.random.default_rng(3)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        library_id = create_library(client)
        bodies = [chunk_body(rng, f"c{i}", i) for i in range(40)]
        response = client.post(f"/v1/libraries/{library_id}/chunks/batch", json={"chunks": bodies})
        assert response.status_code == 201, response.text
        for i in range(0, 40, 4):
            assert client.delete(f"/v1/libraries/{library_id}/chunks/c{i}").status_code == 204
        patched = client.patch(
            f"/v1/libraries/{library_id}", json={"description": "survives restarts"}
        )
        assert patched.status_code == 200
    assert server.stop() == 0

    expected = {b["id"]: ChunkRecord.of_body(b) for i, b in enumerate(bodies) if i % 4}
    restarted = start_server(data_dir)
    try:
        with httpx.Client(base_url=restarted.url, timeout=30) as client:
            served = list_all_chunks(client, library_id)
            assert served.keys() == expected.keys()
            assert all(expected[cid].matches(body) for cid, body in served.items())
            library = client.get(f"/v1/libraries/{library_id}").json()
            assert library["description"] == "survives restarts"
            assert (library["chunk_count"], library["document_count"]) == (30, 5)
    finally:
        restarted.kill()


def test_the_index_is_rebuilt_from_the_store_on_start(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = start_server(data_dir)
    rng = np.random.default_rng(11)
    bodies = [chunk_body(rng, f"c{i}", i) for i in range(300)]
    with httpx.Client(base_url=server.url, timeout=30) as client:
        library_id = create_library(client)
        for start in range(0, 300, 100):
            response = client.post(
                f"/v1/libraries/{library_id}/chunks/batch",
                json={"chunks": bodies[start : start + 100]},
            )
            assert response.status_code == 201, response.text
        assert client.put(f"/v1/libraries/{library_id}/index", json={"type": "flat"}).is_success
    server.kill()

    restarted = start_server(data_dir)
    try:
        with httpx.Client(base_url=restarted.url, timeout=30) as client:
            index = client.get(f"/v1/libraries/{library_id}/index").json()
            assert (index["type"], index["state"], index["vector_count"]) == ("flat", "ready", 300)
            for body in bodies[::37]:
                response = client.post(
                    f"/v1/libraries/{library_id}/search",
                    json={"vector": body["embedding"], "k": 1, "include": ["text"]},
                )
                (hit,) = response.json()["results"]
                assert (hit["chunk_id"], hit["text"]) == (body["id"], body["text"])
                assert hit["score"] == pytest.approx(1.0, abs=1e-5)
            served = list_all_chunks(client, library_id)
            assert_search_agrees_with_the_store(client, library_id, served)
    finally:
        restarted.kill()
