"""Deleting by filter is one log entry, and a follower replaying it ends in the leader's state
(store, index and metadata columns), through the follower's own apply path."""

from __future__ import annotations

from application.dto import ChunkInput, NewLibrary, SearchQuery
from tests.cluster.test_log_replay import DIM, leader_and_follower, replicate, state_of, vec


def test_a_delete_by_filter_is_one_entry_that_replays_to_the_leaders_state() -> None:
    leader, follower, applier = leader_and_follower()
    lib = leader.libraries.create(NewLibrary(name="papers", dimension=DIM, id="lib")).library
    chunks = [
        ChunkInput(f"d{i % 3}", f"t{i}", vec(i), {"i": i, "odd": i % 2 == 1}, f"c{i}")
        for i in range(40)
    ]
    leader.chunks.write_batch(lib.id, chunks)
    before = leader.feed.position.index

    deleted = leader.chunks.delete_where(lib.id, {"field": "odd", "op": "eq", "value": True})

    assert deleted == 20
    assert leader.feed.position.index == before + 1  # one entry for the whole delete
    assert replicate(leader, applier) == before + 1
    assert state_of(follower) == state_of(leader)
    assert follower.chunks.count(lib.id) == 20
    hits = follower.search.search(lib.id, SearchQuery(vector=vec(0), k=40)).hits
    assert sorted(int(h.chunk_id[1:]) for h in hits) == list(range(0, 40, 2))
