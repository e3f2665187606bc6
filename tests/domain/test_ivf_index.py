"""IVF: exact when every list is probed, never returns deleted labels, good recall on real
vectors, snapshots that restore the same index."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.index.ivf import AUTO_TRAIN_AT, IvfIndex
from domain.index.kmeans import assign, train_kmeans
from domain.index.scoring import SearchParams
from domain.models import IvfParams, Metric
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
NLIST = 4


def trained_index(metric: Metric, model: Model, seed: int) -> IvfIndex:
    """An IVF index trained on 30 vectors (labels 0..29) with 4 lists."""
    vectors = np.random.default_rng(seed).normal(size=(30, DIMENSION)).astype(np.float32)
    labels = list(range(30))
    model.add(labels, vectors)
    return IvfIndex.build(
        DIMENSION, metric, IvfParams(nlist=NLIST), np.asarray(labels, dtype=np.int64), vectors
    )


@settings(max_examples=50, deadline=None)
@given(metric=metrics, script=steps, seed=st.integers(0, 2**16), k=st.integers(1, 15))
def test_ivf_probing_every_list_equals_brute_force(
    metric: Metric, script: list[tuple[str, list[int]]], seed: int, k: int
) -> None:
    model = Model(metric)
    index = trained_index(metric, model, seed)
    gone = run_script(index, model, script, seed + 1)
    query = np.random.default_rng(seed + 2).normal(size=DIMENSION).astype(np.float32)
    assert index.nlist == NLIST
    assert len(index) == len(model.vectors)
    hits = assert_agrees_with_model(index, model, query, k, params=SearchParams(nprobe=NLIST))
    assert not set(hits.labels.tolist()) & gone
    assert_agrees_with_model(index, model, query, k, exact=True)


@settings(max_examples=40, deadline=None)
@given(
    metric=metrics,
    script=steps,
    seed=st.integers(0, 2**16),
    allowed=st.sets(st.integers(0, LABELS - 1)),
    nprobe=st.integers(1, NLIST),
)
def test_ivf_returns_only_live_allowed_labels_and_widens_for_filters(
    metric: Metric,
    script: list[tuple[str, list[int]]],
    seed: int,
    allowed: set[int],
    nprobe: int,
) -> None:
    model = Model(metric)
    index = trained_index(metric, model, seed)
    run_script(index, model, script, seed + 1)
    mask = np.zeros(LABELS, dtype=np.bool_)
    mask[list(allowed)] = True
    query = np.random.default_rng(seed + 3).normal(size=DIMENSION).astype(np.float32)
    hits = index.search(query, 5, allowed=mask, params=SearchParams(nprobe=nprobe))
    labels = set(hits.labels.tolist())
    assert labels <= allowed & set(model.vectors)
    # Probing keeps going until k allowed rows were seen, so a filter never starves it.
    assert len(labels) == min(5, len(allowed & set(model.vectors)))


@settings(max_examples=30, deadline=None)
@given(metric=metrics, script=steps, seed=st.integers(0, 2**16))
def test_untrained_ivf_is_an_exact_scan(
    metric: Metric, script: list[tuple[str, list[int]]], seed: int
) -> None:
    index = IvfIndex(DIMENSION, metric)
    model = Model(metric)
    run_script(index, model, script, seed)
    query = np.random.default_rng(seed + 1).normal(size=DIMENSION).astype(np.float32)
    assert not index.trained
    assert_agrees_with_model(index, model, query, 10)


@settings(max_examples=30, deadline=None)
@given(metric=metrics, script=steps, seed=st.integers(0, 2**16))
def test_ivf_state_round_trip_gives_identical_results(
    metric: Metric, script: list[tuple[str, list[int]]], seed: int
) -> None:
    index = trained_index(metric, Model(metric), seed)
    run_script(index, Model(metric), script, seed + 1)
    restored = IvfIndex.from_state(index.to_state())
    query = np.random.default_rng(seed + 4).normal(size=DIMENSION).astype(np.float32)
    for nprobe in (1, 2, NLIST):
        params = SearchParams(nprobe=nprobe)
        assert_same_hits(
            index.search(query, 10, params=params), restored.search(query, 10, params=params)
        )
    assert restored.spec == index.spec
    assert len(restored) == len(index)


def test_ivf_recall_at_10_on_real_vectors() -> None:
    base, queries, truth = load_slice()
    progress: list[float] = []
    index = IvfIndex.build(
        base.shape[1], Metric.COSINE, IvfParams(), np.arange(base.shape[0]), base, progress.append
    )
    assert index.nlist == round(np.sqrt(base.shape[0]))
    assert progress == sorted(progress) and progress[-1] == 1.0
    assert any(0.0 < p < 1.0 for p in progress)
    assert recall_at_10(index, queries, truth) >= 0.9


def test_ivf_trains_itself_once_large_and_reports_drift() -> None:
    rng = np.random.default_rng(0)
    index = IvfIndex(8, Metric.L2)
    index.add(
        np.arange(AUTO_TRAIN_AT - 1), rng.normal(size=(AUTO_TRAIN_AT - 1, 8)).astype(np.float32)
    )
    assert not index.trained
    index.add(np.array([AUTO_TRAIN_AT]), rng.normal(size=(1, 8)).astype(np.float32))
    assert index.trained and index.nlist == 64 and not index.needs_rebuild
    # Pile new vectors far from every centroid: they all land in one list.
    far = rng.normal(size=(2 * AUTO_TRAIN_AT, 8)).astype(np.float32) + 100.0
    index.add(np.arange(10_000, 10_000 + far.shape[0]), far)
    assert index.imbalance > 8.0 and index.needs_rebuild
    labels, _ = index.items()
    assert len(index) == labels.shape[0] == 3 * AUTO_TRAIN_AT


def test_kmeans_is_deterministic_and_reseeds_empty_clusters() -> None:
    rng = np.random.default_rng(1)
    # Three tight blobs and k = 6: every centroid must still own points at the end.
    blobs = np.concatenate([rng.normal(c, 0.01, size=(200, 4)) for c in (0.0, 5.0, 10.0)])
    vectors = blobs.astype(np.float32)
    first = train_kmeans(vectors, 6, seed=7)
    again = train_kmeans(vectors, 6, seed=7)
    np.testing.assert_array_equal(first, again)
    owner, _ = assign(vectors, first)
    assert np.bincount(owner, minlength=6).min() > 0


def test_kmeans_mini_batch_path_finds_separated_clusters() -> None:
    rng = np.random.default_rng(2)
    centres = rng.normal(size=(8, 16)).astype(np.float32) * 20
    vectors = (centres[rng.integers(8, size=40_000)] + rng.normal(size=(40_000, 16))).astype(
        np.float32
    )
    centroids = train_kmeans(vectors, 8, seed=0, iterations=10)
    # Every true centre has a learnt centroid close by.
    gaps = np.linalg.norm(centres[:, None, :] - centroids[None, :, :], axis=2).min(axis=1)
    assert gaps.max() < 2.0


def test_from_state_rejects_inconsistent_arrays() -> None:
    index = trained_index(Metric.COSINE, Model(Metric.COSINE), 0)
    state = index.to_state()
    state["list_sizes"] = state["list_sizes"] + 1
    with pytest.raises(ValueError):
        IvfIndex.from_state(state)
