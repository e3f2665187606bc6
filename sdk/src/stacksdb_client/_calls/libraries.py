"""The calls on ``/v1/libraries``: create, list, get, update and delete a library."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stacksdb_client._calls.common import (
    LIBRARIES,
    as_dict,
    library_path,
    parse_model,
    parse_page,
    without_none,
)
from stacksdb_client._core import Call, parse_none
from stacksdb_client.models import LibraryInfo, Page


def create_library(
    *,
    name: str,
    dimension: int | None,
    embedder: Mapping[str, Any] | None,
    metric: str | None,
    index: Mapping[str, Any] | str | None,
    description: str | None,
    metadata: Mapping[str, Any] | None,
    id: str | None,
    text_index: Mapping[str, Any] | str | None = None,
) -> Call[LibraryInfo]:
    body = without_none(
        id=id,
        name=name,
        dimension=dimension,
        embedder=as_dict(embedder),
        metric=metric,
        description=description,
        metadata=as_dict(metadata),
        index=_typed(index),
        text_index=_typed(text_index),
    )
    return Call("POST", LIBRARIES, parse_model(LibraryInfo), json=body, idempotent=id is not None)


def list_libraries(limit: int | None, cursor: str | None) -> Call[Page[LibraryInfo]]:
    params = {"limit": limit, "cursor": cursor}
    parse = parse_page(LibraryInfo)
    return Call("GET", LIBRARIES, parse, params=params, idempotent=True, read=True)


def get_library(library_id: str) -> Call[LibraryInfo]:
    path = library_path(library_id)
    return Call("GET", path, parse_model(LibraryInfo), idempotent=True, read=True)


def update_library(
    library_id: str,
    *,
    name: str | None,
    description: str | None,
    metadata: Mapping[str, Any] | None,
    text_index: Mapping[str, Any] | str | None = None,
) -> Call[LibraryInfo]:
    body = without_none(
        name=name,
        description=description,
        metadata=as_dict(metadata),
        text_index=_typed(text_index),
    )
    return Call("PATCH", library_path(library_id), parse_model(LibraryInfo), json=body)


def delete_library(library_id: str) -> Call[None]:
    return Call("DELETE", library_path(library_id), parse_none, idempotent=True)


def _typed(spec: Mapping[str, Any] | str | None) -> dict[str, Any] | None:
    """An ``index`` or ``text_index`` as the API takes it: a bare type name (``"hnsw"``,
    ``"none"``) stands for ``{"type": name}`` with the server's default params."""
    if spec is None:
        return None
    return {"type": spec} if isinstance(spec, str) else dict(spec)
