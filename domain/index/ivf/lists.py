"""One IVF inverted list: its rows' float32 vectors in a contiguous block with spare
capacity, their labels and stored |x|². Append is O(rows·d) amortised; a remove swaps the
last row in (O(d)) and the block shrinks once it is under a quarter full."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from domain.index.growth import grown_capacity, regrown
from domain.index.scoring import Labels
from domain.models import Matrix

_MIN_LIST_CAPACITY = 16


@dataclass(slots=True)
class InvertedList:
    """One inverted list: a contiguous float32 block with spare rows, its labels and norms."""

    vectors: Matrix
    labels: Labels
    sq_norms: NDArray[np.float32]
    size: int = 0
    _spare: int = field(default=0, repr=False)

    @classmethod
    def empty(cls, dimension: int, capacity: int = 0) -> InvertedList:
        return cls(
            np.empty((capacity, dimension), dtype=np.float32),
            np.empty(capacity, dtype=np.int64),
            np.empty(capacity, dtype=np.float32),
        )

    def append(self, labels: Labels, vectors: Matrix, sq_norms: NDArray[np.float32]) -> int:
        """Append rows; returns the row of the first one. O(rows·d) amortised."""
        start = self.size
        end = start + labels.shape[0]
        if end > self.vectors.shape[0]:
            self._grow(grown_capacity(end, self.vectors.shape[0], _MIN_LIST_CAPACITY))
        self.vectors[start:end] = vectors
        self.labels[start:end] = labels
        self.sq_norms[start:end] = sq_norms
        self.size = end
        return start

    def swap_remove(self, row: int) -> int:
        """Fill ``row`` with the last row; returns the label that moved there (or -1)."""
        last = self.size - 1
        moved = -1
        if row != last:
            self.vectors[row] = self.vectors[last]
            self.labels[row] = self.labels[last]
            self.sq_norms[row] = self.sq_norms[last]
            moved = int(self.labels[row])
        self.size = last
        capacity = self.vectors.shape[0]
        if capacity > _MIN_LIST_CAPACITY and self.size < capacity // 4:
            self._grow(max(self.size * 2, _MIN_LIST_CAPACITY))
        return moved

    def _grow(self, capacity: int) -> None:
        self.vectors = regrown(self.vectors, capacity, self.size)
        self.labels = regrown(self.labels, capacity, self.size)
        self.sq_norms = regrown(self.sq_norms, capacity, self.size)

    @property
    def nbytes(self) -> int:
        return int(self.vectors.nbytes + self.labels.nbytes + self.sq_norms.nbytes)
