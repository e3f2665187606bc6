"""The calls on a library's ``/chunks``: write one or a batch, list, get, patch, put, delete
one, and delete every chunk a filter matches."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from stacksdb_client._calls.chunk_bodies import chunk_body
from stacksdb_client._calls.common import library_path, parse_model, parse_page
from stacksdb_client._core import Call, Vector, parse_none
from stacksdb_client.filters import FilterLike, filter_json
from stacksdb_client.models import Chunk, ChunkBatch, Page, _Deleted


def create_chunk(
    library_id: str,
    *,
    document_id: str,
    text: str,
    embedding: Vector | None,
    metadata: Mapping[str, Any] | None,
    id: str | None,
) -> Call[Chunk]:
    body = chunk_body(
        text=text, embedding=embedding, metadata=metadata, id=id, document_id=document_id
    )
    path = library_path(library_id, "chunks")
    return Call("POST", path, parse_model(Chunk), json=body, idempotent=id is not None)


def write_chunks(library_id: str, bodies: list[dict[str, Any]], upsert: bool) -> Call[list[Chunk]]:
    """One all-or-nothing batch. Retryable only when every chunk carries its own id, so a
    repeat cannot create duplicates."""

    def parse(response: httpx.Response) -> list[Chunk]:
        return list(ChunkBatch.model_validate_json(response.content).items)

    path = library_path(library_id, "chunks", "batch")
    body = {"chunks": bodies, "mode": "upsert" if upsert else "insert"}
    every_id = all("id" in b for b in bodies)
    return Call("POST", path, parse, json=body, idempotent=every_id)


def list_chunks(
    library_id: str,
    *,
    document_id: str | None,
    limit: int | None,
    cursor: str | None,
    include_embedding: bool,
) -> Call[Page[Chunk]]:
    params = {
        "document_id": document_id,
        "limit": limit,
        "cursor": cursor,
        "include_embedding": "true" if include_embedding else None,
    }
    path = library_path(library_id, "chunks")
    return Call("GET", path, parse_page(Chunk), params=params, idempotent=True, read=True)


def get_chunk(library_id: str, chunk_id: str) -> Call[Chunk]:
    path = library_path(library_id, "chunks", chunk_id)
    return Call("GET", path, parse_model(Chunk), idempotent=True, read=True)


def update_chunk(
    library_id: str,
    chunk_id: str,
    *,
    text: str | None,
    embedding: Vector | None,
    metadata: Mapping[str, Any] | None,
) -> Call[Chunk]:
    body = chunk_body(text=text, embedding=embedding, metadata=metadata)
    path = library_path(library_id, "chunks", chunk_id)
    return Call("PATCH", path, parse_model(Chunk), json=body)


def put_chunk(
    library_id: str,
    chunk_id: str,
    *,
    document_id: str,
    text: str,
    embedding: Vector | None,
    metadata: Mapping[str, Any] | None,
) -> Call[Chunk]:
    body = chunk_body(text=text, embedding=embedding, metadata=metadata, document_id=document_id)
    path = library_path(library_id, "chunks", chunk_id)
    return Call("PUT", path, parse_model(Chunk), json=body, idempotent=True)


def delete_chunk(library_id: str, chunk_id: str) -> Call[None]:
    return Call("DELETE", library_path(library_id, "chunks", chunk_id), parse_none, idempotent=True)


def delete_where(library_id: str, filter: FilterLike) -> Call[int]:
    """Delete every chunk matching ``filter`` in one write; answers how many. Not retried:
    a retry could delete chunks written in between."""

    def parse(response: httpx.Response) -> int:
        return _Deleted.model_validate_json(response.content).deleted

    body = {"filter": filter_json(filter)}
    return Call("POST", library_path(library_id, "chunks", "delete"), parse, json=body)
