"""Prometheus gauges of replication, read at scrape time."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from application.replication import LogFeed, NodeState, ReplicaTracker, Role


class ReplicationCollector(Collector):
    def __init__(
        self,
        state: NodeState,
        feed: LogFeed,
        tracker: ReplicaTracker,
        follower_lag: Callable[[], int],
        snapshots_restored: Callable[[], int],
    ) -> None:
        self._state = state
        self._feed = feed
        self._tracker = tracker
        self._follower_lag = follower_lag
        self._snapshots_restored = snapshots_restored

    def collect(self) -> Iterable[Metric]:
        applied = self._feed.position.index
        is_leader = self._state.role is Role.LEADER
        yield GaugeMetricFamily(
            "stacksdb_cluster_is_leader", "1 on the leader, 0 elsewhere.", value=int(is_leader)
        )
        yield GaugeMetricFamily(
            "stacksdb_cluster_term", "The newest leader term this node knows.", self._state.term()
        )
        yield GaugeMetricFamily(
            "stacksdb_replication_applied_index",
            "The last log index committed on this node.",
            value=applied,
        )
        yield GaugeMetricFamily(
            "stacksdb_replication_lag_entries",
            "On a follower: entries the leader had at the last pull that are not applied here.",
            value=0 if is_leader else self._follower_lag(),
        )
        yield GaugeMetricFamily(
            "stacksdb_replication_snapshots_restored",
            "Snapshots of the leader's store this node restored since it started.",
            value=self._snapshots_restored(),
        )
        per_follower = GaugeMetricFamily(
            "stacksdb_replication_follower_lag_entries",
            "On the leader: entries each follower has not confirmed yet.",
            labels=["node_id"],
        )
        if is_leader:
            for node_id, index in sorted(self._tracker.acked(max_age=30).items()):
                per_follower.add_metric([node_id], max(0, applied - index))
        yield per_follower
