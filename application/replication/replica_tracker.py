"""The leader's view of which log index each follower holds."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class ReplicaTracker:
    """What each follower holds, as it tells the leader by pulling ``after=N``."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._cond = threading.Condition()
        self._clock = clock
        self._acked: dict[str, tuple[int, float]] = {}

    def acknowledge(self, node_id: str, index: int) -> None:
        with self._cond:
            self._acked[node_id] = (index, self._clock())
            self._cond.notify_all()

    def forget_all(self) -> None:
        with self._cond:
            self._acked.clear()

    def acked(self, max_age: float) -> dict[str, int]:
        """Followers heard from in the last ``max_age`` seconds, with their index."""
        now = self._clock()
        with self._cond:
            return {n: i for n, (i, at) in self._acked.items() if now - at <= max_age}

    def wait_replicated(self, index: int, replicas: int, timeout: float) -> bool:
        """Whether ``replicas`` followers hold ``index`` within ``timeout`` seconds."""
        if replicas <= 0:
            return True
        deadline = time.monotonic() + timeout
        with self._cond:
            while sum(1 for i, _ in self._acked.values() if i >= index) < replicas:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True
