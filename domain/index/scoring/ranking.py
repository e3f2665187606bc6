"""Fast keys and exact ranking in NumPy: ``keys_for`` (one float32 BLAS product),
``shortlist`` (every row within the rigorous float32 error bound ``_Bound`` of the k-th
best), ``rank_candidates`` (the float64 exact re-rank) and ``exact_search`` (the two steps
together); see the package docstring for why two kinds of key exist.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from domain.index.scoring.results import Keys, Labels, Mask, Positions, Scores
from domain.index.scoring.rounding import U32, U64
from domain.models import Matrix, Metric, Vector
from domain.vectors import prepare

# Below this share of allowed rows, gathering them beats scanning all and masking.
GATHER_BELOW = 0.2
# Rows converted to float64 at a time by the exact re-rank: bounds its temporary.
_EXACT_BLOCK = 4_096
# The float32 range the fast keys must stay inside.
_F32_SAFE = 2.0**126
_F32_MIN = float(np.finfo(np.float32).min)
# A shortlist longer than 2k plus this is narrowed by per-row bounds before the exact re-rank;
# a shorter one costs less to re-rank than to narrow.
_REFINE_ABOVE = 64
# Relative slack on every bound: covers the float64 rounding of computing the bound itself.
_SLACK = 1.0 + 2.0**-20


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
        else:
            block *= q
        # Summed row by row, not by a BLAS product: BLAS rounds a row's sum differently by
        # its place among the rows of the call, and a row's key must not depend on which
        # other rows a shortlist holds (a batch shortlists other rows than a single search).
        if metric is Metric.L2:
            np.square(block, out=block)
            np.negative(block.sum(axis=1), out=out[start : start + block.shape[0]])
        else:
            np.sum(block, axis=1, out=out[start : start + block.shape[0]])
    return out


def exact_order(
    keys: Keys, vectors: Matrix, query: Vector, metric: Metric, sq_norms: NDArray[np.float32]
) -> Positions:
    """Every row of ``vectors``, best first by exact key (equal exact keys in row order),
    given their fast ``keys`` against the prepared ``query`` from any float32 product.

    Two rows whose fast keys differ by more than twice the error bound rank the same by
    their exact keys, so only runs of rows closer than that in the fast order are re-ranked
    exactly: the order does not depend on how the product summed (a batch's matrix product
    and a single query's matrix-vector product round differently). O(n log n + t·d) for t
    rows in near ties (IVF's centroids: t is small unless they crowd far from the origin).
    """
    bound = _Bound.of(sq_norms, query, metric)
    if bound is None:
        order: Positions = np.argsort(-exact_keys(vectors, query, metric), kind="stable")
        return order
    order = np.argsort(-keys, kind="stable")
    ranked = keys[order].astype(np.float64)
    near = ranked[:-1] - ranked[1:] <= 2.0 * bound.worst
    if not near.any():
        return order
    # Runs of near ties: a run starts where a near pair starts after a far one.
    starts = np.flatnonzero(near & ~np.concatenate(([False], near[:-1])))
    ends = np.flatnonzero(near & ~np.concatenate((near[1:], [False]))) + 2
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        run = np.sort(order[start:end])  # row order, so equal exact keys keep it
        exact = exact_keys(vectors[run], query, metric)
        order[start:end] = run[np.argsort(-exact, kind="stable")]
    return order


def within_threshold(scores: Scores, metric: Metric, threshold: float) -> Mask:
    """Which client-facing ``scores`` pass a score threshold in the metric's own direction:
    a similarity at least ``threshold`` for cosine and dot, a distance at most it for l2.
    Compared in float64, so the threshold is not rounded to a float32 first."""
    wide = scores.astype(np.float64)
    kept: Mask = wide <= threshold if metric is Metric.L2 else wide >= threshold
    return kept


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
        if d * U32 >= 0.5 or sq_norms.shape[0] == 0:
            return None
        gamma = d * U32 / (1.0 - d * U32)
        gamma64 = (d + 2) * U64 / (1.0 - (d + 2) * U64)
        q = query.astype(np.float64)
        q_norm = math.sqrt(float(q @ q)) * (1.0 + 4 * U64)
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
        fast = 2.0 * g * x_norm * q + g * x_norm * x_norm + U32 / (1.0 - U32) * key_size
        exact = self.gamma64 * (x_norm + q) ** 2
        return (fast + exact) * _SLACK + self.tiny

    def rows(self, fast: NDArray[np.float64], sq_norms: NDArray[np.float32]) -> NDArray[np.float64]:
        """The bound for each row, given its fast key (float64) and its stored |x|²."""
        x_norm = np.sqrt(sq_norms.astype(np.float64) / (1.0 - self.gamma))
        g, q = self.gamma, self.q_norm
        if self.metric is not Metric.L2:
            margin: NDArray[np.float64] = (g + self.gamma64) * q * _SLACK * x_norm + self.tiny
            return margin
        key_term = U32 / (1.0 - U32) * np.abs(fast)
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
