"""A document's bodies: created with its chunks, updated and answered."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from adapters.http.limits import bounded_by
from adapters.http.schemas.common import (
    OPTIONAL_EMBEDDING,
    Embedding,
    Id,
    MetadataIn,
    RequestModel,
    ResponseModel,
    Text,
)
from application.dto import DocumentInfo


class DocumentChunkIn(RequestModel):
    id: Id | None = None
    text: Text
    embedding: Embedding | None = Field(default=None, description=OPTIONAL_EMBEDDING)
    metadata: MetadataIn = Field(default_factory=dict)


class DocumentCreate(RequestModel):
    id: Id | None = None
    metadata: MetadataIn = Field(default_factory=dict)
    chunks: list[DocumentChunkIn] = Field(
        default_factory=list, json_schema_extra=bounded_by("max_batch", "maxItems")
    )


class DocumentUpdate(RequestModel):
    metadata: MetadataIn


class DocumentOut(ResponseModel):
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
