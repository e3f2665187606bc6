"""The synchronous client: ``StacksDB`` and its ``Library`` handles.

Every method is written once in ``_surface``; this module only runs the plans, blocking:
requests go out through ``httpx.Client`` and pauses are ``time.sleep``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any, TypeVar

import httpx

from stacksdb_client._core import Call, Done, Effect, HttpOptions, Plan, Reply, Sleep, Vectors, step
from stacksdb_client._sides import SyncSide
from stacksdb_client._surface import ClientOps, LibraryOps, ProgressCallback
from stacksdb_client.models import Chunk, LibraryInfo

__all__ = ["Library", "ProgressCallback", "StacksDB"]

T = TypeVar("T")


class StacksDB(ClientOps["Library", httpx.BaseTransport], SyncSide):
    """A client for one StacksDB server (or cluster entry point).

    ``timeout`` is in seconds (or an ``httpx.Timeout``); ``retries`` the number of retries
    after a first failed attempt, or a ``RetryPolicy``. With ``read_your_writes=True`` every
    read carries the highest ``X-StacksDB-Index`` this client has seen, so a follower answers
    only once it holds this client's writes. ``transport`` is passed to httpx (tests, proxies).
    Use it as a context manager, or call ``close()``.
    """

    def _connect(self, options: HttpOptions, transport: httpx.BaseTransport | None) -> httpx.Client:
        self._http = httpx.Client(**options, transport=transport)
        return self._http

    def _library(self, info: LibraryInfo) -> Library:
        return Library(self, info)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> StacksDB:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def execute(self, call: Call[T]) -> T:
        """Send one request, retrying as the policy allows; the parsed answer or a typed error."""
        return self._run(self._send(call))

    def _run(self, plan: Plan[T]) -> T:
        state = step(plan, None)
        while not isinstance(state, Done):
            state = step(plan, self._perform(state))
        return state.value

    def _perform(self, effect: Effect) -> Reply:
        if isinstance(effect, Sleep):
            time.sleep(effect.seconds)
            return None
        try:
            return self._http.send(effect.request)
        except httpx.TransportError as error:
            return error


class Library(LibraryOps[StacksDB, "Library"], SyncSide):
    """A handle on one library: its documents, chunks, index and search.

    ``info`` is the library as last fetched (``refresh()`` fetches it again); ``id``,
    ``name``, ``dimension`` and the other fields read from it.
    """

    def _itself(self) -> Library:
        return self

    def _run(self, plan: Plan[T]) -> T:
        return self.client._run(plan)

    def add_chunks(
        self,
        chunks: Iterable[Mapping[str, Any]],
        *,
        embeddings: Vectors | None = None,
        batch_size: int = 500,
        upsert: bool = False,
        on_progress: ProgressCallback | None = None,
    ) -> list[Chunk]:
        """Write chunks in all-or-nothing batches of ``batch_size``.

        Each chunk is a mapping with ``document_id``, ``text``, ``embedding`` (a list or a 1-D
        NumPy array) and optional ``id`` and ``metadata``; or pass the vectors apart as
        ``embeddings`` (a 2-D NumPy array or a list, one row per chunk). ``upsert=True``
        replaces chunks whose id exists. ``on_progress(done, total)`` runs after each batch.
        Returns the written chunks (without their embeddings). A batch that fails raises;
        the batches before it stay written.
        """
        return self._run(self._add_batches(chunks, embeddings, batch_size, upsert, on_progress))
