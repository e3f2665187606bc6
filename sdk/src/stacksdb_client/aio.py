"""The asynchronous client: ``AsyncStacksDB`` and its ``AsyncLibrary`` handles.

The same surface as ``StacksDB``, with ``await`` on every call and ``async for`` on the
``iter_*`` methods; ``add_chunks`` can also keep several batches in flight (``concurrency``).
Every method is written once in ``_surface``; this module only runs the plans, with
``httpx.AsyncClient`` for requests and ``asyncio.sleep`` for pauses.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any, TypeVar

import httpx

from stacksdb_client import _calls
from stacksdb_client._core import Call, Done, Effect, HttpOptions, Plan, Reply, Sleep, Vectors, step
from stacksdb_client._sides import AsyncSide
from stacksdb_client._surface import ClientOps, LibraryOps, Progress, ProgressCallback
from stacksdb_client.models import Chunk, LibraryInfo

__all__ = ["AsyncLibrary", "AsyncStacksDB"]

T = TypeVar("T")


class AsyncStacksDB(ClientOps["AsyncLibrary", httpx.AsyncBaseTransport], AsyncSide):
    """The asyncio twin of ``StacksDB``; the same arguments. Use ``async with`` or
    ``aclose()``."""

    def _connect(
        self, options: HttpOptions, transport: httpx.AsyncBaseTransport | None
    ) -> httpx.AsyncClient:
        self._http = httpx.AsyncClient(**options, transport=transport)
        return self._http

    def _library(self, info: LibraryInfo) -> AsyncLibrary:
        return AsyncLibrary(self, info)

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
        return await self._run(self._send(call))

    async def _run(self, plan: Plan[T]) -> T:
        state = step(plan, None)
        while not isinstance(state, Done):
            reply = await self._perform(state)
            state = step(plan, reply)
        return state.value

    async def _perform(self, effect: Effect) -> Reply:
        if isinstance(effect, Sleep):
            await asyncio.sleep(effect.seconds)
            return None
        try:
            return await self._http.send(effect.request)
        except httpx.TransportError as error:
            return error


class AsyncLibrary(LibraryOps[AsyncStacksDB, "AsyncLibrary"], AsyncSide):
    """The asyncio twin of ``Library``."""

    def _itself(self) -> AsyncLibrary:
        return self

    async def _run(self, plan: Plan[T]) -> T:
        return await self.client._run(plan)

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
        if concurrency == 1:
            plan = self._add_batches(chunks, embeddings, batch_size, upsert, on_progress)
            return await self._run(plan)
        progress = Progress(chunks, on_progress)
        gate = asyncio.Semaphore(concurrency)

        async def write(batch: list[dict[str, Any]]) -> list[Chunk]:
            async with gate:
                items = await self._run(self._write_batch(batch, upsert))
            progress.advance(len(items))
            return items

        batches = _calls.chunk_batches(chunks, embeddings, batch_size)
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(write(batch)) for batch in batches]
        return [chunk for task in tasks for chunk in task.result()]
