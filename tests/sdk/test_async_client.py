"""The asynchronous client has the same surface as the synchronous one; each scenario runs on
its own event loop against the real node."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import numpy as np
import pytest
from stacksdb_client import (
    AsyncLibrary,
    AsyncStacksDB,
    ConflictError,
    IndexStatus,
    NotFoundError,
    UnreachableError,
    ValidationError,
)

from tests.sdk.conftest import DIM, vec
from tests.support.server import ServerProcess, free_port

pytestmark = pytest.mark.e2e

Scenario = Callable[[AsyncStacksDB, AsyncLibrary], Awaitable[None]]


def run(server: ServerProcess, scenario: Scenario) -> None:
    async def main() -> None:
        async with AsyncStacksDB(server.url) as db:
            lib = await db.create_library("async-test", DIM)
            try:
                await scenario(db, lib)
            finally:
                await lib.delete()

    asyncio.run(main())


def test_async_libraries_create_get_list_iterate_update_delete(server: ServerProcess) -> None:
    async def scenario(db: AsyncStacksDB, lib: AsyncLibrary) -> None:
        assert (await db.get_library(lib.id)).info == lib.info
        others = [(await db.create_library(f"a{i}", 2, metric="l2")).id for i in range(3)]
        page = await db.list_libraries(limit=2)
        assert len(page.items) == 2 and page.next_cursor is not None
        walked = [item.id async for item in db.iter_libraries(page_size=2)]
        assert {lib.id, *others} <= set(walked)

        updated = await db.update_library(lib.id, name="renamed", description="d")
        assert (updated.name, updated.description) == ("renamed", "d")
        assert (await lib.update(metadata={"k": 1})).metadata == {"k": 1}
        assert (await lib.refresh()).name == "renamed"
        for other in others:
            await db.delete_library(other)
        with pytest.raises(NotFoundError):
            await db.get_library(others[0])

    run(server, scenario)


def test_async_documents_and_chunks_every_method(server: ServerProcess) -> None:
    async def scenario(db: AsyncStacksDB, lib: AsyncLibrary) -> None:
        doc = await lib.create_document(
            id="doc", metadata={"t": 1}, chunks=[{"text": "x", "embedding": vec(0)}]
        )
        assert doc.chunk_count == 1
        await lib.create_document(id="doc2")
        assert (await lib.get_document("doc")).metadata == {"t": 1}
        assert len((await lib.list_documents(limit=1)).items) == 1
        assert {d.id async for d in lib.iter_documents(page_size=1)} == {"doc", "doc2"}
        assert (await lib.update_document("doc", {"t": 2})).metadata == {"t": 2}

        chunk = await lib.add_chunk("doc2", "one", np.array(vec(1)), id="c1", metadata={"a": 1})
        assert (chunk.id, chunk.metadata) == ("c1", {"a": 1})
        assert (await lib.get_chunk("c1")).embedding == pytest.approx(vec(1), rel=1e-6)
        assert (await lib.update_chunk("c1", text="uno")).text == "uno"
        replaced = await lib.put_chunk("c1", document_id="doc2", text="eins", embedding=vec(2))
        assert replaced.text == "eins"
        listed = await lib.list_chunks(document_id="doc2", include_embedding=True)
        assert [c.id for c in listed.items] == ["c1"] and listed.items[0].embedding is not None

        await lib.delete_chunk("c1")
        await lib.delete_document("doc")
        assert [c.id async for c in lib.iter_chunks()] == []
        with pytest.raises(ConflictError):
            await lib.create_document(id="doc2")
        with pytest.raises(ValidationError):
            await lib.add_chunk("doc2", "short", [1.0])

    run(server, scenario)


def test_async_add_chunks_with_concurrent_batches_keeps_order_and_counts(
    server: ServerProcess,
) -> None:
    async def scenario(db: AsyncStacksDB, lib: AsyncLibrary) -> None:
        matrix = np.random.default_rng(2).standard_normal((95, DIM))
        chunks = [{"id": f"c{i:03}", "document_id": f"d{i % 4}", "text": str(i)} for i in range(95)]
        progress: list[int] = []

        written = await lib.add_chunks(
            chunks,
            embeddings=matrix,
            batch_size=10,
            concurrency=4,
            on_progress=lambda done, total: progress.append(done),
        )

        assert [c.id for c in written] == [f"c{i:03}" for i in range(95)]
        assert len(progress) == 10 and progress[-1] == 95 and progress == sorted(progress)
        assert (await lib.refresh()).chunk_count == 95
        ids = sorted([c.id async for c in lib.iter_chunks(page_size=30)])
        assert ids == [f"c{i:03}" for i in range(95)]

        again = await lib.add_chunks(chunks[:5], embeddings=matrix[:5] * 2, upsert=True)
        assert len(again) == 5 and (await lib.refresh()).chunk_count == 95

    run(server, scenario)


def test_async_search_and_index_management(server: ServerProcess) -> None:
    async def scenario(db: AsyncStacksDB, lib: AsyncLibrary) -> None:
        await lib.add_chunks(
            [{"id": f"c{i}", "document_id": "d", "text": f"t{i}"} for i in range(20)],
            embeddings=[vec(i) for i in range(20)],
        )
        answer = await lib.search(vec(4), k=3, include=["text"], exact=True)
        assert answer.results[0].chunk_id == "c4" and answer.results[0].text == "t4"

        started = await lib.build_index("flat")
        assert isinstance(started, IndexStatus)
        polled: list[IndexStatus] = []
        ready = await lib.wait_for_index(timeout=60, poll_interval=0.05, on_progress=polled.append)
        assert ready.ready and ready.vector_count == 20 and polled[-1] == ready
        assert (await lib.index_status()).vector_count == 20

    run(server, scenario)


def test_async_client_reports_an_unreachable_server() -> None:
    url = f"http://127.0.0.1:{free_port()}"

    async def scenario() -> None:
        async with AsyncStacksDB(url, retries=0) as db:
            await db.list_libraries()

    with pytest.raises(UnreachableError, match=url):
        asyncio.run(scenario())
