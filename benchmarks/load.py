"""Load and space: a bounded mixed workload against a live server, then a large delete.

1. Starts ``stacksdb serve`` on 127.0.0.1 with a fresh data dir and preloads ``--preload``
   chunks (``--dimension`` floats each) in documents of 100.
2. Baseline: the same mix from one client for ``--baseline`` seconds.
3. Load: the mix (80% search k=10, 15% insert of one chunk, 5% delete of one chunk) from
   ``--concurrency`` clients for ``--duration`` seconds. Throughput, p50/p95/p99 latency
   per operation, errors (any non-2xx or transport error), and the server's resident
   memory at the start and the end next to the bytes of data added meanwhile.
4. Space: deletes ``--delete-fraction`` of the documents, then reports the data dir's
   size before, right after, and after a graceful restart (SQLite checkpoints on close).

Prints a table; writes benchmarks/results/load.json. Each figure comes with its baseline
from the same run (one client; the size before the delete).

    python benchmarks/load.py [--duration 60] [--concurrency 8] [--preload 20000]
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.server import ServerProcess

RESULTS = Path(__file__).resolve().parent / "results" / "load.json"
LIBRARY = "load"
DOC_SIZE = 100
MIX = (("search", 0.80), ("insert", 0.15), ("delete", 0.05))


@dataclass
class Recorder:
    """Latencies (seconds) per operation and the error count, shared by the clients."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, op: str, seconds: float, error: str | None) -> None:
        with self.lock:
            self.latencies.setdefault(op, []).append(seconds)
            if error is not None:
                self.errors += 1
                if len(self.error_samples) < 5:
                    self.error_samples.append(f"{op}: {error}")


class Workload:
    """The operation mix against one library; ids to delete come from what was inserted."""

    def __init__(self, url: str, dimension: int, seed: int) -> None:
        self.url = url
        self.dimension = dimension
        self.seed = seed
        self.deletable: deque[str] = deque()
        self.ids = itertools.count()
        self.mutex = threading.Lock()

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60)

    def vector(self, rng: np.random.Generator) -> list[float]:
        return [float(x) for x in rng.standard_normal(self.dimension).astype(np.float32)]

    def preload(self, count: int) -> None:
        rng = np.random.default_rng(self.seed)
        with self.client() as http:
            created = http.post(
                "/v1/libraries",
                json={"id": LIBRARY, "name": "load", "dimension": self.dimension},
            )
            created.raise_for_status()
            for start in range(0, count, 1000):
                chunks = [
                    {
                        "id": f"p{i}",
                        "document_id": f"doc-{i // DOC_SIZE}",
                        "text": f"preloaded chunk {i} " * 8,
                        "embedding": self.vector(rng),
                        "metadata": {"i": i, "tag": random.choice(["a", "b", "c"])},
                    }
                    for i in range(start, min(start + 1000, count))
                ]
                batch_url = f"/v1/libraries/{LIBRARY}/chunks/batch"
                http.post(batch_url, json={"chunks": chunks}).raise_for_status()
                self.deletable.extend(f"p{i}" for i in range(start, min(start + 1000, count)))

    def run(self, clients: int, seconds: float, recorder: Recorder) -> float:
        deadline = time.monotonic() + seconds
        threads = [
            threading.Thread(target=self._client_loop, args=(n, deadline, recorder))
            for n in range(clients)
        ]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return time.monotonic() - started

    def _client_loop(self, n: int, deadline: float, recorder: Recorder) -> None:
        rng = np.random.default_rng(self.seed * 1000 + n)
        chooser = random.Random(self.seed * 1000 + n)
        names = [name for name, _ in MIX]
        weights = [weight for _, weight in MIX]
        base = f"/v1/libraries/{LIBRARY}"
        with self.client() as http:
            while time.monotonic() < deadline:
                op = chooser.choices(names, weights)[0]
                request: dict[str, Any]
                if op == "search":
                    request = {
                        "method": "POST",
                        "url": f"{base}/search",
                        "json": {"vector": self.vector(rng), "k": 10},
                    }
                elif op == "insert":
                    chunk_id = f"n{next(self.ids)}"
                    body = {
                        "id": chunk_id,
                        "document_id": f"new-{n}",
                        "text": f"inserted chunk {chunk_id} " * 8,
                        "embedding": self.vector(rng),
                        "metadata": {"client": n},
                    }
                    request = {"method": "POST", "url": f"{base}/chunks", "json": body}
                else:
                    with self.mutex:
                        if not self.deletable:
                            continue
                        victim = self.deletable.popleft()
                    request = {"method": "DELETE", "url": f"{base}/chunks/{victim}"}
                started = time.perf_counter()
                error: str | None = None
                try:
                    response = http.request(**request)
                    if not response.is_success:
                        error = f"{response.status_code} {response.text[:200]}"
                except httpx.HTTPError as exc:
                    error = f"{type(exc).__name__}: {exc}"
                recorder.record(op, time.perf_counter() - started, error)
                if op == "insert" and error is None:
                    with self.mutex:
                        self.deletable.append(request["json"]["id"])


def percentiles(values: list[float]) -> dict[str, float]:
    array = np.asarray(values) * 1000
    return {
        "count": int(array.size),
        "p50_ms": round(float(np.percentile(array, 50)), 2),
        "p95_ms": round(float(np.percentile(array, 95)), 2),
        "p99_ms": round(float(np.percentile(array, 99)), 2),
    }


def phase(workload: Workload, clients: int, seconds: float) -> dict[str, Any]:
    recorder = Recorder()
    elapsed = workload.run(clients, seconds, recorder)
    total = sum(len(v) for v in recorder.latencies.values())
    return {
        "clients": clients,
        "seconds": round(elapsed, 2),
        "requests": total,
        "throughput_rps": round(total / elapsed, 1),
        "errors": recorder.errors,
        "error_samples": recorder.error_samples,
        "operations": {op: percentiles(v) for op, v in sorted(recorder.latencies.items())},
    }


def rss_bytes(server: ServerProcess) -> int:
    assert server.process is not None
    return int(psutil.Process(server.process.pid).memory_info().rss)


def disk_bytes(data_dir: Path) -> int:
    return sum(f.stat().st_size for f in data_dir.rglob("*") if f.is_file())


def delete_documents(url: str, fraction: float, documents: int) -> int:
    doomed = [f"doc-{d}" for d in range(int(documents * fraction))]
    with httpx.Client(base_url=url, timeout=60) as http:
        for document_id in doomed:
            http.delete(f"/v1/libraries/{LIBRARY}/documents/{document_id}").raise_for_status()
        return int(http.get(f"/v1/libraries/{LIBRARY}").json()["chunk_count"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--baseline", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--preload", type=int, default=20_000)
    parser.add_argument("--dimension", type=int, default=128)
    parser.add_argument("--delete-fraction", type=float, default=0.9)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="stacksdb-load-") as scratch:
        data_dir = Path(scratch) / "data"
        server = ServerProcess(data_dir).start()
        try:
            workload = Workload(server.url, args.dimension, args.seed)
            started = time.monotonic()
            workload.preload(args.preload)
            preload_seconds = time.monotonic() - started
            baseline = phase(workload, 1, args.baseline)
            rss_start = rss_bytes(server)
            chunks_before = len(workload.deletable)
            load = phase(workload, args.concurrency, args.duration)
            rss_end = rss_bytes(server)
            net_chunks = len(workload.deletable) - chunks_before
            disk_before = disk_bytes(data_dir)
            left = delete_documents(server.url, args.delete_fraction, args.preload // DOC_SIZE)
            time.sleep(1.0)
            disk_after = disk_bytes(data_dir)
            server.stop()
            disk_closed = disk_bytes(data_dir)
            server.start()
            disk_restarted = disk_bytes(data_dir)
        finally:
            server.kill()

    vector_bytes = args.dimension * 4
    summary = {
        "command": " ".join(["python", "benchmarks/load.py", *(argv or sys.argv[1:])]),
        "preload": {
            "chunks": args.preload,
            "dimension": args.dimension,
            "seconds": round(preload_seconds, 1),
        },
        "baseline_one_client": baseline,
        "load": load,
        "throughput_vs_baseline": round(load["throughput_rps"] / baseline["throughput_rps"], 2),
        "memory": {
            "rss_start_mib": round(rss_start / 2**20, 1),
            "rss_end_mib": round(rss_end / 2**20, 1),
            "rss_growth_mib": round((rss_end - rss_start) / 2**20, 1),
            "net_chunks_added": net_chunks,
            "net_vector_mib_added": round(net_chunks * vector_bytes / 2**20, 2),
        },
        "space": {
            "chunks_before_delete": len(workload.deletable),
            "chunks_after_delete": left,
            "disk_before_mib": round(disk_before / 2**20, 2),
            "disk_after_delete_mib": round(disk_after / 2**20, 2),
            "disk_after_clean_stop_mib": round(disk_closed / 2**20, 2),
            "disk_after_restart_mib": round(disk_restarted / 2**20, 2),
            "after_over_before": round(disk_closed / disk_before, 3),
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2) + "\n")
    print_table(summary)
    print(f"\nwritten to {RESULTS}")
    return 0 if load["errors"] == 0 else 1


def print_table(summary: dict[str, Any]) -> None:
    load, base = summary["load"], summary["baseline_one_client"]
    print(f"\n{'phase':<10} {'clients':>7} {'rps':>8} {'errors':>6}")
    for name, p in (("baseline", base), ("load", load)):
        print(f"{name:<10} {p['clients']:>7} {p['throughput_rps']:>8} {p['errors']:>6}")
    print(f"throughput vs one client: {summary['throughput_vs_baseline']}x")
    print(f"\n{'operation':<10} {'count':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}   (load)")
    for op, p in load["operations"].items():
        print(f"{op:<10} {p['count']:>7} {p['p50_ms']:>8} {p['p95_ms']:>8} {p['p99_ms']:>8}")
    print()
    for section in ("memory", "space"):
        for key, value in summary[section].items():
            print(f"{key:<28} {value}")


if __name__ == "__main__":
    sys.exit(main())
