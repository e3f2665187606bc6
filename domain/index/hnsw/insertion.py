"""Adding nodes to the HNSW graph: insertion (paper Algorithm 1) and the neighbour-selection
heuristic (Algorithm 4), as compiled kernels after hnswlib's ``addPoint``,
``getNeighborsByHeuristic2`` and ``mutuallyConnectNewElement``.

Only a writer calls these, under the library's exclusive lock (or on an index no reader
can see yet, during a background build): they mutate the link arrays in place.
"""

from __future__ import annotations

import numpy as np

from domain.index.hnsw.graph import (
    Distances,
    Graph,
    Nodes,
    Visited,
    greedy_closest,
    links_of,
    search_layer,
)
from domain.index.jit import kernel
from domain.index.scoring import distance
from domain.models import Matrix


@kernel
def select_neighbours(
    vectors: Matrix, metric: int, candidates: Nodes, distances: Distances, m: int
) -> Nodes:
    """Algorithm 4 (without extending or keeping pruned candidates, as hnswlib): walk the
    ``candidates`` nearest first and keep one only when it is closer to the base than to
    every one kept so far, up to ``m``. Spreads links across directions, so clusters stay
    linked to each other. ``distances`` are the candidates' distances to the base, sorted
    ascending. O(len·m·d)."""
    if candidates.shape[0] <= m:
        return candidates.copy()
    chosen = np.empty(m, dtype=np.int64)
    count = 0
    for i in range(candidates.shape[0]):
        if count == m:
            break
        candidate = candidates[i]
        good = True
        for j in range(count):
            if distance(metric, vectors[chosen[j]], vectors[candidate]) < distances[i]:
                good = False
                break
        if good:
            chosen[count] = candidate
            count += 1
    return chosen[:count]


@kernel
def set_links(graph: Graph, node: int, level: int, chosen: Nodes) -> None:
    """Make ``chosen`` the whole neighbour list of ``node`` on ``level``."""
    if level == 0:
        graph.count0[node] = chosen.shape[0]
        graph.links0[node, : chosen.shape[0]] = chosen
        return
    row = graph.up_row[node]
    graph.up_count[row, level - 1] = chosen.shape[0]
    graph.up_links[row, level - 1, : chosen.shape[0]] = chosen


@kernel
def _link_back(graph: Graph, metric: int, target: int, node: int, level: int, width: int) -> None:
    """Add ``node`` to ``target``'s list on ``level``; a full list is re-chosen by the
    heuristic among its links and ``node`` (which may drop some), as hnswlib does."""
    current = links_of(graph, target, level)
    count = current.shape[0]
    pool = np.empty(count + 1, dtype=np.int64)
    pool[:count] = current
    pool[count] = node
    if count < width:
        set_links(graph, target, level, pool)
        return
    pool_distances = np.empty(count + 1, dtype=np.float32)
    for i in range(count + 1):
        pool_distances[i] = distance(metric, graph.vectors[target], graph.vectors[pool[i]])
    order = np.argsort(pool_distances, kind="mergesort")
    chosen = select_neighbours(graph.vectors, metric, pool[order], pool_distances[order], width)
    set_links(graph, target, level, chosen)


@kernel
def insert_nodes(
    graph: Graph,
    metric: int,
    m: int,
    ef_construction: int,
    first: int,
    end: int,
    entry: int,
    max_level: int,
    visited: Visited,
    tag: int,
) -> tuple[int, int, int]:
    """Link nodes ``first`` to ``end - 1`` (stored, levels drawn, lists empty) into the
    graph one after another (Algorithm 1): descend greedily to the node's level, then on
    each of its layers search ``ef_construction`` candidates, keep M by the heuristic and
    link both ways (up to 2·M on layer 0). Returns the new entry point, top level and the
    last visited tag used. O(ef_construction·M·d·log n) per node."""
    no_filter = np.empty(0, dtype=np.bool_)
    for node in range(first, end):
        level = graph.levels[node]
        if entry < 0:
            entry = node
            max_level = level
            continue
        query = graph.vectors[node]
        closest = entry
        closest_distance = distance(metric, query, graph.vectors[entry])
        for layer in range(max_level, level, -1):
            closest, closest_distance = greedy_closest(
                graph, metric, query, closest, closest_distance, layer
            )
        for layer in range(min(level, max_level), -1, -1):
            tag += 1
            entries = np.full(1, closest, dtype=np.int32)
            found_distances, found = search_layer(
                graph, metric, query, entries, ef_construction, layer, visited, tag, no_filter
            )
            chosen = select_neighbours(graph.vectors, metric, found, found_distances, m)
            set_links(graph, node, layer, chosen)
            width = 2 * m if layer == 0 else m
            for target in chosen:
                _link_back(graph, metric, target, node, layer, width)
            closest = found[0]
        if level > max_level:
            entry = node
            max_level = level
    return entry, max_level, tag
