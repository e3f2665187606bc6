"""The inverted lists of one IVF index, the label -> (list, row) maps that find a vector in
them, and the probe's typed view of the lists (``ProbeBlocks``), kept in step by every write.

Time: add O(d) amortised per vector; remove O(d) per vector (swap-remove inside its list).
Space: the lists (see ``lists``) and 12 bytes per label ever assigned for the two maps.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from domain.index.growth import with_label_space
from domain.index.ivf.lists import InvertedList
from domain.index.ivf.probe import ProbeBlocks
from domain.index.scoring import Labels, squared_norms
from domain.models import Matrix


class ListStore:
    """Where each stored vector lives: in one list, at one row; ``size`` counts them all.

    Writes change it under the library's write lock; a search only reads ``blocks``.
    """

    def __init__(self, dimension: int) -> None:
        self._dimension = dimension
        self.list_of: NDArray[np.int32] = np.empty(0, dtype=np.int32)  # label -> list, -1
        self.row_of: NDArray[np.int64] = np.empty(0, dtype=np.int64)  # label -> row in list
        self.reset(1)

    def reset(self, nlist: int) -> None:
        """Forget every vector and start over with ``nlist`` empty lists."""
        self._set_lists([InvertedList.empty(self._dimension) for _ in range(nlist)])
        self.list_of[:] = -1
        self.size = 0

    def _set_lists(self, lists: list[InvertedList]) -> None:
        self.lists = lists
        self.blocks = ProbeBlocks(lists)

    def __contains__(self, label: int) -> bool:
        return 0 <= label < self.list_of.shape[0] and bool(self.list_of[label] >= 0)

    @property
    def longest(self) -> int:
        """The length of the longest list."""
        return max(lst.size for lst in self.lists)

    def add(self, labels: Labels, vectors: Matrix, targets: NDArray[np.int64]) -> None:
        """Append each vector to list ``targets[i]``; the labels must be unique and absent
        (replacing a label is ``remove`` first). One append per list touched."""
        self._make_label_space(int(labels.max()) + 1)
        norms = squared_norms(vectors)
        order = np.argsort(targets, kind="stable")
        bounds = np.flatnonzero(np.diff(targets[order])) + 1
        for group in np.split(order, bounds):
            list_id = int(targets[group[0]])
            first = self.lists[list_id].append(labels[group], vectors[group], norms[group])
            self.blocks.sync(list_id, self.lists[list_id])
            self.list_of[labels[group]] = list_id
            self.row_of[labels[group]] = np.arange(first, first + group.shape[0])
        self.size += labels.shape[0]

    def remove(self, labels: Labels) -> None:
        """Swap-remove these labels inside their lists; unknown labels are ignored."""
        known = labels[(labels >= 0) & (labels < self.list_of.shape[0])]
        known = np.unique(known[self.list_of[known] >= 0])
        for label in known.tolist():
            list_id = int(self.list_of[label])
            lst = self.lists[list_id]
            moved = lst.swap_remove(int(self.row_of[label]))
            self.blocks.sync(list_id, lst)
            if moved >= 0:
                self.row_of[moved] = self.row_of[label]
            self.list_of[label] = -1
        self.size -= known.shape[0]

    def items(self) -> tuple[Labels, Matrix]:
        """Copies of the live labels and their vectors, list by list."""
        live = [lst for lst in self.lists if lst.size]
        if not live:
            return np.empty(0, np.int64), np.empty((0, self._dimension), np.float32)
        labels = np.concatenate([lst.labels[: lst.size] for lst in live])
        vectors = np.concatenate([lst.vectors[: lst.size] for lst in live])
        return labels, vectors

    def sizes(self) -> NDArray[np.int64]:
        """Each list's length, in list order."""
        return np.array([lst.size for lst in self.lists], dtype=np.int64)

    def load(self, sizes: NDArray[np.int64], labels: Labels, vectors: Matrix) -> None:
        """Replace the contents with lists of these ``sizes``, filled in order from the
        ``labels`` and ``vectors`` that ``items`` returned (sizes summing to their rows)."""
        lists = [InvertedList.empty(self._dimension, int(size)) for size in sizes.tolist()]
        if labels.shape[0]:
            self._make_label_space(int(labels.max()) + 1)
        norms = squared_norms(vectors)
        start = 0
        for list_id, size in enumerate(sizes.tolist()):
            part = slice(start, start + size)
            lists[list_id].append(labels[part], vectors[part], norms[part])
            self.list_of[labels[part]] = list_id
            self.row_of[labels[part]] = np.arange(size)
            start += size
        self._set_lists(lists)
        self.size = labels.shape[0]

    def nbytes(self) -> int:
        lists = sum(lst.nbytes for lst in self.lists)
        return int(lists + self.list_of.nbytes + self.row_of.nbytes)

    def _make_label_space(self, needed: int) -> None:
        self.list_of = with_label_space(self.list_of, needed)
        self.row_of = with_label_space(self.row_of, needed)
