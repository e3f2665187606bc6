"""The asynchronous client: ``AsyncStacksDB`` and its ``AsyncLibrary`` handles.

The same surface as ``StacksDB``, with ``await`` on every call and ``async for`` on the
``iter_*`` methods; ``add_chunks`` can also keep several batches in flight (``concurrency``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence, Sized
from types import TracebackType
from typing import Any, TypeVar

import httpx

from stacksdb_client import _calls
from stacksdb_client._core import (
    Call,
    ClusterState,
    RetryPolicy,
    Vector,
    Vectors,
    as_policy,
    as_timeout,
    judge_status,
    judge_transport,
    make_headers,
    ready_or_raise,
)
from stacksdb_client._version import USER_AGENT
from stacksdb_client.client import ProgressCallback
from stacksdb_client.errors import WaitTimeoutError
from stacksdb_client.filters import FilterLike
from stacksdb_client.models import (
    Chunk,
    Document,
    Include,
    IndexStatus,
    LibraryInfo,
    Metric,
    Page,
    SearchResponse,
)

T = TypeVar("T")


class AsyncStacksDB:
    """The asyncio twin of ``StacksDB``; the same arguments. Use ``async with`` or
    ``await aclose()``."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        *,
        api_key: str | None = None,
        timeout: float | httpx.Timeout | None = 30.0,
        retries: int | RetryPolicy = 3,
        read_your_writes: bool = False,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retry_policy = as_policy(retries)
        self.cluster = ClusterState(read_your_writes=read_your_writes)
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=make_headers(api_key, USER_AGENT),
            timeout=as_timeout(timeout),
            transport=transport,
            follow_redirects=True,
        )

    @property
    def last_index(self) -> int | None:
        """The highest ``X-StacksDB-Index`` seen in an answer (None until a server sends it)."""
        return self.cluster.last_index

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncStacksDB:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def execute(self, call: Call[T]) -> T:
        """Send one request, retrying as the policy allows; the parsed answer or a typed error."""
        attempt = 0
        while True:
            request = call.request(self._http, self.cluster)
            try:
                response = await self._http.send(request)
            except httpx.TransportError as error:
                outcome = judge_transport(call, error, attempt, self.retry_policy, str(request.url))
            else:
                self.cluster.observe(response)
                outcome = judge_status(call, response, attempt, self.retry_policy)
                if outcome.delay is None and outcome.error is None:
                    return call.parse(response)
            if outcome.error is not None:
                raise outcome.error
            assert outcome.delay is not None
            await asyncio.sleep(outcome.delay)
            attempt += 1

    # Libraries

    async def create_library(
        self,
        name: str,
        dimension: int,
        *,
        metric: Metric | None = None,
        index: Mapping[str, Any] | str | None = None,
        description: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        id: str | None = None,
    ) -> AsyncLibrary:
        call = _calls.create_library(
            name=name,
            dimension=dimension,
            metric=metric,
            index=index,
            description=description,
            metadata=metadata,
            id=id,
        )
        return AsyncLibrary(self, await self.execute(call))

    async def get_library(self, library_id: str) -> AsyncLibrary:
        return AsyncLibrary(self, await self.execute(_calls.get_library(library_id)))

    async def list_libraries(
        self, *, limit: int | None = None, cursor: str | None = None
    ) -> Page[AsyncLibrary]:
        page = await self.execute(_calls.list_libraries(limit, cursor))
        return Page([AsyncLibrary(self, info) for info in page.items], page.next_cursor)

    async def iter_libraries(self, *, page_size: int | None = None) -> AsyncIterator[AsyncLibrary]:
        async for info in self._walk(lambda cursor: _calls.list_libraries(page_size, cursor)):
            yield AsyncLibrary(self, info)

    async def update_library(
        self,
        library_id: str,
        *,
        name: str | None = None,
        description: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> AsyncLibrary:
        call = _calls.update_library(
            library_id, name=name, description=description, metadata=metadata
        )
        return AsyncLibrary(self, await self.execute(call))

    async def delete_library(self, library_id: str) -> None:
        await self.execute(_calls.delete_library(library_id))

    async def _walk(self, page_call: Callable[[str | None], Call[Page[T]]]) -> AsyncIterator[T]:
        cursor: str | None = None
        while True:
            page = await self.execute(page_call(cursor))
            for item in page.items:
                yield item
            if page.next_cursor is None:
                return
            cursor = page.next_cursor


class AsyncLibrary:
    """The asyncio twin of ``Library``."""

    def __init__(self, client: AsyncStacksDB, info: LibraryInfo) -> None:
        self.client = client
        self.info = info

    def __repr__(self) -> str:
        return f"AsyncLibrary(id={self.id!r}, name={self.name!r}, dimension={self.dimension})"

    @property
    def id(self) -> str:
        return self.info.id

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def dimension(self) -> int:
        return self.info.dimension

    @property
    def metric(self) -> Metric:
        return self.info.metric

    @property
    def description(self) -> str:
        return self.info.description

    @property
    def metadata(self) -> dict[str, Any]:
        return self.info.metadata

    @property
    def document_count(self) -> int:
        return self.info.document_count

    @property
    def chunk_count(self) -> int:
        return self.info.chunk_count

    async def refresh(self) -> AsyncLibrary:
        self.info = await self.client.execute(_calls.get_library(self.id))
        return self

    async def update(
        self,
        *,
        name: str | None = None,
        description: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> AsyncLibrary:
        call = _calls.update_library(self.id, name=name, description=description, metadata=metadata)
        self.info = await self.client.execute(call)
        return self

    async def delete(self) -> None:
        await self.client.delete_library(self.id)

    # Documents

    async def create_document(
        self,
        *,
        id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        chunks: Sequence[Mapping[str, Any]] | None = None,
    ) -> Document:
        call = _calls.create_document(self.id, id=id, metadata=metadata, chunks=chunks)
        return await self.client.execute(call)

    async def get_document(self, document_id: str) -> Document:
        return await self.client.execute(_calls.get_document(self.id, document_id))

    async def list_documents(
        self, *, limit: int | None = None, cursor: str | None = None
    ) -> Page[Document]:
        return await self.client.execute(_calls.list_documents(self.id, limit, cursor))

    def iter_documents(self, *, page_size: int | None = None) -> AsyncIterator[Document]:
        return self.client._walk(lambda cursor: _calls.list_documents(self.id, page_size, cursor))

    async def update_document(self, document_id: str, metadata: Mapping[str, Any]) -> Document:
        return await self.client.execute(_calls.update_document(self.id, document_id, metadata))

    async def delete_document(self, document_id: str) -> None:
        await self.client.execute(_calls.delete_document(self.id, document_id))

    # Chunks

    async def add_chunk(
        self,
        document_id: str,
        text: str,
        embedding: Vector,
        *,
        metadata: Mapping[str, Any] | None = None,
        id: str | None = None,
    ) -> Chunk:
        call = _calls.create_chunk(
            self.id,
            document_id=document_id,
            text=text,
            embedding=embedding,
            metadata=metadata,
            id=id,
        )
        return await self.client.execute(call)

    async def add_chunks(
        self,
        chunks: Iterable[Mapping[str, Any]],
        *,
        embeddings: Vectors | None = None,
        batch_size: int = 500,
        upsert: bool = False,
        on_progress: ProgressCallback | None = None,
        concurrency: int = 1,
    ) -> list[Chunk]:
        """As ``Library.add_chunks``, with up to ``concurrency`` batches in flight at once.
        The answer keeps the input order; progress counts batches as they finish."""
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        total = len(chunks) if isinstance(chunks, Sized) else None
        gate = asyncio.Semaphore(concurrency)
        done = 0

        async def write(batch: list[dict[str, Any]]) -> list[Chunk]:
            nonlocal done
            async with gate:
                items = await self.client.execute(_calls.write_chunks(self.id, batch, upsert))
            done += len(items)
            if on_progress is not None:
                on_progress(done, total)
            return items

        batches = _calls.chunk_batches(chunks, embeddings, batch_size)
        if concurrency == 1:
            return [chunk for batch in batches for chunk in await write(batch)]
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(write(batch)) for batch in batches]
        return [chunk for task in tasks for chunk in task.result()]

    async def get_chunk(self, chunk_id: str) -> Chunk:
        return await self.client.execute(_calls.get_chunk(self.id, chunk_id))

    async def list_chunks(
        self,
        *,
        document_id: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        include_embedding: bool = False,
    ) -> Page[Chunk]:
        call = _calls.list_chunks(
            self.id,
            document_id=document_id,
            limit=limit,
            cursor=cursor,
            include_embedding=include_embedding,
        )
        return await self.client.execute(call)

    def iter_chunks(
        self,
        document_id: str | None = None,
        *,
        include_embedding: bool = False,
        page_size: int | None = None,
    ) -> AsyncIterator[Chunk]:
        return self.client._walk(
            lambda cursor: _calls.list_chunks(
                self.id,
                document_id=document_id,
                limit=page_size,
                cursor=cursor,
                include_embedding=include_embedding,
            )
        )

    async def update_chunk(
        self,
        chunk_id: str,
        *,
        text: str | None = None,
        embedding: Vector | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Chunk:
        call = _calls.update_chunk(
            self.id, chunk_id, text=text, embedding=embedding, metadata=metadata
        )
        return await self.client.execute(call)

    async def put_chunk(
        self,
        chunk_id: str,
        *,
        document_id: str,
        text: str,
        embedding: Vector,
        metadata: Mapping[str, Any] | None = None,
    ) -> Chunk:
        call = _calls.put_chunk(
            self.id,
            chunk_id,
            document_id=document_id,
            text=text,
            embedding=embedding,
            metadata=metadata,
        )
        return await self.client.execute(call)

    async def delete_chunk(self, chunk_id: str) -> None:
        await self.client.execute(_calls.delete_chunk(self.id, chunk_id))

    # Search and index

    async def search(
        self,
        vector: Vector,
        k: int = 10,
        *,
        filter: FilterLike | None = None,
        include: Sequence[Include] | None = None,
        params: Mapping[str, Any] | None = None,
        exact: bool = False,
    ) -> SearchResponse:
        call = _calls.search(
            self.id,
            vector=vector,
            k=k,
            filter=filter,
            include=include,
            params=params,
            exact=exact,
        )
        return await self.client.execute(call)

    async def index_status(self) -> IndexStatus:
        return await self.client.execute(_calls.index_status(self.id))

    async def build_index(self, type: str, **params: Any) -> IndexStatus:
        return await self.client.execute(_calls.build_index(self.id, type, params))

    async def wait_for_index(
        self,
        timeout: float = 300.0,
        poll_interval: float = 0.25,
        on_progress: Callable[[IndexStatus], None] | None = None,
    ) -> IndexStatus:
        deadline = time.monotonic() + timeout
        while True:
            status = await self.index_status()
            if on_progress is not None:
                on_progress(status)
            if status.ready:
                return ready_or_raise(status)
            if time.monotonic() >= deadline:
                raise WaitTimeoutError(
                    f"index of library {self.id!r} not ready after {timeout}s "
                    f"(progress {status.progress:.0%})"
                )
            await asyncio.sleep(poll_interval)
