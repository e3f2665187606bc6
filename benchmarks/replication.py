"""Replication: read scaling over 1, 2 and 3 nodes, write latency by --min-replicas, lag.

Starts a real etcd and real ``stacksdb serve`` nodes on free 127.0.0.1 ports (the helpers of
``tests/support``), creates a cosine library with a Flat index on the first node (the leader)
and loads it with the WordNet/MiniLM base vectors (or ``--synthetic`` ones). Then:

1. **Search throughput.** With 1, then 2, then 3 nodes serving reads (each new node joins and
   catches up first), a closed loop of ``--concurrency`` client threads, spread evenly over
   the nodes (one keep-alive connection each, bodies encoded up front), sends ``POST /search``
   (k 10) for ``--duration`` seconds: queries/s and p50/p99 in total and per node, and the CPU
   each node (and the load generator) used, from psutil. The single-node figure is the
   baseline of the scaling ratio.
2. **Write latency.** With three nodes up, ``--writes`` single-chunk writes and ``--batches``
   batches of ``--batch-size`` chunks, one at a time, on the leader; first with
   ``--min-replicas 0``, then every node is restarted with ``--min-replicas 1`` and the same
   is measured again (the ratio is 1 to 0).
3. **Replication lag.** For ``--lag-seconds``, single-chunk writes at ``--lag-rate`` per second
   on the leader; for every acknowledged write (index N from ``X-StacksDB-Index``) a checker
   per follower asks that follower for the library with ``min_index=N`` (the follower answers
   as soon as it has applied N): the time from the leader's acknowledgement to that answer,
   beside the same read's round trip when nothing is awaited (the baseline), and how many
   acknowledged entries each follower was missing when each write was acknowledged. Each
   follower's own ``stacksdb_replication_lag_entries`` gauge is sampled every 100 ms too.

Results go to stdout as a table and to ``benchmarks/results/replication.json``.

    python benchmarks/replication.py                       # the full run (make bench-replication)
    python benchmarks/replication.py --limit 5000 --duration 5 --lag-seconds 5   # a quick one
    python benchmarks/replication.py --synthetic
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import queue
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.exact import (  # noqa: E402
    Dataset,
    batch_bodies,
    cpu_seconds,
    load,
    machine,
    markdown_table,
)
from tests.support.cluster import ClusterNodes  # noqa: E402
from tests.support.etcd import EtcdProcess  # noqa: E402
from tests.support.server import ServerProcess  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "wordnet-nouns-minilm.npz"
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "replication.json"
DIMENSION = 384
LIBRARY = "wordnet"
WRITES_LIBRARY = "writes"
JSON_HEADERS = {"content-type": "application/json"}
WRITERS = 4  # writes in flight at most during the lag test
MAX_REQUESTS_PER_WORKER = 1_000_000  # a bound on every loop besides its deadline


# ---------------------------------------------------------------------------- HTTP client


class Connection:
    """One keep-alive HTTP/1.1 connection (stdlib: far less client CPU than httpx, which
    matters when the load generator shares the cores with the nodes)."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        host, port = url.removeprefix("http://").split(":")
        self._conn = http.client.HTTPConnection(host, int(port), timeout=timeout)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        try:
            self._conn.request(method, path, body=body, headers=headers or {})
            response = self._conn.getresponse()
            data = response.read()
        except (http.client.HTTPException, OSError):
            self._conn.close()  # reconnects on the next request
            raise
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data

    def close(self) -> None:
        self._conn.close()


def checked(answer: tuple[int, dict[str, str], bytes], *expected: int) -> dict[str, str]:
    status, headers, body = answer
    if status not in expected:
        raise RuntimeError(f"HTTP {status}: {body[:300]!r}")
    return headers


def percentiles(samples_ms: Sequence[float]) -> dict[str, float]:
    if not samples_ms:
        return {"n": 0, "p50_ms": float("nan"), "p99_ms": float("nan"), "mean_ms": float("nan")}
    a = np.asarray(samples_ms)
    return {
        "n": len(samples_ms),
        "p50_ms": float(np.percentile(a, 50)),
        "p99_ms": float(np.percentile(a, 99)),
        "mean_ms": float(a.mean()),
    }


def synthetic(n: int, queries: int, seed: int = 7) -> Dataset:
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((n, DIMENSION), dtype=np.float32)
    query_matrix = rng.standard_normal((queries, DIMENSION), dtype=np.float32)
    ids = [f"s{i:07d}" for i in range(n)]
    return Dataset(base, query_matrix, ids, [f"synthetic vector {i}" for i in range(n)])


# ----------------------------------------------------------------------- search throughput


@dataclass
class Worker:
    node_id: str
    url: str
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0


def search_load(
    nodes: dict[str, ServerProcess],
    bodies: list[bytes],
    concurrency: int,
    duration: float,
    warmup: float,
) -> dict[str, Any]:
    """A closed loop: ``concurrency`` threads, assigned round-robin to the nodes, each sending
    one search after the other until the deadline (and at most MAX_REQUESTS_PER_WORKER)."""
    ids = sorted(nodes)
    workers = [Worker(ids[i % len(ids)], nodes[ids[i % len(ids)]].url) for i in range(concurrency)]
    path = f"/v1/libraries/{LIBRARY}/search"
    start = threading.Barrier(concurrency + 1)
    measure_from = [0.0]
    deadline = [0.0]

    def run(worker: Worker, offset: int) -> None:
        conn = Connection(worker.url)
        try:
            start.wait()
            for i in range(MAX_REQUESTS_PER_WORKER):
                began = time.perf_counter()
                if began >= deadline[0]:
                    break
                body = bodies[(offset + i) % len(bodies)]
                try:
                    status, _, _ = conn.request("POST", path, body, JSON_HEADERS)
                except (http.client.HTTPException, OSError):
                    status = 0
                ended = time.perf_counter()
                if began < measure_from[0]:
                    continue  # warm-up
                if status == 200:
                    worker.latencies_ms.append((ended - began) * 1000)
                else:
                    worker.errors += 1
        finally:
            conn.close()

    threads = [
        threading.Thread(target=run, args=(w, i * 997), daemon=True) for i, w in enumerate(workers)
    ]
    for thread in threads:
        thread.start()
    now = time.perf_counter()
    measure_from[0] = now + warmup
    deadline[0] = now + warmup + duration
    start.wait()
    time.sleep(warmup)
    pids: dict[str, int] = {}
    for k in ids:
        process = nodes[k].process
        assert process is not None
        pids[k] = process.pid
    me = psutil.Process()
    cpu_before = {k: cpu_seconds(pid) for k, pid in pids.items()}
    client_before = sum(me.cpu_times()[:2])
    machine_before = psutil.cpu_times()
    wall_started = time.perf_counter()
    for thread in threads:
        thread.join(duration + 60)
    wall = time.perf_counter() - wall_started
    cpu_after = {k: cpu_seconds(pid) for k, pid in pids.items()}
    client_cpu = sum(me.cpu_times()[:2]) - client_before
    machine_after = psutil.cpu_times()
    busy = _busy(machine_after) - _busy(machine_before)
    total_time = sum(machine_after) - sum(machine_before)

    per_node: dict[str, Any] = {}
    for node_id in ids:
        samples = [s for w in workers if w.node_id == node_id for s in w.latencies_ms]
        cpu = cpu_after[node_id] - cpu_before[node_id]
        per_node[node_id] = {
            "workers": sum(w.node_id == node_id for w in workers),
            "queries": len(samples),
            "errors": sum(w.errors for w in workers if w.node_id == node_id),
            "qps": len(samples) / duration,
            **percentiles(samples),
            "cpu_cores_used": cpu / wall,
            "cpu_ms_per_query": cpu / max(1, len(samples)) * 1000,
        }
    everything = [s for w in workers for s in w.latencies_ms]
    return {
        "nodes": len(ids),
        "concurrency": concurrency,
        "duration_s": duration,
        "queries": len(everything),
        "errors": sum(w.errors for w in workers),
        "qps": len(everything) / duration,
        **percentiles(everything),
        "per_node": per_node,
        "client_cpu_cores_used": client_cpu / wall,
        "machine_cpu_busy_fraction": busy / total_time if total_time > 0 else float("nan"),
        # Cores busy with anything but the nodes and this client: etcd, and whatever else
        # runs on the machine at the time (it competes with the nodes for the same cores).
        "other_cpu_cores_used": busy / total_time * (psutil.cpu_count() or 1)
        - client_cpu / wall
        - sum(v["cpu_cores_used"] for v in per_node.values()),
    }


def _busy(times: Any) -> float:
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


# ----------------------------------------------------------------------------- the cluster


def durable_write(cluster: ClusterNodes, path: str, body: bytes, attempts: int = 5) -> int:
    """POST ``body`` to the leader until it is acknowledged; returns how many retries it took.

    On a loaded machine a leader can miss a lease renewal and step down (fencing), and a
    node with no leader answers 503 before it reads a large body (a broken pipe here). A
    retry after an answer that never arrived may find the write there already: 409.
    """
    for attempt in range(attempts):
        conn = Connection(leader_node(cluster).url, timeout=120)
        try:
            status, _, text = conn.request("POST", path, body, JSON_HEADERS)
        except (http.client.HTTPException, OSError) as exc:
            status, text = 0, repr(exc).encode()
        finally:
            conn.close()
        if status == 201 or (status == 409 and attempt > 0):
            return attempt
        print(f"write to {path} not acknowledged ({status} {text[:200]!r}); retrying", flush=True)
        time.sleep(1.0)
    raise RuntimeError(f"{path}: not acknowledged after {attempts} attempts")


def wait_caught_up(node: ServerProcess, index: int, timeout: float = 300.0) -> float:
    """Seconds until ``node`` has applied ``index`` (reads with ``min_index`` wait for it)."""
    started = time.monotonic()
    conn = Connection(node.url, timeout=30)
    try:
        while time.monotonic() - started < timeout:
            try:
                status, _, _ = conn.request("GET", f"/v1/libraries/{LIBRARY}?min_index={index}")
            except (http.client.HTTPException, OSError):
                status = 0
            if status == 200:
                return time.monotonic() - started
            time.sleep(0.2)
    finally:
        conn.close()
    raise TimeoutError(f"{node.url} did not reach index {index} in {timeout}s")


def leader_node(cluster: ClusterNodes, timeout: float = 60.0) -> ServerProcess:
    return cluster.nodes[cluster.leader(timeout=timeout)]


def same_answers(nodes: dict[str, ServerProcess], bodies: list[bytes], count: int = 20) -> bool:
    """Every node answers the first ``count`` queries with the same chunk ids."""
    answers: list[list[list[str]]] = []
    for node in nodes.values():
        conn = Connection(node.url)
        try:
            mine = []
            for body in bodies[:count]:
                _, _, data = conn.request(
                    "POST", f"/v1/libraries/{LIBRARY}/search", body, JSON_HEADERS
                )
                mine.append([hit["chunk_id"] for hit in json.loads(data)["results"]])
            answers.append(mine)
        finally:
            conn.close()
    return all(a == answers[0] for a in answers)


def restart_with_min_replicas(cluster: ClusterNodes, min_replicas: int) -> None:
    for node in cluster.nodes.values():
        node.stop()
    for node in cluster.nodes.values():
        at = node.args.index("--min-replicas")
        node.args[at + 1] = str(min_replicas)
        node.start(timeout=600)


# ---------------------------------------------------------------------------- write latency


def chunk_body(data: Dataset, chunk_id: str, row: int) -> dict[str, Any]:
    row %= data.base.shape[0]
    return {
        "id": chunk_id,
        "document_id": f"w{row // 100:05d}",
        "text": data.base_text[row],
        "embedding": data.base[row].tolist(),
    }


def write_latency(
    leader: ServerProcess, data: Dataset, tag: str, writes: int, batches: int, batch_size: int
) -> dict[str, Any]:
    """Sequential writes on the leader; the first few warm up. A write that is not
    acknowledged (201) is counted, not timed."""
    conn = Connection(leader.url, timeout=60)
    single: list[float] = []
    batched: list[float] = []
    failed = {"single": 0, "batch": 0}

    def timed_post(path: str, body: bytes) -> float | None:
        began = time.perf_counter()
        try:
            status, _, _ = conn.request("POST", path, body, JSON_HEADERS)
        except (http.client.HTTPException, OSError):
            status = 0
        return (time.perf_counter() - began) * 1000 if status == 201 else None

    try:
        for i in range(writes + 10):
            body = json.dumps(chunk_body(data, f"{tag}-s{i}", i)).encode()
            ms = timed_post(f"/v1/libraries/{WRITES_LIBRARY}/chunks", body)
            if ms is None:
                failed["single"] += 1
            elif i >= 10:
                single.append(ms)
        for b in range(batches + 1):
            chunks = [
                chunk_body(data, f"{tag}-b{b}-{j}", b * batch_size + j) for j in range(batch_size)
            ]
            body = json.dumps({"chunks": chunks}).encode()
            ms = timed_post(f"/v1/libraries/{WRITES_LIBRARY}/chunks/batch", body)
            if ms is None:
                failed["batch"] += 1
            elif b >= 1:
                batched.append(ms)
    finally:
        conn.close()
    return {"single": percentiles(single), "batch": percentiles(batched), "failed": failed}


# ------------------------------------------------------------------------- replication lag


def replication_lag(
    leader: ServerProcess,
    followers: dict[str, ServerProcess],
    data: Dataset,
    tag: str,
    rate: float,
    seconds: float,
) -> dict[str, Any]:
    read_path = f"/v1/libraries/{WRITES_LIBRARY}"
    # The baseline: the same read when the follower already has the index.
    baseline: dict[str, list[float]] = {}
    for node_id, node in followers.items():
        conn = Connection(node.url)
        try:
            samples = []
            for i in range(110):
                began = time.perf_counter()
                checked(conn.request("GET", f"{read_path}?min_index=1"), 200)
                if i >= 10:
                    samples.append((time.perf_counter() - began) * 1000)
            baseline[node_id] = samples
        finally:
            conn.close()

    acks: list[tuple[int, float]] = []  # (index, acknowledged at), in order
    write_ms: list[float] = []
    failed = [0]
    visible: dict[str, dict[int, float]] = {k: {} for k in followers}
    inboxes: dict[str, queue.Queue[tuple[int, float] | None]] = {
        k: queue.Queue() for k in followers
    }
    gauge: dict[str, list[float]] = {k: [] for k in followers}
    stop = threading.Event()
    count = int(rate * seconds)
    bodies = [json.dumps(chunk_body(data, f"{tag}-lag{i}", i)).encode() for i in range(count)]

    slots = iter(range(count))
    slot_lock = threading.Lock()
    writers_left = [WRITERS]

    def writer() -> None:
        """Open loop: write i is due at ``i / rate``; up to WRITERS are in flight, so a slow
        write does not hold back the ones after it (the leader still serialises them)."""
        conn = Connection(leader.url)
        try:
            for _ in range(count):
                with slot_lock:
                    i = next(slots, None)
                if i is None or time.perf_counter() > started + seconds + 30:
                    break
                pause = started + i / rate - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
                began = time.perf_counter()
                try:
                    status, headers, _ = conn.request(
                        "POST", f"/v1/libraries/{WRITES_LIBRARY}/chunks", bodies[i], JSON_HEADERS
                    )
                except (http.client.HTTPException, OSError):
                    status, headers = 0, {}
                acked = time.perf_counter()
                with slot_lock:
                    if status != 201:
                        failed[0] += 1
                        continue
                    index = int(headers["x-stacksdb-index"])
                    write_ms.append((acked - began) * 1000)
                    acks.append((index, acked))
                    for inbox in inboxes.values():
                        inbox.put((index, acked))
        finally:
            conn.close()
            with slot_lock:
                writers_left[0] -= 1
                if writers_left[0] == 0:
                    for inbox in inboxes.values():
                        inbox.put(None)

    def checker(node_id: str) -> None:
        conn = Connection(followers[node_id].url)
        seen = visible[node_id]
        try:
            for _ in range(count + 1):
                item = inboxes[node_id].get(timeout=seconds + 60)
                if item is None:
                    return
                index, _ = item
                try:
                    status, _, _ = conn.request("GET", f"{read_path}?min_index={index}")
                except (http.client.HTTPException, OSError):
                    status = 0
                if status == 200:
                    seen[index] = time.perf_counter()
        finally:
            conn.close()

    def sampler() -> None:
        conns = {k: Connection(n.url) for k, n in followers.items()}
        try:
            for _ in range(int((seconds + 60) * 10)):
                if stop.wait(0.1):
                    return
                for node_id, conn in conns.items():
                    try:
                        _, _, text = conn.request("GET", "/metrics")
                    except (http.client.HTTPException, OSError):
                        continue
                    for line in text.decode().splitlines():
                        if line.startswith("stacksdb_replication_lag_entries "):
                            gauge[node_id].append(float(line.split()[1]))
        finally:
            for conn in conns.values():
                conn.close()

    threads = [threading.Thread(target=writer, daemon=True) for _ in range(WRITERS)]
    threads += [threading.Thread(target=checker, args=(k,), daemon=True) for k in followers]
    sample_thread = threading.Thread(target=sampler, daemon=True)
    started = time.perf_counter()
    sample_thread.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 120)
    elapsed = time.perf_counter() - started
    stop.set()
    sample_thread.join(10)

    per_follower: dict[str, Any] = {}
    for node_id in followers:
        seen = visible[node_id]
        lag_ms = [(seen[i] - t) * 1000 for i, t in acks if i in seen]
        # When write n is acknowledged: how many earlier entries (lower index) the leader
        # had acknowledged that the follower had not yet shown. Entry n itself is left out:
        # its visibility time (the checker's answer) always falls after its acknowledgement.
        ordered = sorted(acks)
        shown = np.array([seen.get(i, np.inf) for i, _ in ordered])
        acked_at = np.array([t for _, t in ordered])
        behind = [
            int(np.sum((shown[:n] > acked_at[n]) & (acked_at[:n] <= acked_at[n])))
            for n in range(len(ordered))
        ]
        base = percentiles(baseline[node_id])
        lag = percentiles(lag_ms)
        per_follower[node_id] = {
            "lag": lag,
            "read_rtt_baseline": base,
            "lag_minus_rtt_p50_ms": lag["p50_ms"] - base["p50_ms"],
            "lag_minus_rtt_p99_ms": lag["p99_ms"] - base["p99_ms"],
            "entries_behind_p50": float(np.percentile(behind, 50)) if behind else float("nan"),
            "entries_behind_p99": float(np.percentile(behind, 99)) if behind else float("nan"),
            "entries_behind_max": max(behind, default=0),
            "never_seen": sum(1 for i, _ in acks if i not in seen),
            "gauge_lag_entries_p50": float(np.percentile(gauge[node_id], 50))
            if gauge[node_id]
            else float("nan"),
            "gauge_lag_entries_max": max(gauge[node_id], default=float("nan")),
        }
    return {
        "target_rate_per_s": rate,
        "achieved_rate_per_s": len(acks) / elapsed,
        "writes": len(acks),
        "failed_writes": failed[0],
        "write": percentiles(write_ms),
        "followers": per_follower,
    }


# ----------------------------------------------------------------------------------- run


def run(args: argparse.Namespace) -> dict[str, Any]:
    load_before = os.getloadavg()
    if args.synthetic:
        data = synthetic(args.limit, args.queries)
        source = f"synthetic N(0,1) x {DIMENSION}"
    else:
        data = load(args.data, args.limit, args.queries)
        source = str(args.data)
    n = data.base.shape[0]
    print(f"{n} base vectors ({source}), {data.queries.shape[0]} queries", flush=True)
    search_body = [
        json.dumps({"vector": q.tolist(), "k": args.k, "include": []}).encode()
        for q in data.queries
    ]
    result: dict[str, Any] = {"benchmark": "replication"}
    with tempfile.TemporaryDirectory(prefix="stacksdb-bench-repl-") as tmp:
        root = Path(tmp)
        (root / "etcd").mkdir()
        etcd = EtcdProcess(root / "etcd" / "data").start()
        cluster = ClusterNodes(
            etcd, root / "nodes", lease_ttl=args.lease_ttl, extra_args=["--min-replicas", "0"]
        )
        try:
            result.update(measure(cluster, data, search_body, args))
        except Exception:
            for node_id, node in cluster.nodes.items():
                print(f"--- log of {node_id} ---\n{node.log()}", file=sys.stderr)
            raise
        finally:
            cluster.stop_all()
            etcd.stop()
    result.update(
        {
            "data": {"source": source, "vectors": n, "queries": int(data.queries.shape[0])},
            "params": {
                "k": args.k,
                "index": "flat",
                "metric": "cosine",
                "concurrency": args.concurrency,
                "duration_s": args.duration,
                "writes": args.writes,
                "batches": args.batches,
                "batch_size": args.batch_size,
                "lag_rate_per_s": args.lag_rate,
                "lag_seconds": args.lag_seconds,
                "lease_ttl_s": args.lease_ttl,
            },
            "machine": {
                **machine(),
                "loadavg_1m_before": load_before[0],
                "loadavg_1m_after": os.getloadavg()[0],
            },
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
    )
    return result


def measure(
    cluster: ClusterNodes, data: Dataset, search_body: list[bytes], args: argparse.Namespace
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    cluster.add("n1")
    library = {"id": LIBRARY, "name": "wordnet", "dimension": DIMENSION, "metric": "cosine"}
    retries = durable_write(cluster, "/v1/libraries", json.dumps(library).encode())
    started = time.perf_counter()
    for body in batch_bodies(data, 1000):
        retries += durable_write(cluster, f"/v1/libraries/{LIBRARY}/chunks/batch", body)
    seconds = time.perf_counter() - started
    index = int(cluster.status(leader_node(cluster))["applied_index"])
    out["load"] = {"seconds": seconds, "last_index": index, "retries": retries}
    print(f"loaded in {out['load']['seconds']:.1f} s (log index {index})", flush=True)

    scaling: list[dict[str, Any]] = []
    joins: dict[str, float] = {}
    for count in (1, 2, 3):
        if count > 1:
            node_id = f"n{count}"
            began = time.monotonic()
            node = cluster.add(node_id)
            wait_caught_up(node, index)
            joins[node_id] = time.monotonic() - began
            print(f"{node_id} joined and caught up in {joins[node_id]:.1f} s", flush=True)
        serving = dict(cluster.nodes)
        stats = search_load(serving, search_body, args.concurrency, args.duration, args.warmup)
        stats["identical_answers_on_every_node"] = same_answers(serving, search_body)
        scaling.append(stats)
        print(
            f"{count} node(s): {stats['qps']:.0f} queries/s, p50 {stats['p50_ms']:.2f} ms, "
            f"p99 {stats['p99_ms']:.2f} ms",
            flush=True,
        )
    base_qps = scaling[0]["qps"]
    for stats in scaling:
        stats["qps_ratio_to_1_node"] = stats["qps"] / base_qps
    out["search"] = scaling
    out["join_seconds"] = joins
    out["search_projection"] = projection(scaling)

    writes: dict[str, Any] = {}
    lag: dict[str, Any] = {}
    for min_replicas in (0, 1):
        if min_replicas == 1:
            restart_with_min_replicas(cluster, 1)
        leader_id = cluster.leader(timeout=120)
        leader = cluster.nodes[leader_id]
        followers = {k: v for k, v in cluster.nodes.items() if k != leader_id}
        for follower in followers.values():
            wait_caught_up(follower, index)
        if min_replicas == 0:
            library = {
                "id": WRITES_LIBRARY,
                "name": "w",
                "dimension": DIMENSION,
                "metric": "cosine",
            }
            durable_write(cluster, "/v1/libraries", json.dumps(library).encode())
        tag = f"mr{min_replicas}"
        writes[tag] = write_latency(leader, data, tag, args.writes, args.batches, args.batch_size)
        w = writes[tag]
        print(
            f"--min-replicas {min_replicas}: single p50 {w['single']['p50_ms']:.2f} ms, "
            f"batch of {args.batch_size} p50 {w['batch']['p50_ms']:.1f} ms",
            flush=True,
        )
        lag[tag] = replication_lag(leader, followers, data, tag, args.lag_rate, args.lag_seconds)
        lag[tag]["leader"] = leader_id
        for node_id, f in lag[tag]["followers"].items():
            print(
                f"  lag on {node_id}: p50 {f['lag']['p50_ms']:.2f} ms, "
                f"p99 {f['lag']['p99_ms']:.2f} ms, entries p99 {f['entries_behind_p99']:.0f}",
                flush=True,
            )
    for kind in ("single", "batch"):
        for p in ("p50_ms", "p99_ms"):
            writes[f"ratio_{kind}_{p.removesuffix('_ms')}"] = (
                writes["mr1"][kind][p] / writes["mr0"][kind][p]
            )
    out["writes"] = writes
    out["lag"] = lag
    return out


def projection(scaling: list[dict[str, Any]]) -> dict[str, Any]:
    """What one node per machine would give, from the CPU each node spent per query here.

    A node is one uvicorn process; the HTTP and JSON work holds the GIL, so one core per
    node is the safe assumption (``--blas-threads 1``). On its own core a node would serve
    about 1000 / (CPU ms per query) queries/s; reads need no coordination, so N such nodes
    serve about N times that, as long as the clients are elsewhere.
    """
    last = scaling[-1]
    per_node_ms = [v["cpu_ms_per_query"] for v in last["per_node"].values()]
    cpu_ms = float(np.mean(per_node_ms))
    one_core = 1000.0 / cpu_ms
    return {
        "cpu_ms_per_query_per_node": cpu_ms,
        "qps_per_node_on_one_dedicated_core": one_core,
        "qps_total_one_node_per_machine": {str(s["nodes"]): s["nodes"] * one_core for s in scaling},
        "measured_total_qps_on_this_machine": {str(s["nodes"]): s["qps"] for s in scaling},
    }


# --------------------------------------------------------------------------------- table


def table(r: dict[str, Any]) -> str:
    rows: list[tuple[str, ...]] = [
        ("measure", "total", "per node", "ratio / baseline", "CPU used (cores)")
    ]
    for s in r["search"]:
        per = "; ".join(
            f"{k} {v['qps']:.0f} q/s p50 {v['p50_ms']:.1f} p99 {v['p99_ms']:.1f} ms"
            for k, v in s["per_node"].items()
        )
        cpu = ", ".join(f"{k} {v['cpu_cores_used']:.2f}" for k, v in s["per_node"].items())
        rows.append(
            (
                f"search, {s['nodes']} node(s) serving",
                f"{s['qps']:.0f} q/s, p50 {s['p50_ms']:.1f} / p99 {s['p99_ms']:.1f} ms",
                per,
                f"{s['qps_ratio_to_1_node']:.2f}x 1 node",
                f"{cpu}; client {s['client_cpu_cores_used']:.2f}; "
                f"rest {s['other_cpu_cores_used']:.2f}",
            )
        )
    p = r["search_projection"]
    rows.append(
        (
            "projection, 1 node/machine",
            " / ".join(f"{k}: {v:.0f} q/s" for k, v in p["qps_total_one_node_per_machine"].items()),
            f"{p['qps_per_node_on_one_dedicated_core']:.0f} q/s per dedicated core",
            f"from {p['cpu_ms_per_query_per_node']:.2f} CPU ms/query/node",
            "",
        )
    )
    w = r["writes"]
    batch_size = r["params"]["batch_size"]
    for kind, label in (("single", "1 chunk"), ("batch", f"{batch_size} chunks")):
        rows.append(
            (
                f"write {label}, p50 / p99",
                f"mr0 {w['mr0'][kind]['p50_ms']:.2f} / {w['mr0'][kind]['p99_ms']:.2f} ms",
                f"mr1 {w['mr1'][kind]['p50_ms']:.2f} / {w['mr1'][kind]['p99_ms']:.2f} ms",
                f"mr1/mr0 {w[f'ratio_{kind}_p50']:.2f}x / {w[f'ratio_{kind}_p99']:.2f}x",
                "",
            )
        )
    for tag, lag in r["lag"].items():
        for node_id, f in lag["followers"].items():
            rows.append(
                (
                    f"lag {tag} @ {lag['achieved_rate_per_s']:.0f} w/s, {node_id}",
                    f"p50 {f['lag']['p50_ms']:.2f} / p99 {f['lag']['p99_ms']:.2f} ms",
                    f"entries behind p50 {f['entries_behind_p50']:.0f} / p99 "
                    f"{f['entries_behind_p99']:.0f} / max {f['entries_behind_max']}",
                    f"read RTT {f['read_rtt_baseline']['p50_ms']:.2f} / "
                    f"{f['read_rtt_baseline']['p99_ms']:.2f} ms",
                    f"gauge max {f['gauge_lag_entries_max']:.0f}",
                )
            )
    lines = [markdown_table(rows)]
    info, prm = r["machine"], r["params"]
    lines.append(
        f"\n{r['data']['vectors']:,} vectors x {DIMENSION} ({r['data']['source']}), flat, "
        f"k={prm['k']}; search: {prm['concurrency']} client threads for "
        f"{prm['duration_s']:.0f} s per step; writes: {prm['writes']} single, "
        f"{prm['batches']} batches; lag: {prm['lag_rate_per_s']:.0f} writes/s for "
        f"{prm['lag_seconds']:.0f} s; {info['cpu_count']} cores ({info['cpu_model']}) shared by "
        f"etcd, every node and the client; load average {info['loadavg_1m_before']:.1f} "
        f"before, {info['loadavg_1m_after']:.1f} after"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the .npz file")
    parser.add_argument("--synthetic", action="store_true", help="random vectors, no file")
    parser.add_argument("--limit", type=int, default=20_000, help="vectors to load")
    parser.add_argument("--queries", type=int, default=1000, help="distinct queries to cycle")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=6, help="client threads in total")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per search step")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds first")
    parser.add_argument("--writes", type=int, default=300, help="single-chunk writes timed")
    parser.add_argument("--batches", type=int, default=20, help="batches timed")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--lag-rate", type=float, default=50.0, help="writes/s in the lag test")
    parser.add_argument("--lag-seconds", type=float, default=10.0)
    parser.add_argument("--lease-ttl", type=int, default=5)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the JSON")
    args = parser.parse_args(argv)
    if args.concurrency < 3:
        parser.error("--concurrency must be at least 3 (one client per node)")
    result = run(args)
    print(table(result))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
