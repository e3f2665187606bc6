"""What ``GET /v1/cluster`` reports: this node, its leader and the members."""

from __future__ import annotations

import builtins
from collections.abc import Callable
from dataclasses import dataclass

from application.replication.log_feed import LogFeed
from application.replication.node_state import NodeState, Peer, Role


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
    """What ``GET /v1/cluster`` reports. ``members`` lists the cluster as the election
    adapter sees it, or answers None while the node is not in a cluster: a standalone node
    lists itself."""

    def __init__(
        self,
        state: NodeState,
        feed: LogFeed,
        members: Callable[[], builtins.list[Member] | None] = lambda: None,
    ) -> None:
        self._state = state
        self._feed = feed
        self._members = members

    def status(self) -> ClusterStatus:
        state = self._state
        applied = self._feed.position.index
        nodes = self._members()
        if nodes is None:
            nodes = [Member(state.node_id, state.url, state.role.value, applied)]
        return ClusterStatus(state.node_id, state.role, state.leader, state.term(), applied, nodes)
