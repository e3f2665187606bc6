"""The keyword index's storage, all NumPy: growable columns (the document table) and the posting
lists (for each term, the document slots that hold it and how often).

Each term's list is one small int32 block of two rows, slots over term frequencies, with spare
columns at its end: one array per term rather than two objects keeps a vocabulary of 100k terms
at about 13 MB of headers. Appending is amortised O(n) (a full block grows by half again)."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
from numpy.typing import DTypeLike, NDArray

GROWTH = 1.5
_MIN_CAPACITY = 4

Slots = NDArray[np.int32]


class Column:
    """A 1-d array with spare capacity at its end; ``values`` is the filled part (a view)."""

    __slots__ = ("_block", "size")

    def __init__(self, dtype: DTypeLike, values: NDArray[Any] | None = None) -> None:
        self._block: NDArray[Any] = (
            np.empty(0, dtype) if values is None else np.array(values, dtype)
        )
        self.size = int(self._block.shape[0])

    @property
    def values(self) -> NDArray[Any]:
        return self._block[: self.size]

    @property
    def nbytes(self) -> int:
        return int(self._block.nbytes)

    def extend(self, values: NDArray[Any]) -> None:
        end = self.size + int(values.shape[0])
        if end > self._block.shape[0]:
            capacity = max(end, int(self._block.shape[0] * GROWTH), _MIN_CAPACITY)
            block = np.empty(capacity, self._block.dtype)
            block[: self.size] = self._block[: self.size]
            self._block = block
        self._block[self.size : end] = values
        self.size = end


class PostingLists:
    """Every term's posting list, by term id (ids are handed out by ``add_term``, from 0)."""

    __slots__ = ("_blocks", "_nbytes", "_sizes")

    def __init__(self) -> None:
        self._blocks: list[NDArray[np.int32]] = []
        self._sizes = Column(np.int64)
        self._nbytes = 0

    def __len__(self) -> int:
        """The number of terms."""
        return len(self._blocks)

    @property
    def nbytes(self) -> int:
        """Blocks with their array headers, plus the sizes."""
        return self._nbytes + self._sizes.nbytes + sys.getsizeof(self._blocks)

    def add_term(self) -> int:
        """A new, empty posting list; returns its term id."""
        self._blocks.append(np.empty((2, 0), np.int32))
        self._nbytes += sys.getsizeof(self._blocks[-1])
        self._sizes.extend(np.zeros(1, np.int64))
        return len(self._blocks) - 1

    def extend(self, term: int, slots: Slots, tfs: NDArray[np.int32]) -> None:
        size = int(self._sizes.values[term])
        end = size + int(slots.shape[0])
        block = self._blocks[term]
        if end > block.shape[1]:
            grown = np.empty((2, max(end, int(block.shape[1] * GROWTH), _MIN_CAPACITY)), np.int32)
            grown[:, :size] = block[:, :size]
            self._nbytes += sys.getsizeof(grown) - sys.getsizeof(block)
            self._blocks[term] = block = grown
        block[0, size:end] = slots
        block[1, size:end] = tfs
        self._sizes.values[term] = end

    def get(self, term: int) -> tuple[Slots, NDArray[np.int32]]:
        """The term's slots and term frequencies (views: read, never keep past a write)."""
        size = int(self._sizes.values[term])
        block = self._blocks[term]
        return block[0, :size], block[1, :size]

    def compacted(self, terms: NDArray[np.int64], new_slot: NDArray[np.int64]) -> PostingLists:
        """The lists of ``terms`` (in that order, so ``terms[i]`` becomes term i), keeping only
        slots with ``new_slot[slot] >= 0`` and renumbering them to it. O(postings kept)."""
        lists = PostingLists()
        for term in terms.tolist():
            slots, tfs = self.get(term)
            renumbered = new_slot[slots]
            kept = renumbered >= 0
            lists.extend(lists.add_term(), renumbered[kept].astype(np.int32), tfs[kept])
        return lists
