"""The leader's side of log shipping, and log compaction."""

from __future__ import annotations

import builtins
from dataclasses import dataclass

from application.replication.log_feed import LogFeed
from application.replication.node_state import NodeState
from application.replication.replica_tracker import ReplicaTracker
from domain.replication import LogEntry, LoggedUnitOfWorkFactory, StoreSnapshotRequired


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
        must be in the leader's log, or ``StoreSnapshotRequired``. Once checked, the follower
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
                raise StoreSnapshotRequired(f"entries after {after} were compacted away")
            if after > last.index:
                raise StoreSnapshotRequired(
                    f"the follower is at {after}, past the leader's {last.index}"
                )
            term = uow.log.term_at(after)
            if term is None:
                raise StoreSnapshotRequired(f"entry {after} was compacted away on the leader")
            if term != after_term:
                raise StoreSnapshotRequired(
                    f"the follower's entry {after} has term {after_term}, the leader's {term}"
                )
            entries = uow.log.entries_after(after, limit)
        self._tracker.acknowledge(node_id, after)
        return entries


def compact_log(uow_factory: LoggedUnitOfWorkFactory, through: int) -> int:
    """Forget the log entries up to ``through``; how many went."""
    if through <= 0:
        return 0
    with uow_factory() as uow:
        removed = uow.log.compact(through)
        uow.commit()
    return removed
