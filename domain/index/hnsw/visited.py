"""Visited marks for graph walks, lent one walk at a time (hnswlib's ``VisitedListPool``).

A visited list is a uint32 array with a tag: a walk takes a list, uses a tag no earlier walk
on that list used, marks a node by writing the tag, and gives the list back. So no two walks
ever share marks, and no list is cleared between walks (only when its tags run out). Lists
are made on demand, so there are as many as there have been concurrent walks; at most
``keep`` are kept when given back.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

_LAST_TAG = int(np.iinfo(np.uint32).max)


@dataclass(slots=True)
class VisitedList:
    marks: NDArray[np.uint32]
    tag: int = 0

    def claim(self, count: int = 1) -> int:
        """The first of ``count`` consecutive tags no earlier walk on this list used (a
        search uses one, an insertion one per layer); marks are cleared when tags run out."""
        if self.tag + count > _LAST_TAG:
            self.marks.fill(0)
            self.tag = 0
        first = self.tag + 1
        self.tag += count
        return first


class VisitedPool:
    """Visited lists of at least ``size`` nodes, for concurrent walks. Thread-safe."""

    def __init__(self, keep: int = 8) -> None:
        self._free: list[VisitedList] = []
        self._keep = keep
        self._lock = threading.Lock()

    def take(self, size: int) -> VisitedList:
        """A list no other walk holds, covering nodes ``0 .. size - 1``."""
        with self._lock:
            while self._free:
                visited = self._free.pop()
                if visited.marks.shape[0] >= size:
                    return visited
        return VisitedList(np.zeros(max(size, 64), dtype=np.uint32))

    def give(self, visited: VisitedList) -> None:
        with self._lock:
            if len(self._free) < self._keep:
                self._free.append(visited)

    def nbytes(self) -> int:
        with self._lock:
            return sum(v.marks.nbytes for v in self._free)
