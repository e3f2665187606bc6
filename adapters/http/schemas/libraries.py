"""A library's bodies: created, updated and answered."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import ConfigDict, Field, StringConstraints

from adapters.http.limits import bounded_by
from adapters.http.schemas.common import (
    Id,
    MetadataIn,
    RequestModel,
    ResponseModel,
    at_least_one_of,
)
from adapters.http.schemas.indexes import IndexIn, IndexStatusOut
from application.dto import LibraryInfo
from domain.embedding import EmbedderSpec
from domain.models import INTEGRAL, Metric, TextIndexSpec

TEXT_INDEX = (
    "The keyword index over the chunks' text: bm25 (Okapi BM25 with k1 and b; language "
    "english lowercases, drops English stop words and stems, none only lowercases and splits "
    "on Unicode word boundaries) or none."
)


class LibraryCreate(RequestModel):
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


class LibraryUpdate(RequestModel):
    name: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = None
    description: Annotated[str, StringConstraints(max_length=10_000)] | None = None
    metadata: MetadataIn | None = None
    text_index: TextIndexSpec | None = Field(
        default=None,
        description=TEXT_INDEX + " A new one is built in the background; searches keep the "
        "previous one until it is ready (none: dropped at once).",
    )


class LibraryOut(ResponseModel):
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
