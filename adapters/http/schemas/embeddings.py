"""Texts turned into vectors by a library's embedder."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from adapters.http.limits import bounded_by
from adapters.http.schemas.common import RequestModel, Text
from domain.embedding import Purpose


class EmbedIn(RequestModel):
    texts: list[Text] = Field(
        min_length=1, json_schema_extra=bounded_by("max_embed_texts", "maxItems")
    )
    purpose: Annotated[Purpose, Field(strict=False)] = Field(
        default=Purpose.DOCUMENT,
        description="document: texts to store; query: search queries (asymmetric models, "
        "such as Cohere's, embed the two differently).",
    )


class EmbedOut(BaseModel):
    embeddings: list[list[float]] = Field(description="One vector per text, in order.")
