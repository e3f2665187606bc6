"""Leader election and membership through etcd (its JSON gateway, via etcd3gw).

Keys, all under ``/stacksdb/``:
- ``nodes/<node_id>``: ``{node_id, url, role, applied_index, applied_term}``, put under the
  node's lease, so it vanishes when the node stops renewing;
- ``leader``: ``{node_id, url}``, created under the winner's lease by a transaction that
  compares ``create_revision == 0``. The revision of that transaction (the key's
  ``create_revision``) is the winner's term: etcd makes it unique and increasing.

One lease per node (``--lease-ttl``, default 5 s) carries both keys. The coordinator renews
it every ``ttl / 8`` seconds; the node's lease deadline is the time it *sent* the last
successful renewal plus the TTL, earlier than etcd's own expiry, so once the deadline
passes the node stops committing and acknowledging writes (``NodeState.ensure_writable``)
before any other node can win: no two leaders ever acknowledge at once.

A candidate campaigns only when its log position (last term, last index) is at least that
of every other live node, after waiting ``settle`` seconds for them to publish theirs:
with ``--min-replicas N`` every acknowledged write is on N + 1 nodes, so the winner holds it.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import etcd3gw
from etcd3gw.exceptions import Etcd3Exception
from etcd3gw.lease import Lease

from application.replication import NodeState, Peer, ReplicaTracker, Role
from domain.replication import LogPosition

log = logging.getLogger(__name__)

PREFIX = "/stacksdb/"
LEADER_KEY = PREFIX + "leader"
NODES_PREFIX = PREFIX + "nodes/"


@dataclass(frozen=True, slots=True)
class NodeInfo:
    node_id: str
    url: str
    role: str
    applied_index: int
    applied_term: int

    @property
    def position(self) -> LogPosition:
        return LogPosition(self.applied_index, self.applied_term)

    def to_json(self) -> dict[str, Any]:
        return {
            "node_id": self.node_id,
            "url": self.url,
            "role": self.role,
            "applied_index": self.applied_index,
            "applied_term": self.applied_term,
        }


def parse_cluster_url(url: str) -> tuple[str, int]:
    """``etcd://host:port`` (or ``http://host:port``) to (host, port)."""
    rest = url.split("://", 1)[-1].rstrip("/")
    host, _, port = rest.rpartition(":")
    if not host:
        return rest, 2379
    return host, int(port)


class EtcdCoordinator:
    """Runs the election and publishes this node; updates ``NodeState``."""

    def __init__(
        self,
        client: etcd3gw.Etcd3Client,
        state: NodeState,
        position: Callable[[], LogPosition],
        tracker: ReplicaTracker,
        ttl: int = 5,
    ) -> None:
        self._client = client
        self._state = state
        self._position = position
        self._tracker = tracker
        self.ttl = ttl
        self.tick = ttl / 8
        self.settle = 2 * self.tick + 0.1
        self._lease: Lease | None = None
        self._deadline = 0.0
        self._candidate_since: float | None = None
        self._published: NodeInfo | None = None
        self._published_at = 0.0
        self._nodes: list[NodeInfo] = []
        self._nodes_mutex = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="etcd-coordinator", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        lease = self._lease
        if lease is None:
            return
        try:
            lease.revoke()  # hand over leadership at once on a clean shutdown
        except Etcd3Exception:
            log.warning("could not revoke the lease on shutdown")

    def nodes(self) -> list[NodeInfo]:
        with self._nodes_mutex:
            return list(self._nodes)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._step()
            except Etcd3Exception as exc:
                log.warning("etcd unreachable: %s", exc)
                if time.monotonic() >= self._deadline:
                    self._lease = None
                    self._state.stand()
            self._stop.wait(self.tick)

    def _step(self) -> None:
        if not self._renew():
            return
        self._publish()
        self._refresh_nodes()
        found = self._client.get(LEADER_KEY, metadata=True)
        if found:
            value, meta = found[0]
            self._see_leader(json.loads(value), meta)
            return
        self._campaign()

    def _renew(self) -> bool:
        """Keep the lease alive; False when it was lost (a new one is granted next tick)."""
        if self._lease is None:
            sent = time.monotonic()
            self._lease = self._client.lease(ttl=self.ttl)
            self._deadline = sent + self.ttl - 0.1
            self._published = None
            return True
        sent = time.monotonic()
        if self._lease.refresh() <= 0:
            log.warning("lease %s expired; standing down", self._lease.id)
            self._lease = None
            self._state.stand()
            return False
        self._deadline = sent + self.ttl - 0.1
        if self._state.role is Role.LEADER:
            self._state.renew(self._deadline)
        return True

    def _info(self) -> NodeInfo:
        position = self._position()
        return NodeInfo(
            self._state.node_id,
            self._state.url,
            self._state.role.value,
            position.index,
            position.term,
        )

    def _publish(self) -> None:
        info = self._info()
        if info == self._published and time.monotonic() - self._published_at < 1.0:
            return
        assert self._lease is not None
        self._client.put(NODES_PREFIX + info.node_id, json.dumps(info.to_json()), lease=self._lease)
        self._published = info
        self._published_at = time.monotonic()

    def _refresh_nodes(self) -> None:
        nodes = []
        for value, _ in self._client.get_prefix(NODES_PREFIX):
            raw = json.loads(value)
            nodes.append(
                NodeInfo(
                    raw["node_id"],
                    raw["url"],
                    raw["role"],
                    int(raw["applied_index"]),
                    int(raw["applied_term"]),
                )
            )
        with self._nodes_mutex:
            self._nodes = sorted(nodes, key=lambda n: n.node_id)

    def _see_leader(self, leader: dict[str, Any], meta: Any) -> None:
        self._candidate_since = None
        term = int(meta.get("create_revision", 0))
        lease_id = int(meta.get("lease", 0))
        mine = self._lease is not None and lease_id == self._lease.id
        if leader["node_id"] == self._state.node_id and mine:
            if self._state.role is not Role.LEADER:
                self._tracker.forget_all()
            self._state.become_leader(term, self._deadline)
            return
        if leader["node_id"] == self._state.node_id:
            # Our key from a previous life: it expires with that lease; wait for it.
            self._state.stand()
            return
        self._state.follow(Peer(leader["node_id"], leader["url"]), term)

    def _campaign(self) -> None:
        self._state.stand()
        now = time.monotonic()
        if self._candidate_since is None:
            self._candidate_since = now
            self._publish_now()
            return
        if now - self._candidate_since < self.settle:
            return
        mine = self._position()
        others = [n for n in self.nodes() if n.node_id != self._state.node_id]
        if not all(mine.at_least_as_current_as(n.position) for n in others):
            return
        assert self._lease is not None
        value = json.dumps({"node_id": self._state.node_id, "url": self._state.url})
        key = _b64(LEADER_KEY)
        result = self._client.transaction(
            {
                "compare": [
                    {"key": key, "result": "EQUAL", "target": "CREATE", "create_revision": 0}
                ],
                "success": [
                    {"request_put": {"key": key, "value": _b64(value), "lease": self._lease.id}}
                ],
                "failure": [],
            }
        )
        if not result.get("succeeded"):
            return
        term = int(result["header"]["revision"])
        self._tracker.forget_all()
        self._state.become_leader(term, self._deadline)
        self._candidate_since = None
        log.info("node %s won the election; term %d", self._state.node_id, term)
        self._publish_now()

    def _publish_now(self) -> None:
        self._published = None
        self._publish()


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode("ascii")
