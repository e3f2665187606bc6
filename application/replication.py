"""Replication use cases: logging every committed write, applying the log on followers,
and the node's view of who leads.

- ``RecordingUnitOfWork`` wraps the store's unit of work. Services use it unchanged; it
  records each mutation its repositories make and, at ``commit``, appends one ``LogEntry``
  (the next index, the leader's term) in the same transaction, after the fencing check
  (``WriteAuthority.ensure_writable``). So every write, whichever service made it, has a
  log entry iff it committed.
- ``LogApplier`` replays entries on a follower with the same discipline as ``Writer.run``:
  the library's write lock, one unit of work holding the ops and the entry itself (so the
  applied index is persisted with the data), commit, then the live library (labels, index).
- ``NodeState`` is this node's role, term, leader and lease deadline; the election adapter
  updates it, the write path and the HTTP edge read it.
- ``LogFeed`` wakes long-polls when the log grows; ``ReplicaTracker`` counts which
  followers hold which index, for ``--min-replicas`` and for compaction.
"""

from __future__ import annotations

import builtins
import contextlib
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType
from typing import Self

from application.live import LiveLibraries, LiveLibrary
from domain.errors import NotLeader
from domain.models import Chunk, ChunkColumns, Document, IndexSpec, Library, Page
from domain.ports import ChunkRepository, DocumentRepository, LibraryRepository, UnitOfWork
from domain.replication import (
    LogEntry,
    LoggedUnitOfWork,
    LoggedUnitOfWorkFactory,
    LogPosition,
    Op,
    SnapshotRequired,
    WriteAuthority,
    decode_chunks,
    decode_document,
    decode_library,
    delete_chunks_op,
    delete_document_op,
    delete_library_op,
    save_chunks_op,
    save_document_op,
    save_library_op,
)

log = logging.getLogger(__name__)


class Role(StrEnum):
    LEADER = "leader"
    FOLLOWER = "follower"
    CANDIDATE = "candidate"


@dataclass(frozen=True, slots=True)
class Peer:
    node_id: str
    url: str


class NodeState:
    """This node's place in the cluster; thread-safe. Implements ``WriteAuthority``."""

    def __init__(self, node_id: str, url: str, clock: Callable[[], float] = time.monotonic):
        self.node_id = node_id
        self.url = url
        self._clock = clock
        self._mutex = threading.Lock()
        self._role = Role.CANDIDATE
        self._term = 0
        self._leader: Peer | None = None
        self._lease_deadline = 0.0

    def become_leader(self, term: int, lease_deadline: float) -> None:
        with self._mutex:
            self._role = Role.LEADER
            self._term = max(self._term, term)
            self._leader = Peer(self.node_id, self.url)
            self._lease_deadline = lease_deadline

    def renew(self, lease_deadline: float) -> None:
        with self._mutex:
            self._lease_deadline = lease_deadline

    def follow(self, leader: Peer, term: int) -> None:
        with self._mutex:
            self._role = Role.FOLLOWER
            self._term = max(self._term, term)
            self._leader = leader
            self._lease_deadline = 0.0

    def stand(self) -> None:
        """No leader is known: this node is a candidate and accepts no write."""
        with self._mutex:
            self._role = Role.CANDIDATE
            self._leader = None
            self._lease_deadline = 0.0

    def observe_term(self, term: int) -> None:
        with self._mutex:
            self._term = max(self._term, term)

    @property
    def role(self) -> Role:
        with self._mutex:
            return self._role

    @property
    def leader(self) -> Peer | None:
        with self._mutex:
            return self._leader

    def term(self) -> int:
        with self._mutex:
            return self._term

    def is_writable(self) -> bool:
        with self._mutex:
            return self._role is Role.LEADER and self._clock() < self._lease_deadline

    def ensure_writable(self) -> None:
        with self._mutex:
            if self._role is not Role.LEADER:
                raise NotLeader(f"node {self.node_id!r} is a {self._role.value}, not the leader")
            if self._clock() >= self._lease_deadline:
                raise NotLeader(f"node {self.node_id!r} could not renew its leader lease in time")


@dataclass(slots=True)
class WriteReceipt:
    """Filled by the commit of a request's write: the log index it was committed at."""

    index: int | None = None


current_receipt: ContextVar[WriteReceipt | None] = ContextVar("current_receipt", default=None)


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


class _Ops(list[Op]):
    """The mutations a unit of work made since its last commit or rollback."""


class _RecordingLibraries:
    def __init__(self, inner: LibraryRepository, ops: _Ops) -> None:
        self._inner = inner
        self._ops = ops

    def save(self, library: Library) -> None:
        self._inner.save(library)
        self._ops.append(save_library_op(library))

    def get(self, library_id: str) -> Library | None:
        return self._inner.get(library_id)

    def list(self, limit: int, cursor: str | None) -> Page[Library]:
        return self._inner.list(limit, cursor)

    def delete(self, library_id: str) -> None:
        self._inner.delete(library_id)
        self._ops.append(delete_library_op(library_id))

    def counts(self, library_id: str) -> tuple[int, int]:
        return self._inner.counts(library_id)


class _RecordingDocuments:
    def __init__(self, inner: DocumentRepository, ops: _Ops) -> None:
        self._inner = inner
        self._ops = ops

    def save(self, document: Document) -> None:
        self._inner.save(document)
        self._ops.append(save_document_op(document))

    def get(self, library_id: str, document_id: str) -> Document | None:
        return self._inner.get(library_id, document_id)

    def existing_ids(self, library_id: str, document_ids: Iterable[str]) -> set[str]:
        return self._inner.existing_ids(library_id, document_ids)

    def list(self, library_id: str, limit: int, cursor: str | None) -> Page[Document]:
        return self._inner.list(library_id, limit, cursor)

    def delete(self, library_id: str, document_id: str) -> None:
        self._inner.delete(library_id, document_id)
        self._ops.append(delete_document_op(library_id, document_id))

    def chunk_counts(self, library_id: str, document_ids: Sequence[str]) -> dict[str, int]:
        return self._inner.chunk_counts(library_id, document_ids)


class _RecordingChunks:
    def __init__(self, inner: ChunkRepository, ops: _Ops) -> None:
        self._inner = inner
        self._ops = ops

    def save_many(self, chunks: Sequence[Chunk]) -> None:
        self._inner.save_many(chunks)
        by_library: dict[str, list[Chunk]] = defaultdict(list)
        for chunk in chunks:
            by_library[chunk.library_id].append(chunk)
        self._ops.extend(save_chunks_op(lib, group) for lib, group in by_library.items())

    def get(self, library_id: str, chunk_id: str) -> Chunk | None:
        return self._inner.get(library_id, chunk_id)

    def get_many(self, library_id: str, chunk_ids: Sequence[str]) -> dict[str, Chunk]:
        return self._inner.get_many(library_id, chunk_ids)

    def existing_ids(self, library_id: str, chunk_ids: Iterable[str]) -> set[str]:
        return self._inner.existing_ids(library_id, chunk_ids)

    def ids_of_document(self, library_id: str, document_id: str) -> builtins.list[str]:
        return self._inner.ids_of_document(library_id, document_id)

    def list(
        self, library_id: str, limit: int, cursor: str | None, document_id: str | None = None
    ) -> Page[Chunk]:
        return self._inner.list(library_id, limit, cursor, document_id)

    def delete_many(self, library_id: str, chunk_ids: Iterable[str]) -> None:
        ids = builtins.list(chunk_ids)
        self._inner.delete_many(library_id, ids)
        self._ops.append(delete_chunks_op(library_id, ids))

    def scan(self, library_id: str, batch_size: int = 10_000) -> Iterator[builtins.list[Chunk]]:
        return self._inner.scan(library_id, batch_size)

    def scan_columns(self, library_id: str, batch_size: int = 10_000) -> Iterator[ChunkColumns]:
        return self._inner.scan_columns(library_id, batch_size)


class RecordingUnitOfWork:
    """A ``UnitOfWork`` that logs what it commits; see the module docstring."""

    libraries: LibraryRepository
    documents: DocumentRepository
    chunks: ChunkRepository

    def __init__(self, inner: LoggedUnitOfWork, authority: WriteAuthority, feed: LogFeed) -> None:
        self._inner = inner
        self._authority = authority
        self._feed = feed
        self._ops = _Ops()
        self.libraries = _RecordingLibraries(inner.libraries, self._ops)
        self.documents = _RecordingDocuments(inner.documents, self._ops)
        self.chunks = _RecordingChunks(inner.chunks, self._ops)

    def __enter__(self) -> Self:
        self._inner.__enter__()
        self._ops.clear()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._ops.clear()
        self._inner.__exit__(exc_type, exc, tb)

    def commit(self) -> None:
        """Commit the changes with their log entry, or raise ``NotLeader`` and keep nothing."""
        if not self._ops:
            self._inner.commit()
            return
        self._authority.ensure_writable()
        last = self._inner.log.last()
        entry = LogEntry(last.index + 1, self._authority.term(), tuple(self._ops))
        self._inner.log.append(entry)
        self._inner.commit()
        self._ops.clear()
        self._feed.advance(LogPosition(entry.index, entry.term))
        receipt = current_receipt.get()
        if receipt is not None:
            receipt.index = entry.index

    def rollback(self) -> None:
        self._ops.clear()
        self._inner.rollback()


class RecordingUnitOfWorkFactory:
    """A ``UnitOfWorkFactory``: read-only units of work go straight to the store (they
    cannot write, so there is nothing to log); the others record what they commit."""

    def __init__(
        self, inner: LoggedUnitOfWorkFactory, authority: WriteAuthority, feed: LogFeed
    ) -> None:
        self._inner = inner
        self._authority = authority
        self._feed = feed

    def __call__(self, *, read_only: bool = False) -> UnitOfWork:
        if read_only:
            return self._inner(read_only=True)
        return RecordingUnitOfWork(self._inner(), self._authority, self._feed)


class LogGap(Exception):
    """An entry arrived that does not follow the last applied one."""


@dataclass(slots=True)
class _Effect:
    """What an applied op changes in memory once the store has committed it."""

    op: Op
    library: Library | None = None
    chunks: builtins.list[Chunk] | None = None
    removed: builtins.list[str] | None = None
    document: Document | None = None


class LogApplier:
    """Applies leader entries on a follower, in order and idempotently."""

    def __init__(
        self, uow_factory: LoggedUnitOfWorkFactory, live: LiveLibraries, feed: LogFeed
    ) -> None:
        self._uow_factory = uow_factory
        self._live = live
        self._feed = feed

    def position(self) -> LogPosition:
        with self._uow_factory() as uow:
            return uow.log.last()

    def apply(self, entry: LogEntry) -> bool:
        """Apply ``entry``; False if it was already applied. ``LogGap`` if one is missing."""
        touched = sorted({op.library_id for op in entry.ops})
        # Several libraries' locks, taken in id order: the one place that holds more than
        # one, and a fixed order keeps it deadlock-free.
        lives = [live for lib in touched if (live := self._live.find(lib)) is not None]
        with contextlib.ExitStack() as locks:
            for live in lives:
                locks.enter_context(live.lock.write())
            with self._uow_factory() as uow:
                last = uow.log.last()
                if entry.index <= last.index:
                    return False
                if entry.index != last.index + 1:
                    raise LogGap(f"entry {entry.index} does not follow {last.index}")
                effects = [self._store(uow, op) for op in entry.ops]
                uow.log.append(entry)
                uow.commit()
            for effect in effects:
                self._show(effect)
        self._feed.advance(LogPosition(entry.index, entry.term))
        return True

    @staticmethod
    def _store(uow: LoggedUnitOfWork, op: Op) -> _Effect:
        payload = op.payload
        library_id = op.library_id
        match op.kind:
            case "save_library":
                library = decode_library(payload)
                uow.libraries.save(library)
                return _Effect(op, library=library)
            case "delete_library":
                uow.libraries.delete(library_id)
                return _Effect(op)
            case "save_document":
                document = decode_document(payload)
                uow.documents.save(document)
                return _Effect(op, document=document)
            case "delete_document":
                removed = uow.chunks.ids_of_document(library_id, payload["id"])
                uow.documents.delete(library_id, payload["id"])
                return _Effect(op, removed=removed)
            case "save_chunks":
                chunks = decode_chunks(payload)
                uow.chunks.save_many(chunks)
                return _Effect(op, chunks=chunks)
            case "delete_chunks":
                ids = [str(i) for i in payload["ids"]]
                uow.chunks.delete_many(library_id, ids)
                return _Effect(op, removed=ids)
        raise ValueError(f"unknown log op {op.kind!r}")

    def _show(self, effect: _Effect) -> None:
        library_id = effect.op.library_id
        if effect.op.kind == "delete_library":
            dropped = self._live.find(library_id)
            if dropped is not None:
                dropped.dropped = True
                self._live.discard(library_id)
            return
        if effect.library is not None:
            self._show_library(effect.library)
            return
        live = self._live.find(library_id)
        if live is None:
            return
        if effect.removed:
            live.remove(effect.removed)
        if effect.op.kind == "delete_document":
            live.forget_documents([effect.op.payload["id"]])
        if effect.document is not None:
            live.save_documents([effect.document])
        if effect.chunks:
            live.upsert(effect.chunks)

    def _show_library(self, library: Library) -> None:
        live = self._live.find(library.id)
        if live is None:
            self._live.add(LiveLibrary(library))
            return
        previous = live.library.index
        live.library = library
        if library.index != previous:
            _rebuild_in_background(live, library.index)


def _rebuild_in_background(live: LiveLibrary, spec: IndexSpec) -> None:
    """Follow the leader's index change: build ``spec`` off the lock, swap it in under it
    (the spec itself reached the store through the log). The caller holds the write lock."""
    pending = live.start_build(spec)
    threading.Thread(
        target=live.build, args=(pending,), name="follower-index-build", daemon=True
    ).start()


def compact_log(uow_factory: LoggedUnitOfWorkFactory, through: int) -> int:
    """Forget the log entries up to ``through``; how many went."""
    if through <= 0:
        return 0
    with uow_factory() as uow:
        removed = uow.log.compact(through)
        uow.commit()
    return removed


@dataclass(frozen=True, slots=True)
class LogBatch:
    """What a follower's pull gets: the leader's term and position, and entries."""

    term: int
    last_index: int
    entries: builtins.list[LogEntry]


class LogServer:
    """The leader's side of log shipping (``GET /v1/cluster/log``)."""

    def __init__(
        self,
        uow_factory: LoggedUnitOfWorkFactory,
        state: NodeState,
        feed: LogFeed,
        tracker: ReplicaTracker,
    ) -> None:
        self._uow_factory = uow_factory
        self._state = state
        self._feed = feed
        self._tracker = tracker

    def pull(self, node_id: str, after: int, after_term: int, wait: float, limit: int) -> LogBatch:
        """Entries after ``after``, waiting up to ``wait`` seconds for one to come.

        The follower says where its log ends, (``after``, ``after_term``); that position
        must be in the leader's log, or ``SnapshotRequired``. Once checked, the follower
        counts as holding ``after`` (for ``--min-replicas`` and compaction).
        """
        self._state.ensure_writable()
        entries = self._read(node_id, after, after_term, limit)
        if not entries and wait > 0:
            self._feed.wait_beyond(after, wait)
            entries = self._read(node_id, after, after_term, limit)
        return LogBatch(self._state.term(), self._feed.position.index, entries)

    def _read(self, node_id: str, after: int, after_term: int, limit: int) -> list[LogEntry]:
        with self._uow_factory() as uow:
            last = uow.log.last()
            if after < uow.log.first_index() - 1:
                raise SnapshotRequired(f"entries after {after} were compacted away")
            if after > last.index:
                raise SnapshotRequired(
                    f"the follower is at {after}, past the leader's {last.index}"
                )
            term = uow.log.term_at(after)
            if term is None:
                raise SnapshotRequired(f"entry {after} was compacted away on the leader")
            if term != after_term:
                raise SnapshotRequired(
                    f"the follower's entry {after} has term {after_term}, the leader's {term}"
                )
            entries = uow.log.entries_after(after, limit)
        self._tracker.acknowledge(node_id, after)
        return entries


@dataclass(frozen=True, slots=True)
class Member:
    node_id: str
    url: str
    role: str
    applied_index: int


@dataclass(frozen=True, slots=True)
class ClusterStatus:
    node_id: str
    role: Role
    leader: Peer | None
    term: int
    applied_index: int
    nodes: builtins.list[Member]


class ClusterService:
    """What ``GET /v1/cluster`` reports. ``members`` is set by the election adapter when
    the node joins a cluster; a standalone node lists itself."""

    def __init__(self, state: NodeState, feed: LogFeed) -> None:
        self._state = state
        self._feed = feed
        self.members: Callable[[], builtins.list[Member]] | None = None

    def status(self) -> ClusterStatus:
        state = self._state
        applied = self._feed.position.index
        if self.members is None:
            nodes = [Member(state.node_id, state.url, state.role.value, applied)]
        else:
            nodes = self.members()
        return ClusterStatus(state.node_id, state.role, state.leader, state.term(), applied, nodes)
