"""The follower's side of log shipping: pull entries from the leader over HTTP and apply them.

The loop long-polls ``GET {leader}/v1/cluster/log?after=N&term=T&wait=W``: each pull both
asks for what follows N and tells the leader that N is durable here (``--min-replicas``).
Entries are applied one by one through ``LogApplier`` (in order, idempotently, with the
applied index persisted in the same transaction). Entries from a leader whose term is older
than one this node has seen are refused. When the leader answers 409 (this node's position
was compacted away, or it diverged), the node restores a snapshot of the leader's store,
reloads its in-memory libraries and carries on from the snapshot's position.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from pathlib import Path

import httpx

from adapters.replication.store_snapshot import restore_snapshot
from application.live import LiveLibraries
from application.replication import LogApplier, LogFeed, NodeState, Role
from domain.ports import UnitOfWorkFactory
from domain.replication import LogEntry

log = logging.getLogger(__name__)


class Follower:
    def __init__(
        self,
        state: NodeState,
        applier: LogApplier,
        feed: LogFeed,
        live: LiveLibraries,
        uow_factory: UnitOfWorkFactory,
        database: Path | None,
        headers: dict[str, str],
        wait: float = 2.0,
        batch: int = 100,
    ) -> None:
        self._state = state
        self._applier = applier
        self._feed = feed
        self._live = live
        self._uow_factory = uow_factory
        self._database = database
        self._headers = headers
        self._wait = wait
        self._batch = batch
        self.leader_index = 0
        self.last_contact = 0.0
        self.snapshots_restored = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="log-follower", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self._wait + 5)

    @property
    def lag(self) -> int:
        """Entries the leader had, at the last pull, that this node has not applied."""
        if self._state.role is not Role.FOLLOWER:
            return 0
        return max(0, self.leader_index - self._feed.position.index)

    def _run(self) -> None:
        with httpx.Client(headers=self._headers, timeout=self._wait + 10) as http:
            while not self._stop.is_set():
                leader = self._state.leader
                if self._state.role is not Role.FOLLOWER or leader is None:
                    self._stop.wait(0.05)
                    continue
                try:
                    self._pull(http, leader.url)
                except (httpx.HTTPError, ValueError) as exc:
                    log.warning("pull from %s failed: %s", leader.url, exc)
                    self._stop.wait(0.2)

    def _pull(self, http: httpx.Client, leader_url: str) -> None:
        position = self._applier.position()
        response = http.get(
            f"{leader_url}/v1/cluster/log",
            params={
                "after": position.index,
                "term": position.term,
                "wait": self._wait,
                "limit": self._batch,
                "node_id": self._state.node_id,
            },
        )
        if response.status_code == httpx.codes.CONFLICT:
            log.info("log position %s unusable on the leader: restoring a snapshot", position)
            self._restore(http, leader_url)
            return
        if response.status_code != httpx.codes.OK:
            self._stop.wait(0.2)
            return
        body = response.json()
        term = int(body["term"])
        if term < self._state.term():
            log.warning("refusing entries from term %d, older than %d", term, self._state.term())
            self._stop.wait(0.2)
            return
        self._state.observe_term(term)
        self.leader_index = int(body["last_index"])
        self.last_contact = time.monotonic()
        for raw in body["entries"]:
            entry = LogEntry.from_json(raw)
            if entry.term > term:
                raise ValueError(f"entry {entry.index} has a term above its leader's")
            self._applier.apply(entry)

    def _restore(self, http: httpx.Client, leader_url: str) -> None:
        if self._database is None:
            raise ValueError("snapshots need the SQLite store")
        target = self._database.parent / "incoming-snapshot.sqlite3"
        with (
            http.stream("GET", f"{leader_url}/v1/cluster/snapshot", timeout=300) as response,
            target.open("wb") as out,
        ):
            if response.status_code != httpx.codes.OK:
                raise ValueError(f"the leader answered {response.status_code} for a snapshot")
            for block in response.iter_bytes(1 << 20):
                out.write(block)
        try:
            reload_from_snapshot(target, self._database, self._live, self._uow_factory)
        finally:
            target.unlink(missing_ok=True)
        self._feed.reset(self._applier.position())
        self.snapshots_restored += 1
        log.info("restored a snapshot; now at %s", self._feed.position)


def reload_from_snapshot(
    snapshot: Path, database: Path, live: LiveLibraries, uow_factory: UnitOfWorkFactory
) -> None:
    """Make ``database`` a copy of ``snapshot`` and rebuild every live library from it.

    Every live library is write-locked while the store changes, so no search sees a store
    and an index from different snapshots; then all are dropped and loaded again.
    """
    current = sorted(live, key=lambda lib: lib.id)
    with contextlib.ExitStack() as locks:
        for library in current:
            locks.enter_context(library.lock.write())
        restore_snapshot(snapshot, database)
        for library in current:
            library.dropped = True
            live.discard(library.id)
    live.load(uow_factory)
