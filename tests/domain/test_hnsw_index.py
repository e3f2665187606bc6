"""HNSW: equal to brute force with a large ef, tombstones never returned, filters respected,
good recall on real vectors, snapshots that restore the same graph."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

import domain.index.hnsw.index as hnsw_index
from domain.index.hnsw import HnswIndex
from domain.index.scoring import SearchParams
from domain.models import HnswParams, Metric
from tests.domain.index_checks import (
    DIMENSION,
    LABELS,
    Model,
    assert_agrees_with_model,
    load_slice,
    recall_at_10,
    run_script,
    steps,
)
from tests.domain.test_flat_index import assert_same_hits

metrics = st.sampled_from(list(Metric))
PARAMS = HnswParams(m=8, ef_construction=64, ef_search=16)
WIDE = SearchParams(ef=256)


@settings(max_examples=50, deadline=None)
@given(
    metric=metrics,
    script=steps,
    seed=st.integers(0, 2**16),
    k=st.integers(1, 15),
    bulk_first=st.booleans(),
)
def test_hnsw_with_large_ef_equals_brute_force(
    metric: Metric, script: list[tuple[str, list[int]]], seed: int, k: int, bulk_first: bool
) -> None:
    index = HnswIndex(DIMENSION, metric, PARAMS, seed=seed)
    model = Model(metric)
    if bulk_first:  # 64+ vectors at once take the bulk build, later steps insert one by one
        vectors = np.random.default_rng(seed).normal(size=(80, DIMENSION)).astype(np.float32)
        labels = list(range(LABELS, LABELS + 80))
        index.add(np.asarray(labels, dtype=np.int64), vectors)
        model.add(labels, vectors)
    gone = run_script(index, model, script, seed + 1)
    query = np.random.default_rng(seed + 2).normal(size=DIMENSION).astype(np.float32)
    assert len(index) == len(model.vectors)
    hits = assert_agrees_with_model(index, model, query, k, params=WIDE)
    assert not set(hits.labels.tolist()) & gone
    assert_agrees_with_model(index, model, query, k, exact=True)


@settings(max_examples=40, deadline=None)
@given(
    metric=metrics,
    script=steps,
    seed=st.integers(0, 2**16),
    allowed=st.sets(st.integers(0, LABELS - 1)),
)
def test_hnsw_returns_only_live_allowed_labels(
    metric: Metric, script: list[tuple[str, list[int]]], seed: int, allowed: set[int]
) -> None:
    index = HnswIndex(DIMENSION, metric, PARAMS, seed=seed)
    model = Model(metric)
    run_script(index, model, script, seed)
    query = np.random.default_rng(seed + 3).normal(size=DIMENSION).astype(np.float32)
    assert_agrees_with_model(index, model, query, 10, allowed=allowed, params=WIDE)


@settings(max_examples=25, deadline=None)
@given(metric=metrics, script=steps, seed=st.integers(0, 2**16))
def test_hnsw_state_round_trip_gives_identical_results_and_inserts(
    metric: Metric, script: list[tuple[str, list[int]]], seed: int
) -> None:
    index = HnswIndex(DIMENSION, metric, PARAMS, seed=seed)
    run_script(index, Model(metric), script, seed)
    restored = HnswIndex.from_state(index.to_state())
    rng = np.random.default_rng(seed + 4)
    query = rng.normal(size=DIMENSION).astype(np.float32)
    assert_same_hits(index.search(query, 10), restored.search(query, 10))
    # The random level generator is restored too: the same insert makes the same graph.
    extra = rng.normal(size=(3, DIMENSION)).astype(np.float32)
    for copy in (index, restored):
        copy.add(np.array([100, 101, 102]), extra)
    assert_same_hits(index.search(query, 10), restored.search(query, 10))
    assert restored.spec == index.spec and len(restored) == len(index)


def test_tombstones_are_compacted_once_a_quarter_of_nodes_are_deleted() -> None:
    rng = np.random.default_rng(0)
    index = HnswIndex(8, Metric.L2, PARAMS)
    index.add(np.arange(200), rng.normal(size=(200, 8)).astype(np.float32))
    index.remove(np.arange(0, 40))
    assert index.tombstones == 40 and len(index) == 160
    index.remove(np.arange(40, 60))  # 60 of 200 > 25%: rebuilt from the 140 live ones
    assert index.tombstones == 0 and len(index) == 140
    labels, vectors = index.items()
    assert sorted(labels.tolist()) == list(range(60, 200)) and vectors.shape == (140, 8)
    hits = index.search(rng.normal(size=8).astype(np.float32), 200, params=SearchParams(ef=400))
    assert sorted(hits.labels.tolist()) == list(range(60, 200))


def test_replacing_a_label_moves_it_to_its_new_vector() -> None:
    index = HnswIndex(2, Metric.L2, PARAMS)
    index.add(np.arange(10), np.array([[i, 0.0] for i in range(10)], dtype=np.float32))
    index.add(np.array([3]), np.array([[100.0, 0.0]], dtype=np.float32))
    hits = index.search(np.array([100.0, 0.0], dtype=np.float32), 1)
    assert hits.labels.tolist() == [3] and hits.scores[0] == pytest.approx(0.0, abs=1e-3)
    assert len(index) == 10 and index.tombstones == 1


def test_filter_strategy_depends_on_the_allowed_share() -> None:
    base, queries, _ = load_slice()
    index = HnswIndex.build(base.shape[1], Metric.COSINE, HnswParams(), np.arange(5_000), base)
    few = np.zeros(5_000, dtype=np.bool_)
    few[::100] = True  # 50 labels: scanned
    hits = index.search(queries[0], 10, allowed=few)
    assert hits.strategy == "filtered-scan" and set(hits.labels.tolist()) <= set(
        range(0, 5_000, 100)
    )
    assert len(hits) == 10
    # A large index with a half-share filter walks the graph with a wider beam.
    many = np.zeros(5_000, dtype=np.bool_)
    many[::2] = True
    scan_limit = 4_096
    hits = index.search(queries[0], 10, allowed=many)
    expected = "filtered-scan" if many.sum() <= scan_limit else "hnsw-filtered"
    assert hits.strategy == expected and all(label % 2 == 0 for label in hits.labels.tolist())
    assert index.search(queries[0], 10).strategy == "hnsw"
    assert index.search(queries[0], 10, exact=True).strategy == "scan"


def test_hnsw_recall_at_10_on_real_vectors_bulk_and_incremental() -> None:
    base, queries, truth = load_slice()
    progress: list[float] = []
    bulk = HnswIndex.build(
        base.shape[1], Metric.COSINE, HnswParams(), np.arange(5_000), base, progress.append
    )
    assert progress == sorted(progress) and progress[-1] == 1.0
    assert any(0.0 < p < 1.0 for p in progress)
    assert recall_at_10(bulk, queries, truth) >= 0.9
    # One-by-one insertion (Algorithm 1) on the first 1,000 vectors.
    small = HnswIndex(base.shape[1], Metric.COSINE, HnswParams(m=12, ef_construction=64))
    for start in range(0, 1_000, 20):
        small.add(np.arange(start, start + 20), base[start : start + 20])
    unit = base[:1_000] / np.linalg.norm(base[:1_000], axis=1, keepdims=True)
    small_truth = np.argsort(-(queries @ unit.T), axis=1)[:, :10]
    assert recall_at_10(small, queries, small_truth) >= 0.9


def tight_clusters(n: int, clusters: int, seed: int) -> NDArray[np.float32]:
    """Points within 0.01 of one of ``clusters`` random centres: a nearest-neighbour graph
    of them is one island per cluster."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, 32))
    which = rng.integers(0, clusters, n)
    return (centres[which] + 0.01 * rng.normal(size=(n, 32))).astype(np.float32)


def brute_force_top_10(
    base: NDArray[np.float32], labels: NDArray[np.int64], queries: NDArray[np.float32]
) -> NDArray[np.int64]:
    distances = ((queries[:, None, :] - base[None, :, :]) ** 2).sum(axis=2)
    return labels[np.argsort(distances, axis=1)[:, :10]]


def test_bulk_build_on_tight_clusters_reaches_every_node_and_agrees_with_brute_force() -> None:
    base = tight_clusters(3_100, 40, seed=1)
    queries, base = base[3_000:], base[:3_000]  # fresh points around the same centres
    labels = np.arange(3_000, dtype=np.int64)
    index = HnswIndex.build(32, Metric.L2, HnswParams(m=8, ef_construction=64), labels, base)
    assert index.max_level >= 1 and index.unreachable() == [0] * (index.max_level + 1)
    truth = brute_force_top_10(base, labels, queries)
    assert recall_at_10(index, queries, truth) >= 0.9


def test_compaction_after_deletes_on_tight_clusters_keeps_every_node_reachable() -> None:
    base = tight_clusters(3_100, 40, seed=2)
    queries, base = base[3_000:], base[:3_000]
    index = HnswIndex.build(
        32, Metric.L2, HnswParams(m=8, ef_construction=64), np.arange(3_000), base
    )
    index.remove(np.arange(0, 3_000, 3))  # a third: the graph is rebuilt from the rest
    assert index.tombstones == 0 and len(index) == 2_000
    assert index.unreachable() == [0] * (index.max_level + 1)
    labels, vectors = index.items()
    truth = brute_force_top_10(vectors, labels, queries)
    assert recall_at_10(index, queries, truth) >= 0.9
    hits = index.search(queries[0], 10, params=WIDE)
    assert not any(label % 3 == 0 for label in hits.labels.tolist())


def test_past_16k_nodes_reachability_is_checked_every_n_over_64_insertions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Scaled down (thresholds patched): single inserts into tight clusters are checked once
    n/64 of them have arrived, and the check leaves every node reachable."""
    monkeypatch.setattr(hnsw_index, "_CHECK_ALWAYS_UP_TO", 0)
    base = tight_clusters(3_400, 40, seed=3)
    params = HnswParams(m=4, ef_construction=16)
    index = HnswIndex.build(32, Metric.L2, params, np.arange(3_000), base[:3_000])
    assert index.unreachable() == [0] * (index.max_level + 1)
    checks = 0
    for label in range(3_000, 3_400):
        index.add(np.array([label]), base[label : label + 1])
        if index._unchecked == 0:  # the insertion that made the check due
            checks += 1
            assert index.unreachable() == [0] * (index.max_level + 1)
    assert checks == 400 // (3_000 // 64) or checks == 400 // (3_000 // 64) + 1


def test_from_state_rejects_inconsistent_arrays() -> None:
    index = HnswIndex(4, Metric.DOT, PARAMS)
    index.add(np.arange(10), np.random.default_rng(0).normal(size=(10, 4)).astype(np.float32))
    state = index.to_state()
    state["links0"] = state["links0"][:, :3]
    with pytest.raises(ValueError):
        HnswIndex.from_state(state)
