"""k-means for coarse quantisers: k-means++ seeding, Lloyd or mini-batch iterations.

Shared by the IVF index (its inverted lists) and the HNSW bulk build (its candidate search).
Time: seeding O(s·k·d) on a seeding sample of s rows; a Lloyd iteration O(n·k·d), a
mini-batch iteration O(b·k·d) for a batch of b rows. Space: O(k·d) for the centroids plus
one (block, k) matrix of products at a time.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from domain.index.scoring import keys_for, squared_distances, squared_norms
from domain.models import Matrix, Metric

_BLOCK = 8_192  # rows per product block when assigning: bounds the (block, k) temporary
_SEED_SAMPLE_PER_CLUSTER = 16
_TRAIN_SAMPLE_PER_CLUSTER = 64  # FAISS samples up to 256 per cluster; 64 is plenty for lists
_LLOYD_UP_TO = 32_768  # above this many training rows, iterate on mini-batches
_MINI_BATCH = 4_096


def assign(
    vectors: Matrix, centroids: Matrix, centroid_norms: NDArray[np.float32] | None = None
) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """Nearest centroid (Euclidean) of each row and the squared distance to it, by the fast
    float32 keys of ``scoring``: approximate far from the origin, which only costs a
    quantiser a little balance.

    Blocked products: O(n·k·d) time, O(block·k) extra space.
    """
    norms = squared_norms(centroids) if centroid_norms is None else centroid_norms
    n = vectors.shape[0]
    nearest = np.empty(n, dtype=np.int64)
    sq_dist = np.empty(n, dtype=np.float32)
    for start in range(0, n, _BLOCK):
        block = vectors[start : start + _BLOCK]
        keys = keys_for(centroids, block, Metric.L2, norms)  # (block, k)
        best = np.argmax(keys, axis=1)
        nearest[start : start + _BLOCK] = best
        best_keys = keys[np.arange(block.shape[0]), best]
        sq_dist[start : start + _BLOCK] = squared_distances(best_keys, squared_norms(block))
    return nearest, sq_dist


def kmeans_plus_plus(vectors: Matrix, k: int, rng: np.random.Generator) -> Matrix:
    """k distinct-as-possible seeds drawn with probability proportional to the squared
    distance to the nearest seed so far (Arthur & Vassilvitskii, 2007): O(n·k·d)."""
    n = vectors.shape[0]
    centroids = np.empty((k, vectors.shape[1]), dtype=np.float32)
    first = int(rng.integers(n))
    centroids[0] = vectors[first]
    norms = squared_norms(vectors)
    closest = squared_distances(keys_for(vectors, vectors[first], Metric.L2, norms), norms[first])
    for i in range(1, k):
        total = float(closest.sum())
        if total <= 0.0:  # fewer distinct points than k: repeat points, re-seeded later
            pick = int(rng.integers(n))
        else:
            pick = int(np.searchsorted(np.cumsum(closest), rng.random() * total))
            pick = min(pick, n - 1)
        centroids[i] = vectors[pick]
        dist = squared_distances(keys_for(vectors, vectors[pick], Metric.L2, norms), norms[pick])
        np.minimum(closest, dist, out=closest)
    return centroids


def train_kmeans(vectors: Matrix, k: int, *, seed: int = 0, iterations: int = 20) -> Matrix:
    """``k`` centroids of ``vectors`` (float32, (k, d)); deterministic for a given seed.

    Trains on at most 64·k sampled rows: Lloyd iterations up to 32,768 rows, mini-batch
    iterations (Sculley, 2010) above. A cluster left empty is re-seeded on the row farthest
    from its centroid, so every centroid ends up owning points when there are enough.
    """
    n = vectors.shape[0]
    if n == 0 or k <= 0:
        raise ValueError("k-means needs at least one vector and one cluster")
    k = min(k, n)
    rng = np.random.default_rng(seed)
    sample = _sample(vectors, k * _TRAIN_SAMPLE_PER_CLUSTER, rng)
    seeds_from = _sample(sample, max(k * _SEED_SAMPLE_PER_CLUSTER, 1_024), rng)
    centroids = kmeans_plus_plus(seeds_from, k, rng)
    if sample.shape[0] <= _LLOYD_UP_TO:
        return _lloyd(sample, centroids, iterations)
    return _mini_batch(sample, centroids, iterations, rng)


def _sample(vectors: Matrix, limit: int, rng: np.random.Generator) -> Matrix:
    if vectors.shape[0] <= limit:
        return vectors
    picked = np.sort(rng.choice(vectors.shape[0], size=limit, replace=False))
    return np.ascontiguousarray(vectors[picked])


def _lloyd(vectors: Matrix, centroids: Matrix, iterations: int) -> Matrix:
    k = centroids.shape[0]
    for _ in range(iterations):
        nearest, sq_dist = assign(vectors, centroids)
        counts, sums = _cluster_sums(vectors, nearest, k)
        owned = counts > 0
        moved = (sums[owned] / counts[owned, None]).astype(np.float32)
        shift = float(np.abs(moved - centroids[owned]).max(initial=0.0))
        centroids[owned] = moved
        empty = np.flatnonzero(~owned)
        if empty.shape[0]:
            _reseed(centroids, empty, vectors, sq_dist)
        elif shift < 1e-6:
            break
    return centroids


def _mini_batch(
    vectors: Matrix, centroids: Matrix, iterations: int, rng: np.random.Generator
) -> Matrix:
    k = centroids.shape[0]
    batch = max(_MINI_BATCH, 4 * k)
    seen = np.zeros(k, dtype=np.float64)
    # ``iterations`` passes' worth of rows, in batches: the same work as that many epochs.
    steps = max(1, iterations * vectors.shape[0] // (batch * 4))
    for step in range(steps):
        rows = vectors[rng.integers(vectors.shape[0], size=batch)]
        nearest, sq_dist = assign(rows, centroids)
        int_counts, sums = _cluster_sums(rows, nearest, k)
        counts = int_counts.astype(np.float64)
        seen += counts
        hit = counts > 0
        # Per-centre learning rate 1/seen: c += (sum - count·c) / seen.
        step_size = (sums[hit] - counts[hit, None] * centroids[hit]) / seen[hit, None]
        centroids[hit] += step_size.astype(np.float32)
        starving = np.flatnonzero(seen == 0) if step >= 2 else np.empty(0, np.int64)
        if starving.shape[0]:
            _reseed(centroids, starving, rows, sq_dist)
            seen[starving] = 1.0
    return centroids


def _cluster_sums(
    rows: Matrix, nearest: NDArray[np.int64], k: int
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Member count and float64 row sum of each cluster: one sort and one reduceat."""
    counts = np.bincount(nearest, minlength=k)
    sums = np.zeros((k, rows.shape[1]), dtype=np.float64)
    order = np.argsort(nearest, kind="stable")
    owned = np.flatnonzero(counts)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))[owned]
    sums[owned] = np.add.reduceat(rows[order].astype(np.float64), starts, axis=0)
    return counts, sums


def _reseed(
    centroids: Matrix, empty: NDArray[np.int64], rows: Matrix, sq_dist: NDArray[np.float32]
) -> None:
    """Move empty centroids onto the rows worst served by their centroid."""
    take = min(empty.shape[0], rows.shape[0])
    worst = np.argpartition(-sq_dist, take - 1)[:take] if take < rows.shape[0] else np.arange(take)
    centroids[empty[:take]] = rows[worst[:take]]
    sq_dist[worst[:take]] = 0.0
