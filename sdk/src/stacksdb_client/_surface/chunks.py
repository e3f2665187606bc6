"""A library handle's chunks: write one, a batch at a time, or texts for the server to
embed; get, list, walk, patch, put and delete them, one by one or by filter."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence, Sized
from typing import Any

from stacksdb_client import _calls
from stacksdb_client._core import Plan, Vector, Vectors
from stacksdb_client._sides import Pager, operation, paged
from stacksdb_client._surface.handle import C, Handle
from stacksdb_client.filters import FilterLike
from stacksdb_client.models import Chunk, Page

# The server embeds a batch of texts before it answers: the bundled MiniLM takes about 80 ms
# a text at its 256-token limit on 2 cores, so 500 such texts (add_chunks' batch) ran past
# the default 30 s timeout and were written after the client had raised. 64 take about 5 s.
TEXT_BATCH_SIZE = 64

ProgressCallback = Callable[[int, int | None], None]
"""Called after each batch with (chunks written so far, total or None if unknown)."""


class Progress:
    """Counts written chunks and reports them to an ``on_progress`` callback."""

    def __init__(self, chunks: Iterable[Any], on_progress: ProgressCallback | None) -> None:
        self.total = len(chunks) if isinstance(chunks, Sized) else None
        self.done = 0
        self._report = on_progress

    def advance(self, written: int) -> None:
        self.done += written
        if self._report is not None:
            self._report(self.done, self.total)


class ChunkOps(Handle[C]):
    """The chunk methods of ``Library`` and ``AsyncLibrary`` (each client adds its own
    ``add_chunks``, which runs ``_add_batches``; the async one can overlap batches)."""

    @operation
    def add_chunk(
        self,
        document_id: str,
        text: str,
        embedding: Vector | None = None,
        *,
        metadata: Mapping[str, Any] | None = None,
        id: str | None = None,
    ) -> Plan[Chunk]:
        """Create one chunk (its document is created if it does not exist); without
        ``embedding`` the library's embedder makes it from ``text``."""
        call = _calls.create_chunk(
            self.id,
            document_id=document_id,
            text=text,
            embedding=embedding,
            metadata=metadata,
            id=id,
        )
        return self._send(call)

    @operation
    def add_texts(
        self,
        texts: Sequence[str],
        *,
        document_id: str | Sequence[str],
        metadatas: Sequence[Mapping[str, Any] | None] | None = None,
        ids: Sequence[str] | None = None,
        batch_size: int = TEXT_BATCH_SIZE,
        upsert: bool = False,
        on_progress: ProgressCallback | None = None,
    ) -> Plan[list[Chunk]]:
        """Write ``texts`` as chunks without embeddings, which the library's embedder makes
        on the server (the library needs one). ``document_id`` is one id for every text or
        one per text; ``metadatas`` and ``ids`` (optional) go by position. Batches as
        ``add_chunks`` does, each all or nothing, of 64 texts by default: the server embeds
        each before it answers."""
        chunks = _calls.text_chunks(texts, document_id, metadatas, ids)
        return self._add_batches(chunks, None, batch_size, upsert, on_progress)

    def _add_batches(
        self,
        chunks: Iterable[Mapping[str, Any]],
        embeddings: Vectors | None,
        batch_size: int,
        upsert: bool,
        on_progress: ProgressCallback | None,
    ) -> Plan[list[Chunk]]:
        """``add_chunks`` one batch after another."""
        progress = Progress(chunks, on_progress)
        written: list[Chunk] = []
        for batch in _calls.chunk_batches(chunks, embeddings, batch_size):
            items = yield from self._write_batch(batch, upsert)
            written.extend(items)
            progress.advance(len(items))
        return written

    def _write_batch(self, batch: list[dict[str, Any]], upsert: bool) -> Plan[list[Chunk]]:
        return self._send(_calls.write_chunks(self.id, batch, upsert))

    @operation
    def get_chunk(self, chunk_id: str) -> Plan[Chunk]:
        """One chunk, with its embedding."""
        return self._send(_calls.get_chunk(self.id, chunk_id))

    @operation
    def list_chunks(
        self,
        *,
        document_id: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        include_embedding: bool = False,
    ) -> Plan[Page[Chunk]]:
        return self._chunk_page(document_id, limit, cursor, include_embedding)

    @paged
    def iter_chunks(
        self,
        document_id: str | None = None,
        *,
        include_embedding: bool = False,
        page_size: int | None = None,
    ) -> Pager[Chunk]:
        """Every chunk (of one document, if given), following ``next_cursor``."""
        return lambda cursor: self._chunk_page(document_id, page_size, cursor, include_embedding)

    def _chunk_page(
        self, document_id: str | None, limit: int | None, cursor: str | None, embeddings: bool
    ) -> Plan[Page[Chunk]]:
        call = _calls.list_chunks(
            self.id,
            document_id=document_id,
            limit=limit,
            cursor=cursor,
            include_embedding=embeddings,
        )
        return self._send(call)

    @operation
    def update_chunk(
        self,
        chunk_id: str,
        *,
        text: str | None = None,
        embedding: Vector | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Plan[Chunk]:
        """Change some fields of a chunk (PATCH); the others stay."""
        call = _calls.update_chunk(
            self.id, chunk_id, text=text, embedding=embedding, metadata=metadata
        )
        return self._send(call)

    @operation
    def put_chunk(
        self,
        chunk_id: str,
        *,
        document_id: str,
        text: str,
        embedding: Vector | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Plan[Chunk]:
        """Create or replace the chunk with this id (PUT, an upsert); without ``embedding``
        the library's embedder makes it."""
        call = _calls.put_chunk(
            self.id,
            chunk_id,
            document_id=document_id,
            text=text,
            embedding=embedding,
            metadata=metadata,
        )
        return self._send(call)

    @operation
    def delete_chunk(self, chunk_id: str) -> Plan[None]:
        return self._send(_calls.delete_chunk(self.id, chunk_id))

    @operation
    def delete_where(self, filter: FilterLike) -> Plan[int]:
        """Delete every chunk matching ``filter`` in one all-or-nothing write; answers how
        many were deleted."""
        return self._send(_calls.delete_where(self.id, filter))
