"""What a chunk or document write must satisfy before it touches the store: the one place
that checks a write's batch size, texts, metadata, document ids, duplicate chunk ids and
embeddings (dimension and finiteness). Create, batch, put and patch all come through here.

Every check raises a domain error naming the offending field (``chunks[3].embedding``,
``chunk.text``, ``metadata.colour``); nothing here reads or writes the store, so a write
that fails validation has taken no lock and changed nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime

from application.dto import ChunkInput, ChunkPatch
from application.live import LiveLibraries
from domain.errors import InvalidInput
from domain.limits import Limits
from domain.models import Chunk, Metadata, Vector, new_id, utc_now
from domain.vectors import as_matrix, as_vector


@dataclasses.dataclass(frozen=True, slots=True)
class ChunkEdit:
    """A validated ``ChunkPatch``: the fields to change, the embedding already a vector of
    the library's dimension; None leaves a field as it is."""

    text: str | None = None
    metadata: Metadata | None = None
    embedding: Vector | None = None

    def apply(self, chunk: Chunk, now: datetime) -> None:
        if self.text is not None:
            chunk.text = self.text
        if self.metadata is not None:
            chunk.metadata = dict(self.metadata)
        if self.embedding is not None:
            chunk.embedding = self.embedding
        chunk.updated_at = now


class WriteValidator:
    """Checks writes against the ``Limits`` and the target library's dimension."""

    def __init__(self, limits: Limits, live: LiveLibraries) -> None:
        self._limits = limits
        self._live = live

    def new_chunks(
        self, library_id: str, inputs: Sequence[ChunkInput], location: str = "chunks"
    ) -> list[Chunk]:
        """Entities for ``inputs`` (an id drawn for each chunk without one), validated in
        this order: batch size, every embedding, then each item's text, metadata, document
        id and id (unique within the request). Nothing is stored yet."""
        self._limits.check_batch(len(inputs), location=location)
        if not inputs:
            return []
        dimension = self._live.get(library_id).library.dimension
        matrix = as_matrix(
            [item.embedding for item in inputs],
            dimension,
            row_location=f"{location}[{{}}].embedding",
        )
        now = utc_now()
        seen: set[str] = set()
        chunks = []
        for i, item in enumerate(inputs):
            where = f"{location}[{i}]"
            self._limits.check_text(item.text, location=f"{where}.text")
            self._limits.check_metadata(item.metadata, location=f"{where}.metadata")
            if not item.document_id:
                raise InvalidInput("document_id must not be empty", location=f"{where}.document_id")
            chunk_id = item.id or new_id()
            if chunk_id in seen:
                raise InvalidInput(
                    f"chunk id {chunk_id!r} appears twice in one request", location=f"{where}.id"
                )
            seen.add(chunk_id)
            chunks.append(
                Chunk(
                    library_id=library_id,
                    document_id=item.document_id,
                    text=item.text,
                    embedding=matrix[i],
                    metadata=dict(item.metadata),
                    id=chunk_id,
                    created_at=now,
                    updated_at=now,
                )
            )
        return chunks

    def chunk_edit(self, library_id: str, patch: ChunkPatch) -> ChunkEdit:
        """``patch`` checked by the same rules as a new chunk's fields (its errors name the
        bare field: ``text``, ``metadata``, ``embedding``)."""
        dimension = self._live.get(library_id).library.dimension
        if patch.text is not None:
            self._limits.check_text(patch.text)
        if patch.metadata is not None:
            self._limits.check_metadata(patch.metadata)
        embedding = None if patch.embedding is None else as_vector(patch.embedding, dimension)
        return ChunkEdit(patch.text, patch.metadata, embedding)

    def document_metadata(self, metadata: Metadata) -> None:
        """A document's own metadata follows the same rules as a chunk's."""
        self._limits.check_metadata(metadata)
