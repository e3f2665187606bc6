"""A follower's keyword index built by replaying the leader's log, without servers: the writes
and deletes through the one ``apply_change``, and a ``text_index`` change rebuilt in the
background like the leader's. Truth is BM25 evaluated by brute force over the leader's texts."""

from __future__ import annotations

import time

import numpy as np

from application.dto import ChunkInput, LibraryPatch, NewLibrary
from application.live import LiveLibrary
from domain.models import Bm25Params, TextIndexSpec, TextIndexType
from tests.cluster.test_log_replay import DIM, Node, leader_and_follower, replicate, vec
from tests.domain.test_bm25_index import brute_force_scores

WORDS = ["ledger", "ledgers", "entry", "entries", "log", "logged", "replay", "the", "a", "term"]
QUERIES = ["ledger entries", "replayed log", "the term of a ledger"]


def texts_for(ids: range, seed: int) -> dict[str, str]:
    rng = np.random.default_rng(seed)
    return {f"c{i}": " ".join(rng.choice(WORDS, int(rng.integers(1, 20)))) for i in ids}


def write(node: Node, library_id: str, texts: dict[str, str]) -> None:
    node.chunks.write_batch(
        library_id,
        [
            ChunkInput("doc", text, vec(i), id=chunk_id)
            for i, (chunk_id, text) in enumerate(texts.items())
        ],
        mode="upsert",
    )


def wait_for_params(live: LiveLibrary, params: Bm25Params, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while live.text is None or live.text.params != params:
        assert time.monotonic() < deadline, "the keyword index was not rebuilt"
        time.sleep(0.01)


def assert_matches(live: LiveLibrary, texts: dict[str, str], params: Bm25Params) -> None:
    for query in QUERIES:
        truth = brute_force_scores(texts, query, params)
        hits = live.keyword_search(query, len(texts) + 1)
        found = dict(
            zip(
                [live.labels.chunk_id(int(label)) for label in hits.labels],
                hits.scores.tolist(),
                strict=True,
            )
        )
        assert set(found) == set(truth), query
        np.testing.assert_allclose([found[c] for c in truth], list(truth.values()), rtol=1e-6)


def test_a_follower_replaying_the_log_keeps_the_same_keyword_index_and_follows_text_index() -> None:
    leader, follower, applier = leader_and_follower()
    library_id = leader.libraries.create(NewLibrary(name="l", dimension=DIM)).library.id
    texts = texts_for(range(60), seed=1)
    write(leader, library_id, texts)
    for chunk_id in ("c2", "c9", "c30"):
        leader.chunks.delete(library_id, chunk_id)
        del texts[chunk_id]
    replicate(leader, applier)
    assert_matches(follower.live.get(library_id), texts, Bm25Params())

    plain = Bm25Params(k1=0.4, b=1.0, language="none")
    leader.libraries.update(library_id, LibraryPatch(text_index=TextIndexSpec(params=plain)))
    more = texts_for(range(60, 80), seed=2)
    write(leader, library_id, more)
    texts |= more
    replicate(leader, applier)
    live = follower.live.get(library_id)
    wait_for_params(live, plain)
    assert live.library.text_index.params == plain
    assert_matches(live, texts, plain)

    off = TextIndexSpec(type=TextIndexType.NONE)
    leader.libraries.update(library_id, LibraryPatch(text_index=off))
    replicate(leader, applier)
    assert live.text is None
