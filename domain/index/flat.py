"""The exact index: one contiguous float32 matrix scanned with a BLAS product.

Time: search O(n·d) for the float32 product, O(n) to shortlist the rows whose key could be in
the top k, O(s·d + s log s) to re-rank the s shortlisted rows exactly in float64 (s is about
k for unit-scale data, more far from the origin; see ``scoring``); add O(d) amortised per
vector; remove O(d) per vector (swap-remove). Space: n·d·4 bytes for the vectors, 8 for the
label of each row, 4 for its squared norm, 8 per label ever assigned for the reverse map.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import Executor
from typing import Self

import numpy as np
from numpy.typing import NDArray

from domain.index.batches import last_of_each
from domain.index.growth import MIN_CAPACITY, grown_capacity, regrown, with_label_space
from domain.index.scoring import (
    Hits,
    IndexQuery,
    Labels,
    Mask,
    SearchParams,
    StateArrays,
    allowed_rows,
    exact_search,
    exact_search_many,
    gathers,
    prepare_query,
    squared_norms,
)
from domain.index.state_header import read_state_header, state_header
from domain.models import IndexSpec, IndexType, Matrix, Metric, Vector
from domain.vectors import prepare


class FlatIndex:
    """Implements ``domain.ports.VectorIndex`` exactly.

    Rows are dense: a removed row is filled with the last row (swap-remove), so a scan never
    touches dead space and memory shrinks with deletes (the buffer halves below 1/4 full).
    """

    def __init__(self, dimension: int, metric: Metric) -> None:
        self._dimension = dimension
        self._metric = metric
        self._size = 0
        self._vectors: Matrix = np.empty((0, dimension), dtype=np.float32)
        self._row_labels: Labels = np.empty(0, dtype=np.int64)
        self._sq_norms: NDArray[np.float32] = np.empty(0, dtype=np.float32)
        self._row_of: NDArray[np.int64] = np.empty(0, dtype=np.int64)  # label -> row, -1 absent
        self._scratch = _ScratchPool()

    @property
    def spec(self) -> IndexSpec:
        return IndexSpec(IndexType.FLAT)

    @property
    def metric(self) -> Metric:
        return self._metric

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def needs_rebuild(self) -> bool:
        """Always False: an exact index has no structure that can drift."""
        return False

    def __len__(self) -> int:
        return self._size

    def __contains__(self, label: int) -> bool:
        return 0 <= label < self._row_of.shape[0] and bool(self._row_of[label] >= 0)

    def add(self, labels: Labels, vectors: Matrix) -> None:
        """Insert or replace one vector per label (the last wins when a label repeats)."""
        if labels.shape[0] == 0:
            return
        labels, vectors = last_of_each(labels, prepare(vectors, self._metric))
        self._ensure_label_space(int(labels.max()) + 1)
        rows = self._row_of[labels]
        new = rows < 0
        fresh = int(new.sum())
        self._ensure_capacity(self._size + fresh)
        rows[new] = np.arange(self._size, self._size + fresh)
        self._size += fresh
        self._vectors[rows] = vectors
        self._row_labels[rows] = labels
        self._row_of[labels] = rows
        self._sq_norms[rows] = squared_norms(vectors)

    def remove(self, labels: Labels) -> None:
        """Drop the vectors of these labels; labels not in the index are ignored."""
        known = labels[(labels >= 0) & (labels < self._row_of.shape[0])]
        rows = np.unique(self._row_of[known])
        rows = rows[rows >= 0]
        if rows.shape[0] == 0:
            return
        keep = np.ones(self._size, dtype=np.bool_)
        keep[rows] = False
        self._row_of[self._row_labels[rows]] = -1
        # Fill the holes below the new size with the survivors above it: O(removed·d).
        new_size = self._size - rows.shape[0]
        holes = rows[rows < new_size]
        movers = np.flatnonzero(keep[new_size:]) + new_size
        self._vectors[holes] = self._vectors[movers]
        self._row_labels[holes] = self._row_labels[movers]
        self._sq_norms[holes] = self._sq_norms[movers]
        self._row_of[self._row_labels[holes]] = holes
        self._size = new_size
        self._shrink_if_sparse()

    def search(
        self,
        query: Vector,
        k: int,
        *,
        allowed: Mask | None = None,
        params: SearchParams | None = None,
        exact: bool = False,
    ) -> Hits:
        """The exact top ``k`` among rows whose label is allowed (``scoring.exact_search``:
        exact for any finite vectors, equal scores in row order). ``params`` and ``exact``
        change nothing here: every search is exact."""
        if self._size == 0 or k <= 0:
            return Hits.empty()
        q = prepare_query(query, self._metric)
        labels = self._row_labels[: self._size]
        mask = allowed_rows(allowed, labels)
        buffers = self._scratch.take(self._size)
        try:
            rows, scores = exact_search(
                self._vectors[: self._size],
                q,
                self._metric,
                k,
                sq_norms=self._sq_norms[: self._size],
                mask=mask,
                scratch=buffers,
            )
        finally:
            self._scratch.give(buffers)
        return Hits(labels[rows], scores, _strategy(mask))

    def search_many(
        self, queries: Sequence[IndexQuery], *, executor: Executor | None = None
    ) -> list[Hits]:
        """What ``search`` answers for each query, in order, from one matrix product per
        block of queries (``scoring.exact_search_many``): O(m·n·d) for m queries, each then
        shortlisted and re-ranked on its own. ``executor`` is not needed: the product is
        the work, and BLAS runs it."""
        if self._size == 0 or not queries:
            return [Hits.empty() for _ in queries]
        labels = self._row_labels[: self._size]
        matrix = np.stack([prepare_query(q.vector, self._metric) for q in queries])
        masks = [allowed_rows(q.allowed, labels) for q in queries]
        found = exact_search_many(
            self._vectors[: self._size],
            matrix,
            self._metric,
            [q.k for q in queries],
            masks=masks,
            sq_norms=self._sq_norms[: self._size],
        )
        return [
            Hits(labels[rows], scores, _strategy(mask))
            for (rows, scores), mask in zip(found, masks, strict=True)
        ]

    def items(self) -> tuple[Labels, Matrix]:
        """Copies of the live labels and their stored (prepared) vectors."""
        return self._row_labels[: self._size].copy(), self._vectors[: self._size].copy()

    def nbytes(self) -> int:
        return int(
            self._vectors.nbytes
            + self._row_labels.nbytes
            + self._sq_norms.nbytes
            + self._row_of.nbytes
        )

    def to_state(self) -> StateArrays:
        """Arrays that ``from_state`` turns back into an identical index (rows in order)."""
        labels, vectors = self.items()
        return {
            **state_header(IndexType.FLAT, self._metric, self._dimension),
            "labels": labels,
            "vectors": vectors,
        }

    @classmethod
    def from_state(cls, state: StateArrays) -> Self:
        """The index saved by ``to_state``; raises ``ValueError`` on inconsistent arrays."""
        metric, dimension = read_state_header(state, IndexType.FLAT)
        labels = np.asarray(state["labels"], dtype=np.int64)
        vectors = np.ascontiguousarray(state["vectors"], dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape != (labels.shape[0], dimension):
            raise ValueError("flat state arrays do not agree with each other")
        if np.unique(labels).shape[0] != labels.shape[0] or (labels < 0).any():
            raise ValueError("flat state labels must be unique and non-negative")
        index = cls(dimension, metric)
        n = labels.shape[0]
        if n == 0:
            return index
        # Stored as prepared: copied as they are, so scores come back bit for bit.
        index._ensure_label_space(int(labels.max()) + 1)
        index._ensure_capacity(n)
        index._vectors[:n] = vectors
        index._row_labels[:n] = labels
        index._row_of[labels] = np.arange(n)
        index._sq_norms[:n] = squared_norms(vectors)
        index._size = n
        return index

    def reserve(self, capacity: int) -> None:
        """Make room for ``capacity`` rows at once, so adding up to that many copies each
        vector once instead of regrowing the matrix (a bulk build knows its size)."""
        self._ensure_capacity(capacity)

    def _ensure_capacity(self, needed: int) -> None:
        capacity = self._vectors.shape[0]
        if needed <= capacity:
            return
        self._resize(grown_capacity(needed, capacity))

    def _shrink_if_sparse(self) -> None:
        capacity = self._vectors.shape[0]
        if capacity > MIN_CAPACITY and self._size < capacity // 4:
            self._resize(max(self._size * 2, MIN_CAPACITY))

    def _resize(self, capacity: int) -> None:
        self._vectors = regrown(self._vectors, capacity, self._size)
        self._row_labels = regrown(self._row_labels, capacity, self._size)
        self._sq_norms = regrown(self._sq_norms, capacity, self._size)

    def _ensure_label_space(self, needed: int) -> None:
        self._row_of = with_label_space(self._row_of, needed)


class _ScratchPool:
    """Reusable per-search buffers for the keys of every row and their partitioned copy.

    The server serves allocations of 128 KiB and more with their own mapping
    (``bootstrap/malloc.py``), so two fresh n-float arrays per query cost a page fault per
    4 KiB (about 0.3 ms of CPU at 81k rows). Concurrent searches each take their own pair;
    at most ``_KEEP`` pairs are kept, so idle memory stays 8·n bytes per kept pair.
    """

    _KEEP = 4

    def __init__(self) -> None:
        self._free: list[NDArray[np.float32]] = []
        self._lock = threading.Lock()

    def take(self, n: int) -> NDArray[np.float32]:
        """A (2, >= n) float32 array; rows 0 and 1 are the keys and the scratch copy."""
        with self._lock:
            while self._free:
                buffers = self._free.pop()
                if buffers.shape[1] >= n:
                    return buffers[:, :n]
        return np.empty((2, max(n, MIN_CAPACITY)), dtype=np.float32)[:, :n]

    def give(self, buffers: NDArray[np.float32]) -> None:
        whole = buffers if buffers.base is None else buffers.base
        assert isinstance(whole, np.ndarray)
        with self._lock:
            if len(self._free) < self._KEEP:
                self._free.append(whole)


def _strategy(mask: Mask | None) -> str:
    if mask is None:
        return "scan"
    return "filtered-scan" if gathers(mask) else "masked-scan"
