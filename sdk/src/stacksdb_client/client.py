"""The synchronous client: ``StacksDB`` and its ``Library`` handles."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Sized
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

ProgressCallback = Callable[[int, int | None], None]
"""Called after each batch with (chunks written so far, total or None if unknown)."""


class StacksDB:
    """A client for one StacksDB server (or cluster entry point).

    ``timeout`` is in seconds (or an ``httpx.Timeout``); ``retries`` the number of retries
    after a first failed attempt, or a ``RetryPolicy``. With ``read_your_writes=True`` every
    read carries the highest ``X-StacksDB-Index`` this client has seen, so a follower answers
    only once it holds this client's writes. ``transport`` is passed to httpx (tests, proxies).
    Use it as a context manager, or call ``close()``.
    """

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        *,
        api_key: str | None = None,
        timeout: float | httpx.Timeout | None = 30.0,
        retries: int | RetryPolicy = 3,
        read_your_writes: bool = False,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retry_policy = as_policy(retries)
        self.cluster = ClusterState(read_your_writes=read_your_writes)
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=make_headers(api_key, USER_AGENT),
            timeout=as_timeout(timeout),
            transport=transport,
            # A follower may answer a write with 307/308 to the leader; the method and body
            # are kept on those.
            follow_redirects=True,
        )

    @property
    def last_index(self) -> int | None:
        """The highest ``X-StacksDB-Index`` seen in an answer (None until a server sends it)."""
        return self.cluster.last_index

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
        attempt = 0
        while True:
            request = call.request(self._http, self.cluster)
            try:
                response = self._http.send(request)
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
            time.sleep(outcome.delay)
            attempt += 1

    # Libraries

    def create_library(
        self,
        name: str,
        dimension: int,
        *,
        metric: Metric | None = None,
        index: Mapping[str, Any] | str | None = None,
        description: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        id: str | None = None,
    ) -> Library:
        """Create a library; ``index`` is ``"ivf"`` or ``{"type": "hnsw", "params": {...}}``.
        With ``id`` the create is idempotent (retried safely; 409 if the id is taken)."""
        call = _calls.create_library(
            name=name,
            dimension=dimension,
            metric=metric,
            index=index,
            description=description,
            metadata=metadata,
            id=id,
        )
        return Library(self, self.execute(call))

    def get_library(self, library_id: str) -> Library:
        return Library(self, self.execute(_calls.get_library(library_id)))

    def list_libraries(
        self, *, limit: int | None = None, cursor: str | None = None
    ) -> Page[Library]:
        """One page of libraries; ``iter_libraries`` walks them all."""
        page = self.execute(_calls.list_libraries(limit, cursor))
        return Page([Library(self, info) for info in page.items], page.next_cursor)

    def iter_libraries(self, *, page_size: int | None = None) -> Iterator[Library]:
        """Every library, following ``next_cursor`` page by page."""
        for info in self._walk(lambda cursor: _calls.list_libraries(page_size, cursor)):
            yield Library(self, info)

    def update_library(
        self,
        library_id: str,
        *,
        name: str | None = None,
        description: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Library:
        call = _calls.update_library(
            library_id, name=name, description=description, metadata=metadata
        )
        return Library(self, self.execute(call))

    def delete_library(self, library_id: str) -> None:
        """Delete a library with its documents and chunks."""
        self.execute(_calls.delete_library(library_id))

    def _walk(self, page_call: Callable[[str | None], Call[Page[T]]]) -> Iterator[T]:
        cursor: str | None = None
        while True:
            page = self.execute(page_call(cursor))
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor


class Library:
    """A handle on one library: its documents, chunks, index and search.

    ``info`` is the library as last fetched (``refresh()`` fetches it again); ``id``,
    ``name``, ``dimension`` and the other fields read from it.
    """

    def __init__(self, client: StacksDB, info: LibraryInfo) -> None:
        self.client = client
        self.info = info

    def __repr__(self) -> str:
        return f"Library(id={self.id!r}, name={self.name!r}, dimension={self.dimension})"

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

    def refresh(self) -> Library:
        self.info = self.client.execute(_calls.get_library(self.id))
        return self

    def update(
        self,
        *,
        name: str | None = None,
        description: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Library:
        call = _calls.update_library(self.id, name=name, description=description, metadata=metadata)
        self.info = self.client.execute(call)
        return self

    def delete(self) -> None:
        self.client.delete_library(self.id)

    # Documents

    def create_document(
        self,
        *,
        id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        chunks: Sequence[Mapping[str, Any]] | None = None,
    ) -> Document:
        """Create a document, optionally with its chunks (``text``, ``embedding``, ...)."""
        call = _calls.create_document(self.id, id=id, metadata=metadata, chunks=chunks)
        return self.client.execute(call)

    def get_document(self, document_id: str) -> Document:
        return self.client.execute(_calls.get_document(self.id, document_id))

    def list_documents(
        self, *, limit: int | None = None, cursor: str | None = None
    ) -> Page[Document]:
        return self.client.execute(_calls.list_documents(self.id, limit, cursor))

    def iter_documents(self, *, page_size: int | None = None) -> Iterator[Document]:
        return self.client._walk(lambda cursor: _calls.list_documents(self.id, page_size, cursor))

    def update_document(self, document_id: str, metadata: Mapping[str, Any]) -> Document:
        """Replace a document's metadata."""
        return self.client.execute(_calls.update_document(self.id, document_id, metadata))

    def delete_document(self, document_id: str) -> None:
        """Delete a document with its chunks."""
        self.client.execute(_calls.delete_document(self.id, document_id))

    # Chunks

    def add_chunk(
        self,
        document_id: str,
        text: str,
        embedding: Vector,
        *,
        metadata: Mapping[str, Any] | None = None,
        id: str | None = None,
    ) -> Chunk:
        """Create one chunk (its document is created if it does not exist)."""
        call = _calls.create_chunk(
            self.id,
            document_id=document_id,
            text=text,
            embedding=embedding,
            metadata=metadata,
            id=id,
        )
        return self.client.execute(call)

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
        total = len(chunks) if isinstance(chunks, Sized) else None
        written: list[Chunk] = []
        for batch in _calls.chunk_batches(chunks, embeddings, batch_size):
            items = self.client.execute(_calls.write_chunks(self.id, batch, upsert))
            written.extend(items)
            if on_progress is not None:
                on_progress(len(written), total)
        return written

    def get_chunk(self, chunk_id: str) -> Chunk:
        """One chunk, with its embedding."""
        return self.client.execute(_calls.get_chunk(self.id, chunk_id))

    def list_chunks(
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
        return self.client.execute(call)

    def iter_chunks(
        self,
        document_id: str | None = None,
        *,
        include_embedding: bool = False,
        page_size: int | None = None,
    ) -> Iterator[Chunk]:
        """Every chunk (of one document, if given), following ``next_cursor``."""
        return self.client._walk(
            lambda cursor: _calls.list_chunks(
                self.id,
                document_id=document_id,
                limit=page_size,
                cursor=cursor,
                include_embedding=include_embedding,
            )
        )

    def update_chunk(
        self,
        chunk_id: str,
        *,
        text: str | None = None,
        embedding: Vector | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Chunk:
        """Change some fields of a chunk (PATCH); the others stay."""
        call = _calls.update_chunk(
            self.id, chunk_id, text=text, embedding=embedding, metadata=metadata
        )
        return self.client.execute(call)

    def put_chunk(
        self,
        chunk_id: str,
        *,
        document_id: str,
        text: str,
        embedding: Vector,
        metadata: Mapping[str, Any] | None = None,
    ) -> Chunk:
        """Create or replace the chunk with this id (PUT, an upsert)."""
        call = _calls.put_chunk(
            self.id,
            chunk_id,
            document_id=document_id,
            text=text,
            embedding=embedding,
            metadata=metadata,
        )
        return self.client.execute(call)

    def delete_chunk(self, chunk_id: str) -> None:
        self.client.execute(_calls.delete_chunk(self.id, chunk_id))

    # Search and index

    def search(
        self,
        vector: Vector,
        k: int = 10,
        *,
        filter: FilterLike | None = None,
        include: Sequence[Include] | None = None,
        params: Mapping[str, Any] | None = None,
        exact: bool = False,
    ) -> SearchResponse:
        """The ``k`` nearest chunks, best first. ``filter`` is built with ``F`` or a dict;
        ``include`` picks ``text``/``metadata``/``embedding`` (server default: metadata);
        ``params`` overrides ``ef``/``nprobe`` for this query; ``exact`` scans every vector."""
        call = _calls.search(
            self.id,
            vector=vector,
            k=k,
            filter=filter,
            include=include,
            params=params,
            exact=exact,
        )
        return self.client.execute(call)

    def index_status(self) -> IndexStatus:
        return self.client.execute(_calls.index_status(self.id))

    def build_index(self, type: str, **params: Any) -> IndexStatus:
        """Start a background (re)build: ``build_index("ivf", nlist=64)``. Searches use the
        previous index until it is ready; ``wait_for_index`` waits for it."""
        return self.client.execute(_calls.build_index(self.id, type, params))

    def wait_for_index(
        self,
        timeout: float = 300.0,
        poll_interval: float = 0.25,
        on_progress: Callable[[IndexStatus], None] | None = None,
    ) -> IndexStatus:
        """Poll until the index is ready; ``on_progress`` sees every status polled.
        Raises ``WaitTimeoutError`` after ``timeout`` seconds and ``IndexBuildError`` if the
        build failed (the previous index keeps serving)."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.index_status()
            if on_progress is not None:
                on_progress(status)
            if status.ready:
                return ready_or_raise(status)
            if time.monotonic() >= deadline:
                raise WaitTimeoutError(
                    f"index of library {self.id!r} not ready after {timeout}s "
                    f"(progress {status.progress:.0%})"
                )
            time.sleep(poll_interval)
