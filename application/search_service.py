"""k-nearest-neighbour search over a library, with metadata filters.

The filtered-search planner: a filter is first turned into a mask over the library's labels
(columnar, no Python loop per chunk). When few chunks match (``Limits.scans_matches``, which
holds the thresholds), scanning exactly the matching vectors is both exact and cheaper than
walking a graph or lists in which most nodes are rejected; otherwise the index searches with
the mask (HNSW walks through non-matching nodes and widens ``ef`` as the matching share
drops; IVF masks its lists), so k results come back whenever k chunks match. The index is
told which (``exact``) and does not decide again. The response names the strategy that ran.
"""

from __future__ import annotations

import time
from typing import Literal, get_args

from application.dto import SearchHit, SearchOutcome, SearchQuery
from application.live import LiveLibraries, LiveLibrary
from domain.errors import InvalidInput
from domain.filters import parse_filter
from domain.index.scoring import Hits
from domain.limits import Limits
from domain.models import Chunk
from domain.ports import UnitOfWorkFactory
from domain.vectors import as_vector

# What a search may return besides ids and scores (the HTTP schema's ``include`` values).
Includable = Literal["text", "metadata", "embedding"]
INCLUDABLE: frozenset[str] = frozenset(get_args(Includable))
FROM_STORE = frozenset({"text", "embedding"})


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
        filter_ = None
        if query.filter is not None:
            filter_ = parse_filter(query.filter, max_depth=self._limits.max_filter_depth)
        live = self._live.get(library_id)
        vector = as_vector(query.vector, live.library.dimension, location="vector")
        with live.lock.read():
            live.ensure_alive()
            if filter_ is None:
                hits = live.index.search(vector, query.k, params=query.params, exact=query.exact)
            else:
                allowed = live.allowed(filter_)
                matching = int(allowed.sum())
                if matching == 0:
                    hits = Hits.empty("filtered-none")
                else:
                    few = self._limits.scans_matches(
                        live.index.spec.type, matching, len(live.index)
                    )
                    hits = live.index.search(
                        vector,
                        query.k,
                        allowed=allowed,
                        params=query.params,
                        exact=query.exact or few,
                    )
            labels = [int(label) for label in hits.labels]
            chunk_ids = [live.labels.chunk_id(label) for label in labels]
            # Metadata is in memory (the filter columns keep it); only text and vectors are
            # read from the store, so the default search touches no database.
            chunks: dict[str, Chunk] = {}
            if query.include & FROM_STORE and chunk_ids:
                with self._uow_factory(read_only=True) as uow:
                    chunks = uow.chunks.get_many(library_id, chunk_ids)
            results = [
                self._hit(live, query.include, chunk_id, label, float(score), chunks)
                for chunk_id, label, score in zip(chunk_ids, labels, hits.scores, strict=True)
            ]
            index_type = live.index.spec.type.value
        took_ms = (time.perf_counter() - started) * 1000
        return SearchOutcome(results, index_type, hits.strategy, took_ms)

    @staticmethod
    def _hit(
        live: LiveLibrary,
        include: frozenset[str],
        chunk_id: str,
        label: int,
        score: float,
        chunks: dict[str, Chunk],
    ) -> SearchHit:
        chunk = chunks.get(chunk_id)
        return SearchHit(
            chunk_id,
            live.labels.document_id(label),
            score,
            text=chunk.text if chunk is not None and "text" in include else None,
            metadata=live.metadata.chunk_metadata(label) if "metadata" in include else None,
            embedding=chunk.embedding if chunk is not None and "embedding" in include else None,
        )
