"""Hierarchical navigable small-world graphs (HNSW), after Malkov & Yashunin
(arXiv:1603.09320) and hnswlib's ``hnswalg.h``: the index object around the compiled
kernels of ``graph.py`` (search), ``insertion.py`` (insertion and the heuristic) and
``repair.py`` (reachability).

Every vector is a node with a random level (geometric, mL = 1/ln M). Layer 0 links each
node to at most 2·M neighbours, upper layers to at most M, chosen by the paper's
neighbour-selection heuristic. A search descends greedily from the top-level entry point to
layer 1, then runs a best-first search on layer 0 with ``ef`` candidates; the ``ef`` found
are re-ranked exactly (``scoring.rank_exact``, in the same kernel) and the best k returned.

Time: search O(ef·M·d·log n) expected; insert O(ef_construction·M·d·log n); build n
insertions; remove O(1) (a tombstone) and an O(n) rebuild once a quarter of the nodes are
tombstones. Space: n·d·4 bytes of vectors, n·2M·4 of layer-0 links, about n/M·levels·M·4
of upper links, ~20 bytes of per-node bookkeeping, 8 per label ever seen, and n·4 per
visited list (one per concurrent search, a few kept).

Concurrency: ``search`` writes nothing shared: its visited marks are borrowed from a pool
and its heaps are the kernel's own; ``add`` and ``remove`` mutate the arrays and need the
library's exclusive lock.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any, Self

import numpy as np
from numpy.typing import NDArray

from domain.index.hnsw.graph import Graph, search_graph
from domain.index.hnsw.insertion import insert_nodes
from domain.index.hnsw.repair import connect_layer, reach
from domain.index.hnsw.visited import VisitedList, VisitedPool
from domain.index.scoring import (
    Hits,
    Labels,
    Mask,
    SearchParams,
    StateArrays,
    allowed_rows,
    exact_search,
    kernel_metric,
    prepare_query,
    scores_from_exact,
    squared_norms,
)
from domain.limits import Limits
from domain.models import MAX_EF, HnswParams, IndexSpec, IndexType, Matrix, Metric, Vector
from domain.vectors import prepare

Progress = Callable[[float], None]

_GROWTH = 1.25
_MIN_CAPACITY = 64
_TOMBSTONE_SHARE = 0.25  # rebuild once this share of nodes are tombstones
_LINK_STEP = 2_048  # nodes linked per kernel call: the granularity of build progress
_REPAIR_TAGS = 4  # visited tags a repair may use per node (one per component and round)
_CHECK_ALWAYS_UP_TO = 16_384
_CHECK_SHARE = 64
# Filters: walk the graph with a wider beam, ef / share^¼. The walk keeps only allowed nodes
# among its ef results, so ef already counts matches; on MiniLM vectors (81k) ef / √share
# bought no recall (0.995 -> 1.0 at 10%) for a 3.4x slower walk, slower than scanning the
# matches. Whether to walk or scan the matches is the planner's call (Limits.scans_matches);
# a caller that does not make it (exact=None) gets the default thresholds.
_WIDEN_POWER = 0.25
_DEFAULT_PLAN = Limits()
_ADMIT_ALL: Mask = np.empty(0, dtype=np.bool_)


def _no_progress(_: float) -> None:
    return None


class HnswIndex:
    """Implements ``domain.ports.VectorIndex`` approximately; ``exact=True`` scans.

    Deletes are tombstones: a deleted node is still walked through (the graph stays
    connected) but never returned; once a quarter of the nodes are tombstones the graph is
    rebuilt from the live ones. Replacing a label deletes its node and inserts a new one.
    """

    def __init__(
        self,
        dimension: int,
        metric: Metric,
        params: HnswParams | None = None,
        seed: int = 0,
    ) -> None:
        self._dimension = dimension
        self._metric = metric
        self._kernel_metric = kernel_metric(metric)
        self._params = params or HnswParams()
        self._m = self._params.m
        self._ml = 1.0 / math.log(self._params.m)
        self._seed = seed
        self._rng = np.random.default_rng(seed)
        self._visited = VisitedPool()
        self._node_of: NDArray[np.int64] = np.empty(0, dtype=np.int64)  # label -> node, -1
        self._reset(0)

    def _reset(self, capacity: int) -> None:
        d, m = self._dimension, self._m
        self._n = 0  # nodes used, tombstones included
        self._live = 0
        self._vectors: Matrix = np.empty((capacity, d), dtype=np.float32)
        self._sq_norms: NDArray[np.float32] = np.empty(capacity, dtype=np.float32)
        self._node_labels: Labels = np.empty(capacity, dtype=np.int64)
        self._levels: NDArray[np.int32] = np.empty(capacity, dtype=np.int32)
        self._alive: Mask = np.zeros(capacity, dtype=np.bool_)
        self._links0: NDArray[np.int32] = np.full((capacity, 2 * m), -1, dtype=np.int32)
        self._count0: NDArray[np.int32] = np.zeros(capacity, dtype=np.int32)
        self._up_row: NDArray[np.int32] = np.full(capacity, -1, dtype=np.int32)
        self._up_links: NDArray[np.int32] = np.full((0, 1, m), -1, dtype=np.int32)
        self._up_count: NDArray[np.int32] = np.zeros((0, 1), dtype=np.int32)
        self._up_rows = 0
        self._entry = -1
        self._max_level = -1
        self._unchecked = 0  # nodes inserted since the last reachability check
        self._node_of[:] = -1

    # -- the VectorIndex protocol -------------------------------------------------------

    @property
    def spec(self) -> IndexSpec:
        return IndexSpec(IndexType.HNSW, self._params)

    @property
    def metric(self) -> Metric:
        return self._metric

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def needs_rebuild(self) -> bool:
        """Never: the graph compacts itself once a quarter of its nodes are tombstones."""
        return False

    @property
    def max_level(self) -> int:
        return self._max_level

    @property
    def tombstones(self) -> int:
        return self._n - self._live

    def __len__(self) -> int:
        return self._live

    def __contains__(self, label: int) -> bool:
        return 0 <= label < self._node_of.shape[0] and bool(self._node_of[label] >= 0)

    @classmethod
    def build(
        cls,
        dimension: int,
        metric: Metric,
        params: HnswParams | None,
        labels: Labels,
        vectors: Matrix,
        progress: Progress = _no_progress,
        seed: int = 0,
    ) -> Self:
        """A graph over ``vectors``, inserted in order, reporting progress in [0, 1]."""
        index = cls(dimension, metric, params, seed)
        if labels.shape[0]:
            labels, prepared = _last_of_each(labels, prepare(vectors, metric))
            index._insert(labels, prepared, progress, check=True)
        progress(1.0)
        return index

    def add(self, labels: Labels, vectors: Matrix) -> None:
        """Insert or replace one vector per label (the last wins when a label repeats)."""
        if labels.shape[0] == 0:
            return
        labels, prepared = _last_of_each(labels, prepare(vectors, self._metric))
        self._tombstone(labels)
        self._insert(labels, prepared)
        self._compact_if_needed()

    def remove(self, labels: Labels) -> None:
        """Tombstone these labels (unknown ones are ignored); rebuilds once a quarter of the
        nodes are tombstones, so memory follows the live count."""
        self._tombstone(labels)
        self._compact_if_needed()

    def search(
        self,
        query: Vector,
        k: int,
        *,
        allowed: Mask | None = None,
        params: SearchParams | None = None,
        exact: bool | None = None,
    ) -> Hits:
        """Up to ``k`` nearest live, allowed labels, best first.

        ``ef`` (default ``ef_search``, per query ``params.ef``) is raised to ``k``.
        ``exact=True`` scans the allowed nodes; ``exact=False`` walks, going through every
        node but only admitting allowed ones, with ef widened by 1/share^¼ (up to
        ``MAX_EF``). The search service plans and says which; with ``exact=None`` a filter
        is planned here by ``Limits.scans_matches`` with the default thresholds.
        Strategies: "hnsw", "hnsw-filtered", "filtered-scan", "scan".
        """
        if self._live == 0 or k <= 0:
            return Hits.empty("hnsw")
        q = prepare_query(query, self._metric)
        n = self._n
        admit: Mask | None = None if self._live == n else self._alive[:n]
        if allowed is not None:
            admit = allowed_rows(allowed, self._node_labels[:n])
            assert admit is not None
            admit &= self._alive[:n]
        n_allowed = 0 if admit is None or allowed is None else int(np.count_nonzero(admit))
        if exact is None:
            exact = allowed is not None and _DEFAULT_PLAN.scans_matches(
                IndexType.HNSW, n_allowed, self._live
            )
        if exact:
            return self._scan(q, k, admit, "scan" if allowed is None else "filtered-scan")
        ef = max(k, self._params.ef_search if params is None or params.ef is None else params.ef)
        strategy = "hnsw"
        if allowed is not None:
            share = max(n_allowed, 1) / self._live
            ef = min(MAX_EF, max(ef, int(ef / share**_WIDEN_POWER)))
            strategy = "hnsw-filtered"
        nodes, distances = self._walk(q, ef, k, _ADMIT_ALL if admit is None else admit)
        scores = scores_from_exact(-distances, self._metric)
        hits = Hits(self._node_labels[nodes], scores, strategy)
        hits.extra["ef"] = float(ef)
        return hits

    def unreachable(self) -> list[int]:
        """For each layer, bottom first, how many of its nodes (tombstones included) the
        entry point cannot reach: all zeros when every search can get to every node.
        O(n·M) per layer."""
        if self._entry < 0:
            return []
        levels = self._levels[: self._n]
        return [
            int(np.count_nonzero(~self._reachable(level)[levels >= level]))
            for level in range(self._max_level + 1)
        ]

    def items(self) -> tuple[Labels, Matrix]:
        """Copies of the live labels and their stored (prepared) vectors, in node order."""
        live = np.flatnonzero(self._alive[: self._n])
        return self._node_labels[live], self._vectors[live]

    def nbytes(self) -> int:
        arrays: list[NDArray[Any]] = [
            self._vectors,
            self._sq_norms,
            self._node_labels,
            self._levels,
            self._alive,
            self._links0,
            self._count0,
            self._up_row,
            self._up_links,
            self._up_count,
            self._node_of,
        ]
        return int(sum(a.nbytes for a in arrays)) + self._visited.nbytes()

    # -- snapshots ----------------------------------------------------------------------

    def to_state(self) -> StateArrays:
        """Arrays that ``from_state`` turns back into an identical index, RNG state included."""
        n, rows = self._n, self._up_rows
        return {
            "kind": np.array(IndexType.HNSW.value),
            "metric": np.array(self._metric.value),
            "dimension": np.array(self._dimension, dtype=np.int64),
            "params": np.array(
                [self._params.m, self._params.ef_construction, self._params.ef_search],
                dtype=np.int64,
            ),
            "seed": np.array(self._seed, dtype=np.int64),
            "rng": np.array(json.dumps(self._rng.bit_generator.state)),
            "entry": np.array([self._entry, self._max_level], dtype=np.int64),
            "vectors": self._vectors[:n].copy(),
            "node_labels": self._node_labels[:n].copy(),
            "levels": self._levels[:n].copy(),
            "alive": self._alive[:n].copy(),
            "links0": self._links0[:n].copy(),
            "count0": self._count0[:n].copy(),
            "up_row": self._up_row[:n].copy(),
            "up_links": self._up_links[:rows].copy(),
            "up_count": self._up_count[:rows].copy(),
        }

    @classmethod
    def from_state(cls, state: StateArrays) -> Self:
        """The index saved by ``to_state``; raises ``ValueError`` on inconsistent arrays.

        Every link is checked to point at a node before the kernels (which do not check
        bounds) may walk it.
        """
        if str(state["kind"]) != IndexType.HNSW.value:
            raise ValueError("not an HNSW index state")
        m, ef_construction, ef_search = (int(v) for v in state["params"])
        params = HnswParams(m=m, ef_construction=ef_construction, ef_search=ef_search)
        dimension = int(state["dimension"])
        index = cls(dimension, Metric(str(state["metric"])), params, int(state["seed"]))
        vectors = np.ascontiguousarray(state["vectors"], dtype=np.float32)
        levels = np.ascontiguousarray(state["levels"], dtype=np.int32)
        links0 = np.ascontiguousarray(state["links0"], dtype=np.int32)
        count0 = np.ascontiguousarray(state["count0"], dtype=np.int32)
        up_row = np.ascontiguousarray(state["up_row"], dtype=np.int32)
        up_links = np.ascontiguousarray(state["up_links"], dtype=np.int32)
        up_count = np.ascontiguousarray(state["up_count"], dtype=np.int32)
        entry, max_level = (int(v) for v in state["entry"])
        n = vectors.shape[0]
        _check_graph(n, dimension, m, vectors, levels, links0, count0, up_row, up_links, up_count)
        for key in ("node_labels", "alive"):
            if state[key].shape != (n,):
                raise ValueError(f"HNSW state {key} does not agree with the vectors")
        if n and not (0 <= entry < n and max_level == levels[entry]):
            raise ValueError("HNSW state entry point is not a top-level node")
        index._rng.bit_generator.state = json.loads(str(state["rng"]))
        index._reset(n)
        index._n = n
        index._vectors[:] = vectors
        index._sq_norms[:] = squared_norms(vectors)
        index._node_labels[:] = state["node_labels"]
        index._levels[:] = levels
        index._alive[:] = state["alive"]
        index._links0[:] = links0
        index._count0[:] = count0
        index._up_row[:] = up_row
        index._up_links = up_links.copy()
        index._up_count = up_count.copy()
        index._up_rows = up_links.shape[0]
        index._entry, index._max_level = (entry, max_level) if n else (-1, -1)
        live = np.flatnonzero(index._alive[:n])
        index._live = live.shape[0]
        if index._live:
            index._ensure_label_space(int(index._node_labels[live].max()) + 1)
            index._node_of[index._node_labels[live]] = live
        return index

    # -- search -------------------------------------------------------------------------

    def _walk(
        self, q: Vector, ef: int, k: int, admit: Mask
    ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """The up to ``k`` admitted nodes nearest ``q`` among the ``ef`` the graph walk
        finds, nearest first, with their exact squared distances (negated dot products)."""
        visited = self._visited.take(self._n)
        try:
            return search_graph(
                self._graph(),
                self._kernel_metric,
                q,
                self._entry,
                self._max_level,
                ef,
                k,
                visited.marks,
                visited.claim(),
                admit,
            )
        finally:
            self._visited.give(visited)

    def _scan(self, q: Vector, k: int, admit: Mask | None, strategy: str) -> Hits:
        """Exact top-k among the admitted nodes (all live ones when ``admit`` is None)."""
        n = self._n
        rows = np.arange(n) if admit is None else np.flatnonzero(admit)
        if rows.shape[0] == 0:
            return Hits.empty(strategy)
        best, scores = exact_search(
            self._vectors[rows], q, self._metric, k, sq_norms=self._sq_norms[rows]
        )
        return Hits(self._node_labels[rows[best]], scores, strategy)

    def _graph(self) -> Graph:
        """The arrays as the kernels take them (the current ones: growth replaces them)."""
        return Graph(
            self._vectors,
            self._levels,
            self._links0,
            self._count0,
            self._up_row,
            self._up_links,
            self._up_count,
        )

    def _reachable(self, level: int) -> Mask:
        """Nodes the entry point reaches on ``level``. O(nodes·width)."""
        seen = np.zeros(self._n, dtype=np.bool_)
        reach(self._graph(), level, self._entry, seen)
        return seen

    # -- insertion and storage ----------------------------------------------------------

    def _insert(
        self,
        labels: Labels,
        prepared: Matrix,
        progress: Progress = _no_progress,
        *,
        check: bool = False,
    ) -> None:
        """Store new nodes and link them into the graph, ``_LINK_STEP`` at a time; then
        check every layer's reachability when ``check`` or when it is due (see
        ``_check_due``)."""
        first = self._append(labels, prepared)
        end = self._n
        visited = self._visited.take(end)
        try:
            for start in range(first, end, _LINK_STEP):
                stop = min(end, start + _LINK_STEP)
                layers = int(self._levels[start:stop].max()) + 1
                base = visited.claim((stop - start) * layers) - 1
                self._entry, self._max_level, _ = insert_nodes(
                    self._graph(),
                    self._kernel_metric,
                    self._m,
                    self._params.ef_construction,
                    start,
                    stop,
                    self._entry,
                    self._max_level,
                    visited.marks,
                    base,
                )
                progress(0.99 * (stop - first) / (end - first))
            self._unchecked += end - first
            if check or self._unchecked >= self._check_due():
                self._connect_layers(visited)
        finally:
            self._visited.give(visited)

    def _check_due(self) -> int:
        """Inserted nodes after which reachability is checked again: every insertion up to
        16,384 nodes (the walk costs under ~2 ms there), then every n/64 (one walk over
        81k nodes costs ~18 ms, ~14 us amortised per insertion). In between, a node whose
        in-links the heuristic pruned can stay unreachable until the next check."""
        return 1 if self._n <= _CHECK_ALWAYS_UP_TO else self._n // _CHECK_SHARE

    def _connect_layers(self, visited: VisitedList) -> None:
        """Link every unreached component of every layer back to the entry point's."""
        for level in range(self._max_level, -1, -1):
            _, visited.tag = connect_layer(
                self._graph(),
                self._n,
                self._kernel_metric,
                self._m,
                self._params.ef_construction,
                level,
                self._entry,
                visited.marks,
                visited.claim(_REPAIR_TAGS * self._n) - 1,
            )
        self._unchecked = 0

    def _append(self, labels: Labels, prepared: Matrix) -> int:
        """Store new nodes (levels drawn now) without linking them; returns the first."""
        count = labels.shape[0]
        first = self._n
        self._ensure_capacity(first + count)
        self._ensure_label_space(int(labels.max()) + 1)
        end = first + count
        self._vectors[first:end] = prepared
        self._sq_norms[first:end] = squared_norms(prepared)
        self._node_labels[first:end] = labels
        levels = self._draw_levels(count)
        self._levels[first:end] = levels
        self._alive[first:end] = True
        self._count0[first:end] = 0
        self._up_row[first:end] = -1
        upper = np.flatnonzero(levels > 0)
        if upper.shape[0]:
            self._ensure_upper(self._up_rows + upper.shape[0], int(levels.max()))
            rows = np.arange(self._up_rows, self._up_rows + upper.shape[0], dtype=np.int32)
            self._up_row[first + upper] = rows
            self._up_count[rows] = 0
            self._up_rows += upper.shape[0]
        self._node_of[labels] = np.arange(first, end)
        self._n = end
        self._live += count
        return first

    def _draw_levels(self, count: int) -> NDArray[np.int32]:
        uniform = 1.0 - self._rng.random(count)  # in (0, 1]
        return np.floor(-np.log(uniform) * self._ml).astype(np.int32)

    def _tombstone(self, labels: Labels) -> None:
        known = labels[(labels >= 0) & (labels < self._node_of.shape[0])]
        nodes = np.unique(self._node_of[known])
        nodes = nodes[nodes >= 0]
        if nodes.shape[0] == 0:
            return
        self._alive[nodes] = False
        self._node_of[self._node_labels[nodes]] = -1
        self._live -= nodes.shape[0]

    def _compact_if_needed(self) -> None:
        if self._n - self._live <= _TOMBSTONE_SHARE * self._n:
            return
        labels, vectors = self.items()
        self._reset(labels.shape[0])
        if labels.shape[0]:
            self._insert(labels, vectors, check=True)

    def _ensure_capacity(self, needed: int) -> None:
        capacity = self._vectors.shape[0]
        if needed <= capacity:
            return
        size = max(needed, int(capacity * _GROWTH), _MIN_CAPACITY)
        n = self._n
        self._vectors = _grown(self._vectors, size, n)
        self._sq_norms = _grown(self._sq_norms, size, n)
        self._node_labels = _grown(self._node_labels, size, n)
        self._levels = _grown(self._levels, size, n)
        self._alive = _grown(self._alive, size, n, fill=False)
        self._links0 = _grown(self._links0, size, n, fill=-1)
        self._count0 = _grown(self._count0, size, n, fill=0)
        self._up_row = _grown(self._up_row, size, n, fill=-1)

    def _ensure_upper(self, rows: int, levels: int) -> None:
        capacity, have_levels, m = self._up_links.shape
        if rows <= capacity and levels <= have_levels:
            return
        size = max(rows, int(capacity * _GROWTH), _MIN_CAPACITY) if rows > capacity else capacity
        depth = max(levels, have_levels)
        links = np.full((size, depth, m), -1, dtype=np.int32)
        links[: self._up_rows, :have_levels] = self._up_links[: self._up_rows]
        counts = np.zeros((size, depth), dtype=np.int32)
        counts[: self._up_rows, :have_levels] = self._up_count[: self._up_rows]
        self._up_links, self._up_count = links, counts

    def _ensure_label_space(self, needed: int) -> None:
        current = self._node_of.shape[0]
        if needed <= current:
            return
        grown = np.full(max(needed, int(current * _GROWTH), _MIN_CAPACITY), -1, dtype=np.int64)
        grown[:current] = self._node_of
        self._node_of = grown


def _check_graph(
    n: int,
    dimension: int,
    m: int,
    vectors: Matrix,
    levels: NDArray[np.int32],
    links0: NDArray[np.int32],
    count0: NDArray[np.int32],
    up_row: NDArray[np.int32],
    up_links: NDArray[np.int32],
    up_count: NDArray[np.int32],
) -> None:
    """Raise ``ValueError`` unless the arrays form a graph the kernels can walk safely."""
    rows = up_links.shape[0] if up_links.ndim == 3 else -1
    shapes_agree = (
        vectors.ndim == 2
        and vectors.shape[1] == dimension
        and levels.shape == (n,)
        and links0.shape == (n, 2 * m)
        and count0.shape == (n,)
        and up_row.shape == (n,)
        and up_links.ndim == 3
        and up_links.shape[2] == m
        and up_count.shape == up_links.shape[:2]
    )
    if not shapes_agree:
        raise ValueError("HNSW state arrays do not agree with each other")
    upper = levels > 0
    in_range = (
        bool(((links0 >= -1) & (links0 < n)).all())
        and bool(((count0 >= 0) & (count0 <= 2 * m)).all())
        and bool(((up_links >= -1) & (up_links < n)).all())
        and bool(((up_count >= 0) & (up_count <= m)).all())
        and bool((levels >= 0).all())
        and bool(((up_row >= 0) == upper).all())
        and bool((up_row < rows).all())
        and (not upper.any() or int(levels.max()) <= up_links.shape[1])
    )
    used0 = np.arange(2 * m) < count0[:, None]
    if not in_range or bool((links0[used0] < 0).any()):
        raise ValueError("HNSW state links point outside the graph")
    used_up = np.arange(m) < up_count[:, :, None]
    if bool((up_links[used_up] < 0).any()):
        raise ValueError("HNSW state links point outside the graph")


def _grown(array: NDArray[Any], size: int, keep: int, fill: Any = None) -> NDArray[Any]:
    shape = (size, *array.shape[1:])
    out = np.empty(shape, dtype=array.dtype) if fill is None else np.full(shape, fill, array.dtype)
    out[:keep] = array[:keep]
    return out


def _last_of_each(labels: Labels, vectors: Matrix) -> tuple[Labels, Matrix]:
    """Deduplicate ``labels`` keeping each one's last vector."""
    uniq, first_in_reversed = np.unique(labels[::-1], return_index=True)
    if uniq.shape[0] == labels.shape[0]:
        return labels, vectors
    return uniq, vectors[labels.shape[0] - 1 - first_in_reversed]
