"""What every method of a library handle stands on: its client, the library as last fetched,
and its id. The resource modules (``documents``, ``chunks``, ``queries``, ``index``) each
add their methods to it; ``library`` puts them together."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from stacksdb_client._core import Call, Plan
from stacksdb_client._surface.client import ClientOps
from stacksdb_client.models import LibraryInfo

T = TypeVar("T")
C = TypeVar("C", bound=ClientOps[Any, Any])
"""A library handle's client type."""


class Handle(Generic[C]):
    """One library of one client; requests go out through the client's session."""

    def __init__(self, client: C, info: LibraryInfo) -> None:
        self.client = client
        self.info = info

    @property
    def id(self) -> str:
        return self.info.id

    def _send(self, call: Call[T]) -> Plan[T]:
        return self.client._send(call)
