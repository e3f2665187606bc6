"""``SqlLibraryRepository``: the ``LibraryRepository`` port on SQLite."""

from __future__ import annotations

from sqlalchemy import delete, func, select

from adapters.persistence.cursor import LIBRARIES_LISTING, check_page_size, decode_cursor, page_of
from adapters.persistence.sqlite.codecs import (
    datetime_to_micros,
    dump_json,
    load_json,
    micros_to_datetime,
)
from adapters.persistence.sqlite.statements import upsert
from adapters.persistence.sqlite.tables import chunks, documents, libraries
from adapters.persistence.sqlite.transaction import AnyRow, SqlTransaction
from domain.embedding import EMBEDDER_SPEC
from domain.models import IndexSpec, Library, Metric, Page, TextIndexSpec

_UPSERT_LIBRARY = upsert(libraries, ["id"])


def _library_from_row(row: AnyRow) -> Library:
    return Library(
        id=row.id,
        name=row.name,
        dimension=row.dimension,
        metric=Metric(row.metric),
        description=row.description,
        metadata=load_json(row.metadata_json),
        index=IndexSpec.parse(row.index_type, load_json(row.index_params_json)),
        embedder=None
        if row.embedder_json is None
        else EMBEDDER_SPEC.validate_json(row.embedder_json),
        text_index=TextIndexSpec()
        if row.text_index_json is None
        else TextIndexSpec.model_validate_json(row.text_index_json),
        created_at=micros_to_datetime(row.created_at),
        updated_at=micros_to_datetime(row.updated_at),
        revision=row.revision,
    )


class SqlLibraryRepository:
    """``LibraryRepository`` on SQLite; used through ``SqlUnitOfWork``."""

    def __init__(self, tx: SqlTransaction) -> None:
        self._tx = tx

    def save(self, library: Library) -> None:
        """Insert or replace the library; a replaced library keeps its place in listings
        and its documents and chunks."""
        seq = self._tx.allocate_seqs(1)
        row = {
            "id": library.id,
            "seq": seq,
            "name": library.name,
            "description": library.description,
            "metadata_json": dump_json(library.metadata),
            "dimension": library.dimension,
            "metric": library.metric.value,
            "index_type": library.index.type.value,
            "index_params_json": dump_json(library.index.params_dict()),
            "embedder_json": None
            if library.embedder is None
            else library.embedder.model_dump_json(exclude_none=True),
            "text_index_json": library.text_index.model_dump_json(),
            "revision": library.revision,
            "created_at": datetime_to_micros(library.created_at),
            "updated_at": datetime_to_micros(library.updated_at),
        }
        self._tx.write(_UPSERT_LIBRARY, row)

    def get(self, library_id: str) -> Library | None:
        row = self._tx.read(select(libraries).where(libraries.c.id == library_id)).first()
        return None if row is None else _library_from_row(row)

    def delete(self, library_id: str) -> None:
        """Delete the library with its documents and chunks (by cascade); a missing id is
        a no-op."""
        self._tx.write(delete(libraries).where(libraries.c.id == library_id))

    def counts(self, library_id: str) -> tuple[int, int]:
        """(document count, chunk count); (0, 0) for an unknown library.

        Counts through the (library_id, seq) indexes: O(rows of the library), a few
        milliseconds per hundred thousand chunks.
        """
        document_count = self._tx.read(
            select(func.count()).select_from(documents).where(documents.c.library_id == library_id)
        ).scalar_one()
        chunk_count = self._tx.read(
            select(func.count()).select_from(chunks).where(chunks.c.library_id == library_id)
        ).scalar_one()
        return int(document_count), int(chunk_count)

    def list(self, limit: int, cursor: str | None) -> Page[Library]:
        """Libraries in creation order; raises ``InvalidCursor`` for a foreign cursor."""
        check_page_size(limit)
        after = decode_cursor(cursor, LIBRARIES_LISTING)
        statement = (
            select(libraries)
            .where(libraries.c.seq > after)
            .order_by(libraries.c.seq)
            .limit(limit + 1)
        )
        rows = [(row.seq, _library_from_row(row)) for row in self._tx.read(statement)]
        return page_of(rows, limit, LIBRARIES_LISTING)
