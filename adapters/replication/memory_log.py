"""The replication log for the in-memory store (``--storage memory``), so a standalone
memory-only node answers ``X-StacksDB-Index`` like a SQLite one. Not for clusters."""

from __future__ import annotations

import bisect

from adapters.persistence.memory import MemoryStore, MemoryUnitOfWork
from domain.replication import LogEntry, LoggedUnitOfWorkFactory, LogPosition, LogRepository


class MemoryLog:
    """Entries kept in a list; only used under the store's lock (a unit of work holds it)."""

    def __init__(self) -> None:
        self.entries: list[LogEntry] = []
        self.position = LogPosition()


class MemoryLogRepository:
    """``LogRepository`` over a ``MemoryLog``. The unit of work appends right before its
    commit, which cannot fail in memory, so the entry and the data go together."""

    def __init__(self, log: MemoryLog) -> None:
        self._log = log

    def append(self, entry: LogEntry) -> None:
        if entry.index != self._log.position.index + 1:
            raise ValueError(f"log entry {entry.index} does not follow {self._log.position.index}")
        self._log.entries.append(entry)
        self._log.position = LogPosition(entry.index, entry.term)

    def last(self) -> LogPosition:
        return self._log.position

    def first_index(self) -> int:
        entries = self._log.entries
        return entries[0].index if entries else self._log.position.index + 1

    def term_at(self, index: int) -> int | None:
        if index == 0:
            return 0
        at = self._find(index)
        return None if at is None else self._log.entries[at].term

    def entries_after(self, index: int, limit: int) -> list[LogEntry]:
        keys = [e.index for e in self._log.entries]
        start = bisect.bisect_right(keys, index)
        return self._log.entries[start : start + limit]

    def compact(self, through: int) -> int:
        keys = [e.index for e in self._log.entries]
        cut = bisect.bisect_right(keys, through)
        del self._log.entries[:cut]
        return cut

    def _find(self, index: int) -> int | None:
        keys = [e.index for e in self._log.entries]
        at = bisect.bisect_left(keys, index)
        return at if at < len(keys) and keys[at] == index else None


class LoggedMemoryUnitOfWork(MemoryUnitOfWork):
    """A ``MemoryUnitOfWork`` with a ``log`` repository (``LoggedUnitOfWork``)."""

    log: LogRepository

    def __init__(self, store: MemoryStore, log: MemoryLog, *, read_only: bool = False) -> None:
        super().__init__(store, read_only=read_only)
        self.log = MemoryLogRepository(log)


def memory_uow_factory(store: MemoryStore, log: MemoryLog) -> LoggedUnitOfWorkFactory:
    def open_unit(*, read_only: bool = False) -> LoggedMemoryUnitOfWork:
        return LoggedMemoryUnitOfWork(store, log, read_only=read_only)

    return open_unit
