"""A search's bodies, alone or in a batch: the query in each mode with its options, and
the answer (hits, or groups of hits), with the plain-dict rendering the search route sends."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from adapters.http.limits import bounded_by
from adapters.http.schemas.common import Embedding, RequestModel, absent, at_least_one_of
from adapters.http.schemas.filters import FilterJson
from application.dto import SearchHit, SearchOutcome
from application.hybrid_search import (
    DEFAULT_ALPHA,
    DEFAULT_RRF_K,
    MIN_CANDIDATES,
    Fusion,
    HybridOptions,
    Mode,
)
from application.search_service import Includable
from domain.models import INTEGRAL, MAX_EF


class SearchParamsIn(RequestModel):
    ef: Annotated[int, Field(strict=True, ge=1, le=MAX_EF), INTEGRAL] | None = None
    nprobe: Annotated[int, Field(strict=True, ge=1, le=65_536), INTEGRAL] | None = None


class HybridIn(RequestModel):
    fusion: Fusion = Field(
        default="rrf",
        description="rrf: sum of 1/(rrf_k + rank) over the sides; weighted: alpha x the "
        "vector side + (1 - alpha) x the keyword side, each min-max normalised.",
    )
    rrf_k: Annotated[int, Field(strict=True, ge=0, le=1_000_000), INTEGRAL] = DEFAULT_RRF_K
    alpha: float = Field(
        default=DEFAULT_ALPHA, ge=0.0, le=1.0, description="Weight of the vector side."
    )
    candidates: Annotated[int, Field(strict=True, ge=1), INTEGRAL] | None = Field(
        default=None,
        description=f"How deep each side is searched (at least k); default "
        f"max({MIN_CANDIDATES}, k).",
        json_schema_extra=bounded_by("max_candidates", "maximum"),
    )

    def options(self) -> HybridOptions:
        return HybridOptions(self.fusion, self.rrf_k, self.alpha, self.candidates)


class SearchIn(RequestModel):
    model_config = ConfigDict(json_schema_extra=at_least_one_of("vector", "query"))

    vector: Embedding | None = Field(
        default=None, description="The query vector; a vector, a query or both."
    )
    query: str | None = Field(
        default=None,
        min_length=1,
        description="Text for the keyword side (BM25) and, with an embedder, the vector side.",
        json_schema_extra=bounded_by("max_query_length", "maxLength"),
    )
    mode: Mode | None = Field(
        default=None,
        description="Default: vector with a vector alone; hybrid with both, or with a query "
        "alone on a library with an embedder; keyword with a query alone otherwise.",
    )
    hybrid: HybridIn = Field(default_factory=HybridIn)
    k: Annotated[int, Field(strict=True, ge=1), INTEGRAL] = Field(
        default=10, json_schema_extra=bounded_by("max_k", "maximum")
    )
    filter: FilterJson | None = None
    include: list[Includable] = Field(default_factory=lambda: list[Includable](["metadata"]))
    params: SearchParamsIn = Field(default_factory=SearchParamsIn)
    exact: bool = False
    score_threshold: float | None = Field(
        default=None,
        description="Keep hits scoring at least this (cosine, dot: the similarity; keyword "
        "mode: the BM25 score; hybrid mode: the fused score) or at most this (l2 in vector "
        "mode: the distance); fewer than k may come back.",
    )
    group_by: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        pattern=r"^[^.]+$",
        description="document_id or a chunk metadata key: k then counts groups, and the "
        "answer has groups instead of results. A chunk with no value for the key is left "
        "out; a list value puts the chunk in the group of each item.",
    )
    group_size: Annotated[int, Field(strict=True, ge=1), INTEGRAL] = Field(
        default=1,
        description="Hits per group, best first (k x group_size at most the maximum).",
        json_schema_extra=bounded_by("max_group_candidates", "maximum"),
    )


class SearchBatchIn(RequestModel):
    searches: list[SearchIn] = Field(
        min_length=1,
        description="Searches answered in this order; one invalid search fails the batch.",
        json_schema_extra=bounded_by("max_batch_searches", "maxItems"),
    )


class SearchResultOut(BaseModel):
    chunk_id: str
    document_id: str
    score: float = Field(
        description="vector mode: similarity for cosine and dot, distance for l2; keyword "
        "mode: the BM25 score; hybrid mode: the fused score (higher is better)."
    )
    # Present in hybrid mode only, null where that side missed the chunk (the model can
    # only leave a missing side out: it is the fallback for bodies orjson cannot encode).
    vector_score: float | None = Field(
        default=None,
        exclude_if=absent,
        description="Hybrid mode: the vector side's score, null if it missed the chunk.",
    )
    keyword_score: float | None = Field(
        default=None,
        exclude_if=absent,
        description="Hybrid mode: the BM25 score, null if the keyword side missed the chunk.",
    )
    text: str | None = Field(default=None, exclude_if=absent)
    metadata: dict[str, Any] | None = Field(default=None, exclude_if=absent)
    embedding: list[float] | None = Field(default=None, exclude_if=absent)

    @staticmethod
    def content(hit: SearchHit, *, hybrid: bool = False) -> dict[str, Any]:
        """What this model serialises to for ``hit``, built as a plain dict for the search
        route's orjson response: the same keys in the same order, optional fields only when
        included; a hybrid search's hits carry both sides' scores, null where one missed."""
        item: dict[str, Any] = {
            "chunk_id": hit.chunk_id,
            "document_id": hit.document_id,
            "score": hit.score,
        }
        if hybrid:
            item["vector_score"] = hit.vector_score
            item["keyword_score"] = hit.keyword_score
        if hit.text is not None:
            item["text"] = hit.text
        if hit.metadata is not None:
            item["metadata"] = hit.metadata
        if hit.embedding is not None:
            item["embedding"] = hit.embedding.tolist()
        return item


class SearchGroupOut(BaseModel):
    key: str | int | float | bool = Field(description="The value the group's hits share.")
    hits: list[SearchResultOut]


class SearchOut(BaseModel):
    results: list[SearchResultOut] | None = Field(
        default=None, exclude_if=absent, description="Best first; absent when grouped."
    )
    groups: list[SearchGroupOut] | None = Field(
        default=None,
        exclude_if=absent,
        description="With group_by: best group first (a group ranks by its best hit).",
    )
    mode: Mode = Field(default="vector", description="The mode that ran.")
    index: str = Field(description="The index type that answered.")
    strategy: str = Field(
        description="How the search ran (scan, hnsw, filtered-scan..., bm25, rrf, weighted)."
    )
    took_ms: float

    @staticmethod
    def content(outcome: SearchOutcome) -> dict[str, Any]:
        """What this model serialises to for ``outcome`` (see ``SearchResultOut.content``)."""
        hybrid = outcome.mode == "hybrid"
        content: dict[str, Any] = {}
        if outcome.groups is None:
            content["results"] = [
                SearchResultOut.content(hit, hybrid=hybrid) for hit in outcome.hits
            ]
        else:
            content["groups"] = [
                {
                    "key": group.key,
                    "hits": [SearchResultOut.content(hit, hybrid=hybrid) for hit in group.hits],
                }
                for group in outcome.groups
            ]
        content["mode"] = outcome.mode
        content["index"] = outcome.index_type
        content["strategy"] = outcome.strategy
        content["took_ms"] = round(outcome.took_ms, 3)
        return content


class SearchBatchOut(BaseModel):
    results: list[SearchOut] = Field(description="One answer per search, in the same order.")

    @staticmethod
    def content(outcomes: list[SearchOutcome]) -> dict[str, Any]:
        return {"results": [SearchOut.content(outcome) for outcome in outcomes]}
