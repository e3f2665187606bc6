"""The compiled probe of IVF's inverted lists: ``probe_lists`` scans the ``nprobe`` best
lists and ranks what it keeps exactly in one call without the GIL, over ``ProbeBlocks``,
numba typed lists of every list's arrays that writes keep in step."""

from __future__ import annotations

import numpy as np
from numba import typed, types
from numpy.typing import NDArray

from domain.index.ivf.lists import InvertedList
from domain.index.jit import kernel
from domain.index.scoring import (
    Labels,
    Mask,
    exact_distance,
    kept_rows,
    scan_rows,
    scan_scratch,
    scan_terms,
)
from domain.models import Matrix, Vector


class ProbeBlocks:
    """The lists as ``probe_lists`` reads them: numba typed lists of every list's vectors,
    labels and |x|² (the same arrays, not copies) and an array of the lists' sizes.

    Writes keep it in step (``sync`` after each change to a list, under the library's write
    lock); a search only reads it, so concurrent searches share nothing they write.
    """

    def __init__(self, lists: list[InvertedList]) -> None:
        # Built and changed through compiled (cached) kernels: the typed lists' own methods
        # would be compiled afresh in every process, seconds at start-up.
        self.vectors, self.labels, self.sq_norms = _no_blocks()
        self.sizes = np.array([lst.size for lst in lists], dtype=np.int64)
        self._held: list[Matrix] = []  # the vector block each list had when last synced
        for list_id, lst in enumerate(lists):
            self._put(list_id, lst)
            self._held.append(lst.vectors)

    def sync(self, list_id: int, lst: InvertedList) -> None:
        """Take in list ``list_id``'s size, and its arrays if it reallocated them. O(1)."""
        self.sizes[list_id] = lst.size
        if lst.vectors is self._held[list_id]:
            return
        self._put(list_id, lst)
        self._held[list_id] = lst.vectors

    def _put(self, list_id: int, lst: InvertedList) -> None:
        _put_block(
            self.vectors, self.labels, self.sq_norms, list_id, lst.vectors, lst.labels, lst.sq_norms
        )


_BLOCK_VECTORS = types.float32[:, ::1]
_BLOCK_LABELS = types.int64[::1]
_BLOCK_NORMS = types.float32[::1]


@kernel
def _no_blocks() -> tuple[typed.List, typed.List, typed.List]:
    """Empty typed lists of vector, label and |x|² blocks."""
    return (
        typed.List.empty_list(_BLOCK_VECTORS),
        typed.List.empty_list(_BLOCK_LABELS),
        typed.List.empty_list(_BLOCK_NORMS),
    )


@kernel
def _put_block(
    vectors: typed.List,
    labels: typed.List,
    sq_norms: typed.List,
    list_id: int,
    block_vectors: Matrix,
    block_labels: Labels,
    block_norms: NDArray[np.float32],
) -> None:
    """Make list ``list_id``'s blocks these arrays (appending when it is the next list)."""
    if list_id == len(vectors):
        vectors.append(block_vectors)
        labels.append(block_labels)
        sq_norms.append(block_norms)
        return
    vectors[list_id] = block_vectors
    labels[list_id] = block_labels
    sq_norms[list_id] = block_norms


@kernel
def probe_lists(
    metric: int,
    vectors: typed.List,
    labels: typed.List,
    sq_norms: typed.List,
    sizes: NDArray[np.int64],
    order: NDArray[np.intp],
    nprobe: int,
    allowed: Mask,
    filtering: bool,
    query: Vector,
    k: int,
) -> tuple[Labels, NDArray[np.float64], int]:
    """The exact ``k`` nearest allowed rows of the lists probed in ``order``: their labels,
    nearest first (equal exact distances in the order of the lists' rows), their float64
    ``exact_distance`` (lower is closer), and how many lists were probed.

    Lists are probed (best first) until ``nprobe`` were, and, when ``filtering``, until at
    least ``k`` allowed rows were seen. Every admitted row is scored once by ``scan_rows``;
    only those whose float32 distance could be in the top k are re-ranked exactly. The GIL
    is released from entry to return. O(rows scanned·d + kept·d).
    """
    terms = scan_terms(metric, query)
    top, found, lower = scan_scratch(k)
    n_top = 0
    n_found = 0
    probed = 0
    seen = 0
    for i in range(order.shape[0]):
        if probed >= nprobe and (not filtering or seen >= k):
            break
        probed += 1
        list_id = order[i]
        size = sizes[list_id]
        if size == 0:
            continue
        n_top, n_found, admitted, found, lower = scan_rows(
            metric,
            vectors[list_id],
            sq_norms[list_id],
            0,
            size,
            labels[list_id],
            allowed,
            filtering,
            query,
            terms,
            list_id,
            top,
            n_top,
            found,
            lower,
            n_found,
        )
        seen += admitted
    keep = kept_rows(top, n_top, lower, n_found)
    exact = np.empty(keep.shape[0], dtype=np.float64)
    picked = np.empty(keep.shape[0], dtype=np.int64)
    for i in range(keep.shape[0]):
        list_id = found[keep[i], 0]
        row = found[keep[i], 1]
        exact[i] = exact_distance(metric, vectors[list_id][row], query)
        picked[i] = labels[list_id][row]
    best = np.argsort(exact, kind="mergesort")[:k]
    return picked[best], exact[best], probed
