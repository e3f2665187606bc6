"""Starting and stopping replication: a standalone leader, or a member of an etcd cluster.

Without ``--cluster`` the node leads alone (term 1, a lease that never ends): every write
is logged, answers carry ``X-StacksDB-Index``, and the log is trimmed to
``--log-retention`` entries. With ``--cluster etcd://host:port`` the node runs the election
(``EtcdCoordinator``), follows the leader's log when it is not the leader (``Follower``),
and trims the log behind the slowest live node.
"""

from __future__ import annotations

import logging
import math
import threading

import etcd3gw

from adapters.replication.etcd import EtcdCoordinator, parse_cluster_url
from adapters.replication.follower import Follower
from application.live import LiveLibraries
from application.replication import (
    LogApplier,
    LogFeed,
    Member,
    NodeState,
    ReplicaTracker,
    compact_log,
)
from bootstrap.settings import Settings
from domain.ports import UnitOfWorkFactory
from domain.replication import LoggedUnitOfWorkFactory

log = logging.getLogger(__name__)

COMPACT_EVERY = 2.0


class ClusterRuntime:
    """The replication threads of one node; ``start`` after the libraries are loaded.

    It gets each collaborator it uses, and answers ``members`` for ``ClusterService`` (None
    until the node has joined a cluster)."""

    def __init__(
        self,
        settings: Settings,
        state: NodeState,
        feed: LogFeed,
        tracker: ReplicaTracker,
        applier: LogApplier,
        live: LiveLibraries,
        uow_factory: UnitOfWorkFactory,
        store_uow_factory: LoggedUnitOfWorkFactory,
    ) -> None:
        self._settings = settings
        self._state = state
        self._feed = feed
        self._tracker = tracker
        self._applier = applier
        self._live = live
        self._uow_factory = uow_factory
        self._store_uow_factory = store_uow_factory
        self.coordinator: EtcdCoordinator | None = None
        self.follower: Follower | None = None
        self._stop = threading.Event()
        self._compactor = threading.Thread(target=self._compact_loop, name="log-compactor")
        self._compactor.daemon = True

    def members(self) -> list[Member] | None:
        coordinator = self.coordinator
        if coordinator is None:
            return None
        return [Member(n.node_id, n.url, n.role, n.applied_index) for n in coordinator.nodes()]

    def start(self) -> None:
        settings = self._settings
        feed = self._feed
        state = self._state
        feed.reset(self._applier.position())
        if settings.cluster is None:
            state.become_leader(max(1, feed.position.term), math.inf)
            self._compactor.start()
            return
        if settings.storage != "sqlite":
            raise ValueError("a cluster node needs the SQLite store (--storage sqlite)")
        host, port = parse_cluster_url(settings.cluster)
        client = etcd3gw.Etcd3Client(host=host, port=port, timeout=max(0.5, settings.lease_ttl / 4))
        state.observe_term(feed.position.term)
        coordinator = EtcdCoordinator(
            client, state, lambda: feed.position, self._tracker, ttl=settings.lease_ttl
        )
        headers = {"Authorization": f"Bearer {settings.api_key}"} if settings.api_key else {}
        self.follower = Follower(
            state,
            self._applier,
            feed,
            self._live,
            self._uow_factory,
            settings.database_path,
            headers,
            wait=min(2.0, settings.lease_ttl / 2),
        )
        self.coordinator = coordinator
        coordinator.start()
        self.follower.start()
        self._compactor.start()
        log.info("node %s joined the cluster at %s", state.node_id, settings.cluster)

    def stop(self) -> None:
        self._stop.set()
        if self.follower is not None:
            self.follower.stop()
        if self.coordinator is not None:
            self.coordinator.stop()

    def follower_lag(self) -> int:
        return 0 if self.follower is None else self.follower.lag

    def snapshots_restored(self) -> int:
        return 0 if self.follower is None else self.follower.snapshots_restored

    def _compact_loop(self) -> None:
        while not self._stop.wait(COMPACT_EVERY):
            try:
                self._compact()
            except Exception:  # trimming the log must never take the node down
                log.exception("log compaction failed")

    def _compact(self) -> None:
        """Forget entries every live node holds, past ``--log-retention`` of slack. The
        entry at the slowest node's position stays, to check that node's next pull."""
        own = self._feed.position.index
        floor = own
        if self.coordinator is not None:
            floor = min([own, *(n.applied_index for n in self.coordinator.nodes())])
        through = floor - 1 - self._settings.log_retention
        if through > 0:
            compact_log(self._store_uow_factory, through)
