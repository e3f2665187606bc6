"""Services as FastAPI dependencies, provided by the container that ``bootstrap`` wires.

The names are the container's provider names; this module never imports the container, so
the HTTP adapter depends on the application layer only.
"""

from __future__ import annotations

import json
from typing import Annotated

from dependency_injector.wiring import Provide
from fastapi import Depends, Query

from application.chunk_service import ChunkService
from application.document_service import DocumentService
from application.index_service import IndexService
from application.library_service import LibraryService
from application.search_service import SearchService
from domain.errors import InvalidFilter

Libraries = Annotated[LibraryService, Depends(Provide["library_service"])]
Documents = Annotated[DocumentService, Depends(Provide["document_service"])]
Chunks = Annotated[ChunkService, Depends(Provide["chunk_service"])]
Indexes = Annotated[IndexService, Depends(Provide["index_service"])]
Searches = Annotated[SearchService, Depends(Provide["search_service"])]

PageSize = Annotated[int, Query(ge=1, le=1000, description="Items per page.")]
Cursor = Annotated[
    str | None, Query(max_length=512, description="The next_cursor of the previous page.")
]


def _listing_filter(
    filter: Annotated[
        str | None,
        Query(
            max_length=16_384,
            description="A filter tree as JSON (URL-encoded), as in search: "
            '{"field": "year", "op": "gte", "value": 2020}.',
        ),
    ] = None,
) -> object | None:
    if filter is None:
        return None
    try:
        parsed: object = json.loads(filter)
    except ValueError as exc:
        raise InvalidFilter(f"filter is not valid JSON: {exc}", location="filter") from None
    return parsed


ListingFilter = Annotated[object | None, Depends(_listing_filter)]
