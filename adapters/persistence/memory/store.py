"""The in-memory store's tables: ``MemoryStore`` and the seq-ordered tables it is made of.

Every listing pages by insertion order with the same keyset cursors as the SQLite
adapter, so each table keeps its values by id and in ``seq`` order (``SeqTable``).
"""

from __future__ import annotations

import bisect
import dataclasses
import threading
from typing import Generic, TypeVar

from domain.models import Chunk, Document, Library

V = TypeVar("V")


class SeqTable(Generic[V]):
    """Values keyed by id and ordered by ``seq``, for keyset pagination in O(log n + page).

    Replacing a value keeps its ``seq`` (its place in listings). ``_order`` is a sorted
    list of seqs that may still hold those of removed keys; they are skipped when paging
    and swept out once they outnumber the live ones, so removal stays O(1) amortised.
    """

    __slots__ = ("_ids_by_seq", "_items", "_order")

    def __init__(self) -> None:
        self._items: dict[str, tuple[int, V]] = {}
        self._ids_by_seq: dict[int, str] = {}
        self._order: list[int] = []

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: str) -> bool:
        return key in self._items

    def get(self, key: str) -> tuple[int, V] | None:
        return self._items.get(key)

    def put(self, key: str, value: V, seq: int) -> int:
        """Insert ``key`` at ``seq``, or replace its value in place; returns its seq."""
        current = self._items.get(key)
        if current is not None:
            self._items[key] = (current[0], value)
            return current[0]
        self._items[key] = (seq, value)
        self._ids_by_seq[seq] = key
        if not self._order or seq > self._order[-1]:
            self._order.append(seq)
            return seq
        # Only an undo restores an old seq; it may still sit in _order as a dead entry.
        at = bisect.bisect_left(self._order, seq)
        if at == len(self._order) or self._order[at] != seq:
            self._order.insert(at, seq)
        return seq

    def pop(self, key: str) -> tuple[int, V] | None:
        entry = self._items.pop(key, None)
        if entry is None:
            return None
        del self._ids_by_seq[entry[0]]
        if len(self._order) > 2 * len(self._items) + 64:
            self._order = [s for s in self._order if s in self._ids_by_seq]
        return entry

    def after(self, seq: int, limit: int) -> list[tuple[int, str, V]]:
        """Up to ``limit`` live (seq, key, value) triples with a seq above ``seq``."""
        found: list[tuple[int, str, V]] = []
        at = bisect.bisect_right(self._order, seq)
        while at < len(self._order) and len(found) < limit:
            s = self._order[at]
            at += 1
            key = self._ids_by_seq.get(s)
            if key is not None:
                found.append((s, key, self._items[key][1]))
        return found

    def keys_in_order(self) -> list[str]:
        return [self._ids_by_seq[s] for s in self._order if s in self._ids_by_seq]


@dataclasses.dataclass(slots=True)
class LibraryData:
    """Everything stored under one library; dropping it is the cascade of a delete."""

    documents: SeqTable[Document] = dataclasses.field(default_factory=SeqTable)
    chunks: SeqTable[Chunk] = dataclasses.field(default_factory=SeqTable)
    # document id -> the ids of its chunks, each at the chunk's own seq, so a document's
    # chunks page in the same order as the library's.
    chunks_by_document: dict[str, SeqTable[None]] = dataclasses.field(default_factory=dict)


class MemoryStore:
    """The data of the in-memory adapter, shared by every ``MemoryUnitOfWork`` over it.

    Only a unit of work (through its repositories) reads or writes it, and only while
    holding ``lock``.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.libraries: SeqTable[Library] = SeqTable()
        self.data: dict[str, LibraryData] = {}
        self._last_seq = 0

    def next_seq(self) -> int:
        self._last_seq += 1
        return self._last_seq
