"""Exact search for many queries at once: ``exact_search_many``, the batch form of
``ranking.exact_search``, with one float32 matrix product per block of queries instead of
one matrix-vector product per query.

Each query's row of the product goes through the same ``shortlist`` and float64 re-rank
(``rank_candidates``) as a single search. The product rounds differently from a
matrix-vector product, but the shortlist keeps every row within the rigorous bound of the
k-th best for any summation order, and exact keys are computed row by row, so each answer
is the same rows, order and scores as ``exact_search`` gives for that query alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from domain.index.scoring.ranking import (
    exact_search,
    gathers,
    keys_for,
    rank_candidates,
    shortlist,
    squared_norms,
)
from domain.index.scoring.results import Mask, Positions, Scores
from domain.models import Matrix, Metric

# The fast keys of one block of queries: at most this many bytes (block x rows float32).
_BLOCK_BYTES = 32 * 1024 * 1024


def exact_search_many(
    vectors: Matrix,
    queries: Matrix,
    metric: Metric,
    ks: Sequence[int],
    *,
    masks: Sequence[Mask | None],
    sq_norms: NDArray[np.float32] | None = None,
) -> list[tuple[Positions, Scores]]:
    """For each prepared query (a row of ``queries``) with its ``k`` and row ``mask``, what
    ``exact_search`` answers: positions of the exact best rows, best first, and their scores.

    Queries whose mask admits under a fifth of the rows gather those rows alone, as a
    single search does; the rest share one product per block of queries, sized so a block's
    keys take at most 32 MiB: O(m·n·d) for m queries over n rows, plus O(n + s·d) each to
    shortlist and re-rank s rows (about k for unit-scale data).
    """
    n = vectors.shape[0]
    answers: list[tuple[Positions, Scores]] = [_nothing()] * queries.shape[0]
    if n == 0:
        return answers
    norms = squared_norms(vectors) if sq_norms is None else sq_norms
    shared: list[int] = []
    for i, mask in enumerate(masks):
        if ks[i] <= 0:
            continue
        if mask is not None and gathers(mask):
            answers[i] = exact_search(vectors, queries[i], metric, ks[i], sq_norms=norms, mask=mask)
        else:
            shared.append(i)
    block = max(1, _BLOCK_BYTES // (4 * n))
    for start in range(0, len(shared), block):
        members = shared[start : start + block]
        keys = keys_for(vectors, queries[members], metric, norms)
        for row, i in enumerate(members):
            short = shortlist(keys[row], norms, queries[i], metric, ks[i], allowed=masks[i])
            best, scores = rank_candidates(vectors[short], queries[i], metric, ks[i])
            answers[i] = (short[best], scores)
    return answers


def _nothing() -> tuple[Positions, Scores]:
    return np.empty(0, dtype=np.intp), np.empty(0, dtype=np.float32)
