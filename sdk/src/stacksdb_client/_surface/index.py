"""A library handle's vector index: its status, a background (re)build, and waiting for it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from stacksdb_client import _calls
from stacksdb_client._core import Plan, Sleep, ready_or_raise
from stacksdb_client._sides import operation
from stacksdb_client._surface.handle import C, Handle
from stacksdb_client.errors import WaitTimeoutError
from stacksdb_client.models import IndexStatus


class IndexOps(Handle[C]):
    """The index methods of ``Library`` and ``AsyncLibrary``."""

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
