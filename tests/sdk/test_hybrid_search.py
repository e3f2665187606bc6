"""The SDK's keyword and hybrid search, in both clients, against the real node:
``search(query=..., mode=..., hybrid=...)``. Expected rankings are computed here: BM25 from
Lucene's formula over the same terms, cosine in float64 NumPy, reciprocal rank fusion by hand."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest
from stacksdb_client import AsyncStacksDB, F, Library, SearchResponse, ValidationError

from domain.models import Bm25Params
from tests.domain.test_bm25_index import brute_force_scores
from tests.sdk.conftest import DIM, vec
from tests.support.server import ServerProcess

pytestmark = pytest.mark.e2e

TEXTS = [
    "the lighthouse keeper lit the lamp",
    "a keeper of bees and honey",
    "lamp oil and wicks for the lighthouse",
    "a quiet harbor at dawn",
    "the harbor master and the lighthouse",
    "bees in the clover",
]
QUERY = "lighthouse keeper"


def rows() -> list[dict[str, Any]]:
    return [
        {
            "id": f"c{i}",
            "document_id": f"d{i % 2}",
            "text": text,
            "embedding": vec(200 + i),
            "metadata": {"n": i},
        }
        for i, text in enumerate(TEXTS)
    ]


def bm25(keep: set[int] | None = None) -> dict[str, float]:
    scores = brute_force_scores(dict(enumerate(TEXTS)), QUERY, Bm25Params())
    return {f"c{i}": s for i, s in scores.items() if s > 0 and (keep is None or i in keep)}


def cosine_order(query: list[float]) -> list[str]:
    x = np.array([r["embedding"] for r in rows()], np.float64)
    q = np.array(query, np.float64)
    sims = x @ q / np.linalg.norm(x, axis=1)
    return [f"c{i}" for i in np.argsort(-sims)]


def rrf(sides: list[list[str]], rrf_k: int) -> dict[str, float]:
    fused: dict[str, float] = {}
    for side in sides:
        for rank, chunk_id in enumerate(side, start=1):
            fused[chunk_id] = fused.get(chunk_id, 0.0) + 1 / (rrf_k + rank)
    return fused


def check_keyword(answer: SearchResponse, keep: set[int] | None = None) -> None:
    truth = bm25(keep)
    assert answer.mode == "keyword"
    assert {hit.chunk_id for hit in answer.results} == set(truth)
    for hit in answer.results:
        assert hit.score == pytest.approx(truth[hit.chunk_id], rel=1e-6)
        assert hit.vector_score is None and hit.keyword_score is None


def check_hybrid(answer: SearchResponse, query: list[float]) -> None:
    keyword = bm25()
    keyword_order = sorted(keyword, key=lambda c: -keyword[c])
    fused = rrf([cosine_order(query), keyword_order], 10)
    assert answer.mode == "hybrid"
    assert [h.score for h in answer.results] == pytest.approx(
        sorted(fused.values(), reverse=True)[:4], rel=1e-6
    )
    for hit in answer.results:
        assert hit.score == pytest.approx(fused[hit.chunk_id], rel=1e-6)
        assert hit.vector_score is not None  # every chunk is on the vector side here
        if hit.chunk_id in keyword:
            assert hit.keyword_score == pytest.approx(keyword[hit.chunk_id], rel=1e-6)
        else:
            assert hit.keyword_score is None


def test_sync_keyword_and_hybrid_search(library: Library) -> None:
    library.add_chunks(rows())
    check_keyword(library.search(query=QUERY, k=10))
    check_keyword(library.search(query=QUERY, k=10, filter=F("n") >= 2), keep={2, 3, 4, 5})
    query = vec(7)
    check_hybrid(library.search(query, query=QUERY, k=4, hybrid={"rrf_k": 10}), query)
    weighted = library.search(query, query=QUERY, k=4, hybrid={"fusion": "weighted", "alpha": 1})
    assert [h.chunk_id for h in weighted.results] == cosine_order(query)[:4]
    vector_only = library.search(query, query=QUERY, k=3, mode="vector")
    assert vector_only.mode == "vector"
    assert [h.chunk_id for h in vector_only.results] == cosine_order(query)[:3]
    with pytest.raises(ValidationError):
        library.search(query=QUERY, mode="vector")  # no embedder to embed the query
    with pytest.raises(ValidationError):
        library.search()


def test_async_keyword_and_hybrid_search(server: ServerProcess) -> None:
    async def scenario() -> None:
        async with AsyncStacksDB(server.url, timeout=30) as db:
            library = await db.create_library("sdk-hybrid-async", dimension=DIM)
            try:
                await library.add_chunks(rows())
                check_keyword(await library.search(query=QUERY, k=10))
                query = vec(7)
                answer = await library.search(query, query=QUERY, k=4, hybrid={"rrf_k": 10})
                check_hybrid(answer, query)
                batch = await library.search_batch(
                    [
                        {"query": QUERY, "k": 10},
                        {"vector": query, "query": QUERY, "k": 4, "hybrid": {"rrf_k": 10}},
                    ]
                )
                check_keyword(batch[0])
                check_hybrid(batch[1], query)
            finally:
                await library.delete()

    asyncio.run(scenario())
