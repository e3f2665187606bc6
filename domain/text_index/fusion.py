"""Fusing a vector search and a keyword search of the same library into one ranking.

Both sides rank the same labels (a library's chunk labels), each ``candidates`` deep under
the same filter mask; fusion scores the union of what they returned and keeps the best ``k``:

- **reciprocal rank fusion** (Cormack, Clarke & Büttcher, 2009): a chunk at rank ``r``
  (1-based) of a side gets ``1 / (rrf_k + r)`` from it, summed over the sides that returned
  it. Only ranks count, so a cosine similarity and a BM25 score, which live on unrelated
  scales, never have to be compared; ``rrf_k`` (60 in the paper) damps the head of each list.
- **weighted fusion** of min-max normalised scores: each side's scores are mapped onto
  [0, 1] over the candidates it returned (best 1, worst 0; l2 distances, where lower is
  better, are flipped first; a side whose candidates all score the same gives them all 1),
  and a chunk scores ``alpha * vector + (1 - alpha) * keyword``, a side that missed it
  counting 0.

Ties break by the smaller label, so a fusion is a function of its inputs. Both run in
O(n log n) for the n candidates of the two sides, in NumPy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from domain.index.scoring import Hits, Labels

SideScores = NDArray[np.float64]

RRF = "rrf"
WEIGHTED = "weighted"


@dataclass(frozen=True, slots=True)
class Fused:
    """The fused ranking, best first: ``hits`` carries the fused scores, and for each hit
    the score each side gave it (its similarity or distance, its BM25 score), NaN where that
    side did not return it."""

    hits: Hits
    vector_scores: SideScores
    keyword_scores: SideScores

    def __len__(self) -> int:
        return len(self.hits)


def rrf(vector: Hits, keyword: Hits, rrf_k: int, k: int) -> Fused:
    """Reciprocal rank fusion of two rankings (each best first), the best ``k`` labels."""
    if rrf_k < 0:
        raise ValueError(f"rrf_k must be >= 0, got {rrf_k}")
    union = _union(vector, keyword)
    fused = _side(union, vector, _reciprocal_ranks(len(vector), rrf_k), 0.0)
    fused += _side(union, keyword, _reciprocal_ranks(len(keyword), rrf_k), 0.0)
    return _best(union, fused, vector, keyword, k, RRF)


def weighted(vector: Hits, keyword: Hits, alpha: float, k: int, *, higher_is_better: bool) -> Fused:
    """Weighted fusion of min-max normalised scores, the best ``k`` labels. ``alpha`` is the
    weight of the vector side; ``higher_is_better`` says how the vector side's scores rank
    (False for l2 distances). BM25 scores always rank higher-is-better."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be within [0, 1], got {alpha}")
    union = _union(vector, keyword)
    vector_part = _side(union, vector, _min_max(vector.scores, higher_is_better), 0.0)
    keyword_part = _side(union, keyword, _min_max(keyword.scores, True), 0.0)
    fused = alpha * vector_part + (1.0 - alpha) * keyword_part
    return _best(union, fused, vector, keyword, k, WEIGHTED)


def _union(vector: Hits, keyword: Hits) -> Labels:
    """Every label either side returned, once, in ascending order."""
    return np.union1d(vector.labels, keyword.labels).astype(np.int64, copy=False)


def _reciprocal_ranks(count: int, rrf_k: int) -> SideScores:
    return 1.0 / (rrf_k + np.arange(1, count + 1, dtype=np.float64))


def _min_max(scores: NDArray[np.float32], higher_is_better: bool) -> SideScores:
    """``scores`` mapped onto [0, 1], the best 1; all 1 when they are all equal."""
    values = scores.astype(np.float64)
    if values.size == 0:
        return values
    if not higher_is_better:
        values = -values
    low, high = float(values.min()), float(values.max())
    if high == low:
        return np.ones_like(values)
    return (values - low) / (high - low)


def _side(union: Labels, side: Hits, values: SideScores, missing: float) -> SideScores:
    """``values`` (one per hit of ``side``) laid out along ``union``; ``missing`` where
    ``side`` did not return a label."""
    out = np.full(union.shape[0], missing, dtype=np.float64)
    if len(side) == 0:
        return out
    # union holds every label of side and is sorted, so each label's place is exact.
    out[np.searchsorted(union, side.labels)] = values
    return out


def _best(
    union: Labels, fused: SideScores, vector: Hits, keyword: Hits, k: int, strategy: str
) -> Fused:
    # lexsort's last key is the primary: highest fused score first, then the smaller label.
    order = np.lexsort((union, -fused))[:k]
    nan = float("nan")
    vector_scores = _side(union, vector, vector.scores.astype(np.float64), nan)
    keyword_scores = _side(union, keyword, keyword.scores.astype(np.float64), nan)
    hits = Hits(union[order], fused[order].astype(np.float32), strategy)
    return Fused(hits, vector_scores[order], keyword_scores[order])
