"""Hierarchical navigable small-world graphs (HNSW), after Malkov & Yashunin (arXiv:1603.09320)
and hnswlib's ``hnswalg.h``, in NumPy.

Every vector is a node with a random level (geometric, mL = 1/ln M). Layer 0 links each node
to at most 2·M neighbours, upper layers to at most M, chosen by the paper's neighbour-selection
heuristic (Algorithm 4). A search descends greedily from the top-level entry point to layer
1, searches layer 1 with up to ``ef`` candidates (at most 64) and then runs a best-first
search on layer 0 from them with ``ef`` candidates.

NumPy layout: vectors in one contiguous float32 matrix, layer-0 links in a fixed-width
(n, 2M) int32 matrix and upper links in an (n_upper, levels, M) int32 block, both padded
with -1, visited marks as a generation counter in a reusable uint32 array. The search expands
a small beam of the best candidates per step so that each step is a handful of NumPy calls
over all their neighbour lists at once.

Two ways in: one-by-one insertion (Algorithm 1, for small batches) and a bulk build for large
ones. The bulk build inserts the upper-layer nodes (about n/M) one by one, which gives the
upper layers their long-range links, and makes layer 0 from approximate k-nearest-neighbour
candidates (blocked matrix products within k-means partitions), pruned with the same
heuristic, with the reverse links added and pruned again, as insertion would; upper-layer
nodes also keep their layer-1 links on layer 0. A nearest-neighbour graph of clustered data
is one island per cluster, so every layer is then repaired: a breadth-first walk from the
entry point finds the unreached nodes and each unreached component is linked both ways to
its nearest reached nodes, until the entry point reaches every node.

Time: search O(ef·M·d·log n) expected; insert O(ef_construction·M·d·log n); bulk build
O(n·√n·p·d) for the candidates (p probed partitions) plus O(n·C²·d) for the heuristic over
C candidates per node, plus n/M insertions and O(n·M) per reachability walk, with one
insertion-sized search per repaired component; remove O(1) (a tombstone) and an O(n)
rebuild once a quarter of the nodes are tombstones. Space: n·d·4 bytes of vectors, n·2M·4
of layer-0 links, about n/M·levels·M·4 of upper links, ~20 bytes of per-node bookkeeping
and 8 per label ever seen.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any, Self

import numpy as np
from numpy.typing import NDArray

from domain.index.kmeans import train_kmeans
from domain.index.scoring import (
    Hits,
    Keys,
    Labels,
    Mask,
    SearchParams,
    StateArrays,
    allowed_rows,
    keys_for,
    prepare_query,
    squared_norms,
    to_scores,
    top_k,
)
from domain.models import HnswParams, IndexSpec, IndexType, Matrix, Metric, Vector
from domain.vectors import prepare

Progress = Callable[[float], None]
Nodes = NDArray[np.int64]
Links = NDArray[np.int32]

_GROWTH = 1.25
_MIN_CAPACITY = 64
_BEAM = 4  # candidates expanded per search step
# A batch at least this large, and at least 1/32 of the resulting index, is bulk-built.
_BULK_MIN = 64
_BULK_SHARE = 32
_TOMBSTONE_SHARE = 0.25  # rebuild once this share of nodes are tombstones
_EXACT_CANDIDATES_UP_TO = 8_192  # up to this many nodes, layer-0 candidates are exact
_CANDIDATE_BLOCK = 1_024
_SELECT_BATCH = 256
# Each node is filed under this many nearest partitions, and compared with every node filed
# under its nearest one; then NN-descent looks at this many candidates of candidates.
_SOFT_PARTITIONS = 16
# The heuristic picks each node's M forward links among its 2·M nearest candidates.
_FORWARD_POOL_PER_M = 2
_REFINE_FAN = 8
# Connectivity repair: rounds of "find the nodes the entry point cannot reach, link each
# unreached component to its nearest reached nodes"; a repair link overwrites at most this
# share of a full list (from its tail, where the farthest reverse links are).
_REPAIR_ROUNDS = 8
_REPAIR_SLOTS_SHARE = 0.5
# Filters: scan the allowed nodes when there are few of them, else walk the graph with a
# wider beam, ef / share^¼. The walk keeps only allowed nodes among its ef results, so ef
# already counts matches; on MiniLM vectors (81k) ef / √share bought no recall (0.995 ->
# 1.0 at 10%) for a 3.4x slower walk, slower than scanning the matches.
_WIDEN_POWER = 0.25
_SCAN_ALLOWED_UP_TO = 4_096
# Below 15% the walk loses to the scan on the 81k MiniLM set (10%: 48 vs 97 QPS through
# the service, recall 0.999 vs 1; benchmarks/filtered.py).
_SCAN_ALLOWED_SHARE = 0.15
_MAX_EF = 4_096
_UPPER_EF_CAP = 64  # most candidates a query keeps on layer 1 (the layers above are greedy)


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
        self._params = params or HnswParams()
        self._m = self._params.m
        self._m0 = 2 * self._params.m
        self._ml = 1.0 / math.log(self._params.m)
        self._seed = seed
        self._rng = np.random.default_rng(seed)
        self._node_of: NDArray[np.int64] = np.empty(0, dtype=np.int64)  # label -> node, -1
        self._reset(0)

    def _reset(self, capacity: int) -> None:
        d = self._dimension
        self._n = 0  # nodes used, tombstones included
        self._live = 0
        self._vectors: Matrix = np.empty((capacity, d), dtype=np.float32)
        self._sq_norms: NDArray[np.float32] = np.empty(capacity, dtype=np.float32)
        self._node_labels: Labels = np.empty(capacity, dtype=np.int64)
        self._levels: NDArray[np.int32] = np.empty(capacity, dtype=np.int32)
        self._alive: Mask = np.zeros(capacity, dtype=np.bool_)
        self._links0: Links = np.full((capacity, self._m0), -1, dtype=np.int32)
        self._count0: NDArray[np.int32] = np.zeros(capacity, dtype=np.int32)
        self._up_row: NDArray[np.int32] = np.full(capacity, -1, dtype=np.int32)
        self._up_links: Links = np.full((0, 1, self._m), -1, dtype=np.int32)
        self._up_count: NDArray[np.int32] = np.zeros((0, 1), dtype=np.int32)
        self._up_rows = 0
        self._visited: NDArray[np.uint32] = np.zeros(capacity, dtype=np.uint32)
        self._generation = 0
        self._entry = -1
        self._max_level = -1
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
        """A graph over ``vectors`` made by the bulk build, reporting progress in [0, 1]."""
        index = cls(dimension, metric, params, seed)
        if labels.shape[0]:
            labels, prepared = _last_of_each(labels, prepare(vectors, metric))
            index._rebuild(labels, prepared, progress)
        progress(1.0)
        return index

    def add(self, labels: Labels, vectors: Matrix) -> None:
        """Insert or replace one vector per label (the last wins when a label repeats).

        Small batches are inserted one by one; a batch of at least 64 vectors that is at
        least 1/32 of the resulting index rebuilds the graph with the bulk build.
        """
        if labels.shape[0] == 0:
            return
        labels, prepared = _last_of_each(labels, prepare(vectors, self._metric))
        self._tombstone(labels)
        fresh = labels.shape[0]
        if fresh >= _BULK_MIN and fresh * _BULK_SHARE >= self._live + fresh:
            live_labels, live_vectors = self.items()
            self._rebuild(
                np.concatenate([live_labels, labels]), np.concatenate([live_vectors, prepared])
            )
            return
        first = self._append(labels, prepared)
        for node in range(first, first + fresh):
            self._insert(node)
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
        exact: bool = False,
    ) -> Hits:
        """Up to ``k`` nearest live, allowed labels, best first.

        ``ef`` (default ``ef_search``, per query ``params.ef``) is raised to ``k``. A filter
        that admits few nodes (≤ 4,096 or < 15%) is answered by scanning them; otherwise the
        walk goes through every node but only admits allowed ones, with ef widened by
        1/share^¼. Strategies: "hnsw", "hnsw-filtered", "filtered-scan", "scan".
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
        if exact:
            return self._scan(q, k, admit, "scan" if allowed is None else "filtered-scan")
        ef = max(k, self._params.ef_search if params is None or params.ef is None else params.ef)
        strategy = "hnsw"
        if allowed is not None and admit is not None:
            n_allowed = int(np.count_nonzero(admit))
            share = n_allowed / self._live
            if n_allowed <= _SCAN_ALLOWED_UP_TO or share < _SCAN_ALLOWED_SHARE:
                return self._scan(q, k, admit, "filtered-scan")
            ef = min(_MAX_EF, max(ef, int(ef / share**_WIDEN_POWER)))
            strategy = "hnsw-filtered"
        entries, entry_keys = self._enter(q, ef)
        keys, nodes = self._search_layer(q, entries, entry_keys, ef, 0, admit)
        best = top_k(keys, k)
        picked = nodes[best]
        scores = to_scores(keys[best], q, self._metric, self._vectors[picked])
        hits = Hits(self._node_labels[picked], scores, strategy)
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
            int(np.count_nonzero(~self._reachable(level, self._entry)[levels >= level]))
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
            self._visited,
            self._node_of,
        ]
        return int(sum(a.nbytes for a in arrays))

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
        """The index saved by ``to_state``; raises ``ValueError`` on inconsistent arrays."""
        if str(state["kind"]) != IndexType.HNSW.value:
            raise ValueError("not an HNSW index state")
        m, ef_construction, ef_search = (int(v) for v in state["params"])
        params = HnswParams(m=m, ef_construction=ef_construction, ef_search=ef_search)
        dimension = int(state["dimension"])
        index = cls(dimension, Metric(str(state["metric"])), params, int(state["seed"]))
        vectors = np.ascontiguousarray(state["vectors"], dtype=np.float32)
        n = vectors.shape[0]
        up_links = np.asarray(state["up_links"], dtype=np.int32)
        shapes_agree = (
            vectors.ndim == 2
            and vectors.shape[1] == dimension
            and all(state[key].shape[0] == n for key in ("node_labels", "levels", "alive"))
            and state["links0"].shape == (n, 2 * m)
            and up_links.ndim == 3
            and up_links.shape[2] == m
        )
        if not shapes_agree:
            raise ValueError("HNSW state arrays do not agree with each other")
        index._rng.bit_generator.state = json.loads(str(state["rng"]))
        index._reset(n)
        index._n = n
        index._vectors[:] = vectors
        index._sq_norms[:] = squared_norms(vectors)
        index._node_labels[:] = state["node_labels"]
        index._levels[:] = state["levels"]
        index._alive[:] = state["alive"]
        index._links0[:] = state["links0"]
        index._count0[:] = state["count0"]
        index._up_row[:] = state["up_row"]
        index._up_links = up_links.copy()
        index._up_count = np.asarray(state["up_count"], dtype=np.int32).copy()
        index._up_rows = up_links.shape[0]
        index._entry, index._max_level = (int(v) for v in state["entry"])
        live = np.flatnonzero(index._alive[:n])
        index._live = live.shape[0]
        if index._live:
            index._ensure_label_space(int(index._node_labels[live].max()) + 1)
            index._node_of[index._node_labels[live]] = live
        return index

    # -- storage ------------------------------------------------------------------------

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
        self._links0[first:end] = -1
        self._count0[first:end] = 0
        self._up_row[first:end] = -1
        upper = np.flatnonzero(levels > 0)
        if upper.shape[0]:
            self._ensure_upper(self._up_rows + upper.shape[0], int(levels.max()))
            rows = np.arange(self._up_rows, self._up_rows + upper.shape[0], dtype=np.int32)
            self._up_row[first + upper] = rows
            self._up_links[rows] = -1
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
        self._rebuild(labels, vectors)

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
        self._visited = np.zeros(size, dtype=np.uint32)
        self._generation = 0

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

    # -- distances ----------------------------------------------------------------------

    def _keys(self, nodes: NDArray[Any], q: Vector) -> Keys:
        """Higher-is-better keys of ``nodes`` against a prepared query."""
        dots: Keys = self._vectors[nodes] @ q
        if self._metric is not Metric.L2:
            return dots
        keys: Keys = (2.0 * dots - self._sq_norms[nodes]).astype(np.float32, copy=False)
        return keys

    def _pair_similarity(self, a: NDArray[Any], b: NDArray[Any]) -> NDArray[np.float32]:
        """Symmetric similarity of stored nodes: the dot product, or -|a-b|² for l2.

        ``a`` and ``b`` are node arrays of shapes (..., i) and (..., j): the result is
        (..., i, j), one batched product.
        """
        va = self._vectors[a]
        vb = self._vectors[b]
        sims: NDArray[np.float32] = va @ np.swapaxes(vb, -1, -2)
        if self._metric is not Metric.L2:
            return sims
        na = self._sq_norms[a][..., :, None]
        nb = self._sq_norms[b][..., None, :]
        l2: NDArray[np.float32] = (2.0 * sims - na - nb).astype(np.float32, copy=False)
        return l2

    # -- searching the graph ------------------------------------------------------------

    def _neighbours(self, nodes: NDArray[Any], level: int) -> Links:
        rows: Links = (
            self._links0[nodes] if level == 0 else self._up_links[self._up_row[nodes], level - 1]
        )
        return rows

    def _descend(self, q: Vector, to_level: int) -> tuple[int, float]:
        """Greedy walk (ef = 1) from the entry point down to ``to_level``."""
        current = self._entry
        current_key = float(self._keys(np.array([current]), q)[0])
        for level in range(self._max_level, to_level, -1):
            while True:
                row = self._up_links[self._up_row[current], level - 1]
                neighbours = row[row >= 0]
                if neighbours.shape[0] == 0:
                    break
                keys = self._keys(neighbours, q)
                best = int(np.argmax(keys))
                if keys[best] <= current_key:
                    break
                current, current_key = int(neighbours[best]), float(keys[best])
        return current, current_key

    def _enter(self, q: Vector, ef: int) -> tuple[list[int], list[float]]:
        """Layer-0 entry points for a query: the greedy descent (ef = 1) to layer 1, then a
        search of layer 1 with ``ef`` candidates (at most ``_UPPER_EF_CAP``).

        On tightly clustered data the greedy walk stops in the wrong cluster most of the
        time (70% at 100k vectors in 1,000 clusters), and a layer-0 search cannot leave a
        cluster whose points are all far nearer to each other than to the query; a beam on
        layer 1 finds the right cluster (recall@10 0.95 -> 0.99 at ef=24 there, ~15% fewer
        queries per second than a 16-wide beam)."""
        if self._max_level < 1:
            entry, entry_key = self._descend(q, 0)
            return [entry], [entry_key]
        entry, entry_key = self._descend(q, 1)
        upper_ef = min(ef, _UPPER_EF_CAP)
        keys, nodes = self._search_layer(q, [entry], [entry_key], upper_ef, 1, None)
        return nodes.tolist(), keys.tolist()

    def _next_generation(self) -> int:
        if self._generation >= np.iinfo(np.uint32).max - 1:
            self._visited[:] = 0
            self._generation = 0
        self._generation += 1
        return self._generation

    def _search_layer(
        self,
        q: Vector,
        entries: list[int],
        entry_keys: list[float],
        ef: int,
        level: int,
        admit: Mask | None,
    ) -> tuple[Keys, Nodes]:
        """Best-first search of one layer (Algorithm 2) keeping the ``ef`` best admitted
        nodes; non-admitted nodes are walked through but never kept. Expands up to
        ``_BEAM`` best candidates per step. Returns keys and nodes, unordered."""
        generation = self._next_generation()
        visited = self._visited
        cand_nodes = np.asarray(entries, dtype=np.int64)
        cand_keys = np.asarray(entry_keys, dtype=np.float32)
        visited[cand_nodes] = generation
        if admit is None:
            res_nodes, res_keys = cand_nodes, cand_keys
        else:
            ok = admit[cand_nodes]
            res_nodes, res_keys = cand_nodes[ok], cand_keys[ok]
        links = self._links0 if level == 0 else None
        lower = -np.inf
        while cand_nodes.shape[0]:
            if res_nodes.shape[0] >= ef:
                keep = cand_keys > lower
                if not keep.all():
                    cand_nodes, cand_keys = cand_nodes[keep], cand_keys[keep]
                    if cand_nodes.shape[0] == 0:
                        break
            if cand_nodes.shape[0] > _BEAM:
                part = np.argpartition(-cand_keys, _BEAM - 1)
                expand = cand_nodes[part[:_BEAM]]
                rest = part[_BEAM:]
                cand_nodes, cand_keys = cand_nodes[rest], cand_keys[rest]
            else:
                expand = cand_nodes
                cand_nodes = cand_nodes[:0]
                cand_keys = cand_keys[:0]
            rows = links[expand] if links is not None else self._neighbours(expand, level)
            found = rows.ravel()
            found = found[found >= 0]
            found = found[visited[found] != generation]
            if found.shape[0] == 0:
                continue
            if expand.shape[0] > 1:
                found = np.unique(found)
            visited[found] = generation
            keys = self._keys(found, q)
            if res_nodes.shape[0] >= ef:
                better = keys > lower
                found, keys = found[better], keys[better]
                if found.shape[0] == 0:
                    continue
            cand_nodes = np.concatenate((cand_nodes, found))
            cand_keys = np.concatenate((cand_keys, keys))
            if admit is not None:
                ok = admit[found]
                found, keys = found[ok], keys[ok]
            res_nodes = np.concatenate((res_nodes, found))
            res_keys = np.concatenate((res_keys, keys))
            if res_nodes.shape[0] >= ef:
                if res_nodes.shape[0] > ef:
                    top = np.argpartition(-res_keys, ef - 1)[:ef]
                    res_nodes, res_keys = res_nodes[top], res_keys[top]
                lower = float(res_keys.min())
        return res_keys, res_nodes

    def _scan(self, q: Vector, k: int, admit: Mask | None, strategy: str) -> Hits:
        n = self._n
        nodes = np.arange(n) if admit is None else np.flatnonzero(admit)
        if nodes.shape[0] == 0:
            return Hits.empty(strategy)
        if nodes.shape[0] == n:
            keys = keys_for(self._vectors[:n], q, self._metric, self._sq_norms[:n])
        else:
            keys = self._keys(nodes, q)
        best = top_k(keys, k)
        picked = nodes[best]
        scores = to_scores(keys[best], q, self._metric, self._vectors[picked])
        return Hits(self._node_labels[picked], scores, strategy)

    # -- one-by-one insertion (Algorithm 1) ---------------------------------------------

    def _insert(self, node: int, lowest: int = 0) -> None:
        """Link ``node`` on its layers down to ``lowest`` (the bulk build inserts the upper
        layers only and makes layer 0 itself)."""
        level = int(self._levels[node])
        if self._entry < 0:
            self._entry, self._max_level = node, level
            return
        q = self._vectors[node]
        top = min(level, self._max_level)
        entry, entry_key = self._descend(q, top)
        entries, entry_keys = [entry], [entry_key]
        ef = self._params.ef_construction
        for layer in range(top, lowest - 1, -1):
            keys, found = self._search_layer(q, entries, entry_keys, ef, layer, None)
            order = np.argsort(-keys, kind="stable")
            keys, found = keys[order], found[order]
            chosen = self._select(found[None, :], keys[None, :], self._m)[0][0]
            chosen = chosen[chosen >= 0]
            self._set_links(np.array([node]), layer, chosen[None, :].astype(np.int32))
            self._link_back(node, chosen, layer)
            entries, entry_keys = found.tolist(), keys.tolist()
        if level > self._max_level:
            self._entry, self._max_level = node, level

    def _link_back(self, node: int, neighbours: Nodes, level: int) -> None:
        """Add ``node`` to each neighbour's list; a full list is re-chosen by the heuristic
        among its links and ``node`` (hnswlib's ``mutuallyConnectNewElement``)."""
        if neighbours.shape[0] == 0:
            return
        width = self._m0 if level == 0 else self._m
        counts = self._counts(neighbours, level)
        room = counts < width
        for neighbour in neighbours[room].tolist():
            self._append_link(neighbour, node, level)
        full = neighbours[~room]
        if full.shape[0] == 0:
            return
        current = self._neighbours(full, level).astype(np.int64)
        cand = np.concatenate((current, np.full((full.shape[0], 1), node)), axis=1)
        sims = self._pair_similarity(full[:, None], cand)[:, 0, :]
        order = np.argsort(-sims, axis=1, kind="stable")
        cand = np.take_along_axis(cand, order, axis=1)
        sims = np.take_along_axis(sims, order, axis=1)
        self._set_links(full, level, self._select(cand, sims, width)[0])

    def _counts(self, nodes: NDArray[Any], level: int) -> NDArray[np.int32]:
        counts: NDArray[np.int32] = (
            self._count0[nodes] if level == 0 else self._up_count[self._up_row[nodes], level - 1]
        )
        return counts

    def _append_link(self, node: int, neighbour: int, level: int) -> None:
        if level == 0:
            self._links0[node, self._count0[node]] = neighbour
            self._count0[node] += 1
            return
        row = self._up_row[node]
        self._up_links[row, level - 1, self._up_count[row, level - 1]] = neighbour
        self._up_count[row, level - 1] += 1

    def _set_links(self, nodes: NDArray[Any], level: int, links: NDArray[Any]) -> None:
        """Replace the lists of ``nodes`` at ``level`` with ``links`` (-1 padded rows)."""
        width = self._m0 if level == 0 else self._m
        padded = np.full((nodes.shape[0], width), -1, dtype=np.int32)
        padded[:, : links.shape[1]] = links[:, :width]
        counts = (padded >= 0).sum(axis=1).astype(np.int32)
        if level == 0:
            self._links0[nodes] = padded
            self._count0[nodes] = counts
            return
        rows = self._up_row[nodes]
        self._up_links[rows, level - 1] = padded
        self._up_count[rows, level - 1] = counts

    # -- the neighbour-selection heuristic (Algorithm 4) --------------------------------

    def _select(
        self, cand: NDArray[Any], sims: NDArray[Any], limit: int, keep_pruned: bool = False
    ) -> tuple[Links, NDArray[np.float32]]:
        """For each row: candidates (node ids, -1 padded) sorted by similarity to the row's
        base node, keep a candidate only if it is closer to the base than to every kept one,
        up to ``limit``. Rows with at most ``limit`` candidates keep them all (as hnswlib).
        Returns (rows, limit) -1 padded. Batched: O(rows·C²·d) for the pairwise products."""
        out = np.full((cand.shape[0], limit), -1, dtype=np.int32)
        out_sims = np.full((cand.shape[0], limit), -np.inf, dtype=np.float32)
        for start in range(0, cand.shape[0], _SELECT_BATCH):
            part = slice(start, start + _SELECT_BATCH)
            out[part], out_sims[part] = self._select_batch(
                cand[part], sims[part], limit, keep_pruned
            )
        return out, out_sims

    def _select_batch(
        self, cand: NDArray[Any], sims: NDArray[Any], limit: int, keep_pruned: bool
    ) -> tuple[Links, NDArray[np.float32]]:
        valid = cand >= 0
        width = cand.shape[1]
        counts = valid.sum(axis=1)
        chosen = valid.copy()
        prune = counts > limit
        if prune.any():
            pc, ps, pv = cand[prune], sims[prune], valid[prune]
            pairs = self._pair_similarity(np.where(pv, pc, 0), np.where(pv, pc, 0))
            kept = np.zeros_like(pv)
            n_kept = np.zeros(pc.shape[0], dtype=np.int64)
            for i in range(width):
                ok = pv[:, i] & (n_kept < limit)
                if i:
                    ok &= ~(kept[:, :i] & (pairs[:, i, :i] > ps[:, i : i + 1])).any(axis=1)
                kept[:, i] = ok
                n_kept += ok
                if (n_kept >= limit).all():
                    break
            if keep_pruned:
                # Fill the free slots with the best pruned candidates (the paper's
                # keepPrunedConnections): denser lists cost little when a whole list is
                # scored in one product.
                spare = pv & ~kept
                free = limit - n_kept
                spare &= np.cumsum(spare, axis=1) <= free[:, None]
                kept |= spare
            chosen[prune] = kept
        # Compact the chosen ones to the front, in candidate order.
        order = np.argsort(~chosen, axis=1, kind="stable")[:, :limit]
        picked = np.take_along_axis(np.where(chosen, cand, -1), order, axis=1)
        picked_sims = np.take_along_axis(np.where(chosen, sims, -np.inf), order, axis=1)
        if picked.shape[1] < limit:
            pad = np.full((picked.shape[0], limit - picked.shape[1]), -1, dtype=picked.dtype)
            picked = np.concatenate((picked, pad), axis=1)
            picked_sims = np.concatenate((picked_sims, np.full(pad.shape, -np.inf)), axis=1)
        return picked.astype(np.int32), picked_sims.astype(np.float32)

    # -- the bulk build -----------------------------------------------------------------

    def _rebuild(self, labels: Labels, prepared: Matrix, progress: Progress = _no_progress) -> None:
        """Replace the whole graph by a bulk-built one over ``labels`` (unique).

        The upper layers (about n/M nodes) are made by one-by-one insertion, as hnswlib
        makes them: early nodes link far, so the layers route between clusters however
        tightly the data is clustered. Layer 0 is bulk-built from nearest-neighbour
        candidates; a k-nearest-neighbour graph of clustered data falls apart into one island
        per cluster, so every layer is then repaired until each of its nodes is reachable
        from the entry point.
        """
        self._reset(labels.shape[0])
        if labels.shape[0] == 0:
            return
        self._append(labels, prepared)
        n = self._n
        levels = self._levels[:n]
        progress(0.02)
        upper = np.flatnonzero(levels > 0)
        # Work shares: an insertion costs about as much as 40 nodes of the bulk build.
        upper_share = 40.0 * upper.shape[0] / (40.0 * upper.shape[0] + n)
        step = max(1, upper.shape[0] // 20)
        for done, node in enumerate(upper.tolist()):
            self._insert(node, lowest=1)
            if done % step == step - 1:
                progress(0.02 + 0.96 * upper_share * (done + 1) / upper.shape[0])
        if self._entry < 0:  # no upper layer: any node is the entry point
            self._entry, self._max_level = 0, 0

        def inner(fraction: float) -> None:
            progress(0.02 + 0.96 * (upper_share + (1.0 - upper_share) * fraction))

        self._build_layer(np.arange(n), 0, self._m0, inner)
        self._share_upper_links(upper)
        for level in range(self._max_level, -1, -1):
            self._connect_layer(level)
        progress(0.99)

    def _share_upper_links(self, upper: Nodes) -> None:
        """Give each upper-layer node its layer-1 links on layer 0 too, ahead of its nearest
        ones: insertion made them long-range."""
        if upper.shape[0] == 0:
            return
        long = self._up_links[self._up_row[upper], 0].astype(np.int64)
        near = self._links0[upper].astype(np.int64)
        merged = np.concatenate((long, near), axis=1)
        # Drop repeats (keep the first of each node in a row) and compact.
        by_id = np.argsort(merged, axis=1, kind="stable")
        ids = np.take_along_axis(merged, by_id, axis=1)
        repeat = np.zeros_like(ids, dtype=np.bool_)
        repeat[:, 1:] = ids[:, 1:] == ids[:, :-1]
        np.put_along_axis(merged, by_id, np.where(repeat, -1, ids), axis=1)
        order = np.argsort(merged < 0, axis=1, kind="stable")
        self._set_links(upper, 0, np.take_along_axis(merged, order, axis=1))

    # -- reachability -------------------------------------------------------------------

    def _reachable(self, level: int, start: int, reached: Mask | None = None) -> Mask:
        """Nodes reachable from ``start`` on ``level`` (breadth first, a frontier at a time),
        added to ``reached`` (a node already in it is not walked again). O(nodes·width)."""
        seen = np.zeros(self._n, dtype=np.bool_) if reached is None else reached
        seen[start] = True
        frontier: NDArray[Any] = np.array([start], dtype=np.int64)
        while frontier.shape[0]:
            found = self._neighbours(frontier, level).ravel()
            found = found[found >= 0]
            found = np.unique(found[~seen[found]])
            seen[found] = True
            frontier = found
        return seen

    def _connect_layer(self, level: int) -> int:
        """Make every node on ``level`` reachable from the entry point; returns the number of
        components linked in.

        A breadth-first walk from the entry point marks the reached nodes (a set closed
        under links, so any walk that starts in it stays in it). Each unreached node starts
        a component: a layer search for it among the reached nodes picks neighbours with the
        heuristic, linked both ways, and the component's nodes join the reached set. A repair
        link may take the tail slot of a full list, so the walk is redone until nothing is
        missing. O(n·width) per walk plus one ``ef_construction`` search per component.
        """
        on_level = np.flatnonzero(self._levels[: self._n] >= level)
        if on_level.shape[0] < 2:
            return 0
        linked = 0
        pinned: dict[int, int] = {}  # node -> repair links written into its full list
        for _ in range(_REPAIR_ROUNDS):
            reached = self._reachable(level, self._entry)
            missing = on_level[~reached[on_level]]
            if missing.shape[0] == 0:
                return linked
            for node in missing.tolist():
                if reached[node]:
                    continue
                self._link_to_reached(node, level, reached, pinned)
                self._reachable(level, node, reached)
                linked += 1
        return linked

    def _link_to_reached(
        self, node: int, level: int, reached: Mask, pinned: dict[int, int]
    ) -> None:
        """Link unreached ``node`` both ways with its nearest reached nodes on ``level``."""
        q = self._vectors[node]
        start, start_key = self._descend(q, level)
        if not reached[start]:
            start = self._entry
            start_key = float(self._keys(np.array([start]), q)[0])
        keys, found = self._search_layer(
            q, [start], [start_key], self._params.ef_construction, level, reached
        )
        if found.shape[0] == 0:
            found, keys = np.array([self._entry]), self._keys(np.array([self._entry]), q)
        order = np.argsort(-keys, kind="stable")
        chosen = self._select(found[order][None, :], keys[order][None, :], self._m)[0][0]
        chosen = chosen[chosen >= 0]
        for target in chosen.tolist():
            self._force_link(target, node, level, pinned)
            self._force_link(node, target, level, pinned)

    def _force_link(self, node: int, target: int, level: int, pinned: dict[int, int]) -> None:
        """Add ``target`` to ``node``'s list: in a free slot, else over the last slot not yet
        taken by a repair link (at most half the list)."""
        width = self._m0 if level == 0 else self._m
        row = self._neighbours(np.array([node]), level)[0]
        if (row == target).any():
            return
        count = int(self._counts(np.array([node]), level)[0])
        if count < width:
            self._append_link(node, target, level)
            return
        taken = pinned.get(node, 0)
        if taken >= _REPAIR_SLOTS_SHARE * width:
            return
        pinned[node] = taken + 1
        slot = width - 1 - taken
        if level == 0:
            self._links0[node, slot] = target
            return
        self._up_links[self._up_row[node], level - 1, slot] = target

    def _build_layer(self, nodes: Nodes, level: int, width: int, progress: Progress) -> None:
        """Link ``nodes`` on ``level``: the heuristic (with kept pruned connections) picks M
        links among each node's 2·M nearest candidates; then each list is its own picks
        followed by the links to it, nearest first, cut at ``width`` (2·M on layer 0)."""
        if nodes.shape[0] < 2:
            return
        pool = min(
            nodes.shape[0] - 1, max(2 * width, min(self._params.ef_construction, 2 * self._m0))
        )
        cand, sims = self._layer_candidates(nodes, pool)
        progress(0.5)
        front = min(pool, _FORWARD_POOL_PER_M * self._m)
        forward, forward_sims = self._select(cand[:, :front], sims[:, :front], self._m, True)
        progress(0.7)
        # Every chosen link in both directions; a node's own picks rank before links to it.
        src = np.repeat(nodes, self._m)
        dst = forward.ravel().astype(np.int64)
        has = dst >= 0
        src, dst, pair_sims = src[has], dst[has], forward_sims.ravel()[has]
        heads = np.concatenate((src, dst))
        tails = np.concatenate((dst, src))
        both_sims = np.concatenate((pair_sims, pair_sims))
        reverse = np.r_[np.zeros(src.shape[0], np.int8), np.ones(src.shape[0], np.int8)]
        order = np.lexsort((reverse, tails, heads))
        heads, tails, both_sims, reverse = (
            heads[order],
            tails[order],
            both_sims[order],
            reverse[order],
        )
        first = np.ones(heads.shape[0], dtype=np.bool_)
        first[1:] = (heads[1:] != heads[:-1]) | (tails[1:] != tails[:-1])
        heads, tails, both_sims, reverse = (
            heads[first],
            tails[first],
            both_sims[first],
            reverse[first],
        )
        order = np.lexsort((-both_sims, reverse, heads))
        heads, tails, both_sims = heads[order], tails[order], both_sims[order]
        starts = np.flatnonzero(np.r_[True, heads[1:] != heads[:-1]])
        group_len = np.diff(np.r_[starts, heads.shape[0]])
        rank = np.arange(heads.shape[0]) - np.repeat(starts, group_len)
        keep = rank < width
        heads, tails, both_sims, rank = heads[keep], tails[keep], both_sims[keep], rank[keep]
        owners = np.unique(heads)
        row_of = np.full(self._n, -1, dtype=np.int64)
        row_of[owners] = np.arange(owners.shape[0])
        lists = np.full((owners.shape[0], width), -1, dtype=np.int64)
        lists[row_of[heads], rank] = tails
        self._set_links(owners, level, lists)
        progress(1.0)

    def _layer_candidates(self, nodes: Nodes, pool: int) -> tuple[Nodes, NDArray[np.float32]]:
        """About ``pool`` nearest other nodes of each node, best first, -1 padded.

        Exact for small layers. Otherwise each node is filed under its ``_SOFT_PARTITIONS``
        nearest k-means centroids, a node is compared with every node filed under its own
        nearest centroid (one matrix product per partition), and one round of
        neighbours-of-neighbours (NN-descent) recovers most of what the partitions missed.
        """
        n = nodes.shape[0]
        cand = np.full((n, pool), -1, dtype=np.int64)
        sims = np.full((n, pool), -np.inf, dtype=np.float32)
        if n <= _EXACT_CANDIDATES_UP_TO:
            for start in range(0, n, _CANDIDATE_BLOCK):
                rows = np.arange(start, min(n, start + _CANDIDATE_BLOCK))
                self._fill_candidates(nodes, rows, nodes, cand, sims)
            return cand, sims
        vectors = self._vectors[nodes]
        parts = max(2, round(math.sqrt(n)))
        centroids = train_kmeans(vectors, parts, seed=self._seed, iterations=10)
        parts = centroids.shape[0]
        soft = min(_SOFT_PARTITIONS, parts)
        filed = np.empty((n, soft), dtype=np.int64)
        norms = squared_norms(centroids)
        for start in range(0, n, _CANDIDATE_BLOCK * 8):
            block = vectors[start : start + _CANDIDATE_BLOCK * 8]
            keys = 2.0 * (block @ centroids.T) - norms
            near = np.argpartition(-keys, soft - 1, axis=1)[:, :soft]
            best = np.argmax(np.take_along_axis(keys, near, axis=1), axis=1)
            # Column 0 holds the nearest centroid: the partition the node is queried from.
            first = near[np.arange(near.shape[0]), best].copy()
            near[np.arange(near.shape[0]), best] = near[:, 0]
            near[:, 0] = first
            filed[start : start + block.shape[0]] = near
        owner = filed[:, 0]
        members = np.repeat(np.arange(n), soft)[np.argsort(filed.ravel(), kind="stable")]
        member_bounds = np.searchsorted(np.sort(filed.ravel()), np.arange(parts + 1))
        order = np.argsort(owner, kind="stable")
        bounds = np.searchsorted(owner[order], np.arange(parts + 1))
        for part in range(parts):
            rows = order[bounds[part] : bounds[part + 1]]
            if rows.shape[0] == 0:
                continue
            pool_nodes = nodes[members[member_bounds[part] : member_bounds[part + 1]]]
            # In row blocks: a partition can hold a large share of the nodes (clustered
            # data), and one unblocked product would be rows x members floats at once.
            for start in range(0, rows.shape[0], _CANDIDATE_BLOCK):
                row_block = rows[start : start + _CANDIDATE_BLOCK]
                self._fill_candidates(nodes, row_block, pool_nodes, cand, sims)
        self._refine_candidates(nodes, cand, sims)
        return cand, sims

    def _refine_candidates(self, nodes: Nodes, cand: Nodes, sims: NDArray[np.float32]) -> None:
        """One NN-descent round: score each node against its best candidates' best
        candidates and keep the best ``pool`` of old and new, in place."""
        n, pool = cand.shape
        fan = min(_REFINE_FAN, pool)
        position = np.full(self._n, -1, dtype=np.int64)
        position[nodes] = np.arange(n)
        for start in range(0, n, _CANDIDATE_BLOCK):
            rows = np.arange(start, min(n, start + _CANDIDATE_BLOCK))
            near = cand[rows, :fan]
            near_rows = position[np.where(near >= 0, near, nodes[rows, None])]
            second = cand[near_rows, :fan].reshape(rows.shape[0], fan * fan)
            base = nodes[rows]
            second = np.where(second >= 0, second, base[:, None])
            new_sims = np.einsum("bd,bkd->bk", self._vectors[base], self._vectors[second])
            if self._metric is Metric.L2:
                new_sims = 2.0 * new_sims - self._sq_norms[base][:, None] - self._sq_norms[second]
            merged = np.concatenate((cand[rows], second), axis=1)
            merged_sims = np.concatenate((sims[rows], new_sims.astype(np.float32)), axis=1)
            merged_sims[(merged == base[:, None]) | (merged < 0)] = -np.inf
            # Drop repeats: sort each row by node id and blank all but the first of a run.
            by_id = np.argsort(merged, axis=1, kind="stable")
            ids = np.take_along_axis(merged, by_id, axis=1)
            repeat = np.zeros_like(ids, dtype=np.bool_)
            repeat[:, 1:] = ids[:, 1:] == ids[:, :-1]
            np.put_along_axis(
                merged_sims,
                by_id,
                np.where(repeat, -np.inf, np.take_along_axis(merged_sims, by_id, axis=1)),
                axis=1,
            )
            top = np.argpartition(-merged_sims, pool - 1, axis=1)[:, :pool]
            top_sims = np.take_along_axis(merged_sims, top, axis=1)
            ranked = np.argsort(-top_sims, axis=1, kind="stable")
            top = np.take_along_axis(top, ranked, axis=1)
            top_sims = np.take_along_axis(top_sims, ranked, axis=1)
            cand[rows] = np.where(
                np.isfinite(top_sims), np.take_along_axis(merged, top, axis=1), -1
            )
            sims[rows] = top_sims

    def _fill_candidates(
        self,
        nodes: Nodes,
        rows: NDArray[Any],
        pool_nodes: Nodes,
        cand: Nodes,
        sims: NDArray[np.float32],
    ) -> None:
        """Write into ``cand``/``sims`` the best ``pool`` of ``pool_nodes`` for each node of
        ``nodes[rows]`` (itself excluded), best first."""
        width = cand.shape[1]
        base = nodes[rows]
        block = self._vectors[base] @ self._vectors[pool_nodes].T
        if self._metric is Metric.L2:
            block = 2.0 * block - self._sq_norms[base][:, None] - self._sq_norms[pool_nodes]
        block[base[:, None] == pool_nodes[None, :]] = -np.inf
        take = min(width, pool_nodes.shape[0])
        if take < pool_nodes.shape[0]:
            top = np.argpartition(-block, take - 1, axis=1)[:, :take]
        else:
            top = np.broadcast_to(np.arange(take), (rows.shape[0], take))
        top_sims = np.take_along_axis(block, top, axis=1)
        order = np.argsort(-top_sims, axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        top_sims = np.take_along_axis(top_sims, order, axis=1)
        found = np.where(np.isfinite(top_sims), pool_nodes[top], -1)
        cand[rows, :take] = found
        sims[rows, :take] = top_sims


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
