"""The client's own methods, shared by ``StacksDB`` and ``AsyncStacksDB``: the connection,
and the libraries (create, get, list, update, delete)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
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
    as_policy,
    http_options,
    send,
)
from stacksdb_client._sides import Pager, operation, paged
from stacksdb_client.models import LibraryInfo, Metric, Page

T = TypeVar("T")
L = TypeVar("L")
"""A client's library handle type (``Library`` or ``AsyncLibrary``)."""
TransportT = TypeVar("TransportT")


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
