"""The REST API of API.md as a catalogue of ``Call`` values, one function per endpoint.

Shared by ``StacksDB`` and ``AsyncStacksDB``: a path, a body and whether the request may be
retried are decided here, once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Sized
from itertools import islice
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from stacksdb_client._core import Call, Vector, Vectors, parse_none, vector_json, vectors_json
from stacksdb_client.filters import FilterLike, filter_json
from stacksdb_client.models import (
    Chunk,
    ChunkBatch,
    Document,
    Hybrid,
    Include,
    IndexStatus,
    LibraryInfo,
    Page,
    SearchMode,
    SearchResponse,
    _Count,
    _Deleted,
    _Listing,
    _SearchBatch,
)

M = TypeVar("M", bound=BaseModel)

LIBRARIES = "/v1/libraries"


def _seg(value: str) -> str:
    if not value:
        raise ValueError("an id must not be empty")
    return quote(value, safe="")


def _lib(library_id: str) -> str:
    return f"{LIBRARIES}/{_seg(library_id)}"


def _model(cls: type[M]) -> Callable[[httpx.Response], M]:
    def parse(response: httpx.Response) -> M:
        return cls.model_validate_json(response.content)

    return parse


def _page(cls: type[M]) -> Callable[[httpx.Response], Page[M]]:
    def parse(response: httpx.Response) -> Page[M]:
        # Pydantic parametrises a generic model with a runtime class; mypy cannot follow a
        # type variable used as a type argument at runtime.
        listing = _Listing[cls].model_validate_json(response.content)  # type: ignore[valid-type]
        return Page(items=list(listing.items), next_cursor=listing.next_cursor)

    return parse


def _batch(response: httpx.Response) -> list[Chunk]:
    return list(ChunkBatch.model_validate_json(response.content).items)


def _without_none(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


# Libraries


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
    body = _without_none(
        id=id,
        name=name,
        dimension=dimension,
        embedder=dict(embedder) if embedder is not None else None,
        metric=metric,
        description=description,
        metadata=dict(metadata) if metadata is not None else None,
        index=_typed(index),
        text_index=_typed(text_index),
    )
    return Call("POST", LIBRARIES, _model(LibraryInfo), json=body, idempotent=id is not None)


def list_libraries(limit: int | None, cursor: str | None) -> Call[Page[LibraryInfo]]:
    params = {"limit": limit, "cursor": cursor}
    return Call("GET", LIBRARIES, _page(LibraryInfo), params=params, idempotent=True, read=True)


def get_library(library_id: str) -> Call[LibraryInfo]:
    return Call("GET", _lib(library_id), _model(LibraryInfo), idempotent=True, read=True)


def update_library(
    library_id: str,
    *,
    name: str | None,
    description: str | None,
    metadata: Mapping[str, Any] | None,
    text_index: Mapping[str, Any] | str | None = None,
) -> Call[LibraryInfo]:
    body = _without_none(
        name=name,
        description=description,
        metadata=dict(metadata) if metadata is not None else None,
        text_index=_typed(text_index),
    )
    return Call("PATCH", _lib(library_id), _model(LibraryInfo), json=body)


def delete_library(library_id: str) -> Call[None]:
    return Call("DELETE", _lib(library_id), parse_none, idempotent=True)


def _typed(spec: Mapping[str, Any] | str | None) -> dict[str, Any] | None:
    """An ``index`` or ``text_index`` as the API takes it: a bare type name (``"hnsw"``,
    ``"none"``) stands for ``{"type": name}`` with the server's default params."""
    if spec is None:
        return None
    return {"type": spec} if isinstance(spec, str) else dict(spec)


# Documents


def create_document(
    library_id: str,
    *,
    id: str | None,
    metadata: Mapping[str, Any] | None,
    chunks: Sequence[Mapping[str, Any]] | None,
) -> Call[Document]:
    body = _without_none(
        id=id,
        metadata=dict(metadata) if metadata is not None else None,
        chunks=[chunk_json(c, need_document=False) for c in chunks] if chunks else None,
    )
    path = f"{_lib(library_id)}/documents"
    return Call("POST", path, _model(Document), json=body, idempotent=id is not None)


def list_documents(library_id: str, limit: int | None, cursor: str | None) -> Call[Page[Document]]:
    path = f"{_lib(library_id)}/documents"
    params = {"limit": limit, "cursor": cursor}
    return Call("GET", path, _page(Document), params=params, idempotent=True, read=True)


def get_document(library_id: str, document_id: str) -> Call[Document]:
    path = f"{_lib(library_id)}/documents/{_seg(document_id)}"
    return Call("GET", path, _model(Document), idempotent=True, read=True)


def update_document(
    library_id: str, document_id: str, metadata: Mapping[str, Any]
) -> Call[Document]:
    path = f"{_lib(library_id)}/documents/{_seg(document_id)}"
    return Call("PATCH", path, _model(Document), json={"metadata": dict(metadata)})


def delete_document(library_id: str, document_id: str) -> Call[None]:
    path = f"{_lib(library_id)}/documents/{_seg(document_id)}"
    return Call("DELETE", path, parse_none, idempotent=True)


# Chunks


def chunk_json(
    chunk: Mapping[str, Any], *, embedding: list[float] | None = None, need_document: bool = True
) -> dict[str, Any]:
    """The ChunkIn body of one chunk given as a mapping (its embedding a list or an array;
    without one, the library's embedder makes it from the text)."""
    unknown = set(chunk) - {"id", "document_id", "text", "embedding", "metadata"}
    if unknown:
        raise ValueError(f"unknown chunk fields: {sorted(unknown)}")
    if need_document and "document_id" not in chunk:
        raise ValueError("every chunk needs a document_id")
    if embedding is None and chunk.get("embedding") is not None:
        embedding = vector_json(chunk["embedding"])
    return _without_none(
        id=chunk.get("id"),
        document_id=chunk.get("document_id") if need_document else None,
        text=chunk.get("text", ""),
        embedding=embedding,
        metadata=chunk.get("metadata"),
    )


def create_chunk(
    library_id: str,
    *,
    document_id: str,
    text: str,
    embedding: Vector | None,
    metadata: Mapping[str, Any] | None,
    id: str | None,
) -> Call[Chunk]:
    body = _without_none(
        id=id,
        document_id=document_id,
        text=text,
        embedding=vector_json(embedding) if embedding is not None else None,
        metadata=dict(metadata) if metadata is not None else None,
    )
    path = f"{_lib(library_id)}/chunks"
    return Call("POST", path, _model(Chunk), json=body, idempotent=id is not None)


def write_chunks(library_id: str, bodies: list[dict[str, Any]], upsert: bool) -> Call[list[Chunk]]:
    """One all-or-nothing batch. Retryable only when every chunk carries its own id, so a
    repeat cannot create duplicates."""
    path = f"{_lib(library_id)}/chunks/batch"
    body = {"chunks": bodies, "mode": "upsert" if upsert else "insert"}
    every_id = all("id" in b for b in bodies)
    return Call("POST", path, _batch, json=body, idempotent=every_id)


def list_chunks(
    library_id: str,
    *,
    document_id: str | None,
    limit: int | None,
    cursor: str | None,
    include_embedding: bool,
) -> Call[Page[Chunk]]:
    path = f"{_lib(library_id)}/chunks"
    params = {
        "document_id": document_id,
        "limit": limit,
        "cursor": cursor,
        "include_embedding": "true" if include_embedding else None,
    }
    return Call("GET", path, _page(Chunk), params=params, idempotent=True, read=True)


def get_chunk(library_id: str, chunk_id: str) -> Call[Chunk]:
    path = f"{_lib(library_id)}/chunks/{_seg(chunk_id)}"
    return Call("GET", path, _model(Chunk), idempotent=True, read=True)


def update_chunk(
    library_id: str,
    chunk_id: str,
    *,
    text: str | None,
    embedding: Vector | None,
    metadata: Mapping[str, Any] | None,
) -> Call[Chunk]:
    body = _without_none(
        text=text,
        embedding=vector_json(embedding) if embedding is not None else None,
        metadata=dict(metadata) if metadata is not None else None,
    )
    path = f"{_lib(library_id)}/chunks/{_seg(chunk_id)}"
    return Call("PATCH", path, _model(Chunk), json=body)


def put_chunk(
    library_id: str,
    chunk_id: str,
    *,
    document_id: str,
    text: str,
    embedding: Vector | None,
    metadata: Mapping[str, Any] | None,
) -> Call[Chunk]:
    body = _without_none(
        document_id=document_id,
        text=text,
        embedding=vector_json(embedding) if embedding is not None else None,
        metadata=dict(metadata) if metadata is not None else None,
    )
    path = f"{_lib(library_id)}/chunks/{_seg(chunk_id)}"
    return Call("PUT", path, _model(Chunk), json=body, idempotent=True)


def delete_chunk(library_id: str, chunk_id: str) -> Call[None]:
    path = f"{_lib(library_id)}/chunks/{_seg(chunk_id)}"
    return Call("DELETE", path, parse_none, idempotent=True)


# Index and search


def index_status(library_id: str) -> Call[IndexStatus]:
    path = f"{_lib(library_id)}/index"
    return Call("GET", path, _model(IndexStatus), idempotent=True, read=True)


def build_index(library_id: str, type: str, params: Mapping[str, Any]) -> Call[IndexStatus]:
    path = f"{_lib(library_id)}/index"
    body = {"type": type, "params": dict(params)}
    return Call("PUT", path, _model(IndexStatus), json=body, idempotent=True)


def search(
    library_id: str,
    *,
    vector: Vector | None,
    k: int,
    filter: FilterLike | None,
    include: Sequence[Include] | None,
    params: Mapping[str, Any] | None,
    exact: bool,
    query: str | None = None,
    mode: SearchMode | None = None,
    hybrid: Hybrid | None = None,
    score_threshold: float | None = None,
    group_by: str | None = None,
    group_size: int | None = None,
) -> Call[SearchResponse]:
    body = search_body(
        vector=vector,
        k=k,
        filter=filter,
        include=include,
        params=params,
        exact=exact,
        query=query,
        mode=mode,
        hybrid=hybrid,
        score_threshold=score_threshold,
        group_by=group_by,
        group_size=group_size,
    )
    path = f"{_lib(library_id)}/search"
    return Call("POST", path, _model(SearchResponse), json=body, idempotent=True, read=True)


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
    return _without_none(
        vector=vector_json(vector) if vector is not None else None,
        query=query,
        mode=mode,
        hybrid=dict(hybrid) if hybrid is not None else None,
        k=k,
        filter=filter_json(filter),
        include=list(include) if include is not None else None,
        params=dict(params) if params is not None else None,
        exact=exact or None,
        score_threshold=score_threshold,
        group_by=group_by,
        group_size=group_size,
    )


def search_batch(
    library_id: str, searches: Iterable[Mapping[str, Any]]
) -> Call[list[SearchResponse]]:
    """Many searches in one request; each mapping holds ``Library.search``'s keywords."""
    body = {"searches": [search_body(**search) for search in searches]}

    def parse(response: httpx.Response) -> list[SearchResponse]:
        return list(_SearchBatch.model_validate_json(response.content).results)

    path = f"{_lib(library_id)}/search/batch"
    return Call("POST", path, parse, json=body, idempotent=True, read=True)


def count(library_id: str, what: str, filter: FilterLike | None) -> Call[int]:
    """How many ``what`` ("chunks" or "documents") the library holds, or match ``filter``."""

    def parse(response: httpx.Response) -> int:
        return _Count.model_validate_json(response.content).count

    body = _without_none(filter=filter_json(filter))
    path = f"{_lib(library_id)}/{what}/count"
    return Call("POST", path, parse, json=body, idempotent=True, read=True)


def delete_where(library_id: str, filter: FilterLike) -> Call[int]:
    """Delete every chunk matching ``filter`` in one write; answers how many. Not retried:
    a retry could delete chunks written in between."""

    def parse(response: httpx.Response) -> int:
        return _Deleted.model_validate_json(response.content).deleted

    body = {"filter": filter_json(filter)}
    return Call("POST", f"{_lib(library_id)}/chunks/delete", parse, json=body)


def text_chunks(
    texts: Sequence[str],
    document_id: str | Sequence[str],
    metadatas: Sequence[Mapping[str, Any] | None] | None,
    ids: Sequence[str] | None,
) -> list[dict[str, Any]]:
    """Chunks without embeddings for ``add_texts``: one per text, of ``document_id`` (one for
    all, or one per text), with the metadata and id at the same position."""
    if isinstance(texts, str):
        raise TypeError("texts must be a sequence of strings, not one string")
    count = len(texts)
    documents = [document_id] * count if isinstance(document_id, str) else list(document_id)
    for name, values in (("document_id", documents), ("metadatas", metadatas), ("ids", ids)):
        if values is not None and len(values) != count:
            raise ValueError(f"{count} texts but {len(values)} {name}")
    return [
        _without_none(
            id=ids[i] if ids is not None else None,
            document_id=documents[i],
            text=text,
            metadata=metadatas[i] if metadatas is not None else None,
        )
        for i, text in enumerate(texts)
    ]


def embed(library_id: str, texts: Sequence[str], purpose: str) -> Call[list[list[float]]]:
    """The library's embedder on ``texts``; it writes nothing, so it is always retryable."""

    def parse(response: httpx.Response) -> list[list[float]]:
        embeddings: list[list[float]] = response.json()["embeddings"]
        return embeddings

    if isinstance(texts, str):
        raise TypeError("texts must be a sequence of strings, not one string")
    body = {"texts": list(texts), "purpose": purpose}
    return Call("POST", f"{_lib(library_id)}/embed", parse, json=body, idempotent=True)


def chunk_batches(
    chunks: Iterable[Mapping[str, Any]], embeddings: Vectors | None, batch_size: int
) -> Iterator[list[dict[str, Any]]]:
    """ChunkIn bodies in lists of ``batch_size``; with ``embeddings`` (a 2-D array or a list of
    vectors, one per chunk) the chunks need no ``embedding`` of their own."""
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    rows = vectors_json(embeddings) if embeddings is not None else None
    if rows is not None and isinstance(chunks, Sized) and len(chunks) != len(rows):
        raise ValueError(f"{len(chunks)} chunks but {len(rows)} embeddings")
    iterator = iter(chunks)
    start = 0
    while batch := list(islice(iterator, batch_size)):
        if rows is None:
            yield [chunk_json(c) for c in batch]
        else:
            block = rows[start : start + len(batch)]
            if len(block) != len(batch):
                raise ValueError("fewer embeddings than chunks")
            yield [chunk_json(c, embedding=e) for c, e in zip(batch, block, strict=True)]
        start += len(batch)
