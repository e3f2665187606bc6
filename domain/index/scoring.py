"""Scores shared by every index: the one place that turns a metric, vectors and a query into
ranking keys and the scores clients see.

Internally every index ranks by a *key* where higher is better: the dot product for cosine
(on unit vectors) and dot, and the negated squared distance for l2. Two kinds of key exist:

- the *fast* key (``keys_for``): one float32 BLAS product, 2x·q - |x|² for l2 (|q|² is the
  same for every row, so it is left out) and x·q otherwise. Far from the origin it cancels
  catastrophically: with coordinates near 4096 its error is about 25 while neighbours are one
  unit apart, so it is only ever used to *shortlist*;
- the *exact* key (``exact_keys``): -Σ(x - q)² or Σ x·q in float64 straight from the stored
  float32 vectors, which is what a search ranks by and what its scores come from.

``shortlist`` keeps every row whose fast key could be within a rigorous float32 error bound of
the k-th best (see ``_Bound``), so re-ranking the shortlist exactly (``rank_candidates``) gives
the exact top k; ``exact_search`` is the two steps together. For unit-scale data the
shortlist is about k rows; far from the origin it grows exactly as much as the bound demands.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from domain.index.jit import kernel
from domain.models import Matrix, Metric, Vector
from domain.vectors import prepare

Labels = NDArray[np.int64]
Keys = NDArray[np.float32]
Mask = NDArray[np.bool_]
Positions = NDArray[np.intp]
Scores = NDArray[np.float32]
# An index snapshot: named arrays that an index's ``from_state`` turns back into it (an .npz).
StateArrays = dict[str, NDArray[Any]]

# Below this share of allowed rows, gathering them beats scanning all and masking.
GATHER_BELOW = 0.2
# Rows converted to float64 at a time by the exact re-rank: bounds its temporary.
_EXACT_BLOCK = 4_096
# Unit roundoff of float32 and float64, and the float32 range the fast keys must stay inside.
_U32 = 2.0**-24
_U64 = 2.0**-53
_F32_SAFE = 2.0**126
_F32_MIN = float(np.finfo(np.float32).min)
# A shortlist longer than 2k plus this is narrowed by per-row bounds before the exact re-rank;
# a shorter one costs less to re-rank than to narrow.
_REFINE_ABOVE = 64
# Relative slack on every bound: covers the float64 rounding of computing the bound itself.
_SLACK = 1.0 + 2.0**-20


@dataclass(frozen=True, slots=True)
class SearchParams:
    """Per-query overrides of an index's defaults; ``None`` keeps the index default."""

    ef: int | None = None
    nprobe: int | None = None


@dataclass(frozen=True, slots=True)
class Hits:
    """Search results, best first: labels and client-facing scores, plus how they were found."""

    labels: Labels
    scores: NDArray[np.float32]
    strategy: str = "scan"
    extra: dict[str, float] = field(default_factory=dict)

    @classmethod
    def empty(cls, strategy: str = "scan") -> Hits:
        return cls(np.empty(0, np.int64), np.empty(0, np.float32), strategy)

    def __len__(self) -> int:
        return int(self.labels.shape[0])


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
        if m * _U32 >= 0.5:
            return np.inf, 0.0, 0.0, np.inf
        gamma = m * _U32 / (1.0 - m * _U32)
        gamma64 = m * _U64 / (1.0 - m * _U64)
        a = (gamma + gamma64) / (1.0 - gamma) * slack
        return a, 0.0, 0.0, (a * tiny + tiny) * slack
    if d * _U32 >= 0.5:
        return 0.0, np.inf, 0.0, np.inf
    gamma = d * _U32 / (1.0 - d * _U32)
    gamma64 = d * _U64 / (1.0 - d * _U64)
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


@kernel
def exact_top_k(
    metric: int,
    vectors: Matrix,
    sq_norms: NDArray[np.float32],
    starts: NDArray[np.int64],
    ends: NDArray[np.int64],
    allowed: Mask,
    filtering: bool,
    query: Vector,
    k: int,
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """The exact ``k`` nearest rows of ``vectors`` among the row ranges ``starts[i]`` to
    ``ends[i]`` (scanned in that order), only rows where ``allowed`` is True when
    ``filtering``: their rows, nearest first (equal exact distances in scan order), and their
    ``exact_distance`` (float64; lower is closer). Exact for any finite float32 data.
    ``sq_norms`` are the rows' ``squared_norms``; ``query`` is prepared.

    O(m·d + s·d + s log s) for m rows scanned and s kept (about k for unit-scale data), with
    the GIL released throughout.
    """
    if k <= 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
    terms = scan_terms(metric, query)
    top, found, lower = scan_scratch(k)
    no_labels = np.empty(0, dtype=np.int64)
    n_top = 0
    n_found = 0
    for r in range(starts.shape[0]):
        n_top, n_found, _, found, lower = scan_rows(
            metric,
            vectors,
            sq_norms,
            starts[r],
            ends[r],
            no_labels,
            allowed,
            filtering,
            query,
            terms,
            r,
            top,
            n_top,
            found,
            lower,
            n_found,
        )
    keep = kept_rows(top, n_top, lower, n_found)
    rows = np.empty(keep.shape[0], dtype=np.int64)
    for i in range(keep.shape[0]):
        rows[i] = found[keep[i], 1]
    return rank_exact(metric, vectors, query, rows, k)


def prepare_query(query: Vector, metric: Metric) -> Vector:
    prepared: Vector = prepare(query.reshape(1, -1), metric)[0]
    return prepared


def squared_norms(matrix: Matrix) -> NDArray[np.float32]:
    """|x|² of every row in float32 (within g_d·|x|² of the true value, the bound assumes)."""
    norms: NDArray[np.float32] = np.einsum("ij,ij->i", matrix, matrix).astype(np.float32)
    return norms


# -- fast keys: shortlisting and approximate assignment -------------------------------------


def keys_for(
    matrix: Matrix,
    query: Vector | Matrix,
    metric: Metric,
    sq_norms: NDArray[np.float32] | None = None,
    *,
    out: Keys | None = None,
) -> Keys:
    """Fast float32 keys (higher is better) of every row of ``matrix`` against a prepared
    ``query``: shape (n,), or (m, n) for m queries given as the rows of a matrix.

    One BLAS product: O(m·n·d) time, O(m·n) space, written into ``out`` when given instead
    of a fresh array. Approximate far from the origin (see the module docstring): rank with
    ``shortlist`` and ``rank_candidates``, or accept an approximate answer (k-means).
    """
    if out is None:
        product = matrix @ query if query.ndim == 1 else query @ matrix.T
        dots: Keys = np.asarray(product, dtype=np.float32)
    else:
        dots = np.matmul(matrix, query, out=out)
    if metric is not Metric.L2:
        return dots
    norms = squared_norms(matrix) if sq_norms is None else sq_norms
    # -(|x|^2 - 2x.q + |q|^2) + |q|^2: the constant |q|^2 does not change the ranking.
    np.multiply(dots, np.float32(2.0), out=dots)
    np.subtract(dots, norms, out=dots)
    return dots


def squared_distances(keys: Keys, query_sq_norms: NDArray[np.float32] | float) -> Keys:
    """Squared l2 distances from fast l2 keys and |q|² (per key row, or one value): as
    approximate as the keys, clipped at zero."""
    distances: Keys = np.maximum(query_sq_norms - keys, np.float32(0.0)).astype(
        np.float32, copy=False
    )
    return distances


# -- exact ranking ----------------------------------------------------------------------


def exact_keys(vectors: Matrix, query: Vector, metric: Metric) -> NDArray[np.float64]:
    """Exact keys (higher is better) in float64: -Σ(x - q)² for l2, Σ x·q otherwise.

    float64 holds every product of two float32 values exactly, so what rounding remains is
    2^-29 of the float32 error. O(n·d) time, O(min(n, 4096)·d) float64 scratch.
    """
    n = vectors.shape[0]
    q = query.astype(np.float64)
    out = np.empty(n, dtype=np.float64)
    for start in range(0, n, _EXACT_BLOCK):
        block = vectors[start : start + _EXACT_BLOCK].astype(np.float64)
        if metric is Metric.L2:
            block -= q
            np.square(block, out=block)
            np.negative(block.sum(axis=1), out=out[start : start + block.shape[0]])
        else:
            np.matmul(block, q, out=out[start : start + block.shape[0]])
    return out


def scores_from_exact(keys: NDArray[np.float64], metric: Metric) -> Scores:
    """What clients see for exact keys: the Euclidean distance for l2, the similarity else."""
    if metric is Metric.L2:
        return np.sqrt(-keys).astype(np.float32)
    return keys.astype(np.float32)


def rank_candidates(
    vectors: Matrix, query: Vector, metric: Metric, k: int
) -> tuple[Positions, Scores]:
    """Positions (rows of ``vectors``) of the exact ``k`` best rows, best first, and their
    scores. Every row is ranked by its float64 exact key; equal keys come back in row order.

    For small candidate sets (a shortlist, an HNSW walk's ef results): O(m·d + m log m).
    """
    m = vectors.shape[0]
    if k <= 0 or m == 0:
        return np.empty(0, dtype=np.intp), np.empty(0, dtype=np.float32)
    exact = exact_keys(vectors, query, metric)
    best: Positions = np.argsort(-exact, kind="stable")[:k]
    return best, scores_from_exact(exact[best], metric)


def shortlist(
    keys: Keys,
    sq_norms: NDArray[np.float32],
    query: Vector,
    metric: Metric,
    k: int,
    *,
    allowed: Mask | None = None,
    scratch: Keys | None = None,
) -> Positions:
    """Positions, ascending, of every row whose exact key could be among the ``k`` best:
    a superset of the exact top k (ties at the k-th included), given fast ``keys`` from
    ``keys_for`` and the rows' float32 ``sq_norms`` (from ``squared_norms``).

    Rows where ``allowed`` is False are never kept (their keys are set to -inf, in place).
    O(n) time; ``scratch`` (n float32) takes the partitioned copy of the keys when given.
    """
    n = keys.shape[0]
    if allowed is not None:
        keys[~allowed] = np.float32(-np.inf)
        available = int(np.count_nonzero(allowed))
    else:
        available = n
    k = min(k, available)
    if k <= 0:
        return np.empty(0, dtype=np.intp)
    bound = _Bound.of(sq_norms, query, metric)
    if k == available or bound is None:
        return np.flatnonzero(allowed) if allowed is not None else np.arange(n)
    kth = float(_kth_largest(keys, k, scratch))
    candidates = np.flatnonzero(keys >= _below(kth - 2.0 * bound.worst))
    if candidates.shape[0] <= _REFINE_ABOVE + 2 * k:
        return candidates
    # Per-row bounds on the many left (far from the origin): the k-th best lower bound is a
    # floor under the exact k-th best, so a row whose upper bound is below it cannot be in
    # the top k.
    fast = keys[candidates].astype(np.float64)
    margin = bound.rows(fast, sq_norms[candidates])
    lower = fast - margin
    floor = np.partition(lower, lower.shape[0] - k)[lower.shape[0] - k]
    kept: Positions = candidates[fast + margin >= floor]
    return kept


def exact_search(
    vectors: Matrix,
    query: Vector,
    metric: Metric,
    k: int,
    *,
    sq_norms: NDArray[np.float32] | None = None,
    mask: Mask | None = None,
    scratch: NDArray[np.float32] | None = None,
) -> tuple[Positions, Scores]:
    """Positions (rows of ``vectors``) of the exact ``k`` best rows, best first, and their
    client-facing scores; only rows where ``mask`` is True when given. ``query`` is prepared
    (unit for cosine); ``sq_norms`` are the rows' ``squared_norms`` (computed when absent).
    Equal exact keys come back in row order.

    A fast float32 product for every row, then ``shortlist`` and an exact float64 re-rank of
    the shortlist: O(n·d + s·d) for a shortlist of s rows (about k for unit-scale data).
    ``scratch`` (a (2, >= n) float32 array) takes the keys and their partitioned copy, so
    nothing n-sized is allocated per query; with a mask admitting under a fifth of the rows,
    those rows are gathered and scanned instead.
    """
    n = vectors.shape[0]
    if k <= 0 or n == 0:
        return np.empty(0, dtype=np.intp), np.empty(0, dtype=np.float32)
    if mask is not None and gathers(mask):
        rows = np.flatnonzero(mask)
        norms = None if sq_norms is None else sq_norms[rows]
        found, scores = exact_search(vectors[rows], query, metric, k, sq_norms=norms)
        picked: Positions = rows[found]
        return picked, scores
    norms = squared_norms(vectors) if sq_norms is None else sq_norms
    keys_out = None if scratch is None else scratch[0, :n]
    copy_out = None if scratch is None else scratch[1, :n]
    keys = keys_for(vectors, query, metric, norms, out=keys_out)
    short = shortlist(keys, norms, query, metric, k, allowed=mask, scratch=copy_out)
    best, scores = rank_candidates(vectors[short], query, metric, k)
    positions: Positions = short[best]
    return positions, scores


def gathers(mask: Mask) -> bool:
    """Whether ``exact_search`` gathers the allowed rows rather than masking a full scan."""
    allowed = int(np.count_nonzero(mask))
    return allowed < GATHER_BELOW * int(mask.shape[0])


@dataclass(frozen=True, slots=True)
class _Bound:
    """A rigorous bound on |fast key - exact key| for a query, per row and over all rows.

    With u = 2^-24 and g_d = d·u/(1 - d·u), any float32 dot product in any summation order
    (BLAS blocking, FMA) satisfies |fl(x·q) - x·q| ≤ g_d·Σ|x_i·q_i| ≤ g_d·|x|·|q|, and the
    stored n = fl(|x|²) is within g_d·|x|², so |x| ≤ X = √(n / (1 - g_d)). The l2 key
    fl(2·fl(x·q) - n) then lies within
        2·g_d·X·|q| + g_d·X² + u/(1 - u)·|key|
    of 2x·q - |x|² (doubling is exact; the subtraction rounds once), and the dot key within
    g_d·X·|q|. Added: the float64 exact key's own rounding, g'_(d+2)·(X + |q|)² for l2 or
    g'_d·X·|q| for dot with u' = 2^-53; 4(d + 1)·2^-149 for underflow; and a relative
    2^-20 for rounding while computing the bound. ``worst`` takes X at the largest norm and
    |key| ≤ 2(1 + g_d)·X·|q| + n. ``of`` gives None when the float32 keys could overflow.
    """

    metric: Metric
    gamma: float
    gamma64: float
    q_norm: float
    tiny: float
    worst: float

    @classmethod
    def of(cls, sq_norms: NDArray[np.float32], query: Vector, metric: Metric) -> _Bound | None:
        d = query.shape[0]
        if d * _U32 >= 0.5 or sq_norms.shape[0] == 0:
            return None
        gamma = d * _U32 / (1.0 - d * _U32)
        gamma64 = (d + 2) * _U64 / (1.0 - (d + 2) * _U64)
        q = query.astype(np.float64)
        q_norm = math.sqrt(float(q @ q)) * (1.0 + 4 * _U64)
        top_norm = float(sq_norms.max())
        x_norm = math.sqrt(top_norm / (1.0 - gamma))
        largest = 2.0 * (1.0 + gamma) * x_norm * q_norm + top_norm
        if not largest < _F32_SAFE:  # also catches an infinite or NaN norm
            return None
        tiny = 4.0 * (d + 1) * 2.0**-149
        bound = cls(metric, gamma, gamma64, q_norm, tiny, 0.0)
        worst = bound._margin(x_norm, largest)
        return cls(metric, gamma, gamma64, q_norm, tiny, worst)

    def _margin(self, x_norm: float, key_size: float) -> float:
        g, q = self.gamma, self.q_norm
        if self.metric is not Metric.L2:
            return (g + self.gamma64) * x_norm * q * _SLACK + self.tiny
        fast = 2.0 * g * x_norm * q + g * x_norm * x_norm + _U32 / (1.0 - _U32) * key_size
        exact = self.gamma64 * (x_norm + q) ** 2
        return (fast + exact) * _SLACK + self.tiny

    def rows(self, fast: NDArray[np.float64], sq_norms: NDArray[np.float32]) -> NDArray[np.float64]:
        """The bound for each row, given its fast key (float64) and its stored |x|²."""
        x_norm = np.sqrt(sq_norms.astype(np.float64) / (1.0 - self.gamma))
        g, q = self.gamma, self.q_norm
        if self.metric is not Metric.L2:
            margin: NDArray[np.float64] = (g + self.gamma64) * q * _SLACK * x_norm + self.tiny
            return margin
        key_term = _U32 / (1.0 - _U32) * np.abs(fast)
        total = (2.0 * g * q + g * x_norm) * x_norm + key_term + self.gamma64 * (x_norm + q) ** 2
        result: NDArray[np.float64] = total * _SLACK + self.tiny
        return result


def _kth_largest(keys: Keys, k: int, scratch: Keys | None) -> np.float32:
    """The k-th largest key (1 <= k <= n) by partitioning a copy (into ``scratch`` when
    given): O(n), and no n-sized index array as ``argpartition`` would allocate."""
    n = keys.shape[0]
    if scratch is None:
        return np.float32(np.partition(keys, n - k)[n - k])
    copy = scratch[:n]
    np.copyto(copy, keys)
    copy.partition(n - k)
    return np.float32(copy[n - k])


def _below(threshold: float) -> np.float32:
    """The largest float32 at or below ``threshold``, never below the lowest finite one (so
    rows masked to -inf stay out)."""
    if threshold <= _F32_MIN:
        return np.float32(_F32_MIN)
    rounded = np.float32(threshold)
    if float(rounded) > threshold:
        rounded = np.nextafter(rounded, np.float32(-np.inf))
    return rounded


def allowed_rows(allowed: Mask | None, row_labels: Labels) -> Mask | None:
    """The label mask ``allowed`` gathered onto rows; labels past its end are not allowed."""
    if allowed is None:
        return None
    inside = row_labels < allowed.shape[0]
    rows = np.zeros(row_labels.shape[0], dtype=np.bool_)
    rows[inside] = allowed[row_labels[inside]]
    return rows
