"""``search_many`` answers a batch exactly as ``search`` answers each query alone, on Flat,
IVF and HNSW: the same labels in the same order and the same scores, with and without
filters, on data that stresses the arithmetic (far from the origin, duplicated rows).

A batch's matrix product rounds each fast key differently from a single query's
matrix-vector product; the shortlist's bound and the row-by-row exact keys must absorb
that, and IVF must probe the same lists (``exact_order``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from domain.index.flat import FlatIndex
from domain.index.hnsw import HnswIndex
from domain.index.ivf import IvfIndex
from domain.index.scoring import IndexQuery, SearchParams, exact_order, keys_for, squared_norms
from domain.models import HnswParams, IvfParams, Metric
from domain.ports import VectorIndex

Builder = Callable[[Metric, NDArray[np.int64], NDArray[np.float32]], VectorIndex]


def flat(metric: Metric, labels: NDArray[np.int64], vectors: NDArray[np.float32]) -> VectorIndex:
    index = FlatIndex(vectors.shape[1], metric)
    index.add(labels, vectors)
    return index


def ivf(metric: Metric, labels: NDArray[np.int64], vectors: NDArray[np.float32]) -> VectorIndex:
    params = IvfParams(nlist=16, nprobe=3)
    return IvfIndex.build(vectors.shape[1], metric, params, labels, vectors)


def hnsw(metric: Metric, labels: NDArray[np.int64], vectors: NDArray[np.float32]) -> VectorIndex:
    params = HnswParams(m=8, ef_construction=64)
    return HnswIndex.build(vectors.shape[1], metric, params, labels, vectors)


BUILDERS: dict[str, Builder] = {"flat": flat, "ivf": ivf, "hnsw": hnsw}


def stressed(rng: np.random.Generator, n: int, d: int, offset: float) -> NDArray[np.float32]:
    """Clusters far from the origin (neighbours about one unit apart at ``offset``), with
    every fifth row a duplicate of another, so exact ties are common."""
    centres = rng.normal(0.0, 8.0, (6, d)) + offset
    rows = centres[rng.integers(0, 6, n)] + rng.normal(0.0, 1.0, (n, d))
    rows[::5] = rows[1::5][: rows[::5].shape[0]]
    return rows.astype(np.float32)


def answers(hits_list: list[object]) -> list[tuple[list[int], list[float], str]]:
    out = []
    for hits in hits_list:
        out.append(
            (
                [int(x) for x in hits.labels],  # type: ignore[attr-defined]
                [float(x) for x in hits.scores],  # type: ignore[attr-defined]
                str(hits.strategy),  # type: ignore[attr-defined]
            )
        )
    return out


@pytest.mark.parametrize("kind", list(BUILDERS))
@pytest.mark.parametrize("metric", list(Metric))
@pytest.mark.parametrize("offset", [0.0, 1e4])
def test_a_batch_answers_each_query_as_its_single_search_does(
    kind: str, metric: Metric, offset: float
) -> None:
    rng = np.random.default_rng(11)
    n, d = 600, 24
    vectors = stressed(rng, n, d, offset)
    labels = rng.permutation(n).astype(np.int64) * 3  # sparse, shuffled labels
    index = BUILDERS[kind](metric, labels, vectors)
    capacity = int(labels.max()) + 1
    wide = rng.random(capacity) < 0.6  # masks the full scan
    narrow = rng.random(capacity) < 0.05  # gathers the allowed rows
    queries = np.concatenate([vectors[:10] + rng.normal(0, 0.5, (10, d)), vectors[10:20]])
    batch = [
        IndexQuery(
            queries[i].astype(np.float32),
            k=1 + i % 12,
            allowed=(None, wide, narrow)[i % 3],
            params=SearchParams(ef=16 + i, nprobe=1 + i % 4),
            exact=i % 7 == 0,
        )
        for i in range(queries.shape[0])
    ]
    alone = [
        index.search(q.vector, q.k, allowed=q.allowed, params=q.params, exact=q.exact)
        for q in batch
    ]
    with ThreadPoolExecutor(4) as pool:
        together = index.search_many(batch, executor=pool)
    assert answers(list(together)) == answers(list(alone))
    assert answers(list(index.search_many(batch))) == answers(list(alone))


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    metric=st.sampled_from(list(Metric)),
    offset=st.sampled_from([0.0, 1.0, 1e3, 1e6]),
    duplicates=st.integers(0, 20),
)
def test_exact_order_is_the_float64_order_whatever_product_made_the_fast_keys(
    seed: int, metric: Metric, offset: float, duplicates: int
) -> None:
    rng = np.random.default_rng(seed)
    n, d = 40, 16
    rows = (rng.normal(0.0, 1.0, (n, d)) + offset).astype(np.float32)
    for _ in range(duplicates):
        rows[rng.integers(n)] = rows[rng.integers(n)]
    if metric is Metric.COSINE:
        rows /= np.linalg.norm(rows.astype(np.float64), axis=1, keepdims=True).astype(np.float32)
    queries = (rng.normal(0.0, 1.0, (8, d)) + offset).astype(np.float32)
    if metric is Metric.COSINE:
        queries /= np.linalg.norm(queries.astype(np.float64), axis=1, keepdims=True).astype(
            np.float32
        )
    norms = squared_norms(rows)
    batch_keys = keys_for(rows, queries, metric, norms)
    for i, q in enumerate(queries):
        # The truth, computed here: float64 keys of the float32 values, ties in row order.
        wide, q64 = rows.astype(np.float64), q.astype(np.float64)
        terms = -((wide - q64) ** 2) if metric is Metric.L2 else wide * q64
        truth = [math.fsum(row) for row in terms.tolist()]
        expected = sorted(range(n), key=lambda r: (-truth[r], r))
        single_keys = keys_for(rows, q, metric, norms)
        orders = [
            exact_order(keys.copy(), rows, q, metric, norms).tolist()
            for keys in (single_keys, batch_keys[i])
        ]
        assert orders[0] == orders[1]
        # Keys equal up to float64 rounding may come either way round; no others may.
        for a, b in zip(orders[0], expected, strict=True):
            assert a == b or abs(truth[a] - truth[b]) <= 1e-12 * (1 + abs(truth[a]))
