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

The package is the one home for distances and scores: ``results`` (the types every index
speaks in), ``ranking`` (fast keys, the float32 bound, ``shortlist`` and ``exact_search``,
in NumPy), ``batch`` (``exact_search_many``: the same for many queries, one matrix
product per block of them), ``kernels`` (the compiled ``distance``, ``exact_distance``,
``rank_exact`` and the row-scan pieces IVF's probe uses) and ``rounding`` (the unit
roundoffs both bounds are built from). Import from the package: every name is re-exported here.
"""

from domain.index.scoring.batch import exact_search_many
from domain.index.scoring.kernels import (
    KERNEL_DOT,
    KERNEL_L2,
    Bounds,
    Found,
    ScanTerms,
    distance,
    exact_distance,
    keep_smallest,
    kept_rows,
    kernel_metric,
    rank_exact,
    scan_rows,
    scan_scratch,
    scan_terms,
)
from domain.index.scoring.ranking import (
    GATHER_BELOW,
    allowed_rows,
    exact_keys,
    exact_order,
    exact_search,
    gathers,
    keys_for,
    prepare_query,
    rank_candidates,
    scores_from_exact,
    shortlist,
    squared_distances,
    squared_norms,
    within_threshold,
)
from domain.index.scoring.results import (
    Hits,
    IndexQuery,
    Keys,
    Labels,
    Mask,
    Positions,
    Scores,
    SearchParams,
    StateArrays,
)

__all__ = [
    "GATHER_BELOW",
    "KERNEL_DOT",
    "KERNEL_L2",
    "Bounds",
    "Found",
    "Hits",
    "IndexQuery",
    "Keys",
    "Labels",
    "Mask",
    "Positions",
    "ScanTerms",
    "Scores",
    "SearchParams",
    "StateArrays",
    "allowed_rows",
    "distance",
    "exact_distance",
    "exact_keys",
    "exact_order",
    "exact_search",
    "exact_search_many",
    "gathers",
    "keep_smallest",
    "kept_rows",
    "kernel_metric",
    "keys_for",
    "prepare_query",
    "rank_candidates",
    "rank_exact",
    "scan_rows",
    "scan_scratch",
    "scan_terms",
    "scores_from_exact",
    "shortlist",
    "squared_distances",
    "squared_norms",
    "within_threshold",
]
