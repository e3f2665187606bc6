"""The calls on a library's ``/documents``: create (with chunks), list, get, update, delete."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from stacksdb_client._calls.chunk_bodies import chunk_json
from stacksdb_client._calls.common import (
    as_dict,
    library_path,
    parse_model,
    parse_page,
    without_none,
)
from stacksdb_client._core import Call, parse_none
from stacksdb_client.models import Document, Page


def create_document(
    library_id: str,
    *,
    id: str | None,
    metadata: Mapping[str, Any] | None,
    chunks: Sequence[Mapping[str, Any]] | None,
) -> Call[Document]:
    body = without_none(
        id=id,
        metadata=as_dict(metadata),
        chunks=[chunk_json(c, need_document=False) for c in chunks] if chunks else None,
    )
    path = library_path(library_id, "documents")
    return Call("POST", path, parse_model(Document), json=body, idempotent=id is not None)


def list_documents(library_id: str, limit: int | None, cursor: str | None) -> Call[Page[Document]]:
    params = {"limit": limit, "cursor": cursor}
    path = library_path(library_id, "documents")
    return Call("GET", path, parse_page(Document), params=params, idempotent=True, read=True)


def get_document(library_id: str, document_id: str) -> Call[Document]:
    path = library_path(library_id, "documents", document_id)
    return Call("GET", path, parse_model(Document), idempotent=True, read=True)


def update_document(
    library_id: str, document_id: str, metadata: Mapping[str, Any]
) -> Call[Document]:
    path = library_path(library_id, "documents", document_id)
    return Call("PATCH", path, parse_model(Document), json={"metadata": dict(metadata)})


def delete_document(library_id: str, document_id: str) -> Call[None]:
    path = library_path(library_id, "documents", document_id)
    return Call("DELETE", path, parse_none, idempotent=True)
