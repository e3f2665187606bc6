"""The bodies of chunk writes, made from what the caller passes: chunk mappings, a block of
vectors beside them, or texts for the server to embed; each checked before anything is sent."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence, Sized
from itertools import islice
from typing import Any

from stacksdb_client._calls.common import as_dict, without_none
from stacksdb_client._core import Vector, Vectors, vector_json, vectors_json

CHUNK_FIELDS = frozenset({"id", "document_id", "text", "embedding", "metadata"})


def chunk_body(
    *,
    text: str | None,
    embedding: Vector | None,
    metadata: Mapping[str, Any] | None,
    **ids: str | None,
) -> dict[str, Any]:
    """The body of one chunk given field by field (``ids``: its ``id`` and ``document_id``,
    where the call sends them); fields left None are not sent."""
    return without_none(
        **ids,
        text=text,
        embedding=vector_json(embedding) if embedding is not None else None,
        metadata=as_dict(metadata),
    )


def chunk_json(
    chunk: Mapping[str, Any], *, embedding: list[float] | None = None, need_document: bool = True
) -> dict[str, Any]:
    """The ChunkIn body of one chunk given as a mapping (its embedding a list or an array;
    without one, the library's embedder makes it from the text). ``embedding``, a row already
    made JSON by ``vectors_json``, is sent as it is."""
    unknown = set(chunk) - CHUNK_FIELDS
    if unknown:
        raise ValueError(f"unknown chunk fields: {sorted(unknown)}")
    if need_document and "document_id" not in chunk:
        raise ValueError("every chunk needs a document_id")
    if embedding is None and chunk.get("embedding") is not None:
        embedding = vector_json(chunk["embedding"])
    return without_none(
        id=chunk.get("id"),
        document_id=chunk.get("document_id") if need_document else None,
        text=chunk.get("text", ""),
        embedding=embedding,
        metadata=as_dict(chunk.get("metadata")),
    )


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


def text_chunks(
    texts: Sequence[str],
    document_id: str | Sequence[str],
    metadatas: Sequence[Mapping[str, Any] | None] | None,
    ids: Sequence[str] | None,
) -> list[dict[str, Any]]:
    """Chunks without embeddings for ``add_texts``: one per text, of ``document_id`` (one for
    all, or one per text), with the metadata and id at the same position."""
    require_texts(texts)
    count = len(texts)
    documents = [document_id] * count if isinstance(document_id, str) else list(document_id)
    for name, values in (("document_id", documents), ("metadatas", metadatas), ("ids", ids)):
        if values is not None and len(values) != count:
            raise ValueError(f"{count} texts but {len(values)} {name}")
    return [
        without_none(
            id=ids[i] if ids is not None else None,
            document_id=documents[i],
            text=text,
            metadata=metadatas[i] if metadatas is not None else None,
        )
        for i, text in enumerate(texts)
    ]


def require_texts(texts: Sequence[str]) -> None:
    """Refuse one string where a sequence of texts is meant (it would be read letter by letter)."""
    if isinstance(texts, str):
        raise TypeError("texts must be a sequence of strings, not one string")
