"""What a chunk or document write must satisfy before it touches the store: the one place
that checks a write's batch size, texts, metadata, document ids, duplicate chunk ids and
embeddings (dimension and finiteness). Create, batch, put and patch all come through here.

Every check raises a domain error naming the offending field (``chunks[3].embedding``,
``chunk.text``, ``metadata.colour``); nothing here reads or writes the store, so a write
that fails validation has taken no lock and changed nothing.

A chunk without an embedding gets one here from the library's embedder
(``EmbeddingService``), after every other check passed, so no text is sent to a provider
for a write that would be refused anyway. This runs before the write takes the library's
lock: embedding is slow, and searches and other writes go on meanwhile. A batch is embedded
whole before anything is stored, and a failing embedder (502/504) leaves nothing written.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime

import numpy as np

from application.dto import ChunkInput, ChunkPatch
from application.embedding_service import EmbeddingService
from application.live import LiveLibraries
from domain.embedding import Purpose
from domain.errors import InvalidInput, NoEmbedder
from domain.limits import Limits
from domain.models import Chunk, Library, Matrix, Metadata, Vector, new_id, utc_now
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
    """Checks writes against the ``Limits`` and the target library's dimension, and has
    the library's embedder make the embeddings a write leaves out."""

    def __init__(self, limits: Limits, live: LiveLibraries, embeddings: EmbeddingService) -> None:
        self._limits = limits
        self._live = live
        self._embeddings = embeddings

    def new_chunks(
        self, library_id: str, inputs: Sequence[ChunkInput], location: str = "chunks"
    ) -> list[Chunk]:
        """Entities for ``inputs`` (an id drawn for each chunk without one), validated in
        this order: batch size, every given embedding, then each item's text, metadata,
        document id and id (unique within the request); last, the texts of the items without
        an embedding are embedded (``NoEmbedder`` if the library has no embedder). Nothing
        is stored yet."""
        self._limits.check_batch(len(inputs), location=location)
        if not inputs:
            return []
        library = self._live.get(library_id).library
        matrix = self._given_embeddings(library.dimension, inputs, location)
        now = utc_now()
        seen: set[str] = set()
        ids = []
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
            ids.append(chunk_id)
        self._embed_missing(library, inputs, matrix, location)
        return [
            Chunk(
                library_id=library_id,
                document_id=item.document_id,
                text=item.text,
                embedding=matrix[i],
                metadata=dict(item.metadata),
                id=ids[i],
                created_at=now,
                updated_at=now,
            )
            for i, item in enumerate(inputs)
        ]

    def chunk_edit(self, library_id: str, patch: ChunkPatch) -> ChunkEdit:
        """``patch`` checked by the same rules as a new chunk's fields (its errors name the
        bare field: ``text``, ``metadata``, ``embedding``). A new text without an embedding
        is embedded again when the library has an embedder; without one the chunk keeps its
        vector."""
        library = self._live.get(library_id).library
        if patch.text is not None:
            self._limits.check_text(patch.text)
        if patch.metadata is not None:
            self._limits.check_metadata(patch.metadata)
        embedding = (
            None if patch.embedding is None else as_vector(patch.embedding, library.dimension)
        )
        if embedding is None and patch.text is not None and library.embedder is not None:
            (embedding,) = self._embeddings.embed_texts(
                library, [patch.text], Purpose.DOCUMENT, ["text"]
            )
        return ChunkEdit(patch.text, patch.metadata, embedding)

    def document_metadata(self, metadata: Metadata) -> None:
        """A document's own metadata follows the same rules as a chunk's."""
        self._limits.check_metadata(metadata)

    def _given_embeddings(
        self, dimension: int, inputs: Sequence[ChunkInput], location: str
    ) -> Matrix:
        """A (len(inputs), dimension) matrix holding the embeddings the inputs carry, each
        checked; the rows of inputs without one are left for ``_embed_missing``."""
        row_location = f"{location}[{{}}].embedding"
        given = [item.embedding for item in inputs]
        present = [embedding for embedding in given if embedding is not None]
        if len(present) == len(given):
            return as_matrix(present, dimension, row_location=row_location)
        matrix = np.zeros((len(inputs), dimension), dtype=np.float32)
        for i, embedding in enumerate(given):
            if embedding is not None:
                matrix[i] = as_vector(embedding, dimension, location=row_location.format(i))
        return matrix

    def _embed_missing(
        self, library: Library, inputs: Sequence[ChunkInput], matrix: Matrix, location: str
    ) -> None:
        """Fill the rows of ``matrix`` whose input has no embedding, in one call to the
        library's embedder."""
        missing = [i for i, item in enumerate(inputs) if item.embedding is None]
        if not missing:
            return
        if library.embedder is None:
            where = f"{location}[{missing[0]}].embedding"
            raise NoEmbedder(
                f"{where} is required: library {library.id!r} has no embedder to make it",
                location=where,
            )
        matrix[missing] = self._embeddings.embed_texts(
            library,
            [inputs[i].text for i in missing],
            Purpose.DOCUMENT,
            [f"{location}[{i}].text" for i in missing],
        )
