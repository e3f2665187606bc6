"""``MemoryTransaction``: the state one unit of work shares with its repositories."""

from __future__ import annotations

from collections.abc import Callable

from adapters.persistence.errors import InactiveUnitOfWork, ReadOnlyUnitOfWork
from adapters.persistence.memory.store import MemoryStore


class MemoryTransaction:
    """Mode, activity and undo journal of one ``MemoryUnitOfWork``.

    Writes go straight into the store; each records its inverse in ``undo``, which
    ``commit`` forgets and ``rollback`` replays backwards.
    """

    def __init__(self, store: MemoryStore, read_only: bool) -> None:
        self.store = store
        self.read_only = read_only
        self.active = False
        # Inverse operations, newest last; their results are ignored.
        self.undo: list[Callable[[], object]] = []

    def reading(self) -> MemoryStore:
        if not self.active:
            raise InactiveUnitOfWork()
        return self.store

    def writing(self) -> MemoryStore:
        store = self.reading()
        if self.read_only:
            raise ReadOnlyUnitOfWork()
        return store
