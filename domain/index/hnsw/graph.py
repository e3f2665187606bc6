"""The HNSW graph's layout and its search, as compiled kernels (paper Algorithm 2 and the
greedy descent of Algorithm 5; hnswlib's ``searchBaseLayerST``).

Layout, shared by every kernel: vectors in one contiguous (capacity, d) float32 matrix;
layer-0 links in a fixed-width (capacity, 2·M) int32 matrix with a count per node; the
links of the few nodes that reach layer 1 and above in an (upper rows, levels, M) int32
block, a node's row given by ``up_row`` (-1 for a layer-0-only node), with a count per row
and level. A kernel reads these arrays and writes only arrays it allocated or was lent.

The walk is a best-first search with two binary heaps over NumPy arrays: candidates (nearest
first) and results (farthest first, at most ``ef``). A node is marked visited by writing the
search's ``tag`` into a ``visited`` array that the search borrowed from a pool
(``visited.py``), so no two searches share scratch and nothing is cleared between them.
"""

from __future__ import annotations

from typing import Any, NamedTuple, TypeVar

import numpy as np
from numpy.typing import NDArray

from domain.index.jit import kernel
from domain.index.scoring import distance, rank_exact
from domain.models import Matrix, Vector

Nodes = NDArray[np.int64]
Links = NDArray[np.int32]
Visited = NDArray[np.uint32]
Distances = NDArray[np.float32]
Admit = NDArray[np.bool_]  # per node; empty means every node is admitted
A = TypeVar("A", bound=NDArray[Any])


class Graph(NamedTuple):
    """The arrays of one HNSW graph, as every kernel takes them (numba passes a named tuple
    of arrays by reference: a kernel writes into them in place, never replaces one)."""

    vectors: Matrix  # (capacity, d) float32
    levels: Links  # (capacity,) top layer of each node
    links0: Links  # (capacity, 2M) layer-0 neighbours
    count0: Links  # (capacity,) used slots of each layer-0 list
    up_row: Links  # (capacity,) row in the upper blocks, -1 for a layer-0-only node
    up_links: NDArray[np.int32]  # (rows, levels, M) neighbours on layers 1 and up
    up_count: NDArray[np.int32]  # (rows, levels) used slots


@kernel
def heap_push(keys: Distances, items: Nodes, size: int, key: np.float32, item: int) -> int:
    """Push onto the min-heap held in ``keys[:size]``/``items[:size]``; returns the new
    size. The arrays must have room for one more. O(log size)."""
    i = size
    keys[i] = key
    items[i] = item
    while i > 0:
        parent = (i - 1) >> 1
        if keys[parent] <= keys[i]:
            break
        keys[parent], keys[i] = keys[i], keys[parent]
        items[parent], items[i] = items[i], items[parent]
        i = parent
    return size + 1


@kernel
def heap_pop(keys: Distances, items: Nodes, size: int) -> int:
    """Drop the smallest key of the min-heap; returns the new size. O(log size)."""
    size -= 1
    keys[0] = keys[size]
    items[0] = items[size]
    i = 0
    while True:
        left = 2 * i + 1
        if left >= size:
            break
        child = left
        if left + 1 < size and keys[left + 1] < keys[left]:
            child = left + 1
        if keys[i] <= keys[child]:
            break
        keys[child], keys[i] = keys[i], keys[child]
        items[child], items[i] = items[i], items[child]
        i = child
    return size


@kernel
def links_of(graph: Graph, node: int, level: int) -> Links:
    """The neighbour list of ``node`` on ``level`` (a view of its used slots)."""
    if level == 0:
        return graph.links0[node, : graph.count0[node]]
    row = graph.up_row[node]
    return graph.up_links[row, level - 1, : graph.up_count[row, level - 1]]


@kernel
def greedy_closest(
    graph: Graph,
    metric: int,
    query: Vector,
    start: int,
    start_distance: np.float32,
    level: int,
) -> tuple[int, np.float32]:
    """Hill-climb on ``level`` from ``start`` to a node none of whose neighbours is closer
    (Algorithm 5's per-layer step with ef = 1). O(steps·M·d)."""
    node = start
    best = start_distance
    moved = True
    while moved:
        moved = False
        for neighbour in links_of(graph, node, level):
            d = distance(metric, query, graph.vectors[neighbour])
            if d < best:
                best = d
                node = neighbour
                moved = True
    return node, best


@kernel
def search_layer(
    graph: Graph,
    metric: int,
    query: Vector,
    entries: Links,
    ef: int,
    level: int,
    visited: Visited,
    tag: int,
    admit: Admit,
) -> tuple[Distances, Nodes]:
    """Best-first search of ``level`` from ``entries`` (Algorithm 2): the up to ``ef``
    nearest admitted nodes found, nearest first, with their distances.

    Nodes that are not admitted (filtered out, or tombstones) are walked through but never
    returned, as in hnswlib. The walk stops when the nearest unexpanded candidate is farther
    than the farthest of ``ef`` results. O(ef·M·d·log n) expected on layer 0.
    """
    filtering = admit.shape[0] > 0
    # Candidates: a min-heap by distance, grown as needed (each node enters at most once).
    cand_keys = np.empty(max(4 * ef, 64), dtype=np.float32)
    cand_nodes = np.empty(cand_keys.shape[0], dtype=np.int64)
    # Results: a min-heap of negated distances, so the root is the farthest result.
    res_keys = np.empty(ef + 1, dtype=np.float32)
    res_nodes = np.empty(ef + 1, dtype=np.int64)
    n_cand = 0
    n_res = 0
    pending = entries  # nodes to look at: the entries first, then each expanded node's links
    while True:
        for node in pending:
            if visited[node] == tag:
                continue
            visited[node] = tag
            d = distance(metric, query, graph.vectors[node])
            if n_res >= ef and d >= -res_keys[0]:
                continue
            if n_cand == cand_keys.shape[0]:
                cand_keys = _doubled(cand_keys)
                cand_nodes = _doubled(cand_nodes)
            n_cand = heap_push(cand_keys, cand_nodes, n_cand, d, node)
            if not filtering or admit[node]:
                n_res = heap_push(res_keys, res_nodes, n_res, -d, node)
                if n_res > ef:
                    n_res = heap_pop(res_keys, res_nodes, n_res)
        if n_cand == 0 or (n_res >= ef and cand_keys[0] > -res_keys[0]):
            break
        expanded = cand_nodes[0]
        n_cand = heap_pop(cand_keys, cand_nodes, n_cand)
        pending = links_of(graph, expanded, level)
    found = np.empty(n_res, dtype=np.int64)
    found_distances = np.empty(n_res, dtype=np.float32)
    for i in range(n_res - 1, -1, -1):
        found[i] = res_nodes[0]
        found_distances[i] = -res_keys[0]
        n_res = heap_pop(res_keys, res_nodes, n_res)
    return found_distances, found


@kernel
def search_graph(
    graph: Graph,
    metric: int,
    query: Vector,
    entry: int,
    max_level: int,
    ef: int,
    k: int,
    visited: Visited,
    tag: int,
    admit: Admit,
) -> tuple[Nodes, NDArray[np.float64]]:
    """A whole query (Algorithm 5): greedy descent from the entry point through the upper
    layers, ``search_layer`` on layer 0 with ``ef``, then the ``k`` nearest of the ``ef``
    found by their exact (float64) distance, nearest first, with those distances. The GIL
    stays released from entry to return, so concurrent searches run on separate cores."""
    node = entry
    best = distance(metric, query, graph.vectors[entry])
    for level in range(max_level, 0, -1):
        node, best = greedy_closest(graph, metric, query, node, best, level)
    entries = np.full(1, node, dtype=np.int32)
    _, found = search_layer(graph, metric, query, entries, ef, 0, visited, tag, admit)
    return rank_exact(metric, graph.vectors, query, found, k)


@kernel
def _doubled(array: A) -> A:
    """``array`` copied into one twice as long (the tail left uninitialised)."""
    out = np.empty(2 * array.shape[0], dtype=array.dtype)
    out[: array.shape[0]] = array
    return out  # type: ignore[return-value]  # numpy types np.empty's result loosely
