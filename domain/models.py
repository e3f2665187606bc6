"""Entities and value objects: libraries, documents, chunks and index specifications."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Generic, Literal, TypeVar

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from domain.embedding import EmbedderSpec
from domain.errors import InvalidIndexParams

# A metadata value: a JSON scalar or a list of scalars. Nested objects are refused so that
# every key can be filtered and indexed as a column.
Scalar = str | int | float | bool
MetadataValue = Scalar | list[Scalar] | None
Metadata = dict[str, MetadataValue]

T = TypeVar("T")

Vector = NDArray[np.float32]
Matrix = NDArray[np.float32]


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return str(uuid.uuid4())


class Metric(StrEnum):
    """How closeness is measured. Cosine and dot score similarity (higher is better);
    l2 scores Euclidean distance (lower is better)."""

    COSINE = "cosine"
    DOT = "dot"
    L2 = "l2"

    @property
    def higher_is_better(self) -> bool:
        return self is not Metric.L2


class IndexType(StrEnum):
    FLAT = "flat"
    IVF = "ivf"
    HNSW = "hnsw"


def _integral(value: object) -> object:
    """JSON's 16.0 is the integer 16 (JSON Schema agrees); "16" and true are not numbers."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


INTEGRAL = BeforeValidator(_integral)
"""Last in ``Annotated[int, Field(strict=True, ...), INTEGRAL]``: an integer from JSON is an int
or an integral float, nothing else (after the bounds, so the schema states them)."""


class IndexParams(BaseModel):
    """The settings of one index type; each type's model is registered with it in
    ``domain/index/registry.py``. Strict: a number is a number, not "16" or true."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class FlatParams(IndexParams):
    """The exact index has no parameters."""


class IvfParams(IndexParams):
    nlist: Annotated[int, Field(strict=True, ge=1, le=65_536), INTEGRAL] | None = None
    nprobe: Annotated[int, Field(strict=True, ge=1, le=65_536), INTEGRAL] | None = None


# The widest HNSW beam (ef) anything may ask for: in the params, per search, and when a
# filter widens the beam. Fixed, not a setting: it bounds the work of one graph search.
MAX_EF = 4_096


class HnswParams(IndexParams):
    m: Annotated[int, Field(strict=True, ge=2, le=128), INTEGRAL] = 16
    ef_construction: Annotated[int, Field(strict=True, ge=4, le=MAX_EF), INTEGRAL] = 200
    ef_search: Annotated[int, Field(strict=True, ge=1, le=MAX_EF), INTEGRAL] = 64


@dataclass(frozen=True, slots=True)
class IndexSpec:
    """Which index a library uses and its parameters, validated against the type."""

    type: IndexType = IndexType.FLAT
    params: IndexParams = field(default_factory=FlatParams)

    @classmethod
    def parse(cls, type_: str | IndexType, params: dict[str, Any] | None = None) -> IndexSpec:
        try:
            index_type = IndexType(type_)
        except ValueError:
            allowed = ", ".join(t.value for t in IndexType)
            raise InvalidIndexParams(
                f"unknown index type {type_!r}; expected one of {allowed}", location="type"
            ) from None
        # Imported here, not at the top: the registry imports the index modules, which
        # import this one.
        from domain.index.registry import params_model

        try:
            parsed = params_model(index_type).model_validate(params or {})
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'params'}: {err['msg']}"
                for err in exc.errors()
            )
            raise InvalidIndexParams(
                f"invalid {index_type.value} params: {problems}", location="params"
            ) from None
        return cls(index_type, parsed)

    def params_dict(self) -> dict[str, Any]:
        return self.params.model_dump(exclude_none=True)


class TextIndexType(StrEnum):
    BM25 = "bm25"
    NONE = "none"


class Bm25Params(BaseModel):
    """Okapi BM25's term-frequency saturation ``k1`` and length normalisation ``b``;
    ``language`` picks the analyser (``english``: stop words and a stemmer; ``none``:
    lowercase words only)."""

    # Strict: false is not 0.0 (the schema says number).
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    k1: Annotated[float, Field(ge=0.0, le=10.0)] = 1.2
    b: Annotated[float, Field(ge=0.0, le=1.0)] = 0.75
    language: Literal["english", "none"] = "english"


class TextIndexSpec(BaseModel):
    """The keyword index a library keeps over its chunks' text (``none``: no keyword index)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Annotated[TextIndexType, Field(strict=False)] = TextIndexType.BM25
    params: Bm25Params = Field(default_factory=Bm25Params)


class IndexState(StrEnum):
    BUILDING = "building"
    READY = "ready"


@dataclass(frozen=True, slots=True)
class IndexStatus:
    """What a client sees of a library's index. ``error`` says why the last build failed
    (the previous index keeps serving)."""

    spec: IndexSpec
    state: IndexState
    progress: float
    vector_count: int
    built_at: datetime | None
    error: str | None = None


@dataclass(slots=True)
class Library:
    name: str
    dimension: int
    metric: Metric = Metric.COSINE
    description: str = ""
    metadata: Metadata = field(default_factory=dict)
    index: IndexSpec = field(default_factory=IndexSpec)
    # Texts become vectors on the leader when a library has an embedder (domain/embedding.py).
    embedder: EmbedderSpec | None = None
    text_index: TextIndexSpec = field(default_factory=TextIndexSpec)
    id: str = field(default_factory=new_id)
    created_at: datetime = field(default_factory=utc_now)
    updated_at: datetime = field(default_factory=utc_now)
    # Bumped by every committed write to the library's documents or chunks: a cheap way to
    # tell whether something derived from the store (an index snapshot) is stale.
    revision: int = 0


@dataclass(slots=True)
class Document:
    library_id: str
    metadata: Metadata = field(default_factory=dict)
    id: str = field(default_factory=new_id)
    created_at: datetime = field(default_factory=utc_now)
    updated_at: datetime = field(default_factory=utc_now)


@dataclass(slots=True)
class Chunk:
    """A piece of text with its embedding, a contiguous float32 vector."""

    library_id: str
    document_id: str
    text: str
    embedding: Vector
    metadata: Metadata = field(default_factory=dict)
    id: str = field(default_factory=new_id)
    created_at: datetime = field(default_factory=utc_now)
    updated_at: datetime = field(default_factory=utc_now)


@dataclass(frozen=True, slots=True)
class ChunkColumns:
    """A run of one library's stored chunks, column by column: what a start-up load needs,
    without a ``Chunk`` object, a vector or a datetime per row. ``texts`` is None unless the
    scan asked for them (a keyword index is built from them).

    Row ``i`` is the chunk ``ids[i]`` of document ``document_ids[i]``, its embedding
    ``embeddings[i]`` (float32, possibly a read-only view of the store's bytes: copy it to
    keep it), its timestamps in microseconds since the epoch (UTC) and its metadata
    ``metadata[i]``, a key only for rows whose metadata is not empty.
    """

    ids: list[str]
    document_ids: list[str]
    embeddings: Matrix
    metadata: dict[int, Metadata]
    created_micros: NDArray[np.int64]
    updated_micros: NDArray[np.int64]
    texts: list[str] | None = None

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a listing; ``next_cursor`` is opaque and None on the last page."""

    items: list[T]
    next_cursor: str | None


WriteMode = Literal["insert", "upsert"]
