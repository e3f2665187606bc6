"""A chunk's bodies: written one at a time or in a batch, patched and answered."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from adapters.http.limits import bounded_by
from adapters.http.schemas.common import (
    OPTIONAL_EMBEDDING,
    Embedding,
    Id,
    MetadataIn,
    RequestModel,
    ResponseModel,
    Text,
    absent,
)
from domain.models import Chunk


class ChunkBody(RequestModel):
    """A chunk without its id: the body of PUT, where the id is in the path."""

    document_id: Id
    text: Text
    embedding: Embedding | None = Field(default=None, description=OPTIONAL_EMBEDDING)
    metadata: MetadataIn = Field(default_factory=dict)


class ChunkIn(ChunkBody):
    id: Id | None = None


class ChunkBatchIn(RequestModel):
    chunks: list[ChunkIn] = Field(json_schema_extra=bounded_by("max_batch", "maxItems"))
    mode: Literal["insert", "upsert"] = "insert"


class ChunkUpdate(RequestModel):
    text: Text | None = None
    embedding: Embedding | None = None
    metadata: MetadataIn | None = None


class ChunkOut(ResponseModel):
    id: str
    library_id: str
    document_id: str
    text: str
    embedding: list[float] | None = Field(default=None, exclude_if=absent)
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


class ChunkBatchOut(BaseModel):
    items: list[ChunkOut]
