"""Many clients at once through HTTP on one library: the final state is exactly what was
acknowledged, searches only ever return chunks that were written, and nothing is a 5xx."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.support.chunks import ChunkRecord, exact_top_ids, float32_vector, list_all_chunks
from tests.support.server import ServerProcess, running_server

pytestmark = pytest.mark.e2e

DIM = 8
THREADS = 12
OPS_PER_THREAD = 60
IDS_PER_THREAD = 10


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with running_server(tmp_path / "data") as node:
        yield node


@dataclass
class Observations:
    """Shared by every client thread; ``written`` grows before a write is sent."""

    written: set[str] = field(default_factory=set)
    failures: list[str] = field(default_factory=list)
    searches: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note_written(self, *chunk_ids: str) -> None:
        with self.lock:
            self.written.update(chunk_ids)

    def fail(self, message: str) -> None:
        with self.lock:
            self.failures.append(message)


class Client:
    """One thread's client. It owns its chunk ids and documents, so its own model of them
    is exact whatever the other threads do, and every answer can be predicted."""

    def __init__(self, url: str, library_id: str, number: int, seen: Observations) -> None:
        self.http = httpx.Client(base_url=url, timeout=60)
        self.base = f"/v1/libraries/{library_id}"
        self.prefix = f"t{number}"
        self.rng = random.Random(number)
        self.np_rng = np.random.default_rng(number)
        self.seen = seen
        self.model: dict[str, ChunkRecord] = {}

    def body(self, chunk_id: str) -> dict[str, Any]:
        step = self.rng.randrange(1_000_000)
        return {
            "id": chunk_id,
            "document_id": f"{self.prefix}-doc{self.rng.randrange(3)}",
            "text": f"{chunk_id} version {step}",
            "embedding": float32_vector(self.np_rng, DIM),
            "metadata": {"owner": self.prefix, "step": step},
        }

    def expect(self, response: httpx.Response, status: int, what: str) -> bool:
        if response.status_code == status:
            return True
        self.seen.fail(f"{what}: expected {status}, got {response.status_code} {response.text}")
        return False

    def run(self) -> None:
        operations = [
            self.batch_upsert,
            self.put,
            self.delete,
            self.patch_metadata,
            self.delete_document,
            self.search,
            self.search,
            self.read_own_chunk,
        ]
        weights = [3, 3, 2, 1, 1, 3, 1, 2]
        try:
            for _ in range(OPS_PER_THREAD):
                self.rng.choices(operations, weights)[0]()
        except Exception as exc:  # a transport error or a broken body is a failure too
            self.seen.fail(f"{self.prefix}: {type(exc).__name__}: {exc}")
        finally:
            self.http.close()

    def some_id(self) -> str:
        return f"{self.prefix}-c{self.rng.randrange(IDS_PER_THREAD)}"

    def batch_upsert(self) -> None:
        ids = sorted({self.some_id() for _ in range(4)})
        bodies = [self.body(chunk_id) for chunk_id in ids]
        self.seen.note_written(*ids)
        response = self.http.post(
            f"{self.base}/chunks/batch", json={"chunks": bodies, "mode": "upsert"}
        )
        if self.expect(response, 201, "batch upsert"):
            self.model.update({b["id"]: ChunkRecord.of_body(b) for b in bodies})

    def put(self) -> None:
        chunk_id = self.some_id()
        body = self.body(chunk_id)
        del body["id"]
        self.seen.note_written(chunk_id)
        response = self.http.put(f"{self.base}/chunks/{chunk_id}", json=body)
        if self.expect(response, 200 if chunk_id in self.model else 201, f"put {chunk_id}"):
            self.model[chunk_id] = ChunkRecord.of_body(body)

    def delete(self) -> None:
        chunk_id = self.some_id()
        response = self.http.delete(f"{self.base}/chunks/{chunk_id}")
        if self.expect(response, 204 if chunk_id in self.model else 404, f"delete {chunk_id}"):
            self.model.pop(chunk_id, None)

    def patch_metadata(self) -> None:
        chunk_id = self.some_id()
        metadata = {"owner": self.prefix, "patched": self.rng.randrange(100)}
        response = self.http.patch(f"{self.base}/chunks/{chunk_id}", json={"metadata": metadata})
        if not self.expect(response, 200 if chunk_id in self.model else 404, f"patch {chunk_id}"):
            return
        if chunk_id in self.model:
            old = self.model[chunk_id]
            self.model[chunk_id] = ChunkRecord(old.document_id, old.text, old.embedding, metadata)

    def delete_document(self) -> None:
        document_id = f"{self.prefix}-doc{self.rng.randrange(3)}"
        exists = any(r.document_id == document_id for r in self.model.values())
        response = self.http.delete(f"{self.base}/documents/{document_id}")
        if response.status_code == 404 and not exists:
            return  # never created (or already deleted): a 404 is the right answer
        if self.expect(response, 204, f"delete document {document_id}"):
            self.model = {k: r for k, r in self.model.items() if r.document_id != document_id}

    def search(self) -> None:
        exact = self.rng.random() < 0.3
        response = self.http.post(
            f"{self.base}/search",
            json={"vector": float32_vector(self.np_rng, DIM), "k": 10, "exact": exact},
        )
        if not self.expect(response, 200, "search"):
            return
        results = response.json()["results"]
        ids = [r["chunk_id"] for r in results]
        scores = [r["score"] for r in results]
        with self.seen.lock:
            self.seen.searches += 1
            never_written = set(ids) - self.seen.written
        if never_written:
            self.seen.fail(f"search returned never-written chunks {sorted(never_written)}")
        if len(ids) > 10 or len(set(ids)) != len(ids) or scores != sorted(scores, reverse=True):
            self.seen.fail(f"search answered a malformed result list: {results}")

    def read_own_chunk(self) -> None:
        chunk_id = self.some_id()
        response = self.http.get(f"{self.base}/chunks/{chunk_id}")
        record = self.model.get(chunk_id)
        if not self.expect(response, 404 if record is None else 200, f"get {chunk_id}"):
            return
        if record is not None and not record.matches(response.json()):
            self.seen.fail(f"get {chunk_id} did not return its last acknowledged write")


def test_concurrent_writes_deletes_and_searches_end_in_exactly_the_acknowledged_state(
    server: ServerProcess,
) -> None:
    with httpx.Client(base_url=server.url, timeout=60) as http:
        created = http.post("/v1/libraries", json={"name": "busy", "dimension": DIM})
        assert created.status_code == 201, created.text
        library_id = created.json()["id"]

    seen = Observations()
    clients = [Client(server.url, library_id, n, seen) for n in range(THREADS)]
    threads = [threading.Thread(target=c.run, name=c.prefix) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(240)
        assert not thread.is_alive(), f"client {thread.name} is stuck"

    assert seen.failures == []
    assert seen.searches > 0
    expected: dict[str, ChunkRecord] = {}
    for client in clients:
        expected.update(client.model)
    with httpx.Client(base_url=server.url, timeout=60) as http:
        served = list_all_chunks(http, library_id)
        assert served.keys() == expected.keys()
        different = [cid for cid, record in expected.items() if not record.matches(served[cid])]
        assert different == []

        library = http.get(f"/v1/libraries/{library_id}").json()
        assert library["chunk_count"] == library["index"]["vector_count"] == len(expected)
        query = float32_vector(np.random.default_rng(99), DIM)
        k = max(1, min(20, len(expected)))
        answer = http.post(
            f"/v1/libraries/{library_id}/search", json={"vector": query, "k": k}
        ).json()
        truth = [cid for cid, _ in exact_top_ids(expected, query, k)] if expected else []
        assert [r["chunk_id"] for r in answer["results"]] == truth
        metrics = http.get("/metrics").text
    counted = [line for line in metrics.splitlines() if line.startswith("stacksdb_http_requests_")]
    assert any('status="201"' in line for line in counted)  # the server counts what it answers
    assert [line for line in counted if 'status="5' in line] == []
