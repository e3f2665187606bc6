"""This node's place in the cluster: its role, term, leader and lease deadline.

The election adapter (``adapters/replication/etcd.py``) updates it; the write path (through
``WriteAuthority``) and the HTTP edge read it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from domain.errors import NotLeader


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
