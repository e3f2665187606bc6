"""The compiled distances: the one ``distance`` (float32) and ``exact_distance`` (float64)
of every numba kernel (HNSW walks, insertion, the heuristic, IVF probes), ``rank_exact``,
and the pieces of an exact top k over row ranges (``scan_terms``, ``scan_rows`` and
``kept_rows``, which IVF's probe is built from) with the GIL released throughout.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from domain.index.jit import kernel
from domain.index.scoring.results import Labels, Mask
from domain.index.scoring.rounding import U32, U64
from domain.models import Matrix, Metric, Vector

# How a compiled kernel names a metric: cosine is the dot product of unit vectors.
KERNEL_L2 = 0
KERNEL_DOT = 1


def kernel_metric(metric: Metric) -> int:
    """The code ``distance`` takes for ``metric``."""
    return KERNEL_L2 if metric is Metric.L2 else KERNEL_DOT


@kernel
def distance(metric: int, a: Vector, b: Vector) -> np.float32:
    """Lower is closer: the squared l2 distance (``KERNEL_L2``), computed from the
    differences so no cancellation can creep in, or the negated dot product (``KERNEL_DOT``).
    O(d); the distance of every compiled kernel (HNSW walks, insertion, the heuristic)."""
    total = np.float32(0.0)
    if metric == KERNEL_L2:
        for i in range(a.shape[0]):
            diff = a[i] - b[i]
            total += diff * diff
        return total
    for i in range(a.shape[0]):
        total += a[i] * b[i]
    return -total


@kernel
def exact_distance(metric: int, a: Vector, b: Vector) -> float:
    """``distance`` in float64, which holds every product of two float32 values exactly: the
    exact key of compiled kernels (lower is closer), as ``exact_keys`` is for NumPy. O(d)."""
    total = 0.0
    if metric == KERNEL_L2:
        for i in range(a.shape[0]):
            diff = np.float64(a[i]) - np.float64(b[i])
            total += diff * diff
        return total
    for i in range(a.shape[0]):
        total += np.float64(a[i]) * np.float64(b[i])
    return -total


@kernel
def rank_exact(
    metric: int, vectors: Matrix, query: Vector, nodes: NDArray[np.int64], k: int
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """The ``k`` of ``nodes`` (rows of ``vectors``) nearest ``query`` by ``exact_distance``,
    nearest first (equal distances keep their order in ``nodes``), with those distances:
    ``rank_candidates`` for a compiled caller. O(m·d + m log m) for m nodes."""
    exact = np.empty(nodes.shape[0], dtype=np.float64)
    for i in range(nodes.shape[0]):
        exact[i] = exact_distance(metric, vectors[nodes[i]], query)
    order = np.argsort(exact, kind="mergesort")[:k]
    return nodes[order], exact[order]


# -- the exact top k of row ranges, compiled ------------------------------------------------
#
# One pass computes each admitted row's float32 ``distance`` D̂ and a rigorous interval
# [D̂ - e, D̂ + e] around its float64 ``exact_distance`` Ê (``scan_terms``); a max-heap keeps
# the k smallest upper ends, and a row is kept only while its lower end is at or below the
# k-th smallest upper end so far. At least k rows have Ê at or below that upper end, so
# every row of the exact top k (ties at the k-th included) is kept; the kept rows, about k
# for unit-scale data, are then ranked by Ê. The GIL is released throughout.

Found = NDArray[np.int64]  # (capacity, 2): the block (range) and row of each kept row
Bounds = NDArray[np.float64]
ScanTerms = tuple[float, float, float, float]

_F64_MAX = float(np.finfo(np.float64).max)
# Underflow in a float32 sum of d terms, gradual or flushed to zero, is below d·2^-125.
_TINY_PER_TERM = 2.0**-124


@kernel
def scan_terms(metric: int, query: Vector) -> tuple[float, float, float, float]:
    """The coefficients (a, c, t, b) of e = a·D̂ + c·√(n + t) + b, a bound on |D̂ - Ê| for any
    row x against the prepared ``query``, where D̂ is its float32 ``distance``, Ê its float64
    ``exact_distance`` and n its stored float32 |x|² (``squared_norms``). O(d).

    With u = 2^-24, g_m = m·u/(1 - m·u), g'_m the same for u' = 2^-53, D the real distance and
    z = d·2^-124 (underflow in the float32 sums, gradual or flushed to zero):

    - l2, from differences: fl(x_i - q_i) rounds once, squaring twice more (its square and
      the rounding of it), and any summation order of d nonnegative terms at most d - 1
      times, so |D̂ - D| ≤ g_(d+2)·D + z; in float64 the same gives |Ê - D| ≤ g'_(d+2)·D
      (the square of a float32 difference never underflows float64). As D ≤ (D̂ + z)/(1 -
      g_(d+2)): e = (g_(d+2) + g'_(d+2))·(D̂ + z)/(1 - g_(d+2)) + z, about (d + 2)·u·D̂,
      relative (2.3e-5 at d = 384) and never cancelling far from the origin.
    - dot (cosine on unit vectors): a product rounds once and d - 1 additions of mixed sign
      follow, so |D̂ - D| ≤ g_d·Σ|x_i·q_i| + z ≤ g_d·|x|·|q| + z and |Ê - D| ≤ g'_d·|x|·|q|
      (float64 holds every float32 product exactly). The stored n is within g_d·|x|² + z of
      |x|², so |x| ≤ √((n + z)/(1 - g_d)): e = (g_d + g'_d)·|q|·√((n + z)/(1 - g_d)) + z,
      absolute (2.3e-5 for unit vectors at d = 384).

    Every term carries a relative 2^-20 more for the float64 rounding of |q|, e and D̂ ± e.
    A row whose D̂ or e is not finite (float32 overflow) gets the interval (-inf, inf).
    """
    d = query.shape[0]
    slack = 1.0 + 2.0**-20
    tiny = d * _TINY_PER_TERM
    if metric == KERNEL_L2:
        m = d + 2
        if m * U32 >= 0.5:
            return np.inf, 0.0, 0.0, np.inf
        gamma = m * U32 / (1.0 - m * U32)
        gamma64 = m * U64 / (1.0 - m * U64)
        a = (gamma + gamma64) / (1.0 - gamma) * slack
        return a, 0.0, 0.0, (a * tiny + tiny) * slack
    if d * U32 >= 0.5:
        return 0.0, np.inf, 0.0, np.inf
    gamma = d * U32 / (1.0 - d * U32)
    gamma64 = d * U64 / (1.0 - d * U64)
    q_sq = 0.0
    for i in range(d):
        q_sq += np.float64(query[i]) * np.float64(query[i])
    q_norm = math.sqrt(q_sq)
    c = (gamma + gamma64) * q_norm / math.sqrt(1.0 - gamma) * slack
    return 0.0, c, tiny, tiny * slack


@kernel
def keep_smallest(top: Bounds, n_top: int, value: float) -> int:
    """Keep the ``len(top)`` smallest values seen in the max-heap ``top[:n_top]`` (its root
    the largest kept); returns the new ``n_top``. O(log k)."""
    k = top.shape[0]
    if n_top < k:
        i = n_top
        top[i] = value
        while i > 0:
            parent = (i - 1) >> 1
            if top[parent] >= top[i]:
                break
            top[parent], top[i] = top[i], top[parent]
            i = parent
        return n_top + 1
    if value >= top[0]:
        return n_top
    top[0] = value
    i = 0
    while True:
        child = 2 * i + 1
        if child >= k:
            break
        if child + 1 < k and top[child + 1] > top[child]:
            child += 1
        if top[i] >= top[child]:
            break
        top[child], top[i] = top[i], top[child]
        i = child
    return n_top


@kernel
def scan_rows(
    metric: int,
    vectors: Matrix,
    sq_norms: NDArray[np.float32],
    start: int,
    end: int,
    labels: Labels,
    allowed: Mask,
    filtering: bool,
    query: Vector,
    terms: ScanTerms,
    block: int,
    top: Bounds,
    n_top: int,
    found: Found,
    lower: Bounds,
    n_found: int,
) -> tuple[int, int, int, Found, Bounds]:
    """Scan rows ``start`` to ``end`` of ``vectors`` (block ``block`` of a search): every row
    whose label is allowed (``allowed[labels[row]]``, or ``allowed[row]`` when ``labels`` is
    empty; labels past the mask's end are not allowed), or every row unless ``filtering``.

    Each row's upper bound goes into the heap ``top`` (the k = len(top) smallest), and the
    row is appended to ``found`` (block, row) and ``lower`` (its lower bound) unless its
    lower bound is already above the k-th smallest upper bound. Returns the new ``n_top``,
    ``n_found``, how many rows were admitted, and ``found`` and ``lower`` (reallocated at
    twice the size when full). O((end - start)·d).
    """
    a, c, t, b = terms
    k = top.shape[0]
    by_row = labels.shape[0] == 0
    admitted = 0
    for row in range(start, end):
        if filtering:
            label = row if by_row else labels[row]
            if label < 0 or label >= allowed.shape[0] or not allowed[label]:
                continue
        admitted += 1
        dist = float(distance(metric, vectors[row], query))
        margin = a * dist + b
        if c > 0.0:
            margin += c * math.sqrt(float(sq_norms[row]) + t)
        low = dist - margin
        high = dist + margin
        if not (abs(dist) <= _F64_MAX and margin <= _F64_MAX):
            low = -np.inf
            high = np.inf
        n_top = keep_smallest(top, n_top, high)
        if n_top == k and low > top[0]:
            continue
        if n_found == found.shape[0]:
            grown = np.empty((2 * n_found, 2), dtype=np.int64)
            grown[:n_found] = found
            grown_lower = np.empty(2 * n_found, dtype=np.float64)
            grown_lower[:n_found] = lower
            found, lower = grown, grown_lower
        found[n_found, 0] = block
        found[n_found, 1] = row
        lower[n_found] = low
        n_found += 1
    return n_top, n_found, admitted, found, lower


@kernel
def kept_rows(top: Bounds, n_top: int, lower: Bounds, n_found: int) -> NDArray[np.int64]:
    """Indices (ascending, so in scan order) of the found rows whose lower bound is at or
    below the final k-th smallest upper bound: a superset of the exact top k. O(found)."""
    floor = top[0] if n_top == top.shape[0] else np.inf
    keep = np.empty(n_found, dtype=np.int64)
    count = 0
    for i in range(n_found):
        if lower[i] <= floor:
            keep[count] = i
            count += 1
    return keep[:count]


@kernel
def scan_scratch(k: int) -> tuple[Bounds, Found, Bounds]:
    """Fresh scratch for one search's scans: the heap ``top`` (k) and the ``found`` and
    ``lower`` buffers that ``scan_rows`` grows; no two searches share any of it."""
    capacity = max(4 * k, 64)
    return (
        np.empty(k, dtype=np.float64),
        np.empty((capacity, 2), dtype=np.int64),
        np.empty(capacity, dtype=np.float64),
    )
