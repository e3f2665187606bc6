"""The one write path for chunks and documents.

``Writer.run`` takes the library's write lock, hands a ``WriteContext`` to the change, then
commits the unit of work, and only after the commit succeeded applies the staged change to
the live library (labels, metadata, index) through ``apply_change``, the function a
follower's log applier uses too. A failure before the commit leaves both the
store and the live state untouched: every batch is all or nothing, and a search (under the
read lock) never sees a store and an index that disagree.

The caller may pass a ``CommitReceipt``: it gets the index of the log entry the commit
wrote, which the HTTP edge answers as ``X-StacksDB-Index``.

Before a change runs, its input is validated by ``to_chunks``, ``chunk_edit`` and
``check_document_metadata``, which hand over to ``application.write_validation``, the one
home of what a write must satisfy.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from application.dto import ChunkInput, ChunkPatch, CommitReceipt
from application.embedding_service import EmbeddingService
from application.live import CommittedChange, LiveLibraries, LiveLibrary, apply_change
from application.write_validation import ChunkEdit, WriteValidator
from domain.errors import AlreadyExists
from domain.limits import Limits
from domain.models import Chunk, Document, Metadata, WriteMode
from domain.ports import UnitOfWork, UnitOfWorkFactory

T = TypeVar("T")


@dataclasses.dataclass(slots=True)
class WriteContext:
    """What a change may touch: the unit of work and the live library (read-only here).
    Each write is staged in ``change``, applied to the live library once committed."""

    uow: UnitOfWork
    live: LiveLibrary
    change: CommittedChange = dataclasses.field(default_factory=CommittedChange)

    @property
    def library_id(self) -> str:
        return self.live.id

    def save_chunks(self, chunks: list[Chunk], mode: WriteMode) -> None:
        """Stage ``chunks``: insert fails on an existing id; upsert replaces and keeps the
        original ``created_at``. Documents named but missing are created empty."""
        if not chunks:
            return
        ids = [c.id for c in chunks]
        if mode == "insert":
            clash = self.uow.chunks.existing_ids(self.library_id, ids)
            if clash:
                raise AlreadyExists("chunk", sorted(clash)[0])
        else:
            existing = self.uow.chunks.get_many(self.library_id, ids)
            for chunk in chunks:
                old = existing.get(chunk.id)
                if old is not None:
                    chunk.created_at = old.created_at
        self.ensure_documents({c.document_id for c in chunks})
        self.uow.chunks.save_many(chunks)
        self.change.upserted_chunks.extend(chunks)

    def delete_chunks(self, chunk_ids: Sequence[str]) -> None:
        self.uow.chunks.delete_many(self.library_id, chunk_ids)
        self.change.removed_chunks.extend(chunk_ids)

    def save_document(self, document: Document) -> None:
        self.uow.documents.save(document)
        self.change.saved_documents.append(document)

    def delete_document(self, document_id: str) -> None:
        """Delete a document with its chunks (the store cascades; the index is told here)."""
        removed = self.uow.chunks.ids_of_document(self.library_id, document_id)
        self.change.removed_chunks.extend(removed)
        self.uow.documents.delete(self.library_id, document_id)
        self.change.deleted_documents.append(document_id)

    def ensure_documents(self, document_ids: Iterable[str]) -> None:
        wanted = set(document_ids)
        missing = wanted - self.uow.documents.existing_ids(self.library_id, wanted)
        for document_id in sorted(missing):
            self.uow.documents.save(Document(library_id=self.library_id, id=document_id))


class Writer:
    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        live: LiveLibraries,
        limits: Limits,
        embeddings: EmbeddingService,
        after_write: Callable[[LiveLibrary], object] | None = None,
    ) -> None:
        self._uow_factory = uow_factory
        self._live = live
        # Validates, and embeds texts that came without a vector, before ``run`` locks.
        self._validator = WriteValidator(limits, live, embeddings)
        # Called after each committed write, with the lock released (IVF drift checks).
        self._after_write = after_write

    def run(
        self,
        library_id: str,
        change: Callable[[WriteContext], T],
        receipt: CommitReceipt | None = None,
    ) -> T:
        """Apply ``change`` atomically; see the module docstring. ``receipt`` gets the log
        index of the commit."""
        live = self._live.get(library_id)
        with live.lock.write():
            live.ensure_alive()
            with self._uow_factory() as uow:
                context = WriteContext(uow, live)
                result = change(context)
                library = dataclasses.replace(live.library, revision=live.library.revision + 1)
                uow.libraries.save(library)
                log_index = uow.commit()
            live.library = library
            apply_change(live, context.change)
        if receipt is not None:
            receipt.record(log_index)
        if self._after_write is not None:
            self._after_write(live)
        return result

    def to_chunks(
        self, library_id: str, inputs: Sequence[ChunkInput], location: str = "chunks"
    ) -> list[Chunk]:
        """Entities for ``inputs``, validated against the library; nothing is stored yet."""
        return self._validator.new_chunks(library_id, inputs, location)

    def chunk_edit(self, library_id: str, patch: ChunkPatch) -> ChunkEdit:
        """``patch`` validated by the rules a new chunk follows; nothing is stored yet."""
        return self._validator.chunk_edit(library_id, patch)

    def check_document_metadata(self, metadata: Metadata) -> None:
        self._validator.document_metadata(metadata)
