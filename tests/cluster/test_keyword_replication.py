"""A follower's keyword index follows its leader's, with a real etcd and two real nodes: the
writes and deletes it replays from the log, a PATCH of ``text_index`` (rebuilt on the
follower too), and a restart after kill -9 with writes made while it was down. Expected
scores are Lucene's BM25 evaluated in the test (``brute_force_scores``). One cluster for the
module; the tests run in file order, the second on the library the first wrote."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from domain.models import Bm25Params
from tests.e2e.test_keyword_index import assert_ranks_by_bm25, eventually, texts_for
from tests.support.cluster import ClusterNodes
from tests.support.etcd import EtcdProcess

pytestmark = pytest.mark.e2e

DIM = 4
LIBRARY = "keywords"


@pytest.fixture(scope="module")
def cluster(etcd: EtcdProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterNodes]:
    root: Path = tmp_path_factory.mktemp("cluster")
    # No replica needs to acknowledge a write, so the leader keeps writing with its only
    # follower down; reads on the follower wait for the index they name.
    nodes = ClusterNodes(etcd, root, lease_ttl=2)
    try:
        for node_id in ("k1", "k2"):
            nodes.add(node_id)
        yield nodes
    finally:
        nodes.stop_all()


def leader_client(cluster: ClusterNodes) -> httpx.Client:
    return httpx.Client(base_url=cluster.nodes[cluster.leader()].url, timeout=30)


def follower_client(cluster: ClusterNodes, index: int) -> httpx.Client:
    """The follower, reading at least up to log ``index`` (it waits until it applied it)."""
    (follower,) = cluster.followers(cluster.leader())
    headers = {"X-StacksDB-Min-Index": str(index)}
    return httpx.Client(base_url=follower.url, timeout=30, headers=headers)


def write(leader: httpx.Client, texts: dict[str, str]) -> int:
    """Upsert ``texts`` as chunks on the leader; the log index of the write."""
    chunks = [
        {"id": i, "document_id": "doc", "text": t, "embedding": [1.0] * DIM}
        for i, t in texts.items()
    ]
    answer = leader.post(
        f"/v1/libraries/{LIBRARY}/chunks/batch", json={"chunks": chunks, "mode": "upsert"}
    )
    assert answer.status_code == 201, answer.text
    return int(answer.headers["x-stacksdb-index"])


def delete(leader: httpx.Client, chunk_ids: list[str]) -> int:
    index = 0
    for chunk_id in chunk_ids:
        answer = leader.delete(f"/v1/libraries/{LIBRARY}/chunks/{chunk_id}")
        assert answer.status_code == 204, answer.text
        index = int(answer.headers["x-stacksdb-index"])
    return index


def test_a_follower_replays_keyword_index_writes_deletes_and_text_index_changes(
    cluster: ClusterNodes,
) -> None:
    with leader_client(cluster) as leader:
        created = leader.post("/v1/libraries", json={"id": LIBRARY, "name": "k", "dimension": DIM})
        assert created.status_code == 201, created.text
        texts = texts_for(range(150), seed=5)
        write(leader, texts)
        rewritten = texts_for(range(0, 150, 6), seed=6)
        write(leader, rewritten)
        texts |= rewritten
        gone = [f"c{i}" for i in range(1, 150, 9)]
        index = delete(leader, gone)
        for chunk_id in gone:
            texts.pop(chunk_id)
        with follower_client(cluster, index) as follower:
            assert_ranks_by_bm25(follower, LIBRARY, texts, Bm25Params())

        plain = {"k1": 0.7, "b": 0.9, "language": "none"}
        patched = leader.patch(
            f"/v1/libraries/{LIBRARY}", json={"text_index": {"type": "bm25", "params": plain}}
        )
        assert patched.status_code == 200, patched.text
        index = int(patched.headers["x-stacksdb-index"])
        with follower_client(cluster, index) as follower:
            shown = follower.get(f"/v1/libraries/{LIBRARY}").json()["text_index"]
            assert shown == {"type": "bm25", "params": plain}
            eventually(
                lambda: assert_ranks_by_bm25(
                    follower, LIBRARY, texts, Bm25Params.model_validate(plain)
                )
            )


def test_a_follower_killed_and_restarted_rebuilds_its_keyword_index_with_what_it_missed(
    cluster: ClusterNodes,
) -> None:
    leader_id = cluster.leader()
    (follower_node,) = cluster.followers(leader_id)
    with leader_client(cluster) as leader:
        texts = {c["id"]: c["text"] for c in _all_chunks(leader)}
        follower_node.kill()
        missed = texts_for(range(150, 200), seed=7)
        write(leader, missed)
        texts |= missed
        index = delete(leader, ["c0", "c150"])
        del texts["c0"], texts["c150"]
        params = Bm25Params.model_validate(
            leader.get(f"/v1/libraries/{LIBRARY}").json()["text_index"]["params"]
        )
        follower_node.start()
        with follower_client(cluster, index) as follower:
            assert_ranks_by_bm25(follower, LIBRARY, texts, params)


def _all_chunks(client: httpx.Client) -> list[dict[str, str]]:
    chunks: list[dict[str, str]] = []
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": 1000}
        if cursor is not None:
            params["cursor"] = cursor
        body = client.get(f"/v1/libraries/{LIBRARY}/chunks", params=params).json()
        chunks.extend(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return chunks
