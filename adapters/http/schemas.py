"""Request and response bodies of the REST API, kept apart from the domain entities.

A field bounded by a configurable limit names it (``bounded_by``): the services enforce the
configured ``Limits`` and the OpenAPI document states them (``adapters.http.limits``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from adapters.http.filter_schema import FilterJson
from adapters.http.limits import bounded_by
from application.dto import DocumentInfo, LibraryInfo, SearchHit, SearchOutcome
from application.hybrid_search import (
    DEFAULT_ALPHA,
    DEFAULT_RRF_K,
    MIN_CANDIDATES,
    Fusion,
    HybridOptions,
    Mode,
)
from application.search_service import Includable
from domain.embedding import EmbedderSpec, Purpose
from domain.models import (
    INTEGRAL,
    MAX_EF,
    Chunk,
    FlatParams,
    HnswParams,
    IndexParams,
    IndexStatus,
    IndexType,
    IvfParams,
    Metric,
    TextIndexSpec,
)

T = TypeVar("T")

Id = Annotated[
    str,
    StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@-]*$"),
]
# Strict: lax mode would turn a string the length bound refuses into a number ("007" -> 7).
Scalar = (
    Annotated[str, Field(max_length=100_000, strict=True)]
    | Annotated[bool, Field(strict=True)]
    | Annotated[int, Field(strict=True)]
    | Annotated[float, Field(strict=True)]
)
ScalarList = Annotated[
    list[Scalar], Field(json_schema_extra=bounded_by("max_list_items", "maxItems"))
]


def _metadata_schema(schema: dict[str, Any]) -> None:
    """Pydantic states a key pattern as ``patternProperties``, which lets every other key
    through as an additional property; state it as ``propertyNames``, which refuses them."""
    ((pattern, values),) = schema.pop("patternProperties").items()
    schema["additionalProperties"] = values
    schema.setdefault("propertyNames", {})["pattern"] = pattern
    schema.update(bounded_by("max_metadata_keys", "maxProperties"))


MetadataIn = Annotated[
    dict[
        # A key is a filter field name: no '.' (document.KEY names the document's metadata).
        Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=r"^[^.]+$")],
        Scalar | ScalarList | None,
    ],
    Field(json_schema_extra=_metadata_schema),
]
Text = Annotated[str, Field(json_schema_extra=bounded_by("max_text_length", "maxLength"))]
OPTIONAL_EMBEDDING = (
    "The chunk's vector; may be left out when the library has an embedder, which then "
    "embeds text on the leader before the write commits."
)
# Strict: JSON numbers only. Lax floats would take ``true``/``false`` as 1.0/0.0, a body the
# schema (``number``) rejects.
# Vectors are stored as float32: a larger number would become infinite.
FLOAT32_MAX = 3.4028234663852886e38
# At least one number, at most the longest dimension a library may have: within those, the
# library's own dimension is the rule (a 422 that names it).
Embedding = Annotated[
    list[Annotated[float, Field(strict=True, ge=-FLOAT32_MAX, le=FLOAT32_MAX)]],
    Field(min_length=1, json_schema_extra=bounded_by("max_dimension", "maxItems")),
]


def _absent(value: object) -> bool:
    """Optional output fields are left out of the JSON rather than sent as null."""
    return value is None


class _In(BaseModel):
    # Strict: a value of another JSON type is refused, as the schema says, not converted
    # ("5" or 5.0 for an integer, "true" for a boolean). Enum fields take their strings.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


def at_least_one_of(*names: str) -> Callable[[dict[str, Any]], None]:
    """``json_schema_extra`` of a model that needs one of its optional ``names`` given and
    not null: each branch repeats that field's own schema, without its null."""

    def state(schema: dict[str, Any]) -> None:
        branches = []
        for name in names:
            field = schema["properties"][name]
            given = [s for s in field.get("anyOf", [field]) if s != {"type": "null"}]
            (value,) = given
            branches.append({"required": [name], "properties": {name: value}})
        schema["anyOf"] = branches

    return state


# Requests


class _IndexIn(_In):
    """An index type and its parameters; each type's model is the domain's own."""

    params: IndexParams

    def params_dict(self) -> dict[str, Any]:
        return self.params.model_dump(exclude_none=True)


class FlatIndexIn(_IndexIn):
    """The exact index: every search scans every vector."""

    type: Literal[IndexType.FLAT]
    params: FlatParams = Field(default_factory=FlatParams)


class IvfIndexIn(_IndexIn):
    """Inverted lists: nlist k-means cells (default about sqrt(N) at build), nprobe of them
    searched (default a share of nlist)."""

    type: Literal[IndexType.IVF]
    params: IvfParams = Field(default_factory=IvfParams)


class HnswIndexIn(_IndexIn):
    """A navigable small-world graph: m links per node, built with a beam of
    ef_construction and searched with ef_search."""

    type: Literal[IndexType.HNSW]
    params: HnswParams = Field(default_factory=HnswParams)


IndexIn = Annotated[FlatIndexIn | IvfIndexIn | HnswIndexIn, Field(discriminator="type")]


TEXT_INDEX = (
    "The keyword index over the chunks' text: bm25 (Okapi BM25 with k1 and b; language "
    "english lowercases, drops English stop words and stems, none only lowercases and splits "
    "on Unicode word boundaries) or none."
)


class LibraryCreate(_In):
    # A dimension, an embedder (which has its own) or both.
    model_config = ConfigDict(json_schema_extra=at_least_one_of("dimension", "embedder"))

    id: Id | None = None
    name: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    dimension: Annotated[int, Field(strict=True, ge=1), INTEGRAL] | None = Field(
        default=None,
        description="Length of every embedding in the library; with an embedder it may be "
        "left out (the embedder's own is used; another value is a 422).",
        json_schema_extra=bounded_by("max_dimension", "maximum"),
    )
    embedder: EmbedderSpec | None = Field(
        default=None,
        description="Who turns chunk texts (and search queries) into vectors: the bundled "
        "MiniLM, an OpenAI-compatible endpoint or Cohere. api_key_env names an environment "
        "variable of the server that holds the key; the key itself is never sent or stored.",
    )
    metric: Annotated[Metric, Field(strict=False)] = Metric.COSINE
    description: Annotated[str, StringConstraints(max_length=10_000)] = ""
    metadata: MetadataIn = Field(default_factory=dict)
    index: IndexIn | None = None
    text_index: TextIndexSpec = Field(default_factory=TextIndexSpec, description=TEXT_INDEX)


class LibraryUpdate(_In):
    name: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = None
    description: Annotated[str, StringConstraints(max_length=10_000)] | None = None
    metadata: MetadataIn | None = None
    text_index: TextIndexSpec | None = Field(
        default=None,
        description=TEXT_INDEX + " A new one is built in the background; searches keep the "
        "previous one until it is ready (none: dropped at once).",
    )


class ChunkBody(_In):
    """A chunk without its id: the body of PUT, where the id is in the path."""

    document_id: Id
    text: Text
    embedding: Embedding | None = Field(default=None, description=OPTIONAL_EMBEDDING)
    metadata: MetadataIn = Field(default_factory=dict)


class ChunkIn(ChunkBody):
    id: Id | None = None


class DocumentChunkIn(_In):
    id: Id | None = None
    text: Text
    embedding: Embedding | None = Field(default=None, description=OPTIONAL_EMBEDDING)
    metadata: MetadataIn = Field(default_factory=dict)


class DocumentCreate(_In):
    id: Id | None = None
    metadata: MetadataIn = Field(default_factory=dict)
    chunks: list[DocumentChunkIn] = Field(
        default_factory=list, json_schema_extra=bounded_by("max_batch", "maxItems")
    )


class DocumentUpdate(_In):
    metadata: MetadataIn


class ChunkBatchIn(_In):
    chunks: list[ChunkIn] = Field(json_schema_extra=bounded_by("max_batch", "maxItems"))
    mode: Literal["insert", "upsert"] = "insert"


class ChunkUpdate(_In):
    text: Text | None = None
    embedding: Embedding | None = None
    metadata: MetadataIn | None = None


class EmbedIn(_In):
    texts: list[Text] = Field(
        min_length=1, json_schema_extra=bounded_by("max_embed_texts", "maxItems")
    )
    purpose: Annotated[Purpose, Field(strict=False)] = Field(
        default=Purpose.DOCUMENT,
        description="document: texts to store; query: search queries (asymmetric models, "
        "such as Cohere's, embed the two differently).",
    )


class SearchParamsIn(_In):
    ef: Annotated[int, Field(strict=True, ge=1, le=MAX_EF), INTEGRAL] | None = None
    nprobe: Annotated[int, Field(strict=True, ge=1, le=65_536), INTEGRAL] | None = None


class HybridIn(_In):
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


class SearchIn(_In):
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


class SearchBatchIn(_In):
    searches: list[SearchIn] = Field(
        min_length=1,
        description="Searches answered in this order; one invalid search fails the batch.",
        json_schema_extra=bounded_by("max_batch_searches", "maxItems"),
    )


class CountIn(_In):
    filter: FilterJson | None = None


class DeleteWhereIn(_In):
    filter: FilterJson = Field(
        description="Every chunk matching it is deleted, all or nothing; an empty filter is "
        "refused (delete the library instead)."
    )


# Responses


class IndexStatusOut(_Out):
    type: IndexType
    params: dict[str, Any]
    state: Literal["building", "ready"]
    progress: float
    vector_count: int
    built_at: datetime | None
    error: str | None = None

    @classmethod
    def of(cls, status: IndexStatus) -> IndexStatusOut:
        return cls(
            type=status.spec.type,
            params=status.spec.params_dict(),
            state=status.state.value,
            progress=status.progress,
            vector_count=status.vector_count,
            built_at=status.built_at,
            error=status.error,
        )


class LibraryOut(_Out):
    id: str
    name: str
    description: str
    metadata: dict[str, Any]
    dimension: int
    metric: Metric
    embedder: EmbedderSpec | None
    index: IndexStatusOut
    text_index: TextIndexSpec
    document_count: int
    chunk_count: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, info: LibraryInfo) -> LibraryOut:
        library = info.library
        return cls(
            id=library.id,
            name=library.name,
            description=library.description,
            metadata=library.metadata,
            dimension=library.dimension,
            metric=library.metric,
            embedder=library.embedder,
            index=IndexStatusOut.of(info.index),
            text_index=library.text_index,
            document_count=info.document_count,
            chunk_count=info.chunk_count,
            created_at=library.created_at,
            updated_at=library.updated_at,
        )


class DocumentOut(_Out):
    id: str
    library_id: str
    metadata: dict[str, Any]
    chunk_count: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, info: DocumentInfo) -> DocumentOut:
        d = info.document
        return cls(
            id=d.id,
            library_id=d.library_id,
            metadata=d.metadata,
            chunk_count=info.chunk_count,
            created_at=d.created_at,
            updated_at=d.updated_at,
        )


class ChunkOut(_Out):
    id: str
    library_id: str
    document_id: str
    text: str
    embedding: list[float] | None = Field(default=None, exclude_if=_absent)
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, chunk: Chunk, *, with_embedding: bool = True) -> ChunkOut:
        return cls(
            id=chunk.id,
            library_id=chunk.library_id,
            document_id=chunk.document_id,
            text=chunk.text,
            embedding=chunk.embedding.tolist() if with_embedding else None,
            metadata=chunk.metadata,
            created_at=chunk.created_at,
            updated_at=chunk.updated_at,
        )


class Listing(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        description="Pass as ?cursor= to get the next page; null on the last page."
    )


class ChunkBatchOut(BaseModel):
    items: list[ChunkOut]


class EmbedOut(BaseModel):
    embeddings: list[list[float]] = Field(description="One vector per text, in order.")


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
        exclude_if=_absent,
        description="Hybrid mode: the vector side's score, null if it missed the chunk.",
    )
    keyword_score: float | None = Field(
        default=None,
        exclude_if=_absent,
        description="Hybrid mode: the BM25 score, null if the keyword side missed the chunk.",
    )
    text: str | None = Field(default=None, exclude_if=_absent)
    metadata: dict[str, Any] | None = Field(default=None, exclude_if=_absent)
    embedding: list[float] | None = Field(default=None, exclude_if=_absent)

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
        default=None, exclude_if=_absent, description="Best first; absent when grouped."
    )
    groups: list[SearchGroupOut] | None = Field(
        default=None,
        exclude_if=_absent,
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


class CountOut(BaseModel):
    count: int


class DeletedOut(BaseModel):
    deleted: int = Field(description="How many chunks the write deleted.")


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[dict[str, Any]] | None = None


class Health(BaseModel):
    status: str
    role: str | None = Field(
        default=None, exclude_if=_absent, description="leader, follower or candidate (readyz)"
    )
