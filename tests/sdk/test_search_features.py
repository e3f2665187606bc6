"""The SDK's search features, in both clients, against the real node: ``search_batch``,
``group_by``/``group_size``, ``score_threshold``, ``count``/``count_documents`` and
``delete_where``. Expected answers are computed here in float64 NumPy."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest
from stacksdb_client import AsyncStacksDB, F, Library, SearchResponse, ValidationError

from tests.sdk.conftest import DIM, vec
from tests.support.server import ServerProcess

pytestmark = pytest.mark.e2e

ROWS = 30


def rows() -> list[dict[str, Any]]:
    return [
        {
            "id": f"c{i}",
            "document_id": f"d{i % 4}",
            "text": f"chunk {i}",
            "embedding": vec(100 + i),
            "metadata": {"n": i, "tag": ["x", "y", "z"][i % 3]},
        }
        for i in range(ROWS)
    ]


def ranked(query: list[float], keep: set[int] | None = None) -> list[int]:
    """Positions by cosine similarity, best first, in float64."""
    x = np.array([r["embedding"] for r in rows()], dtype=np.float32).astype(np.float64)
    q = np.array(query, dtype=np.float32).astype(np.float64)
    scores = (x / np.linalg.norm(x, axis=1, keepdims=True)) @ (q / np.linalg.norm(q))
    order = sorted(range(ROWS), key=lambda i: (-scores[i], i))
    return [i for i in order if keep is None or i in keep]


def ids(response: SearchResponse) -> list[str]:
    return [hit.chunk_id for hit in response.results]


def test_sync_search_features(library: Library) -> None:
    library.add_chunks(rows())
    query = vec(7)
    order = ranked(query)

    batch = library.search_batch(
        [{"vector": query, "k": 5}, {"vector": query, "k": 3, "filter": F("n") >= 10}]
    )
    assert ids(batch[0]) == [f"c{i}" for i in order[:5]]
    assert ids(batch[1]) == [f"c{i}" for i in ranked(query, set(range(10, ROWS)))[:3]]

    scores = [hit.score for hit in library.search(query, k=ROWS).results]
    threshold = (scores[5] + scores[6]) / 2
    assert ids(library.search(query, k=ROWS, score_threshold=threshold)) == [
        f"c{i}" for i in order[:6]
    ]

    grouped = library.search(query, k=2, group_by="tag", group_size=2)
    assert grouped.results == [] and grouped.groups is not None
    expected: dict[str, list[str]] = {}
    for i in order:
        tag = rows()[i]["metadata"]["tag"]
        if tag in expected or len(expected) < 2:
            expected.setdefault(tag, [])
            if len(expected[tag]) < 2:
                expected[tag].append(f"c{i}")
    assert {g.key: [h.chunk_id for h in g.hits] for g in grouped.groups} == expected

    assert library.count() == ROWS
    assert library.count(filter=F("tag") == "x") == 10
    assert library.count_documents() == 4
    assert library.count_documents(filter=F("id").isin(["d1", "d2"])) == 2
    assert library.delete_where(F("tag") == "x") == 10
    assert library.count() == ROWS - 10

    with pytest.raises(ValidationError) as bad:
        library.search_batch([{"vector": query}, {"vector": [1.0, 2.0]}])
    assert "searches[1]" in str(bad.value)


def test_async_search_features(server: ServerProcess) -> None:
    async def main() -> None:
        async with AsyncStacksDB(server.url) as db:
            lib = await db.create_library("async-features", DIM)
            try:
                await lib.add_chunks(rows())
                query = vec(8)
                order = ranked(query)
                batch = await lib.search_batch([{"vector": query, "k": 4}, {"vector": query}])
                assert ids(batch[0]) == [f"c{i}" for i in order[:4]]
                assert ids(batch[1]) == [f"c{i}" for i in order[:10]]
                grouped = await lib.search(query, k=3, group_by="document_id")
                assert grouped.groups is not None
                documents: list[str] = []
                for i in order:
                    if rows()[i]["document_id"] not in documents:
                        documents.append(rows()[i]["document_id"])
                assert [g.key for g in grouped.groups] == documents[:3]
                assert await lib.count(filter=F("n") < 5) == 5
                assert await lib.count_documents() == 4
                assert await lib.delete_where(F("n") < 5) == 5
                assert await lib.count() == ROWS - 5
            finally:
                await lib.delete()

    asyncio.run(main())
