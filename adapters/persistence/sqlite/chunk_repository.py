"""``SqlChunkRepository``: the ``ChunkRepository`` port on SQLite.

Bulk writes are one ``executemany`` of upserts; reads select explicit column tuples
(``_CHUNK_COLUMNS``, ``_SCAN_COLUMNS``) so a start-up scan reads the text only when asked.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
from sqlalchemy import bindparam, delete, literal, select

from adapters.persistence.cursor import check_page_size, chunks_listing, decode_cursor, page_of
from adapters.persistence.sqlite.codecs import (
    EMPTY_OBJECT,
    blob_to_embedding,
    blobs_to_matrix,
    datetime_to_micros,
    dump_json,
    embedding_to_blob,
    load_json,
    micros_to_datetime,
)
from adapters.persistence.sqlite.document_repository import SqlDocumentRepository
from adapters.persistence.sqlite.statements import batches, unique, upsert
from adapters.persistence.sqlite.tables import chunks, libraries
from adapters.persistence.sqlite.transaction import SqlTransaction
from domain.errors import DocumentNotFound, LibraryNotFound
from domain.models import Chunk, ChunkColumns, Page

_UPSERT_CHUNK = upsert(chunks, ["library_id", "id"])

# What a start-up load reads of each chunk: no library id (it is the one asked for), and the
# text only for a keyword index (``_SCAN_TEXT``, after these).
_SCAN_COLUMNS = (
    chunks.c.seq,
    chunks.c.id,
    chunks.c.document_id,
    chunks.c.embedding,
    chunks.c.metadata_json,
    chunks.c.created_at,
    chunks.c.updated_at,
)
_SCAN_TEXT = (chunks.c.text,)

# Columns in the order ``_chunk_from_row`` unpacks them.
_CHUNK_COLUMNS = (
    chunks.c.seq,
    chunks.c.library_id,
    chunks.c.id,
    chunks.c.document_id,
    chunks.c.text,
    chunks.c.embedding,
    chunks.c.metadata_json,
    chunks.c.created_at,
    chunks.c.updated_at,
)

# Built once: every search that returns text or metadata reads its hits with it, and
# building the IN clause anew cost ~0.2 ms of Python (GIL) per search.
_GET_MANY = select(*_CHUNK_COLUMNS).where(
    chunks.c.library_id == bindparam("library_id"),
    chunks.c.id.in_(bindparam("ids", expanding=True)),
)


def _chunk_from_row(row: Sequence[Any]) -> tuple[int, Chunk]:
    seq, library_id, chunk_id, document_id, text, blob, metadata, created, updated = row
    chunk = Chunk(
        library_id=library_id,
        document_id=document_id,
        text=text,
        embedding=blob_to_embedding(blob),
        metadata=load_json(metadata),
        id=chunk_id,
        created_at=micros_to_datetime(created),
        updated_at=micros_to_datetime(updated),
    )
    return seq, chunk


class SqlChunkRepository:
    """``ChunkRepository`` on SQLite; used through ``SqlUnitOfWork``."""

    def __init__(self, tx: SqlTransaction) -> None:
        self._tx = tx

    def save_many(self, chunks_: Sequence[Chunk]) -> None:
        """Insert or replace each chunk, keyed by (library_id, id), in one ``executemany``;
        a replaced chunk keeps its place in listings. Every chunk's document must exist:
        otherwise nothing is written and ``DocumentNotFound`` (or ``LibraryNotFound``) names
        the first missing, in sorted order."""
        self._tx.writing()
        if not chunks_:
            return
        self._check_documents_exist(chunks_)
        first = self._tx.allocate_seqs(len(chunks_))
        rows = [
            {
                "library_id": chunk.library_id,
                "id": chunk.id,
                "document_id": chunk.document_id,
                "seq": first + i,
                "text": chunk.text,
                "embedding": embedding_to_blob(chunk.embedding),
                "metadata_json": dump_json(chunk.metadata),
                "created_at": datetime_to_micros(chunk.created_at),
                "updated_at": datetime_to_micros(chunk.updated_at),
            }
            for i, chunk in enumerate(chunks_)
        ]
        self._tx.write(_UPSERT_CHUNK, rows)

    def get(self, library_id: str, chunk_id: str) -> Chunk | None:
        statement = select(*_CHUNK_COLUMNS).where(
            chunks.c.library_id == library_id, chunks.c.id == chunk_id
        )
        row = self._tx.read(statement).first()
        return None if row is None else _chunk_from_row(row)[1]

    def get_many(self, library_id: str, chunk_ids: Sequence[str]) -> dict[str, Chunk]:
        """The found chunks by id; unknown ids are left out."""
        found: dict[str, Chunk] = {}
        for batch in batches(unique(chunk_ids)):
            for row in self._tx.read(_GET_MANY, {"library_id": library_id, "ids": batch}):
                chunk = _chunk_from_row(row)[1]
                found[chunk.id] = chunk
        return found

    def existing_ids(self, library_id: str, chunk_ids: Iterable[str]) -> set[str]:
        found: set[str] = set()
        for batch in batches(unique(chunk_ids)):
            statement = select(chunks.c.id).where(
                chunks.c.library_id == library_id, chunks.c.id.in_(batch)
            )
            found.update(self._tx.read(statement).scalars())
        return found

    def ids_of_document(self, library_id: str, document_id: str) -> list[str]:
        """The document's chunk ids in insertion order."""
        statement = (
            select(chunks.c.id)
            .where(chunks.c.library_id == library_id, chunks.c.document_id == document_id)
            .order_by(chunks.c.seq)
        )
        return list(self._tx.read(statement).scalars())

    def delete_many(self, library_id: str, chunk_ids: Iterable[str]) -> None:
        """Delete the chunks; unknown ids are ignored."""
        self._tx.writing()
        for batch in batches(unique(chunk_ids)):
            self._tx.write(
                delete(chunks).where(chunks.c.library_id == library_id, chunks.c.id.in_(batch))
            )

    def scan_columns(
        self, library_id: str, batch_size: int = 10_000, *, with_text: bool = False
    ) -> Iterator[ChunkColumns]:
        """Every chunk of the library in insertion order, ``batch_size`` rows at a time, as
        columns: the embeddings of a batch are its BLOBs joined and decoded as one float32
        matrix, the text is read only ``with_text``, and metadata JSON is parsed only for
        rows that have any.

        Keyset pagination on the (library_id, seq) index: each batch is one bounded query,
        so memory holds one batch of rows whatever the library's size, and each query
        starts where the last ended instead of skipping an OFFSET. All batches read the
        unit of work's snapshot.
        """
        check_page_size(batch_size)
        columns = _SCAN_COLUMNS + _SCAN_TEXT if with_text else _SCAN_COLUMNS
        after = 0
        while True:
            statement = (
                select(*columns)
                .where(chunks.c.library_id == library_id, chunks.c.seq > after)
                .order_by(chunks.c.seq)
                .limit(batch_size)
            )
            rows = self._tx.read(statement).all()
            if not rows:
                return
            seqs, ids, document_ids, blobs, metadata, created, updated, *text = zip(
                *rows, strict=True
            )
            yield ChunkColumns(
                ids=list(ids),
                document_ids=list(document_ids),
                embeddings=blobs_to_matrix(blobs),
                metadata={i: load_json(m) for i, m in enumerate(metadata) if m != EMPTY_OBJECT},
                created_micros=np.asarray(created, dtype=np.int64),
                updated_micros=np.asarray(updated, dtype=np.int64),
                texts=list(text[0]) if with_text else None,
            )
            after = seqs[-1]

    def list(
        self, library_id: str, limit: int, cursor: str | None, document_id: str | None = None
    ) -> Page[Chunk]:
        """Chunks in insertion order, optionally of one document; raises ``InvalidCursor``
        for a foreign cursor."""
        check_page_size(limit)
        listing = chunks_listing(library_id, document_id)
        after = decode_cursor(cursor, listing)
        statement = select(*_CHUNK_COLUMNS).where(
            chunks.c.library_id == library_id, chunks.c.seq > after
        )
        if document_id is not None:
            statement = statement.where(chunks.c.document_id == document_id)
        statement = statement.order_by(chunks.c.seq).limit(limit + 1)
        rows = [_chunk_from_row(row) for row in self._tx.read(statement)]
        return page_of(rows, limit, listing)

    def _check_documents_exist(self, chunks_: Sequence[Chunk]) -> None:
        wanted: dict[str, set[str]] = {}
        for chunk in chunks_:
            wanted.setdefault(chunk.library_id, set()).add(chunk.document_id)
        documents_repo = SqlDocumentRepository(self._tx)
        for library_id in sorted(wanted):
            missing = sorted(
                wanted[library_id] - documents_repo.existing_ids(library_id, wanted[library_id])
            )
            if not missing:
                continue
            library = self._tx.read(select(literal(1)).where(libraries.c.id == library_id)).first()
            if library is None:
                raise LibraryNotFound(library_id)
            raise DocumentNotFound(library_id, missing[0])
