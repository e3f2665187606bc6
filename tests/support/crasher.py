"""A crash loop in the style of Qdrant's crasher: write, SIGKILL at a random moment, restart
on the same data dir, check, again.

One client writes without pause: batches of new chunks, single chunks, upserts, patches,
chunk deletes, document deletes and index rebuilds, while a timer kills the server with
SIGKILL at a random moment. Every answered write is *acknowledged* and goes into the
model; the one request in flight when the server died is *in doubt*. After each restart
the checker reads everything back and requires:

- every acknowledged write is there, with its exact text, embedding and metadata, and
  nothing else is;
- the write in doubt is there entirely or not at all (never half of a batch);
- library and document counts match the chunks;
- ``exact: true`` search agrees with brute force on the chunks read back, and a search
  through the index returns live chunks with their true scores (the same top-k for the
  flat index; a recall for IVF and HNSW);
- no answer was ever a 5xx.

Used by tests/e2e/test_crash_loop.py (a few kills) and benchmarks/crasher.py (hundreds).
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from tests.support.server import ServerProcess
from tests.support.stateful import check_top_k

LIBRARY = "crash"
DIM = 8
METRIC = "l2"
DOCUMENTS = tuple(f"doc-{i}" for i in range(24))
MAX_CHUNKS = 3_000
INDEX_TYPES = ("flat", "ivf", "hnsw")

Row = tuple[str, str, tuple[float, ...], dict[str, Any]]
"""A chunk as the checker compares it: (document id, text, embedding, metadata)."""


class ServerError(AssertionError):
    """The server answered 5xx."""


@dataclass
class State:
    """What the store must hold: chunks by id and the set of documents."""

    chunks: dict[str, Row] = field(default_factory=dict)
    documents: set[str] = field(default_factory=set)

    def copy(self) -> State:
        return State(dict(self.chunks), set(self.documents))


@dataclass
class Stats:
    kills: int = 0
    acknowledged_writes: int = 0
    chunks_checked: int = 0
    in_doubt_applied: int = 0
    in_doubt_not_applied: int = 0
    server_errors: int = 0
    searches_checked: int = 0
    approximate_recall: list[float] = field(default_factory=list)
    restart_seconds: list[float] = field(default_factory=list)
    operations: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        recall = self.approximate_recall
        restarts = self.restart_seconds
        return {
            "kills_survived": self.kills,
            "acknowledged_writes": self.acknowledged_writes,
            "chunk_checks": self.chunks_checked,
            "in_doubt_applied": self.in_doubt_applied,
            "in_doubt_not_applied": self.in_doubt_not_applied,
            "server_errors_5xx": self.server_errors,
            "searches_checked": self.searches_checked,
            "approximate_recall_at_10_mean": round(float(np.mean(recall)), 4) if recall else None,
            "restart_seconds_p50": round(float(np.median(restarts)), 3) if restarts else None,
            "restart_seconds_max": round(max(restarts), 3) if restarts else None,
            "operations": dict(sorted(self.operations.items())),
        }


class Crasher:
    """Runs ``kills`` write-kill-restart-check cycles on a server in ``data_dir``."""

    def __init__(
        self,
        data_dir: Path,
        *,
        seed: int = 0,
        min_run: float = 0.05,
        max_run: float = 1.0,
        env: dict[str, str] | None = None,
    ) -> None:
        self.server = ServerProcess(data_dir, env=env or {})
        self.rng = random.Random(seed)
        self.np_rng = np.random.default_rng(seed)
        self.min_run = min_run
        self.max_run = max_run
        self.state = State()
        self.stats = Stats()
        self._next_id = 0

    # The loop

    def run(self, kills: int, progress: bool = False) -> Stats:
        self.server.start()
        try:
            with self._client() as http:
                created = http.post(
                    "/v1/libraries",
                    json={"id": LIBRARY, "name": "crash", "dimension": DIM, "metric": METRIC},
                )
                self._answer(created, "create library")
            for cycle in range(kills):
                doubt = self._write_until_killed()
                self.stats.kills += 1
                started = time.monotonic()
                self.server.start()
                self.stats.restart_seconds.append(time.monotonic() - started)
                self._check(doubt)
                if progress:
                    print(f"kill {cycle + 1}/{kills}: {self._progress()}", flush=True)
        finally:
            self.server.kill()
        return self.stats

    def _client(self) -> httpx.Client:
        return httpx.Client(base_url=self.server.url, timeout=30)

    def _progress(self) -> str:
        s = self.stats
        return (
            f"{len(self.state.chunks)} chunks, {s.acknowledged_writes} acknowledged writes, "
            f"{s.chunks_checked} chunk checks, {s.server_errors} 5xx"
        )

    def _answer(self, response: httpx.Response, what: str) -> Any:
        if response.status_code >= 500:
            self.stats.server_errors += 1
            raise ServerError(f"{what}: {response.status_code} {response.text}")
        assert response.is_success, f"{what}: {response.status_code} {response.text}"
        return response.json() if response.content else None

    def _write_until_killed(self) -> tuple[State, State] | None:
        """Write until the timer kills the server; return (before, after) of the write in
        flight at the kill, or None when the kill fell between two requests."""
        delay = self.rng.uniform(self.min_run, self.max_run)
        timer = threading.Timer(delay, self.server.kill)
        timer.start()
        try:
            with self._client() as http:
                while True:
                    before = self.state.copy()
                    after = self.state.copy()
                    request = self._next_write(after)
                    try:
                        response = http.request(**request)
                    except httpx.TransportError:
                        return before, after
                    self._answer(response, f"{request['method']} {request['url']}")
                    self.state = after
                    self.stats.acknowledged_writes += 1
        finally:
            timer.join()

    # Writes: each returns the request and applies its effect to ``after``

    def _new_id(self) -> str:
        self._next_id += 1
        return f"c{self._next_id}"

    def _row(self, document_id: str) -> Row:
        vector = tuple(float(x) for x in self.np_rng.standard_normal(DIM).astype(np.float32))
        text = "".join(self.rng.choice("abcdefgh éλ✓ ") for _ in range(self.rng.randint(0, 40)))
        metadata = {"n": self.rng.randint(0, 10**6), "tag": self.rng.choice(["x", "y", "z"])}
        return document_id, text, vector, metadata

    @staticmethod
    def _body(chunk_id: str | None, row: Row) -> dict[str, Any]:
        body: dict[str, Any] = {
            "document_id": row[0],
            "text": row[1],
            "embedding": list(row[2]),
            "metadata": row[3],
        }
        if chunk_id is not None:
            body["id"] = chunk_id
        return body

    def _count(self, name: str) -> None:
        self.stats.operations[name] = self.stats.operations.get(name, 0) + 1

    def _next_write(self, after: State) -> dict[str, Any]:
        base = f"/v1/libraries/{LIBRARY}"
        existing = list(after.chunks)
        roll = self.rng.random()
        crowded = len(existing) > MAX_CHUNKS
        if existing and (roll < 0.12 or (crowded and roll < 0.5)):
            document_id = after.chunks[self.rng.choice(existing)][0]
            self._count("delete_document")
            after.chunks = {c: r for c, r in after.chunks.items() if r[0] != document_id}
            after.documents.discard(document_id)
            return {"method": "DELETE", "url": f"{base}/documents/{document_id}"}
        if existing and roll < 0.22:
            chunk_id = self.rng.choice(existing)
            self._count("delete_chunk")
            del after.chunks[chunk_id]
            return {"method": "DELETE", "url": f"{base}/chunks/{chunk_id}"}
        if existing and roll < 0.34:
            chunk_id = self.rng.choice(existing)
            old = after.chunks[chunk_id]
            new = self._row(old[0])
            self._count("patch_chunk")
            after.chunks[chunk_id] = (old[0], new[1], new[2], new[3])
            body = {"text": new[1], "embedding": list(new[2]), "metadata": new[3]}
            return {"method": "PATCH", "url": f"{base}/chunks/{chunk_id}", "json": body}
        if existing and roll < 0.46:
            chunk_id = self.rng.choice(existing)
            row = self._row(self.rng.choice(DOCUMENTS))
            self._count("put_chunk")
            after.chunks[chunk_id] = row
            after.documents.add(row[0])
            return {
                "method": "PUT",
                "url": f"{base}/chunks/{chunk_id}",
                "json": self._body(None, row),
            }
        if roll < 0.48:
            index_type = self.rng.choice(INDEX_TYPES)
            self._count(f"rebuild_{index_type}")
            return {"method": "PUT", "url": f"{base}/index", "json": {"type": index_type}}
        if roll < 0.60:
            chunk_id = self._new_id()
            row = self._row(self.rng.choice(DOCUMENTS))
            self._count("create_chunk")
            after.chunks[chunk_id] = row
            after.documents.add(row[0])
            return {"method": "POST", "url": f"{base}/chunks", "json": self._body(chunk_id, row)}
        size = self.rng.randint(2, 40)
        mode = self.rng.choice(["insert", "upsert"])
        chunks: list[dict[str, Any]] = []
        for _ in range(size):
            reuse = mode == "upsert" and existing and self.rng.random() < 0.3
            chunk_id = self.rng.choice(existing) if reuse else self._new_id()
            if any(c["id"] == chunk_id for c in chunks):
                continue
            row = self._row(self.rng.choice(DOCUMENTS))
            after.chunks[chunk_id] = row
            after.documents.add(row[0])
            chunks.append(self._body(chunk_id, row))
        self._count(f"batch_{mode}")
        return {
            "method": "POST",
            "url": f"{base}/chunks/batch",
            "json": {"chunks": chunks, "mode": mode},
        }

    # The check after each restart

    def _check(self, doubt: tuple[State, State] | None) -> None:
        with self._client() as http:
            observed = self._read_state(http)
            if doubt is not None:
                before, after = doubt
                if _same(observed, after) and not _same(observed, before):
                    self.stats.in_doubt_applied += 1
                    self.state = after
                else:
                    self.stats.in_doubt_not_applied += 1
                    self.state = before
            assert observed.documents == self.state.documents, _diff_documents(observed, self.state)
            missing = self.state.chunks.keys() - observed.chunks.keys()
            extra = observed.chunks.keys() - self.state.chunks.keys()
            assert not missing and not extra, f"missing {sorted(missing)}, extra {sorted(extra)}"
            for chunk_id, row in self.state.chunks.items():
                assert observed.chunks[chunk_id] == row, (chunk_id, observed.chunks[chunk_id], row)
            self.stats.chunks_checked += len(self.state.chunks)
            self._check_searches(http)

    def _read_state(self, http: httpx.Client) -> State:
        base = f"/v1/libraries/{LIBRARY}"
        chunks: dict[str, Row] = {}
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 1000, "include_embedding": True}
            if cursor:
                params["cursor"] = cursor
            page = self._answer(http.get(f"{base}/chunks", params=params), "list chunks")
            for c in page["items"]:
                embedding = tuple(float(x) for x in c["embedding"])
                chunks[c["id"]] = (c["document_id"], c["text"], embedding, c["metadata"])
            cursor = page["next_cursor"]
            if cursor is None:
                break
        documents: dict[str, int] = {}
        cursor = None
        while True:
            params = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
            page = self._answer(http.get(f"{base}/documents", params=params), "list documents")
            documents.update((d["id"], d["chunk_count"]) for d in page["items"])
            cursor = page["next_cursor"]
            if cursor is None:
                break
        per_document: dict[str, int] = {}
        for row in chunks.values():
            per_document[row[0]] = per_document.get(row[0], 0) + 1
        assert documents == {d: per_document.get(d, 0) for d in documents}, "document counts"
        assert per_document.keys() <= documents.keys(), "a chunk without its document"
        library = self._answer(http.get(base), "get library")
        assert library["chunk_count"] == len(chunks), (library["chunk_count"], len(chunks))
        assert library["document_count"] == len(documents)
        return State(chunks, set(documents))

    def _check_searches(self, http: httpx.Client, queries: int = 5, k: int = 10) -> None:
        if not self.state.chunks:
            return
        ids = list(self.state.chunks)
        matrix = np.array([self.state.chunks[c][2] for c in ids], dtype=np.float64)
        index = self._answer(http.get(f"/v1/libraries/{LIBRARY}/index"), "index status")
        for _ in range(queries):
            query = self.np_rng.standard_normal(DIM).astype(np.float32)
            distances = np.sqrt(((matrix - query.astype(np.float64)) ** 2).sum(axis=1))
            truth = dict(zip(ids, (float(d) for d in distances), strict=True))
            answers = {}
            for exact in (True, False):
                response = http.post(
                    f"/v1/libraries/{LIBRARY}/search",
                    json={"vector": query.tolist(), "k": k, "exact": exact, "include": []},
                )
                hits = self._answer(response, "search")["results"]
                answers[exact] = [(h["chunk_id"], h["score"]) for h in hits]
            check_top_k(answers[True], truth, k, METRIC, exact=True)
            flat = index["type"] == "flat"
            check_top_k(answers[False], truth, k, METRIC, exact=flat)
            if not flat:
                wanted = {c for c, _ in answers[True]}
                found = {c for c, _ in answers[False]}
                self.stats.approximate_recall.append(len(wanted & found) / len(wanted))
            self.stats.searches_checked += 2


def _same(observed: State, expected: State) -> bool:
    return observed.documents == expected.documents and observed.chunks == expected.chunks


def _diff_documents(observed: State, expected: State) -> str:
    return (
        f"documents: missing {sorted(expected.documents - observed.documents)}, "
        f"extra {sorted(observed.documents - expected.documents)}"
    )
