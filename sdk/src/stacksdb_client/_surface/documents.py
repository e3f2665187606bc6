"""A library handle's documents: create (with chunks), get, list, walk, update, delete."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from stacksdb_client import _calls
from stacksdb_client._core import Plan
from stacksdb_client._sides import Pager, operation, paged
from stacksdb_client._surface.handle import C, Handle
from stacksdb_client.models import Document, Page


class DocumentOps(Handle[C]):
    """The document methods of ``Library`` and ``AsyncLibrary``."""

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
