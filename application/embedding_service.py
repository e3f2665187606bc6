"""Texts to vectors with a library's embedder: the core's one way to embed.

Every embedding the server makes comes through here: chunk texts on a write (through the
``WriteValidator``, before the write lock is taken), ``POST .../embed``, and a search's
``query`` (``query_vector``). The embedder is the one ``EmbedderFactory`` gives for the
library's spec; what it returns is checked against the library: one finite row per text,
of the library's dimension, else ``EmbedderFailed`` (502) and nothing is written.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from application.live import LiveLibraries
from domain.embedding import EmbedderFactory, EmbedderSpec, Purpose
from domain.errors import EmbedderFailed, InvalidInput, NoEmbedder
from domain.limits import Limits
from domain.models import Library, Matrix, Vector


class EmbeddingService:
    def __init__(self, factory: EmbedderFactory, live: LiveLibraries, limits: Limits) -> None:
        self._factory = factory
        self._live = live
        self._limits = limits

    def dimension(self, spec: EmbedderSpec) -> int:
        """The width of the vectors ``spec``'s embedder makes (a remote one may be asked)."""
        return self._factory(spec).dimension

    def embed(
        self, library_id: str, texts: Sequence[str], purpose: Purpose = Purpose.DOCUMENT
    ) -> Matrix:
        """``POST .../embed``: ``texts`` as the library's embedder makes them, one row each."""
        self._limits.check_embed_texts(len(texts))
        library = self._live.get(library_id).library
        locations = [f"texts[{i}]" for i in range(len(texts))]
        return self.embed_texts(library, texts, purpose, locations)

    def query_vector(self, library: Library, query: str) -> Vector:
        """A search's ``query`` embedded as a query for the vector side (422 without an
        embedder)."""
        self._limits.check_text(query, location="query")
        vector: Vector = self.embed_texts(library, [query], Purpose.QUERY, ["query"])[0]
        return vector

    def embed_texts(
        self,
        library: Library,
        texts: Sequence[str],
        purpose: Purpose,
        locations: Sequence[str],
    ) -> Matrix:
        """``texts`` (their fields named by ``locations`` in errors) embedded by ``library``'s
        embedder and checked against its dimension; ``NoEmbedder`` if it has none."""
        spec = library.embedder
        if spec is None:
            raise NoEmbedder(
                f"{locations[0] if locations else 'text'} needs an embedder to be turned "
                f"into a vector, and library {library.id!r} has none (a library created with "
                "an embedder embeds texts on the server)",
                location=locations[0] if locations else "embedder",
            )
        for text, where in zip(texts, locations, strict=True):
            self._limits.check_text(text, location=where)
            if not text.strip():
                raise InvalidInput(f"{where} is empty: there is nothing to embed", location=where)
        if not texts:
            return np.empty((0, library.dimension), dtype=np.float32)
        embedder = self._factory(spec)
        matrix = embedder.embed(texts, purpose)
        expected = (len(texts), library.dimension)
        if matrix.shape != expected:
            raise EmbedderFailed(
                f"embedder {embedder.name} returned a {matrix.shape} matrix for {expected[0]} "
                f"texts of library {library.id!r}, whose dimension is {library.dimension}",
                embedder=embedder.name,
            )
        if not np.isfinite(matrix).all():
            raise EmbedderFailed(
                f"embedder {embedder.name} returned NaN or infinite values",
                embedder=embedder.name,
            )
        return np.ascontiguousarray(matrix, dtype=np.float32)
