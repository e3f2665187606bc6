"""Search over a library: single and batched, with metadata filters, a score threshold and
grouping, in three modes (``application.hybrid_search``): nearest vectors, BM25 keywords, or
both fused.

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

Keyword and hybrid searches take the same mask: the keyword side is the library's BM25 index
(``LiveLibrary.keyword_search``), and a hybrid search runs each side ``candidates`` deep and
fuses them (``domain.text_index.fusion``), each hit keeping both sides' scores. A query to
embed for the vector side is embedded while checking, before the lock is taken. In keyword
and hybrid modes a score is higher-is-better (BM25, fused), and so is the score threshold.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor
from contextlib import contextmanager
from typing import Literal, get_args

import numpy as np

from application import hybrid_search
from application.dto import SearchGroup, SearchHit, SearchOutcome, SearchQuery
from application.embedding_service import EmbeddingService
from application.grouping import GroupKey, groups_of_value, search_groups
from application.hybrid_search import Ranked
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
    plan: hybrid_search.Plan
    vector: Vector | None  # None in keyword mode
    filter: Filter | None

    def higher_is_better(self, live: LiveLibrary) -> bool:
        """How this search's scores rank: BM25 and fused scores are higher-is-better."""
        return self.plan.mode != "vector" or live.library.metric.higher_is_better


class SearchService:
    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        live: LiveLibraries,
        limits: Limits,
        embeddings: EmbeddingService,
        executor: Executor | None = None,
    ) -> None:
        self._uow_factory = uow_factory
        self._live = live
        self._limits = limits
        self._embeddings = embeddings  # a query's vector, for a library with an embedder
        # Threads for a batch's HNSW walks and IVF probes (kernels without the GIL).
        self._executor = executor

    def search(self, library_id: str, query: SearchQuery) -> SearchOutcome:
        """The ``k`` best chunks (or ``k`` groups), best first, in the search's mode.

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
            ranked = self._ranked(live, query.k, checked, self._allowed(live, checked))
            return self._outcome(live, checked, ranked, started)

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
            # Ungrouped vector searches share one search_many call; keyword and hybrid
            # searches run one by one (their vector side is a search of its own depth).
            planned = {
                i: self._planned(live, c.vector, c.query.k, c, self._allowed(live, c))
                for i, c in enumerate(checked)
                if c.query.group_by is None and c.plan.mode == "vector" and c.vector is not None
            }
            runnable = [(i, p) for i, p in planned.items() if isinstance(p, IndexQuery)]
            found = live.index.search_many([p for _, p in runnable], executor=self._executor)
            hits_of = {i: p for i, p in planned.items() if isinstance(p, Hits)}
            hits_of.update((i, hits) for (i, _), hits in zip(runnable, found, strict=True))
            outcomes = [
                self._outcome(live, c, self._within(live, c, Ranked(hits_of[i])), started)
                if i in hits_of
                else self._grouped(live, c, started)
                if c.query.group_by is not None
                else self._outcome(
                    live, c, self._ranked(live, c.query.k, c, self._allowed(live, c)), started
                )
                for i, c in enumerate(checked)
            ]
        took_ms = (time.perf_counter() - started) * 1000
        return [dataclasses.replace(outcome, took_ms=took_ms) for outcome in outcomes]

    # -- checks and planning --------------------------------------------------------------

    def _checked(self, live: LiveLibrary, query: SearchQuery) -> _Checked:
        limits = self._limits
        limits.check_k(query.k)
        limits.check_group_size(query.group_size)
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
        plan = hybrid_search.plan(
            live.library,
            mode=query.mode,
            has_vector=query.vector is not None,
            query=query.text,
            k=query.k,
            hybrid=query.hybrid,
            limits=limits,
        )
        return _Checked(query, plan, self._query_vector(live, query, plan), filter_)

    def _query_vector(
        self, live: LiveLibrary, query: SearchQuery, plan: hybrid_search.Plan
    ) -> Vector | None:
        """The vector side's vector: the one given, or the text embedded as a query by the
        library's embedder; None in keyword mode."""
        if plan.mode == "keyword":
            return None
        if plan.embeds_query:
            assert query.text is not None  # plan() embeds only a text
            return self._embeddings.query_vector(live.library, query.text)
        assert query.vector is not None  # plan() embeds when no vector is given
        return as_vector(query.vector, live.library.dimension, location="vector")

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

    def _ranked(self, live: LiveLibrary, k: int, checked: _Checked, allowed: Mask | None) -> Ranked:
        """One search to depth ``k`` among ``allowed`` in the search's mode, within the score
        threshold: the vector index, the keyword index, or in hybrid mode both, each
        ``max(k, candidates)`` deep under the same mask, fused."""
        mode = checked.plan.mode
        if allowed is not None and not allowed.any():
            return Ranked(Hits.empty("filtered-none"))
        if mode == "keyword":
            return self._within(
                live, checked, Ranked(self._keyword_hits(live, k, checked, allowed))
            )
        vector = checked.vector
        assert vector is not None  # every mode but keyword has one (_query_vector)
        if mode == "vector":
            return self._within(
                live, checked, Ranked(self._hits(live, vector, k, checked, allowed))
            )
        depth = max(k, checked.plan.depth)
        fused = hybrid_search.fuse(
            self._hits(live, vector, depth, checked, allowed),
            self._keyword_hits(live, depth, checked, allowed),
            checked.query.hybrid,
            k,
            higher_is_better=live.library.metric.higher_is_better,
        )
        return self._within(live, checked, fused)

    def _hits(
        self, live: LiveLibrary, vector: Vector, k: int, checked: _Checked, allowed: Mask | None
    ) -> Hits:
        """The vector index's best ``k`` among ``allowed``, as the planner chooses."""
        planned = self._planned(live, vector, k, checked, allowed)
        if isinstance(planned, Hits):
            return planned
        return live.index.search(
            planned.vector,
            planned.k,
            allowed=planned.allowed,
            params=planned.params,
            exact=planned.exact,
        )

    @staticmethod
    def _keyword_hits(live: LiveLibrary, k: int, checked: _Checked, allowed: Mask | None) -> Hits:
        assert checked.query.text is not None  # plan() refuses keyword and hybrid without one
        return live.keyword_search(checked.query.text, k, allowed)

    @staticmethod
    def _within(live: LiveLibrary, checked: _Checked, ranked: Ranked) -> Ranked:
        """The hits passing the score threshold: in the metric's direction in vector mode,
        at least it for a BM25 or fused score."""
        threshold = checked.query.score_threshold
        scores = ranked.hits.scores
        if threshold is None or scores.shape[0] == 0:
            return ranked
        if checked.plan.mode == "vector":
            return ranked.kept(within_threshold(scores, live.library.metric, threshold))
        return ranked.kept(scores.astype(np.float64) >= threshold)

    # -- grouping ---------------------------------------------------------------------------

    def _grouped(self, live: LiveLibrary, checked: _Checked, started: float) -> SearchOutcome:
        query = checked.query
        key = query.group_by
        assert key is not None

        # Hybrid mode: each side's score of every chunk a round ranked, for the answer.
        sides: dict[int, tuple[float | None, float | None]] = {}

        def search(depth: int, allowed: Mask | None) -> tuple[Hits, bool]:
            ranked = self._ranked(live, depth, checked, allowed)
            sides.update(ranked.side_scores())
            return ranked.hits, len(ranked.hits) < depth

        def by_document(label: int) -> list[GroupKey]:
            return [live.labels.document_id(label)]

        def by_metadata(label: int) -> list[GroupKey]:
            return groups_of_value(live.metadata.chunk_metadata(label).get(key))

        def outside_documents(document_ids: Sequence[GroupKey]) -> Mask:
            leaf = {"field": BY_DOCUMENT, "op": "in", "value": list(document_ids)}
            return live.allowed(parse_filter({"not": leaf}))

        by_document_id = key == BY_DOCUMENT
        # A fused score depends on each side's ranks among the chunks searched, so leaving
        # full documents out of a round would re-rank the rest: hybrid rounds only deepen,
        # and the groups are those of the hybrid ranking at the last round's depth.
        leaves_out_full = by_document_id and checked.plan.mode != "hybrid"
        groups, strategy = search_groups(
            search,
            by_document if by_document_id else by_metadata,
            k=query.k,
            group_size=query.group_size,
            max_depth=self._limits.max_group_candidates,
            higher_is_better=checked.higher_is_better(live),
            base=self._allowed(live, checked),
            excluding=outside_documents if leaves_out_full else None,
        )
        hits = [hit for group in groups for hit in group.hits]
        labels = [label for label, _ in hits]
        found = self._resolved(live, query, labels, [s for _, s in hits], sides)
        answers = iter(found)
        out = [SearchGroup(group.key, [next(answers) for _ in group.hits]) for group in groups]
        took_ms = (time.perf_counter() - started) * 1000
        index_type = live.index.spec.type.value
        return SearchOutcome([], index_type, strategy, took_ms, out, mode=checked.plan.mode)

    # -- answers ----------------------------------------------------------------------------

    def _outcome(
        self, live: LiveLibrary, checked: _Checked, ranked: Ranked, started: float
    ) -> SearchOutcome:
        hits = ranked.hits
        labels = [int(label) for label in hits.labels]
        scores = [float(s) for s in hits.scores]
        found = self._resolved(live, checked.query, labels, scores, ranked.side_scores())
        took_ms = (time.perf_counter() - started) * 1000
        index_type = live.index.spec.type.value
        return SearchOutcome(found, index_type, hits.strategy, took_ms, mode=checked.plan.mode)

    def _resolved(
        self,
        live: LiveLibrary,
        query: SearchQuery,
        labels: list[int],
        scores: list[float],
        sides: dict[int, tuple[float | None, float | None]],
    ) -> list[SearchHit]:
        """The hits at ``labels``, with what ``query.include`` asks for and, in hybrid mode,
        each side's score (``sides``). Metadata is in memory (the filter columns keep it);
        only text and vectors are read from the store, so the default search touches no
        database."""
        chunk_ids = [live.labels.chunk_id(label) for label in labels]
        chunks: dict[str, Chunk] = {}
        if query.include & FROM_STORE and chunk_ids:
            with self._uow_factory(read_only=True) as uow:
                chunks = uow.chunks.get_many(live.id, chunk_ids)
        found = [
            _hit(live, query.include, chunk_id, label, score, chunks)
            for chunk_id, label, score in zip(chunk_ids, labels, scores, strict=True)
        ]
        if not sides:
            return found
        return [
            dataclasses.replace(hit, vector_score=sides[label][0], keyword_score=sides[label][1])
            for hit, label in zip(found, labels, strict=True)
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
