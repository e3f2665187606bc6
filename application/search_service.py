"""k-nearest-neighbour search over a library."""

from __future__ import annotations

import time

from application.dto import SearchHit, SearchOutcome, SearchQuery
from application.live import LiveLibraries
from domain.errors import InvalidInput
from domain.limits import Limits
from domain.models import Chunk
from domain.ports import UnitOfWorkFactory
from domain.vectors import as_vector

INCLUDABLE = frozenset({"text", "metadata", "embedding"})


class SearchService:
    def __init__(self, uow_factory: UnitOfWorkFactory, live: LiveLibraries, limits: Limits) -> None:
        self._uow_factory = uow_factory
        self._live = live
        self._limits = limits

    def search(self, library_id: str, query: SearchQuery) -> SearchOutcome:
        """The ``k`` chunks nearest to ``query.vector``, best first.

        Runs under the library's read lock from the index lookup to the last row read, so
        the chunks returned are exactly those the index saw: no write lands in between.
        """
        started = time.perf_counter()
        self._limits.check_k(query.k)
        unknown = query.include - INCLUDABLE
        if unknown:
            raise InvalidInput(
                f"include accepts text, metadata and embedding, not {sorted(unknown)}",
                location="include",
            )
        live = self._live.get(library_id)
        vector = as_vector(query.vector, live.library.dimension, location="vector")
        with live.lock.read():
            live.ensure_alive()
            hits = live.index.search(vector, query.k, params=query.params, exact=query.exact)
            labels = [int(label) for label in hits.labels]
            chunk_ids = [live.labels.chunk_id(label) for label in labels]
            chunks: dict[str, Chunk] = {}
            if query.include and chunk_ids:
                with self._uow_factory(read_only=True) as uow:
                    chunks = uow.chunks.get_many(library_id, chunk_ids)
            results = [
                SearchHit(
                    chunk_id, live.labels.document_id(label), float(score), chunks.get(chunk_id)
                )
                for chunk_id, label, score in zip(chunk_ids, labels, hits.scores, strict=True)
            ]
            index_type = live.index.spec.type.value
        took_ms = (time.perf_counter() - started) * 1000
        return SearchOutcome(
            results, index_type, "exact-scan" if query.exact else hits.strategy, took_ms
        )
