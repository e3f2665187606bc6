"""Hierarchical navigable small-world graphs (HNSW), after Malkov & Yashunin
(arXiv:1603.09320) and hnswlib's ``hnswalg.h``: the index object around the compiled
kernels of ``graph.py`` (search), ``insertion.py`` (insertion and the heuristic) and
``repair.py`` (reachability), with ``planner.py`` choosing how each search goes.

Every vector is a node with a random level (geometric, mL = 1/ln M). Layer 0 links each
node to at most 2·M neighbours, upper layers to at most M, chosen by the paper's
neighbour-selection heuristic. A search descends greedily from the top-level entry point to
layer 1, then runs a best-first search on layer 0 with ``ef`` candidates; the ``ef`` found
are re-ranked exactly (``scoring.rank_exact``, in the same kernel) and the best k returned.

The nodes' arrays live in ``nodes.Nodes``.

Time: search O(ef·M·d·log n) expected; insert O(ef_construction·M·d·log n); build n
insertions; remove O(1) (a tombstone) and an O(n) rebuild once a quarter of the nodes are
tombstones. Space: the nodes' arrays (see ``nodes``; about n·(d + 2M)·4 bytes) and n·4
per visited list (one per concurrent search, a few kept).

Concurrency: ``search`` writes nothing shared: its visited marks are borrowed from a pool
and its heaps are the kernel's own; ``add`` and ``remove`` mutate the arrays and need the
library's exclusive lock.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Self

import numpy as np
from numpy.typing import NDArray

from domain.index.batches import fan_out, last_of_each
from domain.index.hnsw.graph import search_graph
from domain.index.hnsw.insertion import insert_nodes
from domain.index.hnsw.nodes import Nodes
from domain.index.hnsw.planner import plan_search
from domain.index.hnsw.repair import connect_layer, reach
from domain.index.hnsw.visited import VisitedList, VisitedPool
from domain.index.scoring import (
    Hits,
    IndexQuery,
    Labels,
    Mask,
    SearchParams,
    StateArrays,
    exact_search,
    kernel_metric,
    prepare_query,
    scores_from_exact,
)
from domain.index.state_header import read_state_header, state_header
from domain.models import HnswParams, IndexSpec, IndexType, Matrix, Metric, Vector
from domain.vectors import prepare

Progress = Callable[[float], None]

_TOMBSTONE_SHARE = 0.25  # rebuild once this share of nodes are tombstones
_LINK_STEP = 2_048  # nodes linked per kernel call: the granularity of build progress
_REPAIR_TAGS = 4  # visited tags a repair may use per node (one per component and round)
_CHECK_ALWAYS_UP_TO = 16_384
_CHECK_SHARE = 64
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
        self._nodes = Nodes(dimension, self._m)
        self._unchecked = 0  # nodes inserted since the last reachability check

    def _reset(self, capacity: int) -> None:
        self._nodes.reset(capacity)
        self._unchecked = 0

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
        return self._nodes.max_level

    @property
    def tombstones(self) -> int:
        return self._nodes.n - self._nodes.live

    def __len__(self) -> int:
        return self._nodes.live

    def __contains__(self, label: int) -> bool:
        return self._nodes.contains(label)

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
            labels, prepared = last_of_each(labels, prepare(vectors, metric))
            index._insert(labels, prepared, progress, check=True)
        progress(1.0)
        return index

    def add(self, labels: Labels, vectors: Matrix) -> None:
        """Insert or replace one vector per label (the last wins when a label repeats)."""
        if labels.shape[0] == 0:
            return
        labels, prepared = last_of_each(labels, prepare(vectors, self._metric))
        self._nodes.tombstone(labels)
        self._insert(labels, prepared)
        self._compact_if_needed()

    def remove(self, labels: Labels) -> None:
        """Tombstone these labels (unknown ones are ignored); rebuilds once a quarter of the
        nodes are tombstones, so memory follows the live count."""
        self._nodes.tombstone(labels)
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
        is planned here by ``Limits.scans_matches`` with the default thresholds (see
        ``planner``). Strategies: "hnsw", "hnsw-filtered", "filtered-scan", "scan".
        """
        nodes = self._nodes
        if nodes.live == 0 or k <= 0:
            return Hits.empty("hnsw")
        q = prepare_query(query, self._metric)
        ef = self._params.ef_search if params is None or params.ef is None else params.ef
        plan = plan_search(nodes, k, allowed, ef, exact)
        if plan.scan:
            return self._scan(q, k, plan.admit, plan.strategy)
        admit = _ADMIT_ALL if plan.admit is None else plan.admit
        found, distances = self._walk(q, plan.ef, k, admit)
        scores = scores_from_exact(-distances, self._metric)
        hits = Hits(nodes.node_labels[found], scores, plan.strategy)
        hits.extra["ef"] = float(plan.ef)
        return hits

    def search_many(
        self, queries: Sequence[IndexQuery], *, executor: Executor | None = None
    ) -> list[Hits]:
        """What ``search`` answers for each query, in order; the walks run on
        ``executor``'s threads when given, each one compiled call without the GIL."""
        return fan_out(
            lambda q: self.search(q.vector, q.k, allowed=q.allowed, params=q.params, exact=q.exact),
            queries,
            executor,
        )

    def unreachable(self) -> list[int]:
        """For each layer, bottom first, how many of its nodes (tombstones included) the
        entry point cannot reach: all zeros when every search can get to every node.
        O(n·M) per layer."""
        if self._nodes.entry < 0:
            return []
        levels = self._nodes.levels[: self._nodes.n]
        return [
            int(np.count_nonzero(~self._reachable(level)[levels >= level]))
            for level in range(self._nodes.max_level + 1)
        ]

    def items(self) -> tuple[Labels, Matrix]:
        """Copies of the live labels and their stored (prepared) vectors, in node order."""
        return self._nodes.items()

    def nbytes(self) -> int:
        return self._nodes.nbytes() + self._visited.nbytes()

    # -- snapshots ----------------------------------------------------------------------

    def to_state(self) -> StateArrays:
        """Arrays that ``from_state`` turns back into an identical index, RNG state included."""
        return {
            **state_header(IndexType.HNSW, self._metric, self._dimension),
            "params": np.array(
                [self._params.m, self._params.ef_construction, self._params.ef_search],
                dtype=np.int64,
            ),
            "seed": np.array(self._seed, dtype=np.int64),
            "rng": np.array(json.dumps(self._rng.bit_generator.state)),
            **self._nodes.to_state(),
        }

    @classmethod
    def from_state(cls, state: StateArrays) -> Self:
        """The index saved by ``to_state``; raises ``ValueError`` on inconsistent arrays.

        Every link is checked to point at a node before the kernels (which do not check
        bounds) may walk it.
        """
        metric, dimension = read_state_header(state, IndexType.HNSW)
        m, ef_construction, ef_search = (int(v) for v in state["params"])
        params = HnswParams(m=m, ef_construction=ef_construction, ef_search=ef_search)
        index = cls(dimension, metric, params, int(state["seed"]))
        index._nodes.load_state(state)
        index._rng.bit_generator.state = json.loads(str(state["rng"]))
        return index

    # -- search -------------------------------------------------------------------------

    def _walk(
        self, q: Vector, ef: int, k: int, admit: Mask
    ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """The up to ``k`` admitted nodes nearest ``q`` among the ``ef`` the graph walk
        finds, nearest first, with their exact squared distances (negated dot products)."""
        nodes = self._nodes
        visited = self._visited.take(nodes.n)
        try:
            return search_graph(
                nodes.graph(),
                self._kernel_metric,
                q,
                nodes.entry,
                nodes.max_level,
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
        nodes = self._nodes
        rows = np.arange(nodes.n) if admit is None else np.flatnonzero(admit)
        if rows.shape[0] == 0:
            return Hits.empty(strategy)
        best, scores = exact_search(
            nodes.vectors[rows], q, self._metric, k, sq_norms=nodes.sq_norms[rows]
        )
        return Hits(nodes.node_labels[rows[best]], scores, strategy)

    def _reachable(self, level: int) -> Mask:
        """Nodes the entry point reaches on ``level``. O(nodes·width)."""
        seen = np.zeros(self._nodes.n, dtype=np.bool_)
        reach(self._nodes.graph(), level, self._nodes.entry, seen)
        return seen

    # -- insertion and compaction ----------------------------------------------------------

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
        nodes = self._nodes
        first = nodes.append(labels, prepared, self._draw_levels(labels.shape[0]))
        end = nodes.n
        visited = self._visited.take(end)
        try:
            for start in range(first, end, _LINK_STEP):
                stop = min(end, start + _LINK_STEP)
                layers = int(nodes.levels[start:stop].max()) + 1
                base = visited.claim((stop - start) * layers) - 1
                nodes.entry, nodes.max_level, _ = insert_nodes(
                    nodes.graph(),
                    self._kernel_metric,
                    self._m,
                    self._params.ef_construction,
                    start,
                    stop,
                    nodes.entry,
                    nodes.max_level,
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
        n = self._nodes.n
        return 1 if n <= _CHECK_ALWAYS_UP_TO else n // _CHECK_SHARE

    def _connect_layers(self, visited: VisitedList) -> None:
        """Link every unreached component of every layer back to the entry point's."""
        nodes = self._nodes
        for level in range(nodes.max_level, -1, -1):
            _, visited.tag = connect_layer(
                nodes.graph(),
                nodes.n,
                self._kernel_metric,
                self._m,
                self._params.ef_construction,
                level,
                nodes.entry,
                visited.marks,
                visited.claim(_REPAIR_TAGS * nodes.n) - 1,
            )
        self._unchecked = 0

    def _draw_levels(self, count: int) -> NDArray[np.int32]:
        uniform = 1.0 - self._rng.random(count)  # in (0, 1]
        return np.floor(-np.log(uniform) * self._ml).astype(np.int32)

    def _compact_if_needed(self) -> None:
        n = self._nodes.n
        if n - self._nodes.live <= _TOMBSTONE_SHARE * n:
            return
        labels, vectors = self.items()
        self._reset(labels.shape[0])
        if labels.shape[0]:
            self._insert(labels, vectors, check=True)
