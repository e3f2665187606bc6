"""Array growth: a regrown array keeps its rows in use, dtype and row shape; a label map
grows to hold every label asked for, the new ones absent (-1); growth is geometric."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from domain.index.growth import MIN_CAPACITY, grown_capacity, regrown, with_label_space


@given(
    rows=st.integers(min_value=0, max_value=50),
    extra=st.integers(min_value=0, max_value=50),
    fill=st.none() | st.integers(min_value=-5, max_value=5),
)
def test_regrown_keeps_the_rows_in_use(rows: int, extra: int, fill: int | None) -> None:
    array = np.arange(rows * 3, dtype=np.int32).reshape(rows, 3)
    keep = rows // 2
    out = regrown(array, rows + extra, keep, fill=fill)
    assert out.shape == (rows + extra, 3) and out.dtype == np.int32
    assert np.array_equal(out[:keep], array[:keep])
    if fill is not None:
        assert (out[keep:] == fill).all()


@given(
    current=st.integers(min_value=0, max_value=1_000),
    needed=st.integers(min_value=0, max_value=2_000),
)
def test_a_label_map_grows_to_hold_the_labels_asked_for(current: int, needed: int) -> None:
    label_map = np.arange(current, dtype=np.int64)
    out = with_label_space(label_map, needed)
    if needed <= current:
        assert out is label_map
        return
    assert out.shape[0] >= max(needed, MIN_CAPACITY)
    assert np.array_equal(out[:current], label_map)
    assert (out[current:] == -1).all()


@given(
    needed=st.integers(min_value=0, max_value=10**9),
    capacity=st.integers(min_value=0, max_value=10**9),
)
def test_growth_is_geometric(needed: int, capacity: int) -> None:
    grown = grown_capacity(needed, capacity)
    assert grown >= needed and grown >= MIN_CAPACITY
    assert grown >= capacity * 1.25 - 1  # the -1: int() truncates
