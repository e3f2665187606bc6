"""Keyword and hybrid search: which mode a search runs in, and the two sides fused.

A search carries a ``vector``, a ``query`` (text) or both. Its ``mode`` defaults as the
contract says: ``vector`` with a vector alone; with a query alone, ``hybrid`` when the library
has an embedder (which embeds the query for the vector side) and ``keyword`` when it has not;
``hybrid`` with both. A keyword or hybrid search needs the library's keyword index.

In hybrid mode each side is searched ``candidates`` deep (default max(10, k)) under the same
filter mask, and ``domain.text_index.fusion`` fuses the two rankings (reciprocal rank or
weighted min-max); every hit keeps the score each side gave it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

from domain.errors import InvalidInput, LimitExceeded
from domain.index.scoring import Hits, Mask
from domain.limits import Limits
from domain.models import Library, TextIndexType
from domain.text_index.fusion import SideScores, rrf, weighted

Mode = Literal["vector", "keyword", "hybrid"]
Fusion = Literal["rrf", "weighted"]
MODES: tuple[str, ...] = get_args(Mode)

DEFAULT_RRF_K = 60
DEFAULT_ALPHA = 0.5
# Each side's default depth: its own top k (at least 10), as Elasticsearch's RRF does
# (rank_window_size = size). Deeper lists let chunks that both sides rank only middling
# (two weak votes) push out the chunks one side ranks near the top: on the WordNet
# evaluation (benchmarks/hybrid.py, chosen on its dev half) depth 50 kept 0.90 of the
# vector side's recall on synonym queries, depth 10 kept 0.97, and more on the mix.
MIN_CANDIDATES = 10


@dataclass(frozen=True, slots=True)
class HybridOptions:
    """How a hybrid search fuses its two sides. ``alpha`` weighs the vector side in weighted
    fusion; ``candidates`` is each side's depth (None: ``default_candidates(k)``)."""

    fusion: Fusion = "rrf"
    rrf_k: int = DEFAULT_RRF_K
    alpha: float = DEFAULT_ALPHA
    candidates: int | None = None

    def depth(self, k: int) -> int:
        return self.candidates if self.candidates is not None else default_candidates(k)


def default_candidates(k: int) -> int:
    return max(MIN_CANDIDATES, k)


@dataclass(frozen=True, slots=True)
class Plan:
    """What a search runs: its mode, whether its vector side needs the query embedded, and
    how deep each side goes (``k`` for a single mode, the candidates for hybrid)."""

    mode: Mode
    embeds_query: bool
    depth: int


def plan(
    library: Library,
    *,
    mode: Mode | None,
    has_vector: bool,
    query: str | None,
    k: int,
    hybrid: HybridOptions,
    limits: Limits,
) -> Plan:
    """Choose the mode and check that the library and the request can run it. Every refusal
    is a 422 that names the field to change."""
    has_embedder = library.embedder is not None
    if query is not None:
        limits.check_query(query)
    if not has_vector and query is None:
        raise InvalidInput("a search needs a vector, a query or both", location="vector")
    keyword_index = library.text_index.type is not TextIndexType.NONE
    chosen = mode or _default_mode(has_vector, query is not None, has_embedder, keyword_index)
    if chosen != "vector":
        _check_keyword_side(library, chosen, query)
    if chosen != "keyword" and not has_vector and not has_embedder:
        if mode is None and not keyword_index:
            raise InvalidInput(
                "a query alone needs a keyword index or an embedder: this library's "
                "text_index is 'none' and it has no embedder",
                location="query",
            )
        raise InvalidInput(
            f"{chosen} mode needs a vector: this library has no embedder to embed the query",
            location="vector",
        )
    embeds_query = chosen != "keyword" and not has_vector
    if chosen != "hybrid":
        return Plan(chosen, embeds_query, depth=k)
    depth = hybrid.depth(k)
    if depth < k:
        raise InvalidInput(
            f"hybrid.candidates ({depth}) must be at least k ({k})", location="hybrid.candidates"
        )
    if depth > limits.max_candidates:
        raise LimitExceeded(
            f"hybrid.candidates is {depth}; the limit is {limits.max_candidates}",
            location="hybrid.candidates",
        )
    return Plan(chosen, embeds_query, depth)


def _default_mode(
    has_vector: bool, has_query: bool, has_embedder: bool, keyword_index: bool
) -> Mode:
    """The contract's defaults; a library without a keyword index (``text_index: none``)
    searches its vectors, the given one or the query embedded, rather than refusing a
    hybrid search the client never asked for."""
    if not has_query or not keyword_index:
        return "vector"
    if has_vector or has_embedder:
        return "hybrid"
    return "keyword"


def _check_keyword_side(library: Library, mode: Mode, query: str | None) -> None:
    if query is None:
        raise InvalidInput(f"{mode} mode needs a query (text)", location="query")
    if library.text_index.type is TextIndexType.NONE:
        raise InvalidInput(
            f"{mode} mode needs a keyword index: this library's text_index is 'none' "
            "(PATCH the library with a bm25 text_index to build one)",
            location="mode",
        )


@dataclass(frozen=True, slots=True)
class Ranked:
    """A search's ranking, best first; in hybrid mode also each side's own score per hit
    (NaN where that side did not return it)."""

    hits: Hits
    sides: tuple[SideScores, SideScores] | None = None

    def kept(self, keep: Mask) -> Ranked:
        """The hits where ``keep`` is set, in order, with their side scores."""
        hits = self.hits
        kept_hits = Hits(hits.labels[keep], hits.scores[keep], hits.strategy, hits.extra)
        if self.sides is None:
            return Ranked(kept_hits)
        return Ranked(kept_hits, (self.sides[0][keep], self.sides[1][keep]))

    def side_scores(self) -> dict[int, tuple[float | None, float | None]]:
        """Each hit's label -> (vector score, keyword score), None where a side missed;
        empty outside hybrid mode."""
        if self.sides is None:
            return {}
        vector, keyword = self.sides
        return {
            int(label): (_present(v), _present(kw))
            for label, v, kw in zip(self.hits.labels, vector, keyword, strict=True)
        }


def _present(score: float) -> float | None:
    return None if math.isnan(score) else float(score)


def fuse(
    vector: Hits, keyword: Hits, options: HybridOptions, k: int, *, higher_is_better: bool
) -> Ranked:
    """The two sides of a hybrid search fused as ``options`` says, the best ``k``, with
    each side's score per hit."""
    if options.fusion == "weighted":
        fused = weighted(vector, keyword, options.alpha, k, higher_is_better=higher_is_better)
    else:
        fused = rrf(vector, keyword, options.rrf_k, k)
    return Ranked(fused.hits, (fused.vector_scores, fused.keyword_scores))
