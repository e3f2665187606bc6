"""The read-only queries on a library: ``/search``, ``/search/batch`` and the counts. Each
writes nothing, so each may be retried and may be answered by a follower."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import httpx

from stacksdb_client._calls.common import as_dict, library_path, parse_model, without_none
from stacksdb_client._core import Call, Vector, vector_json
from stacksdb_client.filters import FilterLike, filter_json
from stacksdb_client.models import (
    Hybrid,
    Include,
    SearchMode,
    SearchResponse,
    _Count,
    _SearchBatch,
)


def search_body(
    *,
    vector: Vector | None = None,
    k: int = 10,
    filter: FilterLike | None = None,
    include: Sequence[Include] | None = None,
    params: Mapping[str, Any] | None = None,
    exact: bool = False,
    query: str | None = None,
    mode: SearchMode | None = None,
    hybrid: Hybrid | None = None,
    score_threshold: float | None = None,
    group_by: str | None = None,
    group_size: int | None = None,
) -> dict[str, Any]:
    """The JSON of one search, alone or in a batch (the keywords of ``Library.search``)."""
    return without_none(
        vector=vector_json(vector) if vector is not None else None,
        query=query,
        mode=mode,
        hybrid=as_dict(hybrid),
        k=k,
        filter=filter_json(filter),
        include=list(include) if include is not None else None,
        params=as_dict(params),
        exact=exact or None,
        score_threshold=score_threshold,
        group_by=group_by,
        group_size=group_size,
    )


def search(library_id: str, body: dict[str, Any]) -> Call[SearchResponse]:
    """One search; ``body`` is made by ``search_body``."""
    path = library_path(library_id, "search")
    parse = parse_model(SearchResponse)
    return Call("POST", path, parse, json=body, idempotent=True, read=True)


def search_batch(
    library_id: str, searches: Iterable[Mapping[str, Any]]
) -> Call[list[SearchResponse]]:
    """Many searches in one request; each mapping holds ``Library.search``'s keywords."""
    body = {"searches": [search_body(**search) for search in searches]}

    def parse(response: httpx.Response) -> list[SearchResponse]:
        return list(_SearchBatch.model_validate_json(response.content).results)

    path = library_path(library_id, "search", "batch")
    return Call("POST", path, parse, json=body, idempotent=True, read=True)


def count(library_id: str, what: str, filter: FilterLike | None) -> Call[int]:
    """How many ``what`` ("chunks" or "documents") the library holds, or match ``filter``."""

    def parse(response: httpx.Response) -> int:
        return _Count.model_validate_json(response.content).count

    body = without_none(filter=filter_json(filter))
    path = library_path(library_id, what, "count")
    return Call("POST", path, parse, json=body, idempotent=True, read=True)
