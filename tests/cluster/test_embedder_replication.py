"""Embedding happens once, on the leader, before the commit: a text-only write sent to a
follower is forwarded, embedded by the leader, and the follower serves the same vectors
from the log without asking the embedder again (a real etcd, two real nodes, a local
OpenAI-compatible embedder that counts what it embeds)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.support.cluster import ClusterNodes
from tests.support.etcd import EtcdProcess
from tests.support.fake_embedders import FakeEmbeddingServer, text_vector

pytestmark = pytest.mark.e2e

DIM = 8
LIBRARY = "texts"


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeEmbeddingServer]:
    fake = FakeEmbeddingServer(dimension=DIM).start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def cluster(etcd: EtcdProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterNodes]:
    root: Path = tmp_path_factory.mktemp("embed-cluster")
    nodes = ClusterNodes(etcd, root, extra_args=["--min-replicas", "1"])
    try:
        for node_id in ("e1", "e2"):
            nodes.add(node_id)
        yield nodes
    finally:
        nodes.stop_all()


def test_a_follower_serves_the_vectors_the_leader_embedded(
    cluster: ClusterNodes, provider: FakeEmbeddingServer
) -> None:
    leader = cluster.nodes[cluster.leader()]
    (follower,) = cluster.followers(cluster.leader())
    spec = {"provider": "openai", "url": f"{provider.url}/v1", "model": "m"}
    created = httpx.post(
        f"{follower.url}/v1/libraries", json={"id": LIBRARY, "name": "t", "embedder": spec}
    )
    assert created.status_code == 201, created.text
    assert created.json()["dimension"] == DIM
    probes = provider.texts_embedded()

    chunks: list[dict[str, Any]] = [
        {"id": f"c{i}", "document_id": "d", "text": f"replicated text {i}"} for i in range(6)
    ]
    for node, part in ((follower, chunks[:3]), (leader, chunks[3:])):
        written = httpx.post(
            f"{node.url}/v1/libraries/{LIBRARY}/chunks/batch", json={"chunks": part}, timeout=30
        )
        assert written.status_code == 201, written.text
        index = int(written.headers["X-StacksDB-Index"])

    assert provider.texts_embedded() - probes == len(chunks)
    for chunk in chunks:
        truth = text_vector(chunk["text"], DIM).astype(np.float32)
        for node in (leader, follower):
            answer = httpx.get(
                f"{node.url}/v1/libraries/{LIBRARY}/chunks/{chunk['id']}",
                params={"min_index": index},
                timeout=10,
            )
            assert answer.status_code == 200, answer.text
            assert np.array_equal(np.array(answer.json()["embedding"], dtype=np.float32), truth)
    # Serving them cost the provider nothing more: the follower never embeds a write.
    assert provider.texts_embedded() - probes == len(chunks)
