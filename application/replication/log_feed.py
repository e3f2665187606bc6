"""The newest position of this node's log, with waiting for it to grow."""

from __future__ import annotations

import threading
import time

from domain.replication import LogPosition


class LogFeed:
    """The newest log position, with waiting: long-polls and ``min_index`` reads block on it."""

    def __init__(self, position: LogPosition | None = None) -> None:
        self._cond = threading.Condition()
        self._position = position or LogPosition()

    @property
    def position(self) -> LogPosition:
        with self._cond:
            return self._position

    def advance(self, position: LogPosition) -> None:
        with self._cond:
            if position.index >= self._position.index:
                self._position = position
                self._cond.notify_all()

    def reset(self, position: LogPosition) -> None:
        """After a snapshot restore the position may go back; waiters re-check."""
        with self._cond:
            self._position = position
            self._cond.notify_all()

    def wait_beyond(self, index: int, timeout: float) -> LogPosition:
        """Block until the log passes ``index`` or ``timeout`` seconds pass; the position."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._position.index <= index:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            return self._position

    def wait_for(self, index: int, timeout: float) -> bool:
        """Whether the log reached ``index`` within ``timeout`` seconds."""
        return self.wait_beyond(index - 1, timeout).index >= index
