"""Score thresholds, grouping, batches, counting and deleting by filter through the services
(in-memory store, no server). Every expected answer comes from brute force in float64 NumPy
over the vectors and metadata the test wrote, under the contract's definitions:

- a threshold keeps scores >= it for cosine and dot, distances <= it for l2;
- grouping deals the allowed chunks, best first, into the groups of their value for the key
  (none when absent or null, one per distinct item of a list), opens groups until k are open
  and fills each with its best ``group_size``; groups rank by their best chunk.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from application.dto import ChunkInput, NewLibrary, SearchQuery
from domain.errors import InvalidInput, LimitExceeded
from domain.limits import Limits
from tests.application.conftest import Services, build_services

DIM = 6


def scores_of(metric: str, vectors: NDArray[np.float32], query: NDArray[np.float32]) -> Any:
    x, q = vectors.astype(np.float64), query.astype(np.float64)
    if metric == "l2":
        return np.sqrt(((x - q) ** 2).sum(axis=1))
    if metric == "cosine":
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
        q = q / np.linalg.norm(q)
    return x @ q


def best_first(metric: str, scores: Any, keep: list[int] | None = None) -> list[int]:
    sign = 1.0 if metric == "l2" else -1.0
    order = sorted(range(len(scores)), key=lambda i: (sign * scores[i], i))
    return [i for i in order if keep is None or i in set(keep)]


def expected_groups(
    order: list[int], keys_of: list[list[Any]], k: int, size: int
) -> list[tuple[Any, list[int]]]:
    groups: dict[tuple[bool, Any], tuple[Any, list[int]]] = {}
    for i in order:
        for key in keys_of[i]:
            identity = (isinstance(key, bool), key)
            if identity not in groups and len(groups) == k:
                continue
            hits = groups.setdefault(identity, (key, []))[1]
            if len(hits) < size:
                hits.append(i)
    return list(groups.values())


class Corpus:
    def __init__(
        self,
        services: Services,
        metric: str,
        vectors: NDArray[np.float32],
        documents: list[str],
        metadata: list[dict[str, Any]],
        index: str = "flat",
    ) -> None:
        self.services, self.metric, self.vectors = services, metric, vectors
        self.documents, self.metadata = documents, metadata
        new = NewLibrary(name="lib", dimension=DIM, metric=metric, index_type=index)
        self.id = services.libraries.create(new).library.id
        services.run_pending_builds()
        inputs = [
            ChunkInput(documents[i], f"t{i}", vectors[i], metadata[i], f"c{i}")
            for i in range(vectors.shape[0])
        ]
        services.chunks.write_batch(self.id, inputs)

    def search(self, **fields: Any) -> Any:
        return self.services.search.search(self.id, SearchQuery(**fields))


def crowded(rng: np.random.Generator, n: int) -> tuple[NDArray[np.float32], list[str]]:
    """Chunks of document "crowd" are the ``n // 2`` nearest the all-ones query."""
    near = 1.0 + rng.normal(0, 0.02, (n // 2, DIM))
    far = rng.normal(0, 1, (n - n // 2, DIM))
    vectors = np.concatenate([near, far]).astype(np.float32)
    documents = ["crowd"] * (n // 2) + [f"d{i % 7}" for i in range(n - n // 2)]
    return vectors, documents


@pytest.mark.parametrize("index", ["flat", "ivf", "hnsw"])
@pytest.mark.parametrize("metric", ["cosine", "dot", "l2"])
def test_grouping_by_document_fills_k_groups_when_the_best_chunks_crowd_into_one(
    metric: str, index: str
) -> None:
    # 60 crowded chunks and a first depth of k x group_size = 8: a second round (depth 32)
    # leaves out the full "crowd" group and fills the other three.
    rng = np.random.default_rng(3)
    vectors, documents = crowded(rng, 120)
    corpus = Corpus(build_services(), metric, vectors, documents, [{}] * 120, index)
    query = np.ones(DIM, np.float32)
    outcome = corpus.search(vector=query, k=4, group_by="document_id", group_size=2)
    order = best_first(metric, scores_of(metric, vectors, query))
    expected = expected_groups(order, [[d] for d in documents], 4, 2)
    assert outcome.hits == []
    assert [(g.key, [h.chunk_id for h in g.hits]) for g in outcome.groups] == [
        (key, [f"c{i}" for i in hits]) for key, hits in expected
    ]


def test_grouping_stops_at_the_depth_limit_with_what_the_deepest_round_saw() -> None:
    rng = np.random.default_rng(4)
    vectors, documents = crowded(rng, 120)
    services = build_services(limits=Limits(max_group_candidates=30))
    corpus = Corpus(services, "l2", vectors, documents, [{"g": d} for d in documents])
    query = np.ones(DIM, np.float32)
    # By a metadata key no group can be left out, so 30 chunks, all "crowd", is the end.
    outcome = corpus.search(vector=query, k=3, group_by="g", group_size=2)
    assert [g.key for g in outcome.groups] == ["crowd"]
    with pytest.raises(LimitExceeded):
        corpus.search(vector=query, k=8, group_by="g", group_size=4)


def test_group_size_is_bounded_by_the_configured_limit_with_or_without_group_by() -> None:
    """group_size alone is at most max_group_candidates on every search; a grouped search
    also keeps k x group_size within it. An ungrouped search ignores group_size otherwise."""
    rng = np.random.default_rng(6)
    vectors, documents = crowded(rng, 40)
    services = build_services(limits=Limits(max_group_candidates=30))
    corpus = Corpus(services, "cosine", vectors, documents, [{} for _ in documents])
    query = np.ones(DIM, np.float32)
    expected = [f"c{i}" for i in best_first("cosine", scores_of("cosine", vectors, query))[:10]]
    ungrouped = corpus.search(vector=query, k=10, group_size=30)
    assert [hit.chunk_id for hit in ungrouped.hits] == expected
    grouped = corpus.search(vector=query, k=1, group_by="document_id", group_size=30)
    assert [len(group.hits) for group in grouped.groups] == [20]
    refused: list[dict[str, Any]] = [
        {"k": 10, "group_size": 31},
        {"k": 1, "group_size": 31, "group_by": "document_id"},
        {"k": 2, "group_size": 16, "group_by": "document_id"},
    ]
    for fields in refused:
        with pytest.raises(LimitExceeded) as error:
            corpus.search(vector=query, **fields)
        assert error.value.extra["location"] == "group_size", fields


metadata_values = st.one_of(
    st.none(),
    st.sampled_from(["a", "b", 1, 2, True, 1.5]),
    st.lists(st.sampled_from(["a", "b", "c", 1, True]), max_size=3),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    metric=st.sampled_from(["cosine", "dot", "l2"]),
    values=st.lists(st.one_of(metadata_values, st.just("absent")), min_size=30, max_size=30),
    k=st.integers(1, 6),
    size=st.integers(1, 4),
    odd_only=st.booleans(),
)
def test_grouping_by_metadata_agrees_with_brute_force(
    seed: int, metric: str, values: list[Any], k: int, size: int, odd_only: bool
) -> None:
    vectors = np.random.default_rng(seed).normal(0, 1, (30, DIM)).astype(np.float32)
    metadata = [{"n": i} if v == "absent" else {"n": i, "key": v} for i, v in enumerate(values)]
    corpus = Corpus(build_services(), metric, vectors, ["doc"] * 30, metadata)
    query = np.random.default_rng(seed + 1).normal(0, 1, DIM).astype(np.float32)
    flt = {"field": "n", "op": "in", "value": list(range(1, 30, 2))} if odd_only else None
    outcome = corpus.search(vector=query, k=k, group_by="key", group_size=size, filter=flt)

    def keys(v: Any) -> list[Any]:
        if v is None or v == "absent":
            return []
        items = v if isinstance(v, list) else [v]
        distinct: dict[tuple[bool, Any], Any] = {}
        for item in items:
            distinct.setdefault((isinstance(item, bool), item), item)
        return list(distinct.values())

    keep = list(range(1, 30, 2)) if odd_only else None
    order = best_first(metric, scores_of(metric, vectors, query), keep)
    expected = expected_groups(order, [keys(v) for v in values], k, size)
    got = [(g.key, [h.chunk_id for h in g.hits]) for g in outcome.groups]
    assert [(type(key), key) for key, _ in got] == [(type(key), key) for key, _ in expected]
    assert got == [(key, [f"c{i}" for i in hits]) for key, hits in expected]


@pytest.mark.parametrize("metric", ["cosine", "dot", "l2"])
def test_a_threshold_keeps_exactly_the_hits_on_the_good_side_in_the_metrics_direction(
    metric: str,
) -> None:
    rng = np.random.default_rng(9)
    vectors = rng.normal(0, 1, (50, DIM)).astype(np.float32)
    corpus = Corpus(build_services(), metric, vectors, ["doc"] * 50, [{"n": i} for i in range(50)])
    query = rng.normal(0, 1, DIM).astype(np.float32)
    scores = scores_of(metric, vectors, query)
    order = best_first(metric, scores)
    for cut in (0, 1, 17, 49):
        # Halfway between two neighbouring scores: float32 rounding cannot cross it.
        threshold = float(scores[order[cut]] + scores[order[cut + 1]]) / 2 if cut < 49 else None
        passing = cut + 1 if threshold is not None else 50
        outcome = corpus.search(vector=query, k=50, score_threshold=threshold)
        assert [h.chunk_id for h in outcome.hits] == [f"c{i}" for i in order[:passing]]
        if threshold is not None:
            on_good_side = [
                h.score <= threshold if metric == "l2" else h.score >= threshold
                for h in outcome.hits
            ]
            assert all(on_good_side)


def test_a_batch_answers_each_search_as_alone_and_refuses_a_bad_one_by_its_place() -> None:
    rng = np.random.default_rng(12)
    vectors, documents = crowded(rng, 80)
    corpus = Corpus(
        build_services(), "cosine", vectors, documents, [{"n": i} for i in range(80)], "hnsw"
    )
    ones = np.ones(DIM, np.float32)
    some = rng.normal(0, 1, (3, DIM)).astype(np.float32)
    queries = [
        SearchQuery(vector=ones, k=5),
        SearchQuery(vector=some[0], k=7, filter={"field": "n", "op": "gt", "value": 9}),
        SearchQuery(vector=ones, k=3, group_by="document_id", group_size=2),
        SearchQuery(vector=some[1], k=20, score_threshold=0.3),
        SearchQuery(vector=some[2], k=4, filter={"field": "n", "op": "eq", "value": -1}),
    ]
    search = corpus.services.search
    together = search.search_batch(corpus.id, queries)
    for query, batched in zip(queries, together, strict=True):
        alone = search.search(corpus.id, query)
        assert (batched.hits, batched.groups, batched.strategy) == (
            alone.hits,
            alone.groups,
            alone.strategy,
        )
    bad = [*queries[:2], SearchQuery(vector=[1.0, 2.0], k=3)]
    with pytest.raises(InvalidInput) as refused:
        search.search_batch(corpus.id, bad)
    assert refused.value.extra["location"] == "searches[2].vector"
    with pytest.raises(LimitExceeded):
        search.search_batch(corpus.id, [])


def test_count_and_delete_by_filter() -> None:
    services = build_services()
    vectors = np.random.default_rng(1).normal(0, 1, (40, DIM)).astype(np.float32)
    metadata = [{"n": i, "tag": ["x", "y"][i % 2]} for i in range(40)]
    documents = [f"d{i % 5}" for i in range(40)]
    corpus = Corpus(services, "l2", vectors, documents, metadata)
    x = {"field": "tag", "op": "eq", "value": "x"}
    assert services.chunks.count(corpus.id) == 40
    assert services.chunks.count(corpus.id, x) == 20
    assert services.documents.count(corpus.id) == 5
    doc_filter = {"field": "id", "op": "in", "value": ["d1", "d4", "d9"]}
    assert services.documents.count(corpus.id, doc_filter) == 2
    empties: list[dict[str, Any] | None] = [{}, None]
    for empty in empties:
        with pytest.raises(InvalidInput):
            services.chunks.delete_where(corpus.id, empty)
    assert services.chunks.delete_where(corpus.id, x) == 20
    assert services.chunks.count(corpus.id) == 20
    hits = corpus.search(vector=np.zeros(DIM, np.float32), k=40).hits
    assert sorted(h.chunk_id for h in hits) == sorted(f"c{i}" for i in range(1, 40, 2))
    assert services.chunks.delete_where(corpus.id, x) == 0
