"""A library handle's reads that write nothing: search (vector, keyword or hybrid), many
searches in one request, counts, and the vectors of its embedder."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from stacksdb_client import _calls
from stacksdb_client._core import Plan, Vector
from stacksdb_client._sides import operation
from stacksdb_client._surface.handle import C, Handle
from stacksdb_client.filters import FilterLike
from stacksdb_client.models import Hybrid, Include, SearchMode, SearchResponse


class QueryOps(Handle[C]):
    """The search, count and embed methods of ``Library`` and ``AsyncLibrary``."""

    @operation
    def search(
        self,
        vector: Vector | None = None,
        k: int = 10,
        *,
        query: str | None = None,
        mode: SearchMode | None = None,
        hybrid: Hybrid | None = None,
        filter: FilterLike | None = None,
        include: Sequence[Include] | None = None,
        params: Mapping[str, Any] | None = None,
        exact: bool = False,
        score_threshold: float | None = None,
        group_by: str | None = None,
        group_size: int | None = None,
    ) -> Plan[SearchResponse]:
        """The ``k`` best chunks, best first: nearest to ``vector``, best by BM25 for the text
        ``query``, or both fused (``mode`` ``"vector"``, ``"keyword"`` or ``"hybrid"``; the
        server picks from what is given, see ``API.md``); ``hybrid`` tunes the fusion.
        ``filter`` is built with ``F`` or a dict and applies to both sides; ``include`` picks
        ``text``/``metadata``/``embedding`` (server default: metadata); ``params`` overrides
        ``ef``/``nprobe`` for this query; ``exact`` scans every vector.
        ``score_threshold`` keeps hits scoring at least it (cosine, dot) or at most it (l2
        distance). ``group_by`` (``"document_id"`` or a metadata key) answers ``groups`` of
        up to ``group_size`` hits instead of ``results``; ``k`` then counts groups."""
        body = _calls.search_body(
            vector=vector,
            k=k,
            filter=filter,
            include=include,
            params=params,
            exact=exact,
            query=query,
            mode=mode,
            hybrid=hybrid,
            score_threshold=score_threshold,
            group_by=group_by,
            group_size=group_size,
        )
        return self._send(_calls.search(self.id, body))

    @operation
    def search_batch(self, searches: Iterable[Mapping[str, Any]]) -> Plan[list[SearchResponse]]:
        """Many searches in one request, answered in order; each mapping holds ``search``'s
        keywords (``{"vector": v, "k": 5, "filter": F("year") >= 2020}``). One invalid
        search fails the whole batch with a ``ValidationError`` naming ``searches[i]``."""
        return self._send(_calls.search_batch(self.id, searches))

    @operation
    def count(self, filter: FilterLike | None = None) -> Plan[int]:
        """How many chunks the library holds, or how many match ``filter``."""
        return self._send(_calls.count(self.id, "chunks", filter))

    @operation
    def count_documents(self, filter: FilterLike | None = None) -> Plan[int]:
        """How many documents the library holds, or how many match ``filter`` (on the
        documents' own metadata, ``id``, ``created_at``, ``updated_at``)."""
        return self._send(_calls.count(self.id, "documents", filter))

    @operation
    def embed(self, texts: Sequence[str], *, purpose: str = "document") -> Plan[list[list[float]]]:
        """The vectors the library's embedder makes for ``texts``, one per text, in order;
        ``purpose="query"`` for search queries (asymmetric models embed them differently)."""
        return self._send(_calls.embed(self.id, texts, purpose))
