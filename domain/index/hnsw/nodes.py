"""The arrays an HNSW graph lives in: one row per node (tombstones included), layer-0
links in a fixed-width row per node, upper-layer links in rows held only by nodes above
layer 0, and the label -> node map. They grow geometrically, tombstone in O(1), and
round-trip through a snapshot whose every link is checked before a kernel may walk it.

Space: n·d·4 bytes of vectors, n·2M·4 of layer-0 links, about n/M·levels·M·4 of upper
links, ~20 bytes of per-node bookkeeping and 8 per label ever seen.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from domain.index.growth import grown_capacity, regrown, with_label_space
from domain.index.hnsw.graph import Graph
from domain.index.scoring import Labels, Mask, StateArrays, squared_norms
from domain.models import Matrix


class Nodes:
    """The nodes of one HNSW graph; the index links them, this stores them.

    ``n`` counts nodes used (tombstones included), ``live`` those alive; ``entry`` is the
    top-level entry point and ``max_level`` its level (both -1 while empty).
    """

    def __init__(self, dimension: int, m: int) -> None:
        self.dimension = dimension
        self.m = m
        self.node_of: NDArray[np.int64] = np.empty(0, dtype=np.int64)  # label -> node, -1
        self.reset(0)

    def reset(self, capacity: int) -> None:
        """Forget every node, keeping room for ``capacity`` (and the label map's size)."""
        d, m = self.dimension, self.m
        self.n = 0
        self.live = 0
        self.vectors: Matrix = np.empty((capacity, d), dtype=np.float32)
        self.sq_norms: NDArray[np.float32] = np.empty(capacity, dtype=np.float32)
        self.node_labels: Labels = np.empty(capacity, dtype=np.int64)
        self.levels: NDArray[np.int32] = np.empty(capacity, dtype=np.int32)
        self.alive: Mask = np.zeros(capacity, dtype=np.bool_)
        self.links0: NDArray[np.int32] = np.full((capacity, 2 * m), -1, dtype=np.int32)
        self.count0: NDArray[np.int32] = np.zeros(capacity, dtype=np.int32)
        self.up_row: NDArray[np.int32] = np.full(capacity, -1, dtype=np.int32)
        self.up_links: NDArray[np.int32] = np.full((0, 1, m), -1, dtype=np.int32)
        self.up_count: NDArray[np.int32] = np.zeros((0, 1), dtype=np.int32)
        self.up_rows = 0
        self.entry = -1
        self.max_level = -1
        self.node_of[:] = -1

    def graph(self) -> Graph:
        """The arrays as the kernels take them (the current ones: growth replaces them)."""
        return Graph(
            self.vectors,
            self.levels,
            self.links0,
            self.count0,
            self.up_row,
            self.up_links,
            self.up_count,
        )

    def contains(self, label: int) -> bool:
        return 0 <= label < self.node_of.shape[0] and bool(self.node_of[label] >= 0)

    def items(self) -> tuple[Labels, Matrix]:
        """Copies of the live labels and their stored vectors, in node order."""
        live = np.flatnonzero(self.alive[: self.n])
        return self.node_labels[live], self.vectors[live]

    def nbytes(self) -> int:
        arrays: list[NDArray[Any]] = [
            self.vectors,
            self.sq_norms,
            self.node_labels,
            self.levels,
            self.alive,
            self.links0,
            self.count0,
            self.up_row,
            self.up_links,
            self.up_count,
            self.node_of,
        ]
        return int(sum(a.nbytes for a in arrays))

    # -- changes ------------------------------------------------------------------------

    def append(self, labels: Labels, prepared: Matrix, levels: NDArray[np.int32]) -> int:
        """Store new nodes at ``levels`` without linking them; returns the first."""
        count = labels.shape[0]
        first = self.n
        self._ensure_capacity(first + count)
        self._ensure_label_space(int(labels.max()) + 1)
        end = first + count
        self.vectors[first:end] = prepared
        self.sq_norms[first:end] = squared_norms(prepared)
        self.node_labels[first:end] = labels
        self.levels[first:end] = levels
        self.alive[first:end] = True
        self.count0[first:end] = 0
        self.up_row[first:end] = -1
        upper = np.flatnonzero(levels > 0)
        if upper.shape[0]:
            self._ensure_upper(self.up_rows + upper.shape[0], int(levels.max()))
            rows = np.arange(self.up_rows, self.up_rows + upper.shape[0], dtype=np.int32)
            self.up_row[first + upper] = rows
            self.up_count[rows] = 0
            self.up_rows += upper.shape[0]
        self.node_of[labels] = np.arange(first, end)
        self.n = end
        self.live += count
        return first

    def tombstone(self, labels: Labels) -> None:
        """Mark these labels' nodes dead (unknown labels are ignored)."""
        known = labels[(labels >= 0) & (labels < self.node_of.shape[0])]
        nodes = np.unique(self.node_of[known])
        nodes = nodes[nodes >= 0]
        if nodes.shape[0] == 0:
            return
        self.alive[nodes] = False
        self.node_of[self.node_labels[nodes]] = -1
        self.live -= nodes.shape[0]

    def _ensure_capacity(self, needed: int) -> None:
        capacity = self.vectors.shape[0]
        if needed <= capacity:
            return
        size = grown_capacity(needed, capacity)
        n = self.n
        self.vectors = regrown(self.vectors, size, n)
        self.sq_norms = regrown(self.sq_norms, size, n)
        self.node_labels = regrown(self.node_labels, size, n)
        self.levels = regrown(self.levels, size, n)
        self.alive = regrown(self.alive, size, n, fill=False)
        self.links0 = regrown(self.links0, size, n, fill=-1)
        self.count0 = regrown(self.count0, size, n, fill=0)
        self.up_row = regrown(self.up_row, size, n, fill=-1)

    def _ensure_upper(self, rows: int, levels: int) -> None:
        capacity, have_levels, m = self.up_links.shape
        if rows <= capacity and levels <= have_levels:
            return
        size = grown_capacity(rows, capacity) if rows > capacity else capacity
        depth = max(levels, have_levels)
        links = np.full((size, depth, m), -1, dtype=np.int32)
        links[: self.up_rows, :have_levels] = self.up_links[: self.up_rows]
        counts = np.zeros((size, depth), dtype=np.int32)
        counts[: self.up_rows, :have_levels] = self.up_count[: self.up_rows]
        self.up_links, self.up_count = links, counts

    def _ensure_label_space(self, needed: int) -> None:
        self.node_of = with_label_space(self.node_of, needed)

    # -- snapshots ----------------------------------------------------------------------

    def to_state(self) -> StateArrays:
        """The graph's part of an HNSW snapshot: copies of the used rows."""
        n, rows = self.n, self.up_rows
        return {
            "entry": np.array([self.entry, self.max_level], dtype=np.int64),
            "vectors": self.vectors[:n].copy(),
            "node_labels": self.node_labels[:n].copy(),
            "levels": self.levels[:n].copy(),
            "alive": self.alive[:n].copy(),
            "links0": self.links0[:n].copy(),
            "count0": self.count0[:n].copy(),
            "up_row": self.up_row[:n].copy(),
            "up_links": self.up_links[:rows].copy(),
            "up_count": self.up_count[:rows].copy(),
        }

    def load_state(self, state: StateArrays) -> None:
        """Replace every node with those ``to_state`` saved; raises ``ValueError`` (and
        changes nothing) unless every link points at a node, since the kernels do not
        check bounds."""
        vectors = np.ascontiguousarray(state["vectors"], dtype=np.float32)
        levels = np.ascontiguousarray(state["levels"], dtype=np.int32)
        links0 = np.ascontiguousarray(state["links0"], dtype=np.int32)
        count0 = np.ascontiguousarray(state["count0"], dtype=np.int32)
        up_row = np.ascontiguousarray(state["up_row"], dtype=np.int32)
        up_links = np.ascontiguousarray(state["up_links"], dtype=np.int32)
        up_count = np.ascontiguousarray(state["up_count"], dtype=np.int32)
        entry, max_level = (int(v) for v in state["entry"])
        n, d, m = vectors.shape[0], self.dimension, self.m
        _check_graph(n, d, m, vectors, levels, links0, count0, up_row, up_links, up_count)
        for key in ("node_labels", "alive"):
            if state[key].shape != (n,):
                raise ValueError(f"HNSW state {key} does not agree with the vectors")
        if n and not (0 <= entry < n and max_level == levels[entry]):
            raise ValueError("HNSW state entry point is not a top-level node")
        self.reset(n)
        self.n = n
        self.vectors[:] = vectors
        self.sq_norms[:] = squared_norms(vectors)
        self.node_labels[:] = state["node_labels"]
        self.levels[:] = levels
        self.alive[:] = state["alive"]
        self.links0[:] = links0
        self.count0[:] = count0
        self.up_row[:] = up_row
        self.up_links = up_links.copy()
        self.up_count = up_count.copy()
        self.up_rows = up_links.shape[0]
        self.entry, self.max_level = (entry, max_level) if n else (-1, -1)
        live = np.flatnonzero(self.alive[:n])
        self.live = live.shape[0]
        if self.live:
            self._ensure_label_space(int(self.node_labels[live].max()) + 1)
            self.node_of[self.node_labels[live]] = live


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
