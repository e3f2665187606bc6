"""Services as FastAPI dependencies, provided by the container that ``bootstrap`` wires.

The names are the container's provider names, declared through ``provide`` (see
``adapters.http.provided``, which says how they are checked); this module never imports the
container, so the HTTP adapter depends on the application layer only.
"""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import Depends, Query

from adapters.http.limits import bounded_by
from adapters.http.provided import on_loop, provide
from adapters.http.schemas.filters import FILTER_QUERY
from application.chunk_service import ChunkService
from application.document_service import DocumentService
from application.embedding_service import EmbeddingService
from application.index_service import IndexService
from application.library_service import LibraryService
from application.search_service import SearchService
from domain.errors import InvalidFilter

_LIBRARIES = provide("library_service", LibraryService)
_DOCUMENTS = provide("document_service", DocumentService)
_CHUNKS = provide("chunk_service", ChunkService)
_INDEXES = provide("index_service", IndexService)
_SEARCHES = provide("search_service", SearchService)
_EMBEDDINGS = provide("embedding_service", EmbeddingService)

Libraries = Annotated[LibraryService, on_loop(_LIBRARIES), _LIBRARIES]
Documents = Annotated[DocumentService, on_loop(_DOCUMENTS), _DOCUMENTS]
Chunks = Annotated[ChunkService, on_loop(_CHUNKS), _CHUNKS]
Indexes = Annotated[IndexService, on_loop(_INDEXES), _INDEXES]
Searches = Annotated[SearchService, on_loop(_SEARCHES), _SEARCHES]
Embeddings = Annotated[EmbeddingService, on_loop(_EMBEDDINGS), _EMBEDDINGS]

PageSize = Annotated[
    int,
    Query(
        ge=1,
        description="Items per page.",
        json_schema_extra=bounded_by("max_page_size", "maximum"),
    ),
]
Cursor = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=256,
        # What adapters/persistence/cursor.py makes: unpadded urlsafe base64. Within that
        # shape, a cursor this listing did not hand out is a 422 (Invalid cursor).
        pattern=r"^[A-Za-z0-9_-]+$",
        description="The next_cursor of the previous page of this same listing.",
    ),
]


def _listing_filter(
    filter: Annotated[
        str | None,
        Query(
            max_length=16_384,
            description="A filter tree as JSON (URL-encoded), as in search: "
            '{"field": "year", "op": "gte", "value": 2020}; at most 16,384 characters.',
            json_schema_extra=FILTER_QUERY,
        ),
    ] = None,
) -> object | None:
    if filter is None:
        return None
    try:
        parsed: object = json.loads(filter)
    except ValueError as exc:
        raise InvalidFilter(f"filter is not valid JSON: {exc}", location="filter") from None
    if parsed is None:  # ?filter=null is not "no filter": leave the parameter out for that
        raise InvalidFilter("filter: a filter must be an object, got null", location="filter")
    return parsed


ListingFilter = Annotated[object | None, Depends(_listing_filter)]
