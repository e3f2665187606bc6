"""Services as FastAPI dependencies, provided by the container that ``bootstrap`` wires.

The names are the container's provider names; this module never imports the container, so
the HTTP adapter depends on the application layer only.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from dependency_injector.wiring import Provide
from fastapi import Depends, Query

from adapters.http.limits import bounded_by
from application.chunk_service import ChunkService
from application.document_service import DocumentService
from application.index_service import IndexService
from application.library_service import LibraryService
from application.search_service import SearchService
from domain.errors import InvalidFilter


def on_loop(marker: Any) -> Any:
    """``Depends`` on a coroutine that answers ``marker``: FastAPI awaits it on the event loop.

    ``Depends(Provide[...])`` makes the marker itself the dependency, a plain callable, which
    FastAPI runs in the thread pool: one more round trip between the event loop and a worker
    thread on every request, only to get the marker back, which ``@inject`` then replaces
    with the container's service. The marker also stays in the ``Annotated`` metadata, after
    this ``Depends``, which is where ``@inject`` finds it (FastAPI ignores it there).
    """

    async def provided() -> Any:
        return marker

    return Depends(provided)


_LIBRARIES = Provide["library_service"]
_DOCUMENTS = Provide["document_service"]
_CHUNKS = Provide["chunk_service"]
_INDEXES = Provide["index_service"]
_SEARCHES = Provide["search_service"]

Libraries = Annotated[LibraryService, on_loop(_LIBRARIES), _LIBRARIES]
Documents = Annotated[DocumentService, on_loop(_DOCUMENTS), _DOCUMENTS]
Chunks = Annotated[ChunkService, on_loop(_CHUNKS), _CHUNKS]
Indexes = Annotated[IndexService, on_loop(_INDEXES), _INDEXES]
Searches = Annotated[SearchService, on_loop(_SEARCHES), _SEARCHES]

PageSize = Annotated[
    int,
    Query(
        ge=1,
        description="Items per page.",
        json_schema_extra=bounded_by("max_page_size", "maximum"),
    ),
]
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
