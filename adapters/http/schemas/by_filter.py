"""Counting chunks or documents, and deleting chunks, by a filter."""

from __future__ import annotations

from pydantic import BaseModel, Field

from adapters.http.schemas.common import RequestModel
from adapters.http.schemas.filters import FilterJson


class CountIn(RequestModel):
    filter: FilterJson | None = None


class DeleteWhereIn(RequestModel):
    filter: FilterJson = Field(
        description="Every chunk matching it is deleted, all or nothing; an empty filter is "
        "refused (delete the library instead)."
    )


class CountOut(BaseModel):
    count: int


class DeletedOut(BaseModel):
    deleted: int = Field(description="How many chunks the write deleted.")
