"""IVF's probe width: every list when exact; otherwise the query's or the index's nprobe,
clamped to the lists, and under a filter admitting a share s the fewest lists w with
w·√s >= that width (so the allowed rows probed are about as many as unfiltered)."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from domain.index.ivf.planner import probe_width
from domain.index.scoring import IndexQuery, Mask, SearchParams

_VECTOR = np.zeros(4, dtype=np.float32)
nlists = st.integers(min_value=1, max_value=5_000)
widths = st.integers(min_value=1, max_value=6_000)


def _query(allowed: Mask | None = None, nprobe: int | None = None) -> IndexQuery:
    params = None if nprobe is None else SearchParams(nprobe=nprobe)
    return IndexQuery(_VECTOR, 10, allowed, params)


def _mask(size: int, matching: int) -> Mask:
    mask = np.zeros(size, dtype=np.bool_)
    mask[:matching] = True
    return mask


@given(nlist=nlists, nprobe=widths, asked=st.none() | widths)
def test_an_exact_query_probes_every_list(nlist: int, nprobe: int, asked: int | None) -> None:
    query = IndexQuery(_VECTOR, 10, _mask(50, 3), SearchParams(nprobe=asked), exact=True)
    assert probe_width(query, nlist, nprobe, 50) == nlist


@given(nlist=nlists, nprobe=widths, asked=st.none() | widths)
def test_without_a_filter_the_width_is_the_asked_or_default_one_within_the_lists(
    nlist: int, nprobe: int, asked: int | None
) -> None:
    wanted = nprobe if asked is None else asked
    assert probe_width(_query(nprobe=asked), nlist, nprobe, 1_000) == min(wanted, nlist)


@given(
    nlist=nlists,
    nprobe=widths,
    size=st.integers(min_value=1, max_value=100_000),
    data=st.data(),
)
def test_a_filter_widens_to_the_fewest_lists_that_hold_as_many_allowed_rows(
    nlist: int, nprobe: int, size: int, data: st.DataObject
) -> None:
    matching = data.draw(st.integers(min_value=0, max_value=size))
    width = probe_width(_query(_mask(size, matching)), nlist, nprobe, size)
    base = min(nprobe, nlist)
    share = max(matching, 1) / size  # a filter matching nothing counts as one row
    assert base <= width <= nlist
    if width < nlist:
        # Exact in float64 up to a rounding of the square root; the margin only admits it.
        assert width * math.sqrt(share) >= base * (1 - 1e-12)
        assert (width - 1) * math.sqrt(share) < base


@given(nlist=nlists, nprobe=widths, size=st.integers(min_value=2, max_value=10_000), data=st.data())
def test_a_more_selective_filter_never_probes_fewer_lists(
    nlist: int, nprobe: int, size: int, data: st.DataObject
) -> None:
    fewer = data.draw(st.integers(min_value=0, max_value=size - 1))
    more = data.draw(st.integers(min_value=fewer + 1, max_value=size))
    narrow = probe_width(_query(_mask(size, fewer)), nlist, nprobe, size)
    broad = probe_width(_query(_mask(size, more)), nlist, nprobe, size)
    assert narrow >= broad
