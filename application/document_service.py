"""Use cases for documents: a document groups chunks and carries its own metadata."""

from __future__ import annotations

from collections.abc import Sequence

from application.dto import ChunkInput, CommitReceipt, DocumentInfo
from application.live import LiveLibraries
from application.pagination import filtered_page, listing_scan_budget
from application.writes import WriteContext, Writer
from domain.errors import AlreadyExists, DocumentNotFound
from domain.filters import ChunkFields, matches, parse_filter
from domain.limits import Limits
from domain.models import Document, Metadata, Page, new_id, utc_now
from domain.ports import UnitOfWorkFactory


class DocumentService:
    def __init__(
        self, uow_factory: UnitOfWorkFactory, live: LiveLibraries, writer: Writer, limits: Limits
    ) -> None:
        self._uow_factory = uow_factory
        self._live = live
        self._writer = writer
        self._limits = limits

    def create(
        self,
        library_id: str,
        *,
        metadata: Metadata,
        chunks: Sequence[ChunkInput] = (),
        document_id: str | None = None,
        receipt: CommitReceipt | None = None,
    ) -> DocumentInfo:
        """A document with its chunks, all or nothing; 409 if the id is taken."""
        self._writer.check_document_metadata(metadata)
        document = Document(
            library_id=library_id, metadata=dict(metadata), id=document_id or new_id()
        )
        inputs = [ChunkInput(document.id, c.text, c.embedding, c.metadata, c.id) for c in chunks]
        entities = self._writer.to_chunks(library_id, inputs)

        def change(ctx: WriteContext) -> DocumentInfo:
            if ctx.uow.documents.get(library_id, document.id) is not None:
                raise AlreadyExists("document", document.id)
            ctx.save_document(document)
            ctx.save_chunks(entities, "insert")
            return DocumentInfo(document, len(entities))

        return self._writer.run(library_id, change, receipt)

    def get(self, library_id: str, document_id: str) -> DocumentInfo:
        self._live.get(library_id)
        with self._uow_factory(read_only=True) as uow:
            document = uow.documents.get(library_id, document_id)
            if document is None:
                raise DocumentNotFound(library_id, document_id)
            counts = uow.documents.chunk_counts(library_id, [document_id])
        return DocumentInfo(document, counts.get(document_id, 0))

    def list(
        self, library_id: str, limit: int, cursor: str | None, filter_: object | None = None
    ) -> Page[DocumentInfo]:
        """Documents in creation order, optionally those whose metadata (or ``id``,
        ``created_at``, ``updated_at``) match a filter."""
        limits = self._limits
        limits.check_page_size(limit)
        self._live.get(library_id)
        parsed = (
            None if filter_ is None else parse_filter(filter_, max_depth=limits.max_filter_depth)
        )
        with self._uow_factory(read_only=True) as uow:
            if parsed is None:
                page = uow.documents.list(library_id, limit, cursor)
            else:
                page = filtered_page(
                    lambda size, after: uow.documents.list(library_id, size, after),
                    lambda document: matches(parsed, _fields_of(document)),
                    limit,
                    cursor,
                    scan_budget=listing_scan_budget(limit),
                )
            counts = uow.documents.chunk_counts(library_id, [d.id for d in page.items])
        return Page([DocumentInfo(d, counts.get(d.id, 0)) for d in page.items], page.next_cursor)

    def count(self, library_id: str, filter_: object | None = None) -> int:
        """How many documents the library holds, or how many match ``filter_`` with the
        listing's meaning (``list``): a field names the document's metadata key, or ``id``,
        ``created_at``, ``updated_at``. A filter scans every document: O(documents)."""
        limits = self._limits
        self._live.get(library_id)
        parsed = (
            None if filter_ is None else parse_filter(filter_, max_depth=limits.max_filter_depth)
        )
        with self._uow_factory(read_only=True) as uow:
            if parsed is None:
                return uow.libraries.counts(library_id)[0]
            count, cursor = 0, None
            while True:
                page = uow.documents.list(library_id, limits.max_page_size, cursor)
                count += sum(matches(parsed, _fields_of(d)) for d in page.items)
                if page.next_cursor is None:
                    return count
                cursor = page.next_cursor

    def update(
        self,
        library_id: str,
        document_id: str,
        metadata: Metadata,
        receipt: CommitReceipt | None = None,
    ) -> DocumentInfo:
        self._writer.check_document_metadata(metadata)

        def change(ctx: WriteContext) -> DocumentInfo:
            document = ctx.uow.documents.get(library_id, document_id)
            if document is None:
                raise DocumentNotFound(library_id, document_id)
            document.metadata = dict(metadata)
            document.updated_at = utc_now()
            ctx.save_document(document)
            counts = ctx.uow.documents.chunk_counts(library_id, [document_id])
            return DocumentInfo(document, counts.get(document_id, 0))

        return self._writer.run(library_id, change, receipt)

    def delete(
        self, library_id: str, document_id: str, receipt: CommitReceipt | None = None
    ) -> None:
        def change(ctx: WriteContext) -> None:
            if ctx.uow.documents.get(library_id, document_id) is None:
                raise DocumentNotFound(library_id, document_id)
            ctx.delete_document(document_id)

        self._writer.run(library_id, change, receipt)


def _fields_of(document: Document) -> ChunkFields:
    """A document seen through the filter language: its metadata answers both plain and
    ``document.`` keys; ``id``/``document_id`` are its id."""
    return ChunkFields(
        id=document.id,
        document_id=document.id,
        created_at=document.created_at,
        updated_at=document.updated_at,
        metadata=document.metadata,
        document_metadata=document.metadata,
    )
