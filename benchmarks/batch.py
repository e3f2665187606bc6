"""Batch search: 100 queries in one ``POST .../search/batch`` against the same 100 queries as
100 ``POST .../search`` requests, for Flat, IVF and HNSW, in the same run.

On the WordNet/MiniLM vectors (cosine, the first ``--limit`` base rows, 20,000 by default, and
100 held-out queries, k=10): for each index type a real ``stacksdb serve`` on a free
127.0.0.1 port (memory storage), one library ingested in batches of 1,000 and, for IVF and
HNSW, its index built with ``PUT .../index``. Then, alternating, ``--rounds`` rounds of the
100 single requests one after another on one keep-alive connection (the baseline) and of one
batch request carrying all 100. Queries per second (median round), server CPU per query, the
ratio batch/singles, and whether every batched answer is the single answer (same chunks,
same order). Request bodies are encoded up front, so the client's JSON is not timed.

Prints the table; writes ``benchmarks/results/batch.json``.

    python benchmarks/batch.py                 # make bench-batch
    python benchmarks/batch.py --limit 5000 --rounds 3 --only flat
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from numpy.typing import NDArray

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.concurrency import load_library  # noqa: E402
from benchmarks.exact import (  # noqa: E402
    DEFAULT_DATA,
    batch_bodies,
    cpu_seconds,
    load,
    machine,
    markdown_table,
)
from tests.support.server import ServerProcess  # noqa: E402

DEFAULT_OUT = ROOT / "benchmarks" / "results" / "batch.json"
INDEX_TYPES = ("flat", "ivf", "hnsw")
QUERIES = 100
K = 10
INGEST_BATCH = 1_000
HEADERS = {"content-type": "application/json"}


def measure(
    server: ServerProcess, library: str, queries: NDArray[np.float32], rounds: int
) -> dict[str, Any]:
    """Alternating rounds of 100 single requests and one batch of 100 on one connection."""
    assert server.process is not None
    searches = [{"vector": q.tolist(), "k": K} for q in queries]
    singles = [json.dumps(search).encode() for search in searches]
    batch = json.dumps({"searches": searches}).encode()
    url = f"/v1/libraries/{library}/search"
    timings: dict[str, list[float]] = {"single": [], "batch": []}
    cpu: dict[str, float] = {"single": 0.0, "batch": 0.0}
    with httpx.Client(base_url=server.url, timeout=600) as client:

        def single_round() -> list[list[str]]:
            answers = []
            for body in singles:
                answer = client.post(url, content=body, headers=HEADERS).raise_for_status()
                answers.append([hit["chunk_id"] for hit in answer.json()["results"]])
            return answers

        def batch_round() -> list[list[str]]:
            answer = client.post(f"{url}/batch", content=batch, headers=HEADERS)
            results = answer.raise_for_status().json()["results"]
            return [[hit["chunk_id"] for hit in result["results"]] for result in results]

        alone, together = single_round(), batch_round()  # warm-up: kernels, pools, caches
        for _ in range(rounds):
            for kind, run in (("single", single_round), ("batch", batch_round)):
                cpu_before = cpu_seconds(server.process.pid)
                started = time.perf_counter()
                run()
                timings[kind].append(time.perf_counter() - started)
                cpu[kind] += cpu_seconds(server.process.pid) - cpu_before
    qps = {kind: len(queries) / statistics.median(seconds) for kind, seconds in timings.items()}
    per_query = {kind: cpu[kind] / (rounds * len(queries)) * 1000 for kind in cpu}
    return {
        "single_qps": round(qps["single"], 1),
        "batch_qps": round(qps["batch"], 1),
        "batch_over_single": round(qps["batch"] / qps["single"], 2),
        "single_server_cpu_ms_per_query": round(per_query["single"], 3),
        "batch_server_cpu_ms_per_query": round(per_query["batch"], 3),
        "same_answers": alone == together,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    load_before = os.getloadavg()  # other work on the machine skews both sides alike
    data = load(args.data, args.limit, QUERIES)
    bodies = batch_bodies(data, INGEST_BATCH)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="stacksdb-batch-") as scratch:
        for index_type in args.only or INDEX_TYPES:
            data_dir = Path(scratch) / index_type / "data"
            data_dir.parent.mkdir(parents=True)
            server = ServerProcess(data_dir, args=["--storage", "memory"]).start()
            try:
                with httpx.Client(base_url=server.url, timeout=600) as client:
                    loaded = load_library(client, index_type, index_type, bodies)
                measured = measure(server, index_type, data.queries, args.rounds)
                results[index_type] = {**loaded, **measured}
            finally:
                server.kill()
            print(f"  {index_type}: {results[index_type]}", flush=True)
    return {
        "machine": machine(),
        "load_average_before": [round(x, 2) for x in load_before],
        "vectors": int(data.base.shape[0]),
        "queries": QUERIES,
        "k": K,
        "rounds": args.rounds,
        "results": results,
    }


def table(report: dict[str, Any]) -> str:
    rows = [
        (
            "index",
            "100 single requests (q/s)",
            "1 batch of 100 (q/s)",
            "batch / single",
            "server CPU ms/query single",
            "batch",
            "same answers",
        )
    ]
    for index_type, r in report["results"].items():
        rows.append(
            (
                index_type,
                f"{r['single_qps']:,.0f}",
                f"{r['batch_qps']:,.0f}",
                f"{r['batch_over_single']:.1f}x",
                f"{r['single_server_cpu_ms_per_query']:.3f}",
                f"{r['batch_server_cpu_ms_per_query']:.3f}",
                "yes" if r["same_answers"] else "no",
            )
        )
    return markdown_table(rows)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--limit", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", nargs="*", choices=INDEX_TYPES)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    report = run(args)
    print(f"\n{report['vectors']:,} MiniLM vectors, {QUERIES} queries, k={K}\n")
    print(table(report))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
