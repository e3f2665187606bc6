"""``SqlDocumentRepository``: the ``DocumentRepository`` port on SQLite."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import delete, func, literal, select

from adapters.persistence.cursor import check_page_size, decode_cursor, documents_listing, page_of
from adapters.persistence.sqlite.codecs import (
    datetime_to_micros,
    dump_json,
    load_json,
    micros_to_datetime,
)
from adapters.persistence.sqlite.statements import batches, unique, upsert
from adapters.persistence.sqlite.tables import chunks, documents, libraries
from adapters.persistence.sqlite.transaction import AnyRow, SqlTransaction
from domain.errors import LibraryNotFound
from domain.models import Document, Page

_UPSERT_DOCUMENT = upsert(documents, ["library_id", "id"])


def _document_from_row(row: AnyRow) -> Document:
    return Document(
        library_id=row.library_id,
        id=row.id,
        metadata=load_json(row.metadata_json),
        created_at=micros_to_datetime(row.created_at),
        updated_at=micros_to_datetime(row.updated_at),
    )


class SqlDocumentRepository:
    """``DocumentRepository`` on SQLite; used through ``SqlUnitOfWork``."""

    def __init__(self, tx: SqlTransaction) -> None:
        self._tx = tx

    def save(self, document: Document) -> None:
        """Insert or replace the document; its chunks stay. ``LibraryNotFound`` if the
        library does not exist."""
        self._tx.writing()
        exists = self._tx.read(
            select(literal(1)).where(libraries.c.id == document.library_id)
        ).first()
        if exists is None:
            raise LibraryNotFound(document.library_id)
        row = {
            "library_id": document.library_id,
            "id": document.id,
            "seq": self._tx.allocate_seqs(1),
            "metadata_json": dump_json(document.metadata),
            "created_at": datetime_to_micros(document.created_at),
            "updated_at": datetime_to_micros(document.updated_at),
        }
        self._tx.write(_UPSERT_DOCUMENT, row)

    def get(self, library_id: str, document_id: str) -> Document | None:
        statement = select(documents).where(
            documents.c.library_id == library_id, documents.c.id == document_id
        )
        row = self._tx.read(statement).first()
        return None if row is None else _document_from_row(row)

    def existing_ids(self, library_id: str, document_ids: Iterable[str]) -> set[str]:
        found: set[str] = set()
        for batch in batches(unique(document_ids)):
            statement = select(documents.c.id).where(
                documents.c.library_id == library_id, documents.c.id.in_(batch)
            )
            found.update(self._tx.read(statement).scalars())
        return found

    def delete(self, library_id: str, document_id: str) -> None:
        """Delete the document and its chunks (by cascade); a missing id is a no-op."""
        self._tx.write(
            delete(documents).where(
                documents.c.library_id == library_id, documents.c.id == document_id
            )
        )

    def chunk_counts(self, library_id: str, document_ids: Sequence[str]) -> dict[str, int]:
        """Chunk count of each given document (0 for one with none or unknown)."""
        counts = dict.fromkeys(document_ids, 0)
        for batch in batches(unique(document_ids)):
            statement = (
                select(chunks.c.document_id, func.count())
                .where(chunks.c.library_id == library_id, chunks.c.document_id.in_(batch))
                .group_by(chunks.c.document_id)
            )
            for document_id, count in self._tx.read(statement):
                counts[document_id] = int(count)
        return counts

    def list(self, library_id: str, limit: int, cursor: str | None) -> Page[Document]:
        """Documents in insertion order; raises ``InvalidCursor`` for a foreign cursor."""
        check_page_size(limit)
        listing = documents_listing(library_id)
        after = decode_cursor(cursor, listing)
        statement = (
            select(documents)
            .where(documents.c.library_id == library_id, documents.c.seq > after)
            .order_by(documents.c.seq)
            .limit(limit + 1)
        )
        rows = [(row.seq, _document_from_row(row)) for row in self._tx.read(statement)]
        return page_of(rows, limit, listing)
