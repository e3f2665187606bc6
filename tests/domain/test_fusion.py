"""Fusion of a vector and a keyword ranking agrees with a plain-Python reference in float64.

Rankings are drawn from a small pool of labels so the two sides often share chunks, and
scores from a small pool of values so ties are common; l2 distances rank lowest first.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.index.scoring import Hits
from domain.text_index.fusion import Fused, rrf, weighted

LABELS = st.lists(st.integers(0, 40), unique=True, max_size=25)
# float32-exact values, with repeats, far-apart magnitudes and negatives (cosine can be < 0)
SCORES = st.sampled_from([-0.75, -0.0, 0.0, 0.125, 0.5, 0.5, 1.0, 3.0, 1024.0, 1e-6])


@st.composite
def rankings(draw: st.DrawFn, higher_is_better: bool = True) -> Hits:
    """A side's answer, best first: distinct labels with scores in ranking order."""
    labels = draw(LABELS)
    scores = sorted((draw(SCORES) for _ in labels), reverse=higher_is_better)
    return Hits(np.array(labels, np.int64), np.array(scores, np.float32))


def by_label(hits: Hits) -> dict[int, float]:
    return {int(label): float(score) for label, score in zip(hits.labels, hits.scores, strict=True)}


def best(fused: dict[int, float], k: int) -> list[tuple[int, float]]:
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))[:k]


def reference_rrf(vector: Hits, keyword: Hits, rrf_k: int, k: int) -> list[tuple[int, float]]:
    fused: dict[int, float] = {}
    for side in (vector, keyword):
        for rank, label in enumerate(side.labels.tolist(), start=1):
            fused[label] = fused.get(label, 0.0) + 1.0 / (rrf_k + rank)
    return best(fused, k)


def normalised(side: Hits, higher_is_better: bool) -> dict[int, float]:
    scores = by_label(side)
    if not scores:
        return {}
    top, bottom = max(scores.values()), min(scores.values())
    if top == bottom:
        return dict.fromkeys(scores, 1.0)
    if higher_is_better:
        return {label: (s - bottom) / (top - bottom) for label, s in scores.items()}
    return {label: (top - s) / (top - bottom) for label, s in scores.items()}


def reference_weighted(
    vector: Hits, keyword: Hits, alpha: float, k: int, higher_is_better: bool
) -> list[tuple[int, float]]:
    v = normalised(vector, higher_is_better)
    kw = normalised(keyword, True)
    fused = {
        label: alpha * v.get(label, 0.0) + (1.0 - alpha) * kw.get(label, 0.0)
        for label in v.keys() | kw.keys()
    }
    return best(fused, k)


def assert_matches(
    fused: Fused, expected: list[tuple[int, float]], vector: Hits, keyword: Hits
) -> None:
    assert fused.hits.labels.tolist() == [label for label, _ in expected]
    np.testing.assert_array_equal(
        fused.hits.scores, np.array([score for _, score in expected], np.float32)
    )
    v, kw = by_label(vector), by_label(keyword)
    for label, v_score, kw_score in zip(
        fused.hits.labels.tolist(), fused.vector_scores, fused.keyword_scores, strict=True
    ):
        assert v_score == v[label] if label in v else math.isnan(v_score)
        assert kw_score == kw[label] if label in kw else math.isnan(kw_score)


@settings(max_examples=300, deadline=None)
@given(rankings(), rankings(), st.sampled_from([0, 1, 10, 60]), st.integers(1, 60))
def test_rrf_agrees_with_reference(vector: Hits, keyword: Hits, rrf_k: int, k: int) -> None:
    fused = rrf(vector, keyword, rrf_k, k)
    assert_matches(fused, reference_rrf(vector, keyword, rrf_k, k), vector, keyword)


@settings(max_examples=300, deadline=None)
@given(
    st.booleans().flatmap(lambda higher: st.tuples(st.just(higher), rankings(higher))),
    rankings(),
    st.sampled_from([0.0, 0.3, 0.5, 0.7, 1.0]),
    st.integers(1, 60),
)
def test_weighted_agrees_with_reference(
    side: tuple[bool, Hits], keyword: Hits, alpha: float, k: int
) -> None:
    higher_is_better, vector = side
    fused = weighted(vector, keyword, alpha, k, higher_is_better=higher_is_better)
    expected = reference_weighted(vector, keyword, alpha, k, higher_is_better)
    assert_matches(fused, expected, vector, keyword)


@settings(max_examples=200, deadline=None)
@given(rankings(), rankings(), st.integers(1, 60))
def test_fusion_returns_each_candidate_once_up_to_k(vector: Hits, keyword: Hits, k: int) -> None:
    union = set(vector.labels.tolist()) | set(keyword.labels.tolist())
    for fused in (
        rrf(vector, keyword, 60, k),
        weighted(vector, keyword, 0.5, k, higher_is_better=True),
    ):
        labels = fused.hits.labels.tolist()
        assert len(labels) == len(set(labels)) == min(k, len(union))
        assert set(labels) <= union
        assert np.all(np.diff(fused.hits.scores.astype(np.float64)) <= 0)


def test_rrf_puts_a_chunk_both_sides_rank_first_on_top() -> None:
    vector = Hits(np.array([7, 1, 2], np.int64), np.array([0.9, 0.8, 0.1], np.float32))
    keyword = Hits(np.array([7, 3], np.int64), np.array([12.0, 2.0], np.float32))
    fused = rrf(vector, keyword, 60, 10)
    assert fused.hits.labels.tolist()[0] == 7
    assert fused.hits.scores[0] == pytest.approx(2 / 61)


def test_weighted_flips_l2_distances_so_the_nearest_counts_most() -> None:
    distances = Hits(np.array([4, 5, 6], np.int64), np.array([0.5, 2.0, 4.0], np.float32))
    keyword = Hits.empty()
    fused = weighted(distances, keyword, 1.0, 3, higher_is_better=False)
    assert fused.hits.labels.tolist() == [4, 5, 6]
    np.testing.assert_allclose(fused.hits.scores, [1.0, 2.0 / 3.5, 0.0], rtol=1e-6)
    assert np.isnan(fused.keyword_scores).all()


def test_fusion_of_two_empty_sides_is_empty() -> None:
    assert len(rrf(Hits.empty(), Hits.empty(), 60, 10)) == 0
    assert len(weighted(Hits.empty(), Hits.empty(), 0.5, 10, higher_is_better=True)) == 0


@pytest.mark.parametrize("alpha", [-0.1, 1.5, float("nan")])
def test_weighted_refuses_alpha_outside_unit_interval(alpha: float) -> None:
    with pytest.raises(ValueError, match="alpha"):
        weighted(Hits.empty(), Hits.empty(), alpha, 10, higher_is_better=True)
