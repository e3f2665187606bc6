"""Leader-follower replication with a real etcd and three real nodes on 127.0.0.1.

One cluster for the module (lease TTL 2 s, ``--min-replicas 1``, a log kept only 5 entries
behind the slowest node); the tests run in file order and each finds the current leader.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.support.cluster import ClusterNodes, eventually
from tests.support.etcd import EtcdProcess
from tests.support.server import ServerProcess

pytestmark = pytest.mark.e2e

DIM = 4
TTL = 2
LIBRARY = "replicated"


def vec(seed: int) -> list[float]:
    return [float(x) for x in np.random.default_rng(seed).standard_normal(DIM)]


def chunk(chunk_id: str, seed: int) -> dict[str, Any]:
    return {"id": chunk_id, "document_id": "doc", "text": chunk_id, "embedding": vec(seed)}


def metric(node: ServerProcess, name: str) -> float:
    for line in httpx.get(f"{node.url}/metrics", timeout=5).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def chunk_ids(node: ServerProcess, min_index: int = 0) -> set[str]:
    ids: set[str] = set()
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 1000, "min_index": min_index}
        if cursor:
            params["cursor"] = cursor
        response = httpx.get(f"{node.url}/v1/libraries/{LIBRARY}/chunks", params=params, timeout=10)
        assert response.status_code == 200, response.text
        body = response.json()
        ids.update(item["id"] for item in body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return ids


@pytest.fixture(scope="module")
def cluster(etcd: EtcdProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterNodes]:
    root: Path = tmp_path_factory.mktemp("cluster")
    nodes = ClusterNodes(
        etcd, root, lease_ttl=TTL, extra_args=["--min-replicas", "1", "--log-retention", "5"]
    )
    try:
        for node_id in ("n1", "n2", "n3"):
            nodes.add(node_id)
        leader = nodes.nodes[nodes.leader()]
        created = httpx.post(
            f"{leader.url}/v1/libraries", json={"id": LIBRARY, "name": "r", "dimension": DIM}
        )
        assert created.status_code == 201, created.text
        yield nodes
    finally:
        nodes.stop_all()


def test_writes_on_the_leader_appear_on_both_followers(cluster: ClusterNodes) -> None:
    leader_id = cluster.leader()
    leader = cluster.nodes[leader_id]
    batch = [chunk(f"a{i}", i) for i in range(20)]
    response = httpx.post(
        f"{leader.url}/v1/libraries/{LIBRARY}/chunks/batch", json={"chunks": batch}, timeout=10
    )
    assert response.status_code == 201, response.text
    index = int(response.headers["x-stacksdb-index"])
    followers = cluster.followers(leader_id)
    assert len(followers) == 2
    for follower in followers:
        assert {f"a{i}" for i in range(20)} <= chunk_ids(follower, min_index=index)
        hits = httpx.post(
            f"{follower.url}/v1/libraries/{LIBRARY}/search",
            json={"vector": vec(7), "k": 1},
            headers={"X-StacksDB-Min-Index": str(index)},
        ).json()["results"]
        assert hits[0]["chunk_id"] == "a7"


def test_a_write_sent_to_a_follower_is_answered_by_the_leader(cluster: ClusterNodes) -> None:
    leader_id = cluster.leader()
    follower = cluster.followers(leader_id)[0]
    response = httpx.put(
        f"{follower.url}/v1/libraries/{LIBRARY}/chunks/via-follower",
        json={"document_id": "doc", "text": "t", "embedding": vec(99)},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    index = int(response.headers["x-stacksdb-index"])
    assert "via-follower" in chunk_ids(cluster.nodes[leader_id], min_index=index)
    assert "via-follower" in chunk_ids(follower, min_index=index)


def test_a_read_past_what_the_node_applied_is_a_503_after_a_bounded_wait(
    cluster: ClusterNodes,
) -> None:
    follower = cluster.followers(cluster.leader())[0]
    started = time.monotonic()
    response = httpx.get(
        f"{follower.url}/v1/libraries/{LIBRARY}", params={"min_index": 10**9}, timeout=30
    )
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    assert time.monotonic() - started < 10


def test_cluster_endpoint_readyz_and_metrics_describe_the_roles(cluster: ClusterNodes) -> None:
    leader_id = cluster.leader()
    for node_id, node in cluster.nodes.items():
        status = cluster.status(node)
        assert status["node_id"] == node_id
        assert status["leader"]["node_id"] == leader_id
        assert status["role"] == ("leader" if node_id == leader_id else "follower")
        assert status["term"] > 0
        assert {n["node_id"] for n in status["nodes"]} == {"n1", "n2", "n3"}
        ready = httpx.get(f"{node.url}/readyz").json()
        assert ready == {"status": "ready", "role": status["role"]}
        assert metric(node, "stacksdb_cluster_is_leader") == (1.0 if node_id == leader_id else 0)
        assert metric(node, "stacksdb_replication_lag_entries") >= 0


def test_a_killed_follower_catches_up_from_the_log(cluster: ClusterNodes) -> None:
    leader_id = cluster.leader()
    leader = cluster.nodes[leader_id]
    follower = cluster.followers(leader_id)[0]
    follower.kill()
    response = httpx.post(
        f"{leader.url}/v1/libraries/{LIBRARY}/chunks", json=chunk("while-down", 1), timeout=10
    )
    assert response.status_code == 201, response.text
    index = int(response.headers["x-stacksdb-index"])
    follower.start()
    assert "while-down" in chunk_ids(follower, min_index=index)
    assert metric(follower, "stacksdb_replication_snapshots_restored") == 0


def test_a_follower_wiped_clean_catches_up_from_a_snapshot(cluster: ClusterNodes) -> None:
    leader_id = cluster.leader()
    leader = cluster.nodes[leader_id]
    follower = cluster.followers(leader_id)[0]
    follower.kill()
    shutil.rmtree(follower.data_dir)
    index = 0
    for i in range(10):
        response = httpx.post(
            f"{leader.url}/v1/libraries/{LIBRARY}/chunks", json=chunk(f"w{i}", i), timeout=10
        )
        assert response.status_code == 201, response.text
        index = int(response.headers["x-stacksdb-index"])
    # The wiped node's etcd key expires with its lease; then the leader trims its log.
    time.sleep(TTL + 2.5)
    follower.start()
    assert chunk_ids(leader, min_index=index) == chunk_ids(follower, min_index=index)
    assert metric(follower, "stacksdb_replication_snapshots_restored") >= 1


def test_kill_9_of_the_leader_under_load_loses_no_acknowledged_write(
    cluster: ClusterNodes,
) -> None:
    old_id = cluster.leader()
    old = cluster.nodes[old_id]
    survivors = cluster.followers(old_id)
    acknowledged: list[str] = []
    stop = threading.Event()

    def write_load() -> None:
        n = 0
        with httpx.Client(timeout=10) as http:
            while not stop.is_set():
                n += 1
                target = survivors[n % 2]
                try:
                    answer = http.post(
                        f"{target.url}/v1/libraries/{LIBRARY}/chunks", json=chunk(f"k{n}", n)
                    )
                except httpx.HTTPError:
                    continue
                if answer.status_code == 201:
                    acknowledged.append(f"k{n}")

    writer = threading.Thread(target=write_load)
    writer.start()
    try:
        assert eventually(lambda: len(acknowledged) >= 20, timeout=20)
        killed_at = time.monotonic()
        old.kill()
        new_id = cluster.leader(timeout=4 * TTL, among=survivors, other_than=old_id)
        elected_after = time.monotonic() - killed_at
        count_at_election = len(acknowledged)
        assert eventually(lambda: len(acknowledged) > count_at_election + 5, timeout=20)
    finally:
        stop.set()
        writer.join()
    assert new_id != old_id
    assert elected_after < 2 * TTL, f"new leader after {elected_after:.2f}s"
    new = cluster.nodes[new_id]
    held = chunk_ids(new)
    assert set(acknowledged) <= held, sorted(set(acknowledged) - held)[:5]

    old.start()
    assert cluster.leader() == new_id
    assert cluster.status(old)["role"] == "follower"
    index = int(metric(new, "stacksdb_replication_applied_index"))
    assert chunk_ids(old, min_index=index) == chunk_ids(new, min_index=index)


def test_a_leader_frozen_past_its_lease_never_acknowledges_after_it_wakes(
    cluster: ClusterNodes,
) -> None:
    old_id = cluster.leader()
    old = cluster.nodes[old_id]
    survivors = cluster.followers(old_id)
    assert old.process is not None
    answers: list[httpx.Response] = []

    def write_to_old_leader(name: str) -> None:
        with contextlib.suppress(httpx.HTTPError):
            answers.append(
                httpx.post(
                    f"{old.url}/v1/libraries/{LIBRARY}/chunks", json=chunk(name, 5), timeout=30
                )
            )

    old.process.send_signal(signal.SIGSTOP)
    try:
        in_flight = threading.Thread(target=write_to_old_leader, args=("frozen-1",))
        in_flight.start()
        new_id = cluster.leader(timeout=4 * TTL, among=survivors, other_than=old_id)
        new = cluster.nodes[new_id]
        during = httpx.post(
            f"{new.url}/v1/libraries/{LIBRARY}/chunks", json=chunk("during-freeze", 6), timeout=10
        )
        assert during.status_code == 201, during.text
    finally:
        old.process.send_signal(signal.SIGCONT)
    in_flight.join(timeout=30)
    write_to_old_leader("frozen-2")
    assert new_id != old_id
    held = chunk_ids(new)
    for answer in answers:
        if answer.status_code < 300:
            # Acknowledged only by forwarding to the new leader: it must hold the write.
            assert answer.request.content and answer.json()["id"] in held
        else:
            assert answer.status_code == 503, answer.text
    assert eventually(lambda: cluster.status(old)["role"] == "follower", timeout=4 * TTL)
    assert cluster.leader() == new_id
