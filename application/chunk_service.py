"""Use cases for chunks: single and batch writes, reads and listings."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from application.dto import ChunkInput, ChunkPatch, CommitReceipt
from application.live import LiveLibraries
from application.pagination import filtered_page, listing_scan_budget
from application.writes import WriteContext, Writer
from domain.errors import ChunkNotFound, InvalidInput
from domain.filters import parse_filter
from domain.limits import Limits
from domain.models import Chunk, Page, WriteMode, utc_now
from domain.ports import UnitOfWorkFactory


class ChunkService:
    def __init__(
        self, uow_factory: UnitOfWorkFactory, live: LiveLibraries, writer: Writer, limits: Limits
    ) -> None:
        self._uow_factory = uow_factory
        self._live = live
        self._writer = writer
        self._limits = limits

    def create(
        self, library_id: str, item: ChunkInput, receipt: CommitReceipt | None = None
    ) -> Chunk:
        """Insert one chunk; 409 if its id is taken."""
        (chunk,) = self._writer.to_chunks(library_id, [item], location="chunk")
        return self._writer.run(library_id, lambda ctx: _saved(ctx, [chunk], "insert")[0], receipt)

    def write_batch(
        self,
        library_id: str,
        items: Sequence[ChunkInput],
        mode: WriteMode = "insert",
        receipt: CommitReceipt | None = None,
    ) -> list[Chunk]:
        """Insert (or upsert) every chunk, all or nothing."""
        chunks = self._writer.to_chunks(library_id, items)
        return self._writer.run(library_id, lambda ctx: _saved(ctx, chunks, mode), receipt)

    def put(
        self,
        library_id: str,
        chunk_id: str,
        item: ChunkInput,
        receipt: CommitReceipt | None = None,
    ) -> tuple[Chunk, bool]:
        """Create or replace the chunk with this id; says whether it was created."""
        (chunk,) = self._writer.to_chunks(
            library_id,
            [ChunkInput(item.document_id, item.text, item.embedding, item.metadata, chunk_id)],
            location="chunk",
        )

        def change(ctx: WriteContext) -> tuple[Chunk, bool]:
            created = not ctx.uow.chunks.existing_ids(library_id, [chunk_id])
            ctx.save_chunks([chunk], "upsert")
            return chunk, created

        return self._writer.run(library_id, change, receipt)

    def patch(
        self,
        library_id: str,
        chunk_id: str,
        patch: ChunkPatch,
        receipt: CommitReceipt | None = None,
    ) -> Chunk:
        """Change the given fields of one chunk, checked by the rules a new chunk follows."""
        edit = self._writer.chunk_edit(library_id, patch)

        def change(ctx: WriteContext) -> Chunk:
            chunk = ctx.uow.chunks.get(library_id, chunk_id)
            if chunk is None:
                raise ChunkNotFound(library_id, chunk_id)
            edit.apply(chunk, utc_now())
            ctx.save_chunks([chunk], "upsert")
            return chunk

        return self._writer.run(library_id, change, receipt)

    def delete(self, library_id: str, chunk_id: str, receipt: CommitReceipt | None = None) -> None:
        def change(ctx: WriteContext) -> None:
            if not ctx.uow.chunks.existing_ids(library_id, [chunk_id]):
                raise ChunkNotFound(library_id, chunk_id)
            ctx.delete_chunks([chunk_id])

        self._writer.run(library_id, change, receipt)

    def delete_where(
        self, library_id: str, filter_: object, receipt: CommitReceipt | None = None
    ) -> int:
        """Delete every chunk matching ``filter_`` in one all-or-nothing write (one log
        entry); answers how many. Matched under the write lock, so the chunks deleted are
        exactly those matching when the write commits, and a search (read lock) sees all
        of them or none. An empty filter is refused: deleting everything is deleting the
        library."""
        if filter_ == {} or filter_ is None:
            raise InvalidInput(
                "a filter is required (delete the library instead)", location="filter"
            )
        parsed = parse_filter(filter_, max_depth=self._limits.max_filter_depth)

        def change(ctx: WriteContext) -> int:
            labels = np.flatnonzero(ctx.live.allowed(parsed))
            chunk_ids = [ctx.live.labels.chunk_id(int(label)) for label in labels]
            ctx.delete_chunks(chunk_ids)
            return len(chunk_ids)

        return self._writer.run(library_id, change, receipt)

    def count(self, library_id: str, filter_: object | None = None) -> int:
        """How many chunks the library holds, or how many match ``filter_``: read from the
        live metadata columns under the read lock, no store read. O(n) for a filter."""
        parsed = (
            None
            if filter_ is None
            else parse_filter(filter_, max_depth=self._limits.max_filter_depth)
        )
        live = self._live.get(library_id)
        with live.lock.read():
            live.ensure_alive()
            if parsed is None:
                return len(live.labels)
            return int(np.count_nonzero(live.allowed(parsed)))

    def get(self, library_id: str, chunk_id: str) -> Chunk:
        self._live.get(library_id)
        with self._uow_factory(read_only=True) as uow:
            chunk = uow.chunks.get(library_id, chunk_id)
        if chunk is None:
            raise ChunkNotFound(library_id, chunk_id)
        return chunk

    def list(
        self,
        library_id: str,
        limit: int,
        cursor: str | None,
        document_id: str | None = None,
        filter_: object | None = None,
    ) -> Page[Chunk]:
        """Chunks in insertion order, optionally of one document and matching a filter
        (see ``filtered_page`` for how a filtered page may come back short)."""
        limits = self._limits
        limits.check_page_size(limit)
        live = self._live.get(library_id)
        if filter_ is None:
            with self._uow_factory(read_only=True) as uow:
                return uow.chunks.list(library_id, limit, cursor, document_id)
        parsed = parse_filter(filter_, max_depth=limits.max_filter_depth)
        # Under the read lock the store and the metadata columns agree row for row.
        with live.lock.read(), self._uow_factory(read_only=True) as uow:
            live.ensure_alive()
            allowed = live.allowed(parsed)

            def keep(chunk: Chunk) -> bool:
                label = live.labels.label(chunk.id)
                return label is not None and bool(allowed[label])

            return filtered_page(
                lambda size, after: uow.chunks.list(library_id, size, after, document_id),
                keep,
                limit,
                cursor,
                scan_budget=listing_scan_budget(limit),
            )


def _saved(ctx: WriteContext, chunks: list[Chunk], mode: WriteMode) -> list[Chunk]:
    ctx.save_chunks(chunks, mode)
    return chunks
