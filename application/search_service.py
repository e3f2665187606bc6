"""k-nearest-neighbour search over a library: single and batched, with metadata filters, a
score threshold and grouping.

The filtered-search planner: a filter is first turned into a mask over the library's labels
(columnar, no Python loop per chunk). When few chunks match (``Limits.scans_matches``, which
holds the thresholds), scanning exactly the matching vectors is both exact and cheaper than
walking a graph or lists in which most nodes are rejected; otherwise the index searches with
the mask (HNSW walks through non-matching nodes and widens ``ef`` as the matching share
drops; IVF masks its lists), so k results come back whenever k chunks match. The index is
told which (``exact``) and does not decide again. The response names the strategy that ran.

A batch is checked whole before any search runs (an error names ``searches[i]``), then
searched under one read lock: the ungrouped searches in one ``VectorIndex.search_many`` call
(one matrix product for Flat and IVF, walks on the executor's threads for HNSW), each
grouped search on its own (``application.grouping``). Every answer is the one the same
search gets alone.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor
from contextlib import contextmanager
from typing import Literal, get_args

from application.dto import SearchGroup, SearchHit, SearchOutcome, SearchQuery
from application.grouping import GroupKey, groups_of_value, search_groups
from application.live import LiveLibraries, LiveLibrary
from domain.errors import InvalidInput
from domain.filters import Filter, parse_filter
from domain.index.scoring import Hits, IndexQuery, Mask, within_threshold
from domain.limits import Limits
from domain.models import Chunk, Vector
from domain.ports import UnitOfWorkFactory
from domain.vectors import as_vector

# What a search may return besides ids and scores (the HTTP schema's ``include`` values).
Includable = Literal["text", "metadata", "embedding"]
INCLUDABLE: frozenset[str] = frozenset(get_args(Includable))
FROM_STORE = frozenset({"text", "embedding"})
# ``group_by`` names a chunk metadata key, or this: the chunk's document.
BY_DOCUMENT = "document_id"


@dataclasses.dataclass(frozen=True, slots=True)
class _Checked:
    """A search whose input passed every check, ready to run."""

    query: SearchQuery
    vector: Vector
    filter: Filter | None


class SearchService:
    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        live: LiveLibraries,
        limits: Limits,
        executor: Executor | None = None,
    ) -> None:
        self._uow_factory = uow_factory
        self._live = live
        self._limits = limits
        # Threads for a batch's HNSW walks and IVF probes (kernels without the GIL).
        self._executor = executor

    def search(self, library_id: str, query: SearchQuery) -> SearchOutcome:
        """The ``k`` chunks nearest to ``query.vector`` (or ``k`` groups), best first.

        Runs under the library's read lock from the index lookup to the last row read, so
        the chunks returned are exactly those the index saw: no write lands in between.
        """
        started = time.perf_counter()
        live = self._live.get(library_id)
        checked = self._checked(live, query)
        with live.lock.read():
            live.ensure_alive()
            if query.group_by is not None:
                return self._grouped(live, checked, started)
            hits = self._hits(live, checked.vector, query.k, checked, self._allowed(live, checked))
            return self._outcome(live, checked, hits, started)

    def search_batch(self, library_id: str, queries: Sequence[SearchQuery]) -> list[SearchOutcome]:
        """What ``search`` answers for each query, in order, with the work shared (see the
        module docstring). ``took_ms`` of each is the whole batch's time."""
        started = time.perf_counter()
        self._limits.check_batch_searches(len(queries))
        live = self._live.get(library_id)
        checked: list[_Checked] = []
        for i, query in enumerate(queries):
            with _located(f"searches[{i}]"):
                checked.append(self._checked(live, query))
        with live.lock.read():
            live.ensure_alive()
            planned = {
                i: self._planned(live, c.vector, c.query.k, c, self._allowed(live, c))
                for i, c in enumerate(checked)
                if c.query.group_by is None
            }
            runnable = [(i, p) for i, p in planned.items() if isinstance(p, IndexQuery)]
            found = live.index.search_many([p for _, p in runnable], executor=self._executor)
            hits_of = {i: p for i, p in planned.items() if isinstance(p, Hits)}
            hits_of.update((i, hits) for (i, _), hits in zip(runnable, found, strict=True))
            outcomes = [
                self._outcome(live, c, self._within(live, c, hits_of[i]), started)
                if i in hits_of
                else self._grouped(live, c, started)
                for i, c in enumerate(checked)
            ]
        took_ms = (time.perf_counter() - started) * 1000
        return [dataclasses.replace(outcome, took_ms=took_ms) for outcome in outcomes]

    # -- checks and planning --------------------------------------------------------------

    def _checked(self, live: LiveLibrary, query: SearchQuery) -> _Checked:
        limits = self._limits
        limits.check_k(query.k)
        unknown = query.include - INCLUDABLE
        if unknown:
            raise InvalidInput(
                f"include accepts text, metadata and embedding, not {sorted(unknown)}",
                location="include",
            )
        if query.group_by is not None:
            if query.group_by != BY_DOCUMENT and (not query.group_by or "." in query.group_by):
                raise InvalidInput(
                    "group_by is document_id or a metadata key (non-empty, without '.')",
                    location="group_by",
                )
            limits.check_group(query.k, query.group_size)
        filter_ = None
        if query.filter is not None:
            filter_ = parse_filter(query.filter, max_depth=limits.max_filter_depth)
        if query.vector is None:
            raise InvalidInput("a search needs a vector", location="vector")
        vector = as_vector(query.vector, live.library.dimension, location="vector")
        return _Checked(query, vector, filter_)

    @staticmethod
    def _allowed(live: LiveLibrary, checked: _Checked) -> Mask | None:
        return None if checked.filter is None else live.allowed(checked.filter)

    def _planned(
        self, live: LiveLibrary, vector: Vector, k: int, checked: _Checked, allowed: Mask | None
    ) -> IndexQuery | Hits:
        """The index query the planner chooses, or the empty answer when nothing matches."""
        query = checked.query
        if allowed is None:
            return IndexQuery(vector, k, None, query.params, query.exact)
        matching = int(allowed.sum())
        if matching == 0:
            return Hits.empty("filtered-none")
        few = self._limits.scans_matches(live.index.spec.type, matching, len(live.index))
        return IndexQuery(vector, k, allowed, query.params, query.exact or few)

    def _hits(
        self, live: LiveLibrary, vector: Vector, k: int, checked: _Checked, allowed: Mask | None
    ) -> Hits:
        """One search to depth ``k`` among ``allowed``, within the score threshold."""
        planned = self._planned(live, vector, k, checked, allowed)
        if isinstance(planned, Hits):
            return planned
        hits = live.index.search(
            planned.vector,
            planned.k,
            allowed=planned.allowed,
            params=planned.params,
            exact=planned.exact,
        )
        return self._within(live, checked, hits)

    @staticmethod
    def _within(live: LiveLibrary, checked: _Checked, hits: Hits) -> Hits:
        threshold = checked.query.score_threshold
        if threshold is None or len(hits) == 0:
            return hits
        kept = within_threshold(hits.scores, live.library.metric, threshold)
        return Hits(hits.labels[kept], hits.scores[kept], hits.strategy, hits.extra)

    # -- grouping ---------------------------------------------------------------------------

    def _grouped(self, live: LiveLibrary, checked: _Checked, started: float) -> SearchOutcome:
        query = checked.query
        key = query.group_by
        assert key is not None

        def search(depth: int, allowed: Mask | None) -> tuple[Hits, bool]:
            hits = self._hits(live, checked.vector, depth, checked, allowed)
            return hits, len(hits) < depth

        def by_document(label: int) -> list[GroupKey]:
            return [live.labels.document_id(label)]

        def by_metadata(label: int) -> list[GroupKey]:
            return groups_of_value(live.metadata.chunk_metadata(label).get(key))

        def outside_documents(document_ids: Sequence[GroupKey]) -> Mask:
            leaf = {"field": BY_DOCUMENT, "op": "in", "value": list(document_ids)}
            return live.allowed(parse_filter({"not": leaf}))

        by_document_id = key == BY_DOCUMENT
        groups, strategy = search_groups(
            search,
            by_document if by_document_id else by_metadata,
            k=query.k,
            group_size=query.group_size,
            max_depth=self._limits.max_group_candidates,
            higher_is_better=live.library.metric.higher_is_better,
            base=self._allowed(live, checked),
            excluding=outside_documents if by_document_id else None,
        )
        hits = [hit for group in groups for hit in group.hits]
        found = self._resolved(live, query, [label for label, _ in hits], [s for _, s in hits])
        answers = iter(found)
        out = [SearchGroup(group.key, [next(answers) for _ in group.hits]) for group in groups]
        took_ms = (time.perf_counter() - started) * 1000
        return SearchOutcome([], live.index.spec.type.value, strategy, took_ms, out)

    # -- answers ----------------------------------------------------------------------------

    def _outcome(
        self, live: LiveLibrary, checked: _Checked, hits: Hits, started: float
    ) -> SearchOutcome:
        labels = [int(label) for label in hits.labels]
        found = self._resolved(live, checked.query, labels, [float(s) for s in hits.scores])
        took_ms = (time.perf_counter() - started) * 1000
        return SearchOutcome(found, live.index.spec.type.value, hits.strategy, took_ms)

    def _resolved(
        self, live: LiveLibrary, query: SearchQuery, labels: list[int], scores: list[float]
    ) -> list[SearchHit]:
        """The hits at ``labels``, with what ``query.include`` asks for. Metadata is in
        memory (the filter columns keep it); only text and vectors are read from the
        store, so the default search touches no database."""
        chunk_ids = [live.labels.chunk_id(label) for label in labels]
        chunks: dict[str, Chunk] = {}
        if query.include & FROM_STORE and chunk_ids:
            with self._uow_factory(read_only=True) as uow:
                chunks = uow.chunks.get_many(live.id, chunk_ids)
        return [
            _hit(live, query.include, chunk_id, label, score, chunks)
            for chunk_id, label, score in zip(chunk_ids, labels, scores, strict=True)
        ]


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


@contextmanager
def _located(prefix: str) -> Iterator[None]:
    """Errors raised inside name their place under ``prefix`` (``searches[3].vector``)."""
    try:
        yield
    except InvalidInput as exc:
        inner = exc.extra.get("location")
        exc.extra["location"] = prefix if not inner else f"{prefix}.{inner}"
        exc.detail = f"{prefix}: {exc.detail}"
        raise
