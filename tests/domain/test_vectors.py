"""Cosine does not depend on a vector's scale: ``normalized`` makes every nonzero row a unit
vector, from denormal float32 magnitudes to ones whose float32 sum of squares overflows, and a
cosine search scores a tiny query as it scores the same direction at unit length. (A floor of
1e-12 on the norm left rows shorter than it unscaled: [1e-18, 0] scored 7e-7 against [1, 1].)
The truth is float64 NumPy on the same float32 values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.index.flat import FlatIndex
from domain.models import Metric
from domain.vectors import normalized

SCALES = st.integers(-44, 37).map(lambda exponent: 10.0**exponent)


@settings(max_examples=300, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    dimension=st.integers(1, 16),
    scales=st.lists(SCALES, min_size=1, max_size=6),
)
def test_every_nonzero_row_becomes_the_unit_vector_of_its_direction(
    seed: int, dimension: int, scales: list[float]
) -> None:
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(len(scales), dimension))
    rows = (directions * np.array(scales)[:, None]).astype(np.float32)

    unit = normalized(rows).astype(np.float64)

    exact = rows.astype(np.float64)
    norms = np.linalg.norm(exact, axis=1)
    for row, got, norm in zip(exact, unit, norms, strict=True):
        if norm == 0.0:  # all of it below float32's smallest denormal
            assert not got.any()
            continue
        assert np.linalg.norm(got) == pytest.approx(1.0, abs=1e-6)
        assert got @ (row / norm) == pytest.approx(1.0, abs=1e-6)


def test_a_zero_row_stays_zero() -> None:
    rows = np.array([[0.0, 0.0, 0.0], [3.0, 0.0, 4.0]], dtype=np.float32)

    unit = normalized(rows)

    assert not unit[0].any()
    assert unit[1].tolist() == pytest.approx([0.6, 0.0, 0.8])


@pytest.mark.parametrize("scale", [1e-40, 1e-30, 1e-18, 1e-13, 1.0, 1e19, 1e30])
def test_a_cosine_search_scores_a_query_the_same_at_any_scale(scale: float) -> None:
    index = FlatIndex(3, Metric.COSINE)
    index.add(np.array([0, 1]), np.array([[1, 1, 0], [0, 0, 1]], dtype=np.float32))

    hits = index.search(np.array([scale, 0, 0], dtype=np.float32), 2)

    assert hits.labels.tolist() == [0, 1]
    assert hits.scores.tolist() == pytest.approx([1 / math.sqrt(2), 0.0], abs=1e-6)
