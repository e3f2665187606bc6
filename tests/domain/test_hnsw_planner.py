"""HNSW's search plan: it admits exactly the live nodes whose label the filter allows, scans
when told to (or, when not told, when ``Limits.scans_matches`` would), and walks with a beam
of at least k that a filter only widens, the more the more selective it is, up to MAX_EF."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from domain.index.hnsw.nodes import Nodes
from domain.index.hnsw.planner import plan_search
from domain.limits import Limits
from domain.models import MAX_EF, IndexType

_DIMENSION = 3
efs = st.integers(min_value=1, max_value=MAX_EF)
ks = st.integers(min_value=1, max_value=200)


def _nodes(labels: list[int], dead: set[int]) -> Nodes:
    """Unlinked nodes for ``labels`` (a graph is not needed to plan), ``dead`` tombstoned."""
    nodes = Nodes(_DIMENSION, 4)
    vectors = np.ones((len(labels), _DIMENSION), dtype=np.float32)
    nodes.append(np.array(labels, dtype=np.int64), vectors, np.zeros(len(labels), np.int32))
    nodes.tombstone(np.array(sorted(dead), dtype=np.int64))
    return nodes


population = st.lists(st.integers(0, 300), min_size=1, max_size=120, unique=True).flatmap(
    lambda labels: st.tuples(
        st.just(labels),
        st.sets(st.sampled_from(labels), max_size=len(labels) - 1),
        st.sets(st.integers(0, 320)),
    )
)


@given(population=population, exact=st.none() | st.booleans(), k=ks, ef=efs)
def test_the_admitted_nodes_are_the_live_allowed_ones(
    population: tuple[list[int], set[int], set[int]], exact: bool | None, k: int, ef: int
) -> None:
    labels, dead, allowed_labels = population
    nodes = _nodes(labels, dead)
    allowed = np.zeros(300, dtype=np.bool_)  # labels 300..320 fall past the mask: not allowed
    allowed[[label for label in allowed_labels if label < 300]] = True
    plan = plan_search(nodes, k, allowed, ef, exact)
    expected = {label for label in labels if label not in dead and label in allowed_labels}
    expected -= set(range(300, 321))
    assert plan.admit is not None
    assert {labels[node] for node in np.flatnonzero(plan.admit).tolist()} == expected
    unfiltered = plan_search(nodes, k, None, ef, exact)
    if dead:
        assert unfiltered.admit is not None
        admitted = {labels[node] for node in np.flatnonzero(unfiltered.admit).tolist()}
        assert admitted == set(labels) - dead
    else:
        assert unfiltered.admit is None


@given(population=population, k=ks, ef=efs)
def test_left_to_itself_it_scans_exactly_when_the_default_limits_say_so(
    population: tuple[list[int], set[int], set[int]], k: int, ef: int
) -> None:
    labels, dead, allowed_labels = population
    nodes = _nodes(labels, dead)
    allowed = np.zeros(321, dtype=np.bool_)
    allowed[sorted(allowed_labels)] = True
    matching = len({label for label in labels if label not in dead} & allowed_labels)
    plan = plan_search(nodes, k, allowed, ef, None)
    scans = Limits().scans_matches(IndexType.HNSW, matching, len(labels) - len(dead))
    assert plan.scan == scans
    assert plan.strategy == ("filtered-scan" if scans else "hnsw-filtered")
    assert not plan_search(nodes, k, None, ef, None).scan


@given(
    size=st.integers(min_value=2, max_value=400),
    k=ks,
    ef=efs,
    data=st.data(),
)
def test_a_filter_widens_the_beam_more_the_fewer_nodes_it_allows(
    size: int, k: int, ef: int, data: st.DataObject
) -> None:
    nodes = _nodes(list(range(size)), set())
    fewer = data.draw(st.integers(min_value=0, max_value=size - 1))
    more = data.draw(st.integers(min_value=fewer + 1, max_value=size))
    plain = plan_search(nodes, k, None, ef, False)
    assert (plain.ef, plain.strategy, plain.scan) == (max(k, ef), "hnsw", False)
    beams = []
    for matching in (fewer, more):
        allowed = np.zeros(size, dtype=np.bool_)
        allowed[:matching] = True
        plan = plan_search(nodes, k, allowed, ef, False)
        assert plan.strategy == "hnsw-filtered" and not plan.scan
        assert plain.ef <= plan.ef <= MAX_EF
        beams.append(plan.ef)
    assert beams[0] >= beams[1]
    if more == size:  # a filter that allows everything does not widen
        assert beams[1] == plain.ef
