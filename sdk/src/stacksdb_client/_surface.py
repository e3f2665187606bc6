"""The methods of both clients, each written once as a plan (see ``_core`` and ``_sides``).

``StacksDB``/``Library`` and ``AsyncStacksDB``/``AsyncLibrary`` inherit every method from
``ClientOps`` and ``LibraryOps``; each client only says how to run a plan (``SyncSide._run``
or ``AsyncSide._run``). Most of this module is the public signatures and their docstrings.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import (
    Callable,
    Iterable,
    Mapping,
    Sequence,
    Sized,
)
from typing import Any, Generic, TypeVar

import httpx

from stacksdb_client import _calls
from stacksdb_client._core import (
    Call,
    ClusterState,
    HttpOptions,
    Plan,
    RetryPolicy,
    Session,
    Sleep,
    Vector,
    Vectors,
    as_policy,
    http_options,
    ready_or_raise,
    send,
)
from stacksdb_client._sides import Pager, operation, paged
from stacksdb_client.errors import WaitTimeoutError
from stacksdb_client.filters import FilterLike
from stacksdb_client.models import (
    Chunk,
    Document,
    Hybrid,
    Include,
    IndexStatus,
    LibraryInfo,
    Metric,
    Page,
    SearchMode,
    SearchResponse,
)

T = TypeVar("T")
L = TypeVar("L")
"""A client's library handle type (``Library`` or ``AsyncLibrary``)."""
H = TypeVar("H")
"""A library handle's own type, so that ``refresh`` and ``update`` return it."""
C = TypeVar("C", bound="ClientOps[Any, Any]")
"""A library handle's client type."""
TransportT = TypeVar("TransportT")

ProgressCallback = Callable[[int, int | None], None]
"""Called after each batch with (chunks written so far, total or None if unknown)."""


class Progress:
    """Counts written chunks and reports them to an ``on_progress`` callback."""

    def __init__(self, chunks: Iterable[Any], on_progress: ProgressCallback | None) -> None:
        self.total = len(chunks) if isinstance(chunks, Sized) else None
        self.done = 0
        self._report = on_progress

    def advance(self, written: int) -> None:
        self.done += written
        if self._report is not None:
            self._report(self.done, self.total)


class ClientOps(ABC, Generic[L, TransportT]):
    """The client's methods, shared by ``StacksDB`` and ``AsyncStacksDB``."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        *,
        api_key: str | None = None,
        timeout: float | httpx.Timeout | None = 30.0,
        retries: int | RetryPolicy = 3,
        read_your_writes: bool = False,
        transport: TransportT | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retry_policy = as_policy(retries)
        self.cluster = ClusterState(read_your_writes=read_your_writes)
        http = self._connect(http_options(self.base_url, api_key, timeout), transport)
        self._session = Session(http, self.retry_policy, self.cluster)

    @abstractmethod
    def _connect(
        self, options: HttpOptions, transport: TransportT | None
    ) -> httpx.Client | httpx.AsyncClient:
        """Open this client's httpx client."""

    @abstractmethod
    def _library(self, info: LibraryInfo) -> L:
        """A library handle of this client."""

    @property
    def last_index(self) -> int | None:
        """The highest ``X-StacksDB-Index`` seen in an answer (None until a server sends it)."""
        return self.cluster.last_index

    def _send(self, call: Call[T]) -> Plan[T]:
        return send(self._session, call)

    # Libraries

    @operation
    def create_library(
        self,
        name: str,
        dimension: int | None = None,
        *,
        embedder: Mapping[str, Any] | None = None,
        metric: Metric | None = None,
        index: Mapping[str, Any] | str | None = None,
        description: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        id: str | None = None,
        text_index: Mapping[str, Any] | str | None = None,
    ) -> Plan[L]:
        """Create a library; ``index`` is ``"ivf"`` or ``{"type": "hnsw", "params": {...}}``.
        ``embedder`` (``{"provider": "minilm"}``, ``{"provider": "openai", "url": ...,
        "model": ..., "api_key_env": ...}`` or ``{"provider": "cohere", ...}``) lets the
        server embed texts; ``dimension`` may then be left out. ``text_index`` is the keyword
        index: ``{"type": "bm25", "params": {"k1": 1.2, "b": 0.75, "language": "english"}}``
        (the default; language ``"none"`` only lowercases) or ``{"type": "none"}``; a bare
        type name (``"none"``, ``"bm25"``) means that type with its default params. With
        ``id`` the create is idempotent (retried safely; 409 if the id is taken)."""
        call = _calls.create_library(
            name=name,
            dimension=dimension,
            embedder=embedder,
            metric=metric,
            index=index,
            description=description,
            metadata=metadata,
            id=id,
            text_index=text_index,
        )
        return self._library((yield from self._send(call)))

    @operation
    def get_library(self, library_id: str) -> Plan[L]:
        return self._library((yield from self._send(_calls.get_library(library_id))))

    @operation
    def list_libraries(
        self, *, limit: int | None = None, cursor: str | None = None
    ) -> Plan[Page[L]]:
        """One page of libraries; ``iter_libraries`` walks them all."""
        return self._library_page(limit, cursor)

    @paged
    def iter_libraries(self, *, page_size: int | None = None) -> Pager[L]:
        """Every library, following ``next_cursor`` page by page."""
        return lambda cursor: self._library_page(page_size, cursor)

    def _library_page(self, limit: int | None, cursor: str | None) -> Plan[Page[L]]:
        page = yield from self._send(_calls.list_libraries(limit, cursor))
        return Page([self._library(info) for info in page.items], page.next_cursor)

    @operation
    def update_library(
        self,
        library_id: str,
        *,
        name: str | None = None,
        description: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        text_index: Mapping[str, Any] | str | None = None,
    ) -> Plan[L]:
        """Change a library's fields; a new ``text_index`` is rebuilt in the background (the
        previous one answers keyword searches meanwhile; ``{"type": "none"}`` drops it)."""
        call = _calls.update_library(
            library_id,
            name=name,
            description=description,
            metadata=metadata,
            text_index=text_index,
        )
        return self._library((yield from self._send(call)))

    @operation
    def delete_library(self, library_id: str) -> Plan[None]:
        """Delete a library with its documents and chunks."""
        return self._send(_calls.delete_library(library_id))


class LibraryOps(ABC, Generic[C, H]):
    """The library handle's methods, shared by ``Library`` and ``AsyncLibrary``."""

    def __init__(self, client: C, info: LibraryInfo) -> None:
        self.client = client
        self.info = info

    def __repr__(self) -> str:
        kind = type(self).__name__
        return f"{kind}(id={self.id!r}, name={self.name!r}, dimension={self.dimension})"

    @abstractmethod
    def _itself(self) -> H:
        """This handle, as its own class (what ``refresh`` and ``update`` return)."""

    def _send(self, call: Call[T]) -> Plan[T]:
        return self.client._send(call)

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
    def embedder(self) -> dict[str, Any] | None:
        """The spec of the library's embedder, None if it has none."""
        return self.info.embedder

    @property
    def text_index(self) -> dict[str, Any]:
        """The keyword index spec: ``{"type": "bm25", "params": {...}}`` or ``{"type": "none"}``."""
        return self.info.text_index

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

    @operation
    def refresh(self) -> Plan[H]:
        self.info = yield from self._send(_calls.get_library(self.id))
        return self._itself()

    @operation
    def update(
        self,
        *,
        name: str | None = None,
        description: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        text_index: Mapping[str, Any] | str | None = None,
    ) -> Plan[H]:
        """Change this library's fields (see ``update_library``)."""
        call = _calls.update_library(
            self.id,
            name=name,
            description=description,
            metadata=metadata,
            text_index=text_index,
        )
        self.info = yield from self._send(call)
        return self._itself()

    @operation
    def delete(self) -> Plan[None]:
        return self._send(_calls.delete_library(self.id))

    # Documents

    @operation
    def create_document(
        self,
        *,
        id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        chunks: Sequence[Mapping[str, Any]] | None = None,
    ) -> Plan[Document]:
        """Create a document, optionally with its chunks (``text``, ``embedding``, ...)."""
        return self._send(_calls.create_document(self.id, id=id, metadata=metadata, chunks=chunks))

    @operation
    def get_document(self, document_id: str) -> Plan[Document]:
        return self._send(_calls.get_document(self.id, document_id))

    @operation
    def list_documents(
        self, *, limit: int | None = None, cursor: str | None = None
    ) -> Plan[Page[Document]]:
        return self._send(_calls.list_documents(self.id, limit, cursor))

    @paged
    def iter_documents(self, *, page_size: int | None = None) -> Pager[Document]:
        return lambda cursor: self._send(_calls.list_documents(self.id, page_size, cursor))

    @operation
    def update_document(self, document_id: str, metadata: Mapping[str, Any]) -> Plan[Document]:
        """Replace a document's metadata."""
        return self._send(_calls.update_document(self.id, document_id, metadata))

    @operation
    def delete_document(self, document_id: str) -> Plan[None]:
        """Delete a document with its chunks."""
        return self._send(_calls.delete_document(self.id, document_id))

    # Chunks

    @operation
    def add_chunk(
        self,
        document_id: str,
        text: str,
        embedding: Vector | None = None,
        *,
        metadata: Mapping[str, Any] | None = None,
        id: str | None = None,
    ) -> Plan[Chunk]:
        """Create one chunk (its document is created if it does not exist); without
        ``embedding`` the library's embedder makes it from ``text``."""
        call = _calls.create_chunk(
            self.id,
            document_id=document_id,
            text=text,
            embedding=embedding,
            metadata=metadata,
            id=id,
        )
        return self._send(call)

    @operation
    def add_texts(
        self,
        texts: Sequence[str],
        *,
        document_id: str | Sequence[str],
        metadatas: Sequence[Mapping[str, Any] | None] | None = None,
        ids: Sequence[str] | None = None,
        batch_size: int = 500,
        upsert: bool = False,
        on_progress: ProgressCallback | None = None,
    ) -> Plan[list[Chunk]]:
        """Write ``texts`` as chunks without embeddings, which the library's embedder makes
        on the server (the library needs one). ``document_id`` is one id for every text or
        one per text; ``metadatas`` and ``ids`` (optional) go by position. Batches as
        ``add_chunks`` does, each all or nothing."""
        chunks = _calls.text_chunks(texts, document_id, metadatas, ids)
        return self._add_batches(chunks, None, batch_size, upsert, on_progress)

    @operation
    def embed(self, texts: Sequence[str], *, purpose: str = "document") -> Plan[list[list[float]]]:
        """The vectors the library's embedder makes for ``texts``, one per text, in order;
        ``purpose="query"`` for search queries (asymmetric models embed them differently)."""
        return self._send(_calls.embed(self.id, texts, purpose))

    def _add_batches(
        self,
        chunks: Iterable[Mapping[str, Any]],
        embeddings: Vectors | None,
        batch_size: int,
        upsert: bool,
        on_progress: ProgressCallback | None,
    ) -> Plan[list[Chunk]]:
        """``add_chunks`` one batch after another."""
        progress = Progress(chunks, on_progress)
        written: list[Chunk] = []
        for batch in _calls.chunk_batches(chunks, embeddings, batch_size):
            items = yield from self._write_batch(batch, upsert)
            written.extend(items)
            progress.advance(len(items))
        return written

    def _write_batch(self, batch: list[dict[str, Any]], upsert: bool) -> Plan[list[Chunk]]:
        return self._send(_calls.write_chunks(self.id, batch, upsert))

    @operation
    def get_chunk(self, chunk_id: str) -> Plan[Chunk]:
        """One chunk, with its embedding."""
        return self._send(_calls.get_chunk(self.id, chunk_id))

    @operation
    def list_chunks(
        self,
        *,
        document_id: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        include_embedding: bool = False,
    ) -> Plan[Page[Chunk]]:
        call = _calls.list_chunks(
            self.id,
            document_id=document_id,
            limit=limit,
            cursor=cursor,
            include_embedding=include_embedding,
        )
        return self._send(call)

    @paged
    def iter_chunks(
        self,
        document_id: str | None = None,
        *,
        include_embedding: bool = False,
        page_size: int | None = None,
    ) -> Pager[Chunk]:
        """Every chunk (of one document, if given), following ``next_cursor``."""
        return lambda cursor: self._send(
            _calls.list_chunks(
                self.id,
                document_id=document_id,
                limit=page_size,
                cursor=cursor,
                include_embedding=include_embedding,
            )
        )

    @operation
    def update_chunk(
        self,
        chunk_id: str,
        *,
        text: str | None = None,
        embedding: Vector | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Plan[Chunk]:
        """Change some fields of a chunk (PATCH); the others stay."""
        call = _calls.update_chunk(
            self.id, chunk_id, text=text, embedding=embedding, metadata=metadata
        )
        return self._send(call)

    @operation
    def put_chunk(
        self,
        chunk_id: str,
        *,
        document_id: str,
        text: str,
        embedding: Vector | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Plan[Chunk]:
        """Create or replace the chunk with this id (PUT, an upsert); without ``embedding``
        the library's embedder makes it."""
        call = _calls.put_chunk(
            self.id,
            chunk_id,
            document_id=document_id,
            text=text,
            embedding=embedding,
            metadata=metadata,
        )
        return self._send(call)

    @operation
    def delete_chunk(self, chunk_id: str) -> Plan[None]:
        return self._send(_calls.delete_chunk(self.id, chunk_id))

    # Search and index

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
        call = _calls.search(
            self.id,
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
        return self._send(call)

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
    def delete_where(self, filter: FilterLike) -> Plan[int]:
        """Delete every chunk matching ``filter`` in one all-or-nothing write; answers how
        many were deleted."""
        return self._send(_calls.delete_where(self.id, filter))

    @operation
    def index_status(self) -> Plan[IndexStatus]:
        return self._send(_calls.index_status(self.id))

    @operation
    def build_index(self, /, type: str, **params: Any) -> Plan[IndexStatus]:
        # ``self`` is positional-only so that the ParamSpec of ``**params`` cannot bind it.
        """Start a background (re)build: ``build_index("ivf", nlist=64)``. Searches use the
        previous index until it is ready; ``wait_for_index`` waits for it."""
        return self._send(_calls.build_index(self.id, type, params))

    @operation
    def wait_for_index(
        self,
        timeout: float = 300.0,
        poll_interval: float = 0.25,
        on_progress: Callable[[IndexStatus], None] | None = None,
    ) -> Plan[IndexStatus]:
        """Poll until the index is ready; ``on_progress`` sees every status polled.
        Raises ``WaitTimeoutError`` after ``timeout`` seconds and ``IndexBuildError`` if the
        build failed (the previous index keeps serving)."""
        deadline = time.monotonic() + timeout
        while True:
            status = yield from self._send(_calls.index_status(self.id))
            if on_progress is not None:
                on_progress(status)
            if status.ready:
                return ready_or_raise(status)
            if time.monotonic() >= deadline:
                raise WaitTimeoutError(
                    f"index of library {self.id!r} not ready after {timeout}s "
                    f"(progress {status.progress:.0%})"
                )
            yield Sleep(poll_interval)
