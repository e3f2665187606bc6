"""The library handle, shared by ``Library`` and ``AsyncLibrary``: the library's own fields,
refresh, update and delete, with the methods of its documents, chunks, queries and index."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, Generic, TypeVar

from stacksdb_client import _calls
from stacksdb_client._core import Plan
from stacksdb_client._sides import operation
from stacksdb_client._surface.chunks import ChunkOps
from stacksdb_client._surface.documents import DocumentOps
from stacksdb_client._surface.handle import C
from stacksdb_client._surface.index import IndexOps
from stacksdb_client._surface.queries import QueryOps
from stacksdb_client.models import Metric

H = TypeVar("H")
"""A library handle's own type, so that ``refresh`` and ``update`` return it."""


class LibraryOps(DocumentOps[C], ChunkOps[C], QueryOps[C], IndexOps[C], ABC, Generic[C, H]):
    """The library handle's methods, shared by ``Library`` and ``AsyncLibrary``."""

    def __repr__(self) -> str:
        kind = type(self).__name__
        return f"{kind}(id={self.id!r}, name={self.name!r}, dimension={self.dimension})"

    @abstractmethod
    def _itself(self) -> H:
        """This handle, as its own class (what ``refresh`` and ``update`` return)."""

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
