"""Keeping every node of the HNSW graph reachable from the entry point.

Insertion prunes full neighbour lists with the heuristic, and on tightly clustered data a
node can lose every link that pointed to it (hnswlib has the same weakness): a search could
then never return it. After each batch of insertions every layer is checked with a
breadth-first walk from the entry point, and each unreached component gets links from its
nearest reached nodes that still have a free slot (so no existing link is overwritten and
no other node can be cut off by the repair); only when every candidate is full does the
repair take the last slot of the nearest ones, and then the layer is checked again.

Compiled kernels; a writer's work, under the exclusive lock. O(n·M) per layer for the walk,
plus one ``ef_construction`` layer search per unreached component.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from domain.index.hnsw.graph import Graph, Visited, links_of, search_layer
from domain.index.hnsw.insertion import select_neighbours, set_links
from domain.index.jit import kernel
from domain.index.scoring import distance

_ROUNDS = 4


@kernel
def reach(graph: Graph, level: int, start: int, seen: NDArray[np.bool_]) -> None:
    """Mark in ``seen`` every node ``start`` reaches on ``level`` (breadth first; a node
    already marked is not walked again)."""
    queue = np.empty(seen.shape[0], dtype=np.int64)
    head = 0
    tail = 0
    if not seen[start]:
        seen[start] = True
        queue[tail] = start
        tail += 1
    while head < tail:
        node = queue[head]
        head += 1
        for neighbour in links_of(graph, node, level):
            if not seen[neighbour]:
                seen[neighbour] = True
                queue[tail] = neighbour
                tail += 1


@kernel
def _add_link(graph: Graph, node: int, target: int, level: int, width: int) -> bool:
    """Link ``node`` to ``target``: in a free slot, else over the last one (returns True
    when a link was overwritten). A link already there is left as it is."""
    current = links_of(graph, node, level)
    for neighbour in current:
        if neighbour == target:
            return False
    count = current.shape[0]
    links = np.empty(min(count + 1, width), dtype=np.int64)
    links[: links.shape[0] - 1] = current[: links.shape[0] - 1]
    links[-1] = target
    set_links(graph, node, level, links)
    return bool(count == width)


@kernel
def connect_layer(
    graph: Graph,
    n: int,
    metric: int,
    m: int,
    ef_construction: int,
    level: int,
    entry: int,
    visited: Visited,
    tag: int,
) -> tuple[int, int]:
    """Make every node of ``level`` reachable from ``entry``; returns the number of
    components linked in and the last visited tag used."""
    width = 2 * m if level == 0 else m
    linked = 0
    for _ in range(_ROUNDS):
        seen = np.zeros(n, dtype=np.bool_)
        reach(graph, level, entry, seen)
        overwrote = False
        # Reached nodes with a free slot: linking from them overwrites nothing.
        roomy = np.zeros(n, dtype=np.bool_)
        for other in range(n):
            roomy[other] = (
                seen[other]
                and graph.levels[other] >= level
                and links_of(graph, other, level).shape[0] < width
            )
        for node in range(n):
            if graph.levels[node] < level or seen[node]:
                continue
            admit = roomy if roomy.any() else seen
            tag += 1
            query = graph.vectors[node]
            found_distances, found = search_layer(
                graph,
                metric,
                query,
                np.full(1, entry, dtype=np.int32),
                ef_construction,
                level,
                visited,
                tag,
                admit,
            )
            if found.shape[0] == 0:
                found = np.full(1, entry, dtype=np.int64)
                found_distances = np.full(1, distance(metric, query, graph.vectors[entry]))
            for target in select_neighbours(graph.vectors, metric, found, found_distances, m):
                overwrote |= _add_link(graph, target, node, level, width)
                if links_of(graph, target, level).shape[0] == width:
                    roomy[target] = False
                if links_of(graph, node, level).shape[0] < width:
                    _add_link(graph, node, target, level, width)
            reach(graph, level, node, seen)
            linked += 1
        if not overwrote:
            break
    return linked, tag
