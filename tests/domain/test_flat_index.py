"""The exact index agrees with brute force, forgets what is deleted and keeps to filters."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.index.flat import FlatIndex
from domain.index.scoring import Hits
from domain.models import Metric
from tests.domain.index_checks import (
    DIMENSION,
    LABELS,
    Model,
    assert_agrees_with_model,
    run_script,
    steps,
)

metrics = st.sampled_from(list(Metric))


@settings(max_examples=60, deadline=None)
@given(metric=metrics, script=steps, seed=st.integers(0, 2**16), k=st.integers(1, 15))
def test_flat_search_equals_brute_force_after_adds_updates_and_deletes(
    metric: Metric, script: list[tuple[str, list[int]]], seed: int, k: int
) -> None:
    index = FlatIndex(DIMENSION, metric)
    model = Model(metric)
    gone = run_script(index, model, script, seed)
    query = np.random.default_rng(seed + 1).normal(size=DIMENSION).astype(np.float32)
    assert len(index) == len(model.vectors)
    hits = assert_agrees_with_model(index, model, query, k)
    assert not set(hits.labels.tolist()) & gone


@settings(max_examples=40, deadline=None)
@given(
    metric=metrics,
    script=steps,
    seed=st.integers(0, 2**16),
    allowed=st.sets(st.integers(0, LABELS - 1)),
)
def test_flat_search_returns_only_allowed_labels(
    metric: Metric, script: list[tuple[str, list[int]]], seed: int, allowed: set[int]
) -> None:
    index = FlatIndex(DIMENSION, metric)
    model = Model(metric)
    run_script(index, model, script, seed)
    query = np.random.default_rng(seed + 2).normal(size=DIMENSION).astype(np.float32)
    assert_agrees_with_model(index, model, query, 10, allowed=allowed)


@settings(max_examples=30, deadline=None)
@given(metric=metrics, script=steps, seed=st.integers(0, 2**16))
def test_flat_state_round_trip_gives_identical_results(
    metric: Metric, script: list[tuple[str, list[int]]], seed: int
) -> None:
    index = FlatIndex(DIMENSION, metric)
    run_script(index, Model(metric), script, seed)
    restored = FlatIndex.from_state(index.to_state())
    query = np.random.default_rng(seed + 3).normal(size=DIMENSION).astype(np.float32)
    assert_same_hits(index.search(query, 10), restored.search(query, 10))
    assert len(restored) == len(index)


def test_search_after_delete_never_returns_deleted_label() -> None:
    index = FlatIndex(3, Metric.COSINE)
    index.add(np.array([1, 2]), np.array([[1, 0, 0], [0, 1, 0]], dtype=np.float32))
    index.remove(np.array([1]))
    hits = index.search(np.array([1, 0, 0], dtype=np.float32), 5)
    assert hits.labels.tolist() == [2]


def assert_same_hits(a: Hits, b: Hits) -> None:
    assert a.labels.tolist() == b.labels.tolist()
    np.testing.assert_array_equal(a.scores, b.scores)
