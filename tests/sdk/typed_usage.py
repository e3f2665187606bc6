"""Code that uses the SDK the way an application would; `mypy --strict` must accept it with
every type inferred from the package's own annotations (see test_typing.py)."""

from __future__ import annotations

import asyncio
from typing import assert_type

from stacksdb_client import (
    AsyncLibrary,
    AsyncStacksDB,
    Chunk,
    Document,
    F,
    FilterExpr,
    Hybrid,
    IndexStatus,
    Library,
    NotFoundError,
    Page,
    SearchMode,
    SearchResponse,
    SearchResult,
    StacksDB,
)


def nearest_texts(db: StacksDB, library_id: str, vector: list[float]) -> list[str]:
    try:
        lib = db.get_library(library_id)
    except NotFoundError as missing:
        assert_type(missing.status, int)
        return []
    assert_type(lib, Library)
    recent: FilterExpr = (F("year") >= 2020) & F("tag").isin(["ml", "ir"]) | ~F("draft").exists()
    answer = lib.search(vector, k=3, filter=recent, include=["text"], params={"ef": 64})
    assert_type(answer, SearchResponse)
    hits: list[SearchResult] = answer.results
    return [hit.text for hit in hits if hit.text is not None]


def best_by_both(lib: Library, vector: list[float], text: str) -> list[float | None]:
    fusion: Hybrid = {"fusion": "weighted", "alpha": 0.3, "candidates": 50}
    answer = lib.search(vector, k=5, query=text, mode="hybrid", hybrid=fusion)
    assert_type(answer.mode, SearchMode)
    keyword_only = lib.search(query=text, mode="keyword")
    return [hit.keyword_score for hit in answer.results + keyword_only.results]


def ingest(lib: Library, rows: list[tuple[str, str, list[float]]]) -> int:
    chunks = [{"document_id": d, "text": t, "embedding": e} for d, t, e in rows]
    written = lib.add_chunks(chunks, batch_size=100, upsert=True, on_progress=lambda d, t: None)
    assert_type(written, list[Chunk])
    page = lib.list_documents(limit=10)
    assert_type(page, Page[Document])
    status = lib.build_index("hnsw", m=16)
    assert_type(lib.wait_for_index(timeout=5.0, on_progress=lambda s: None), IndexStatus)
    return len(written) + status.vector_count + sum(1 for _ in lib.iter_chunks())


async def count_async(url: str) -> int:
    async with AsyncStacksDB(url, api_key="k", read_your_writes=True) as db:
        lib = await db.create_library("x", 4, metric="l2", index={"type": "ivf"})
        assert_type(lib, AsyncLibrary)
        return len([chunk.id async for chunk in lib.iter_chunks(include_embedding=True)])


def main() -> None:
    with StacksDB("http://127.0.0.1:8000", timeout=5.0, retries=2) as db:
        print(nearest_texts(db, "papers", [0.0, 1.0]))
    print(asyncio.run(count_async("http://127.0.0.1:8000")))
