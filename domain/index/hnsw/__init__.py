"""HNSW: the graph's layout and search (``graph``), insertion and the neighbour heuristic
(``insertion``), reachability repair (``repair``), visited lists lent to walks (``visited``),
the nodes' arrays (``nodes``), each search's plan (``planner``) and the index object
(``index``)."""

from domain.index.hnsw.index import HnswIndex

__all__ = ["HnswIndex"]
