"""Scores shared by every index.

Internally every index ranks by a *key* where higher is better: the dot product for cosine
(on unit vectors) and dot, and the negated squared distance for l2. ``to_scores`` turns keys
into what clients see: similarity for cosine and dot, Euclidean distance for l2.
"""

from __future__ import annotations

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
# An index snapshot: named arrays that an index's ``from_state`` turns back into it (an .npz).
StateArrays = dict[str, NDArray[Any]]


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
def distance(metric: int, a: Vector, b: Vector) -> float:
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


def prepare_query(query: Vector, metric: Metric) -> Vector:
    prepared: Vector = prepare(query.reshape(1, -1), metric)[0]
    return prepared


def squared_norms(matrix: Matrix) -> NDArray[np.float32]:
    norms: NDArray[np.float32] = np.einsum("ij,ij->i", matrix, matrix).astype(np.float32)
    return norms


def keys_for(
    matrix: Matrix,
    query: Vector,
    metric: Metric,
    sq_norms: NDArray[np.float32] | None = None,
    *,
    out: Keys | None = None,
) -> Keys:
    """Higher-is-better keys of every row of ``matrix`` against a prepared ``query``.

    One BLAS matrix-vector product: O(n·d) time, O(n) extra space, written into ``out``
    (float32, one per row) when given instead of a fresh array.
    """
    if out is None:
        dots: Keys = np.asarray(matrix @ query, dtype=np.float32)
    else:
        dots = np.matmul(matrix, query, out=out)
    if metric is not Metric.L2:
        return dots
    norms = squared_norms(matrix) if sq_norms is None else sq_norms
    # -(|x|^2 - 2x.q + |q|^2); |q|^2 is the same for every row, so it only shifts the keys
    # and is added back in to_scores.
    if out is None:
        keys: Keys = (2.0 * dots - norms).astype(np.float32, copy=False)
        return keys
    np.multiply(dots, np.float32(2.0), out=dots)
    np.subtract(dots, norms, out=dots)
    return dots


def top_k(keys: Keys, k: int, *, scratch: Keys | None = None) -> NDArray[np.intp]:
    """Positions of the ``k`` largest keys, largest first (equal keys in row order): O(n +
    k log k).

    The k-th largest key is found by partitioning a copy of the keys (into ``scratch``, n
    float32, when given); the rows at or above it are then the only ones sorted. Unlike
    ``argpartition``, nothing of n int64 positions is allocated per query, nor a negated
    copy of the keys.
    """
    n = keys.shape[0]
    if k <= 0 or n == 0:
        return np.empty(0, dtype=np.intp)
    if k >= n:
        return np.argsort(-keys, kind="stable")
    if scratch is None:
        copy = np.partition(keys, n - k)
    else:
        copy = scratch[:n]
        np.copyto(copy, keys)
        copy.partition(n - k)
    candidates = np.flatnonzero(keys >= copy[n - k])
    order = np.argsort(-keys[candidates], kind="stable")[:k]
    best: NDArray[np.intp] = candidates[order]
    return best


def to_scores(keys: Keys, query: Vector, metric: Metric, vectors: Matrix) -> NDArray[np.float32]:
    """Client-facing scores of the hits whose keys ``keys_for`` computed for ``query``.

    ``vectors`` are the hits' stored vectors (k rows). For l2 the distance is computed again
    from them directly: the expanded form behind the keys loses precision to cancellation
    (about 1e-3 for an identical vector), which is fine for ranking but not as the answer.
    """
    if metric is not Metric.L2:
        return keys
    diff = vectors - query
    distances: NDArray[np.float32] = np.sqrt(np.einsum("ij,ij->i", diff, diff))
    return distances.astype(np.float32, copy=False)


def allowed_rows(allowed: Mask | None, row_labels: Labels) -> Mask | None:
    """The label mask ``allowed`` gathered onto rows; labels past its end are not allowed."""
    if allowed is None:
        return None
    inside = row_labels < allowed.shape[0]
    rows = np.zeros(row_labels.shape[0], dtype=np.bool_)
    rows[inside] = allowed[row_labels[inside]]
    return rows
