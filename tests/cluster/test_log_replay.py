"""The replication log without servers: every committed write is logged, and replaying the
log on an empty store (once or twice) gives the same state, through the follower's path."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
from dependency_injector import providers
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from application.chunk_service import ChunkService
from application.document_service import DocumentService
from application.dto import ChunkInput, ChunkPatch, LibraryPatch, NewLibrary, SearchQuery
from application.library_service import LibraryService
from application.live import LiveLibraries
from application.replication import (
    LogApplier,
    LogFeed,
    NodeState,
    Peer,
)
from application.search_service import SearchService
from bootstrap.container import Container
from bootstrap.settings import Settings
from domain.errors import NotLeader
from domain.replication import LoggedUnitOfWorkFactory, LogPosition

DIM = 4
PATCHED = {"field": "patched", "op": "exists", "value": True}


def vec(seed: int) -> list[float]:
    return [float(x) for x in np.random.default_rng(seed).standard_normal(DIM)]


@dataclass
class Node:
    state: NodeState
    store_uow: LoggedUnitOfWorkFactory
    live: LiveLibraries
    feed: LogFeed
    libraries: LibraryService
    documents: DocumentService
    chunks: ChunkService
    search: SearchService


def make_node(node_id: str) -> Node:
    """A node as the container wires it over the in-memory store and its log."""
    container = Container(settings=Settings(storage="memory", node_id=node_id))
    container.node_state.override(providers.Object(NodeState(node_id, f"http://{node_id}")))
    return Node(
        container.node_state(),
        container.store_uow_factory(),
        container.live(),
        container.log_feed(),
        container.library_service(),
        container.document_service(),
        container.chunk_service(),
        container.search_service(),
    )


def leader_and_follower() -> tuple[Node, Node, LogApplier]:
    leader, follower = make_node("l"), make_node("f")
    leader.state.become_leader(term=7, lease_deadline=math.inf)
    follower.state.follow(Peer("l", "http://l"), term=7)
    return leader, follower, LogApplier(follower.store_uow, follower.live, follower.feed)


def replicate(leader: Node, applier: LogApplier) -> int:
    with leader.store_uow(read_only=True) as uow:
        entries = uow.log.entries_after(0, 10_000)
    return sum(applier.apply(entry) for entry in entries)


def state_of(node: Node) -> list[tuple[object, ...]]:
    """Everything a client can read, as plain values."""
    seen: list[tuple[object, ...]] = []
    for info in node.libraries.list(100, None).items:
        lib = info.library
        seen.append(("library", lib.id, lib.name, lib.metadata, lib.revision, lib.created_at))
        seen.append(("counts", info.document_count, info.chunk_count))
        for document in node.documents.list(lib.id, 1000, None).items:
            d = document.document
            seen.append(("document", d.id, d.metadata, d.updated_at, document.chunk_count))
        for c in node.chunks.list(lib.id, 1000, None).items:
            seen.append(("chunk", c.id, c.document_id, c.text, c.metadata, c.updated_at))
            seen.append(("embedding", c.id, c.embedding.tobytes()))
        hits = node.search.search(lib.id, SearchQuery(vector=vec(0), k=5)).hits
        seen.append(("search", [(h.chunk_id, round(h.score, 5)) for h in hits]))
        # Filters read the in-memory metadata columns, which replay must keep in step too.
        tagged = {"or": [{"field": "document.tag", "op": "eq", "value": "ml"}, PATCHED]}
        hits = node.search.search(lib.id, SearchQuery(vector=vec(0), k=50, filter=tagged)).hits
        seen.append(("filtered", sorted(h.chunk_id for h in hits)))
    return seen


def test_every_kind_of_write_replays_to_the_same_state_once_or_twice() -> None:
    leader, follower, applier = leader_and_follower()
    lib = leader.libraries.create(NewLibrary(name="papers", dimension=DIM, id="lib")).library
    leader.documents.create(
        lib.id,
        metadata={"year": 2024},
        chunks=[ChunkInput("", f"t{i}", vec(i), {"i": i}, f"c{i}") for i in range(6)],
        document_id="d1",
    )
    leader.chunks.write_batch(lib.id, [ChunkInput("d2", "x", vec(10), {}, "c10")], "upsert")
    leader.chunks.patch(lib.id, "c1", ChunkPatch(text="patched", embedding=vec(11)))
    leader.chunks.delete(lib.id, "c2")
    leader.documents.update(lib.id, "d2", {"tag": "ml"})
    leader.documents.delete(lib.id, "d1")
    leader.libraries.update(lib.id, LibraryPatch(name="renamed", metadata={"k": "v"}))
    gone = leader.libraries.create(NewLibrary(name="gone", dimension=DIM)).library
    leader.libraries.delete(gone.id)

    applied = replicate(leader, applier)
    assert applied == leader.feed.position.index == 10
    assert state_of(follower) == state_of(leader)
    assert replicate(leader, applier) == 0  # a second pass applies nothing
    assert state_of(follower) == state_of(leader)
    assert applier.position() == LogPosition(10, 7)


def test_a_write_on_a_node_that_is_not_the_leader_commits_nothing() -> None:
    _, follower, _ = leader_and_follower()
    with pytest.raises(NotLeader):
        follower.libraries.create(NewLibrary(name="nope", dimension=DIM))
    assert follower.libraries.list(10, None).items == []
    with follower.store_uow(read_only=True) as uow:
        assert uow.log.last() == LogPosition()


def test_a_leader_whose_lease_ran_out_refuses_to_commit() -> None:
    leader, _, _ = leader_and_follower()
    leader.state.renew(lease_deadline=0.0)
    with pytest.raises(NotLeader):
        leader.libraries.create(NewLibrary(name="late", dimension=DIM))
    assert leader.libraries.list(10, None).items == []


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.sampled_from(["upsert", "delete", "patch"]), st.integers(0, 7)),
        min_size=1,
        max_size=30,
    )
)
def test_a_replayed_log_gives_the_same_state(steps: list[tuple[str, int]]) -> None:
    leader, follower, applier = leader_and_follower()
    lib = leader.libraries.create(NewLibrary(name="p", dimension=DIM, id="lib")).library
    present: set[int] = set()
    for n, (action, key) in enumerate(steps):
        chunk_id = f"c{key}"
        if action == "upsert":
            item = ChunkInput(f"d{key % 3}", f"v{n}", vec(n), {"n": n}, chunk_id)
            leader.chunks.write_batch(lib.id, [item], "upsert")
            present.add(key)
        elif key in present and action == "delete":
            leader.chunks.delete(lib.id, chunk_id)
            present.discard(key)
        elif key in present:
            leader.chunks.patch(lib.id, chunk_id, ChunkPatch(metadata={"patched": n}))
    replicate(leader, applier)
    assert state_of(follower) == state_of(leader)
