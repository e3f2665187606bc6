"""Deleting by filter survives kill -9 as one all-or-nothing write: an acknowledged delete is
gone after the restart, and a delete killed in flight left every matching chunk or none.
The expected state is what the test wrote and was told, never read back through the code
under test before the kill."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.support.server import ServerProcess

pytestmark = pytest.mark.e2e

DIM = 8
ROWS = 3_000


def load(client: httpx.Client, rng: np.random.Generator) -> tuple[str, set[str], set[str]]:
    """A library of ROWS chunks; answers its id, the red chunks and the others."""
    answer = client.post("/v1/libraries", json={"name": "doomed", "dimension": DIM})
    assert answer.status_code == 201, answer.text
    library_id: str = answer.json()["id"]
    red: set[str] = set()
    chunks: list[dict[str, Any]] = []
    for i in range(ROWS):
        colour = "red" if rng.random() < 0.4 else "blue"
        if colour == "red":
            red.add(f"c{i}")
        chunks.append(
            {
                "id": f"c{i}",
                "document_id": f"d{i % 30}",
                "text": f"chunk {i}",
                "embedding": [float(x) for x in rng.normal(0, 1, DIM)],
                "metadata": {"colour": colour, "n": i},
            }
        )
    for start in range(0, ROWS, 1_000):
        batch = {"chunks": chunks[start : start + 1_000]}
        answer = client.post(f"/v1/libraries/{library_id}/chunks/batch", json=batch)
        assert answer.status_code == 201, answer.text
    return library_id, red, {f"c{i}" for i in range(ROWS)} - red


def chunk_ids(client: httpx.Client, library_id: str) -> set[str]:
    ids: set[str] = set()
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
        page = client.get(f"/v1/libraries/{library_id}/chunks", params=params).json()
        ids.update(item["id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return ids


def searched_ids(client: httpx.Client, library_id: str) -> set[str]:
    answer = client.post(
        f"/v1/libraries/{library_id}/search", json={"vector": [1.0] * DIM, "k": 1000}
    )
    return {hit["chunk_id"] for hit in answer.json()["results"]}


RED = {"filter": {"field": "colour", "op": "eq", "value": "red"}}


def test_an_acknowledged_delete_by_filter_survives_kill_9(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data").start()
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            library_id, red, blue = load(client, np.random.default_rng(1))
            answer = client.post(f"/v1/libraries/{library_id}/chunks/delete", json=RED)
            assert answer.status_code == 200, answer.text
            assert answer.json() == {"deleted": len(red)}
        server.kill()
        server.start()
        with httpx.Client(base_url=server.url, timeout=60) as client:
            assert chunk_ids(client, library_id) == blue
            assert not searched_ids(client, library_id) & red  # the index agrees
            count = client.post(f"/v1/libraries/{library_id}/chunks/count", json=RED).json()
            assert count == {"count": 0}
    finally:
        server.kill()


@pytest.mark.parametrize("delay", [0.0, 0.005, 0.02, 0.06])
def test_a_delete_by_filter_killed_in_flight_left_all_or_nothing(
    tmp_path: Path, delay: float
) -> None:
    server = ServerProcess(tmp_path / "data").start()
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            library_id, red, blue = load(client, np.random.default_rng(2))

        def delete() -> None:
            try:
                with httpx.Client(base_url=server.url, timeout=60) as client:
                    client.post(f"/v1/libraries/{library_id}/chunks/delete", json=RED)
            except httpx.TransportError:
                pass  # killed before it answered

        thread = threading.Thread(target=delete)
        thread.start()
        time.sleep(delay)
        server.kill()
        thread.join()
        server.start()
        with httpx.Client(base_url=server.url, timeout=60) as client:
            after = chunk_ids(client, library_id)
            assert after in (blue, blue | red)
            assert not searched_ids(client, library_id) - after  # the index agrees
            found = client.post(f"/v1/libraries/{library_id}/chunks/count", json=RED).json()
            assert found["count"] in (0, len(red))
            assert (found["count"] == 0) == (after == blue)
    finally:
        server.kill()
