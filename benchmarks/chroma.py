"""StacksDB beside Chroma's server: HTTP ingest, recall@10 and search throughput, same run.

On the first ``--limit`` WordNet/MiniLM base vectors (20,000 by default; cosine):

1. Starts both servers on free 127.0.0.1 ports with temporary data dirs: ``chroma run``
   (the chromadb package of the ``bench`` extra, its own persistent store) and
   ``stacksdb serve`` (SQLite storage unless ``--storage memory``).
2. Ingest over HTTP in batches of 1,000 (bodies encoded up front; id, text, embedding) into
   a Chroma collection in cosine space and into a StacksDB library whose HNSW index is live
   from the start (created with index type hnsw before the first batch). Vectors per second
   until the last batch is answered and the index is ready: StacksDB reports its index
   state; Chroma serves every added record at once (its single-node server has no indexing
   status), checked by its count.
3. Recall@10 of each server at its default settings, through its own search endpoint, for
   ``--queries`` held-out queries, against the exact top 10 computed here in float64.
4. ``wrk`` at 1 and 8 connections on each server's search endpoint (StacksDB
   ``POST /v1/libraries/{id}/search``; Chroma ``POST /api/v2/.../collections/{id}/query``),
   cycling through the held-out query vectors, k=10, each returning ids, scores and
   metadata. Requests/s, p50/p99, server CPU per request.

Every figure comes with the ratio StacksDB/Chroma of the same run. Prints a table and
writes ``benchmarks/results/chroma.json``.

    pip install -e '.[bench]'
    python benchmarks/chroma.py                  # make bench-chroma
    python benchmarks/chroma.py --limit 5000 --seconds 3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil
from numpy.typing import NDArray

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import wrk  # noqa: E402
from benchmarks.concurrency import wait_ready  # noqa: E402
from benchmarks.exact import (  # noqa: E402
    CHUNKS_PER_DOCUMENT,
    DEFAULT_DATA,
    Dataset,
    load,
    machine,
    markdown_table,
)
from tests.support.server import ServerProcess, free_port  # noqa: E402

DEFAULT_OUT = ROOT / "benchmarks" / "results" / "chroma.json"
DIMENSION = 384
K = 10
# Chroma's default search ef (its collections' hnsw "ef_search"); StacksDB's is 64 (API.md).
CHROMA_SEARCH_EF = 100
BATCH = 1000
CONNECTIONS = (1, 8)
LIBRARY = "wordnet"
CHROMA_DB = "/api/v2/tenants/default_tenant/databases/default_database"
JSON_HEADERS = {"content-type": "application/json"}


# -- the exact answers ---------------------------------------------------------------------


def exact_top_k(base: NDArray[np.float32], queries: NDArray[np.float32]) -> NDArray[np.intp]:
    """Row numbers of the ``K`` most cosine-similar base rows of each query, in float64."""
    b = base.astype(np.float64)
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    q = queries.astype(np.float64)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    sims = q @ b.T
    part = np.argpartition(-sims, K - 1, axis=1)[:, :K]
    order = np.argsort(-np.take_along_axis(sims, part, axis=1), axis=1)
    top: NDArray[np.intp] = np.take_along_axis(part, order, axis=1)
    return top


def recall(found: Sequence[Sequence[str]], truth: Sequence[Sequence[str]]) -> float:
    hits = sum(len(set(f) & set(t)) for f, t in zip(found, truth, strict=True))
    return hits / sum(len(t) for t in truth)


# -- the two servers, behind one shape -------------------------------------------------------


@dataclass
class Target:
    """One server under test: how to make its collection, ingest a batch, search."""

    name: str
    url: str
    pid: int
    search_path: str = ""

    def cpu_seconds(self) -> float:
        """User + system CPU of the server process and its children so far."""
        process = psutil.Process(self.pid)
        total = 0.0
        for p in [process, *process.children(recursive=True)]:
            times = p.cpu_times()
            total += times.user + times.system
        return total


class StacksDB:
    """A library with a live HNSW index (created with it, before any chunk)."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    def create(self) -> str:
        self.client.post(
            "/v1/libraries",
            json={
                "id": LIBRARY,
                "name": LIBRARY,
                "dimension": DIMENSION,
                "metric": "cosine",
                "index": {"type": "hnsw"},
            },
        ).raise_for_status()
        return f"/v1/libraries/{LIBRARY}/search"

    def batch_bodies(self, data: Dataset) -> list[bytes]:
        return [
            json.dumps(
                {
                    "chunks": [
                        {
                            "id": data.base_ids[i],
                            "document_id": f"d{i // CHUNKS_PER_DOCUMENT:05d}",
                            "text": data.base_text[i],
                            "embedding": data.base[i].tolist(),
                        }
                        for i in rows
                    ]
                }
            ).encode()
            for rows in batches(data.base.shape[0])
        ]

    def ingest(self, body: bytes) -> None:
        self.client.post(
            f"/v1/libraries/{LIBRARY}/chunks/batch", content=body, headers=JSON_HEADERS
        ).raise_for_status()

    def settle(self, n: int) -> None:
        wait_ready(self.client, LIBRARY)
        count = self.client.get(f"/v1/libraries/{LIBRARY}").raise_for_status().json()
        if count["chunk_count"] != n:
            raise RuntimeError(f"StacksDB holds {count['chunk_count']} chunks, not {n}")

    def search_body(self, query: NDArray[np.float32], ef: int | None = None) -> bytes:
        body: dict[str, Any] = {"vector": query.tolist(), "k": K}
        if ef is not None:
            body["params"] = {"ef": ef}
        return json.dumps(body).encode()

    def ids(self, response: httpx.Response) -> list[str]:
        return [hit["chunk_id"] for hit in response.json()["results"]]


class Chroma:
    """A collection in cosine space, default HNSW settings."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.collection = ""

    def create(self) -> str:
        created = self.client.post(
            f"{CHROMA_DB}/collections",
            json={"name": LIBRARY, "configuration": {"hnsw": {"space": "cosine"}}},
        ).raise_for_status()
        self.collection = f"{CHROMA_DB}/collections/{created.json()['id']}"
        return f"{self.collection}/query"

    def batch_bodies(self, data: Dataset) -> list[bytes]:
        return [
            json.dumps(
                {
                    "ids": [data.base_ids[i] for i in rows],
                    "embeddings": data.base[rows.start : rows.stop].tolist(),
                    "documents": [data.base_text[i] for i in rows],
                }
            ).encode()
            for rows in batches(data.base.shape[0])
        ]

    def ingest(self, body: bytes) -> None:
        self.client.post(
            f"{self.collection}/add", content=body, headers=JSON_HEADERS
        ).raise_for_status()

    def settle(self, n: int) -> None:
        count = self.client.get(f"{self.collection}/count").raise_for_status().json()
        if count != n:
            raise RuntimeError(f"Chroma holds {count} records, not {n}")

    def search_body(self, query: NDArray[np.float32]) -> bytes:
        body = {"query_embeddings": [query.tolist()], "n_results": K}
        return json.dumps({**body, "include": ["metadatas", "distances"]}).encode()

    def ids(self, response: httpx.Response) -> list[str]:
        found: list[str] = response.json()["ids"][0]
        return found


def batches(n: int) -> Iterator[range]:
    for start in range(0, n, BATCH):
        yield range(start, min(start + BATCH, n))


@contextmanager
def chroma_server(scratch: Path) -> Iterator[Target]:
    """``chroma run`` on a free 127.0.0.1 port, persisting under ``scratch``."""
    chroma = Path(sys.executable).with_name("chroma")
    if not chroma.exists():
        raise RuntimeError(f"{chroma} not found: pip install -e '.[bench]' (chromadb)")
    port = free_port()
    log = (scratch / "chroma.log").open("ab")
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
    command = [str(chroma), "run", "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--path", str(scratch / "chroma")], stdout=log, stderr=log, env=env
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"chroma exited with {process.returncode}, see {log.name}")
            try:
                if httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("chroma not ready after 120 s")
            time.sleep(0.1)
        yield Target("Chroma", url, process.pid)
    finally:
        process.kill()
        process.wait(30)
        log.close()


@contextmanager
def stacksdb_server(scratch: Path, storage: str) -> Iterator[Target]:
    server = ServerProcess(scratch / "stacksdb" / "data", args=["--storage", storage])
    server.data_dir.parent.mkdir(parents=True, exist_ok=True)
    server.start()
    try:
        assert server.process is not None
        yield Target("StacksDB", server.url, server.process.pid)
    finally:
        server.kill()


# -- one server, measured ----------------------------------------------------------------------


def measure(
    target: Target,
    system: StacksDB | Chroma,
    data: Dataset,
    truth_ids: list[list[str]],
    scratch: Path,
    seconds: float,
) -> dict[str, Any]:
    n = data.base.shape[0]
    target.search_path = system.create()
    bodies = system.batch_bodies(data)
    cpu_before = target.cpu_seconds()
    started = time.perf_counter()
    for body in bodies:
        system.ingest(body)
    system.settle(n)
    ingest_s = time.perf_counter() - started
    ingest_cpu = target.cpu_seconds() - cpu_before
    del bodies
    print(f"  {target.name}: ingested {n:,} in {ingest_s:.1f} s", flush=True)

    search_bodies = [system.search_body(q) for q in data.queries]
    with httpx.Client(base_url=target.url, timeout=60) as client:

        def found_by(bodies: list[bytes]) -> list[list[str]]:
            return [
                system.ids(
                    client.post(
                        target.search_path, content=body, headers=JSON_HEADERS
                    ).raise_for_status()
                )
                for body in bodies
            ]

        found = found_by(search_bodies)
        # Like for like: StacksDB searched with the ef Chroma uses by default.
        same_ef = (
            recall(
                found_by([system.search_body(q, CHROMA_SEARCH_EF) for q in data.queries]), truth_ids
            )
            if isinstance(system, StacksDB)
            else None
        )
    script = wrk.write_script(scratch / f"{target.name}.lua", search_bodies)
    url = f"{target.url}{target.search_path}"
    wrk.run(url, script, 1, 2)  # warm-up
    runs: dict[str, Any] = {}
    for connections in CONNECTIONS:
        cpu_before = target.cpu_seconds()
        result = wrk.run(url, script, connections, seconds)
        cpu = target.cpu_seconds() - cpu_before
        runs[str(connections)] = {
            **result.as_dict(),
            "server_cpu_ms_per_request": round(cpu / max(1, result.requests) * 1000, 3),
        }
        print(
            f"  {target.name}: {connections} conn {result.requests_per_s:,.0f} req/s, "
            f"p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms",
            flush=True,
        )
    return {
        "ingest": {
            "vectors": n,
            "seconds": round(ingest_s, 2),
            "vectors_per_s": round(n / ingest_s, 1),
            "server_cpu_us_per_vector": round(ingest_cpu / n * 1e6, 1),
        },
        "recall_at_10": recall(found, truth_ids),
        **({} if same_ef is None else {"recall_at_10_ef_100": same_ef}),
        "search_path": target.search_path,
        "wrk": runs,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    load_before = os.getloadavg()
    data = load(args.data, args.limit, args.queries)
    n = data.base.shape[0]
    print(f"{n:,} base vectors x {DIMENSION}, {data.queries.shape[0]} queries, k={K}", flush=True)
    truth = exact_top_k(data.base, data.queries)
    truth_ids = [[data.base_ids[r] for r in row] for row in truth]
    systems: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="stacksdb-chroma-") as tmp:
        scratch = Path(tmp)
        with (
            chroma_server(scratch) as target,
            httpx.Client(base_url=target.url, timeout=600) as client,
        ):
            systems["chroma"] = measure(
                target, Chroma(client), data, truth_ids, scratch, args.seconds
            )
        with (
            stacksdb_server(scratch, args.storage) as target,
            httpx.Client(base_url=target.url, timeout=600) as client,
        ):
            systems["stacksdb"] = measure(
                target, StacksDB(client), data, truth_ids, scratch, args.seconds
            )
    ours, theirs = systems["stacksdb"], systems["chroma"]
    ratios = {
        "ingest_vectors_per_s": ours["ingest"]["vectors_per_s"] / theirs["ingest"]["vectors_per_s"],
        "recall_at_10": ours["recall_at_10"] / theirs["recall_at_10"],
        "recall_at_10_same_ef": ours["recall_at_10_ef_100"] / theirs["recall_at_10"],
        **{
            f"requests_per_s_{c}_conn": ours["wrk"][str(c)]["requests_per_s"]
            / theirs["wrk"][str(c)]["requests_per_s"]
            for c in CONNECTIONS
        },
    }
    ratios = {key: round(value, 3) for key, value in ratios.items()}
    return {
        "benchmark": "chroma",
        "command": " ".join(["python", "benchmarks/chroma.py", *sys.argv[1:]]),
        "data": {"path": str(args.data), "vectors": n, "queries": int(data.queries.shape[0])},
        "params": {
            "k": K,
            "metric": "cosine",
            "batch": BATCH,
            "seconds_per_run": args.seconds,
            "stacksdb_storage": args.storage,
            "stacksdb_index": "hnsw, default params, live from the start",
            "chroma_collection": "configuration hnsw space cosine, default params",
            "chromadb": _chromadb_version(),
        },
        "systems": systems,
        "ratios_stacksdb_over_chroma": ratios,
        "targets": {f"{key}_at_least_chroma": value >= 1.0 for key, value in ratios.items()},
        "machine": {
            **machine(),
            "loadavg_1m_before": load_before[0],
            "loadavg_1m_after": os.getloadavg()[0],
        },
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _chromadb_version() -> str | None:
    try:
        return version("chromadb")
    except PackageNotFoundError:
        return None


def table(r: dict[str, Any]) -> str:
    ours, theirs = r["systems"]["stacksdb"], r["systems"]["chroma"]
    ratio = r["ratios_stacksdb_over_chroma"]
    ok = {True: "yes", False: "NO"}

    def conn_row(c: int) -> tuple[str, ...]:
        a, b = ours["wrk"][str(c)], theirs["wrk"][str(c)]
        key = f"requests_per_s_{c}_conn"
        return (
            f"search, {c} conn",
            f"{a['requests_per_s']:,.0f} req/s (p50 {a['p50_ms']:.2f}, p99 {a['p99_ms']:.2f} ms)",
            f"{b['requests_per_s']:,.0f} req/s (p50 {b['p50_ms']:.2f}, p99 {b['p99_ms']:.2f} ms)",
            f"{ratio[key]:.2f}x",
            ok[ratio[key] >= 1.0],
        )

    rows: list[tuple[str, ...]] = [
        ("measure", "StacksDB", "Chroma", "StacksDB/Chroma", ">= Chroma"),
        (
            "ingest (batches of 1,000)",
            f"{ours['ingest']['vectors_per_s']:,.0f} vectors/s",
            f"{theirs['ingest']['vectors_per_s']:,.0f} vectors/s",
            f"{ratio['ingest_vectors_per_s']:.2f}x",
            ok[ratio["ingest_vectors_per_s"] >= 1.0],
        ),
        (
            "recall@10, default settings",
            f"{ours['recall_at_10']:.4f}",
            f"{theirs['recall_at_10']:.4f}",
            f"{ratio['recall_at_10']:.3f}x",
            ok[ratio["recall_at_10"] >= 1.0],
        ),
        (
            f"recall@10, both at ef {CHROMA_SEARCH_EF}",
            f"{ours['recall_at_10_ef_100']:.4f}",
            f"{theirs['recall_at_10']:.4f}",
            f"{ratio['recall_at_10_same_ef']:.3f}x",
            ok[ratio["recall_at_10_same_ef"] >= 1.0],
        ),
        *(conn_row(c) for c in CONNECTIONS),
        (
            "server CPU per search (1 conn)",
            f"{ours['wrk']['1']['server_cpu_ms_per_request']:.2f} ms",
            f"{theirs['wrk']['1']['server_cpu_ms_per_request']:.2f} ms",
            "",
            "",
        ),
    ]
    lines = [markdown_table(rows)]
    info = r["machine"]
    lines.append(
        f"\n{r['data']['vectors']:,} vectors x {DIMENSION} (cosine), {r['data']['queries']} "
        f"queries, k={K}; chromadb {r['params']['chromadb']}, StacksDB "
        f"{r['params']['stacksdb_storage']} storage; {r['params']['seconds_per_run']:g} s per "
        f"wrk run; {info['cpu_count']} cores ({info['cpu_model']}); load average "
        f"{info['loadavg_1m_before']:.1f} before, {info['loadavg_1m_after']:.1f} after"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the .npz file")
    parser.add_argument("--limit", type=int, default=20_000, help="base vectors to ingest")
    parser.add_argument("--queries", type=int, default=300, help="held-out queries")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each wrk run")
    parser.add_argument("--storage", choices=["sqlite", "memory"], default="sqlite")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the JSON")
    args = parser.parse_args(argv)
    result = run(args)
    print(table(result))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
