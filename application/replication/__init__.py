"""Replication use cases, one idea a module.

- ``node_state.py``: this node's role, term, leader and lease (``NodeState``);
- ``recording.py``: every committed write logged in its own transaction;
- ``log_feed.py``: the newest log position, with waiting (long-polls, ``min_index``);
- ``replica_tracker.py``: which follower holds which index (``--min-replicas``, compaction);
- ``log_server.py``: the leader's side of log shipping, and compaction;
- ``applier.py``: a follower applying the leader's entries;
- ``cluster_status.py``: what ``GET /v1/cluster`` reports.
"""

from application.replication.applier import LogApplier, LogGap
from application.replication.cluster_status import ClusterService, ClusterStatus, Member
from application.replication.log_feed import LogFeed
from application.replication.log_server import LogBatch, LogServer, compact_log
from application.replication.node_state import NodeState, Peer, Role
from application.replication.recording import (
    RecordingUnitOfWork,
    RecordingUnitOfWorkFactory,
)
from application.replication.replica_tracker import ReplicaTracker

__all__ = [
    "ClusterService",
    "ClusterStatus",
    "LogApplier",
    "LogBatch",
    "LogFeed",
    "LogGap",
    "LogServer",
    "Member",
    "NodeState",
    "Peer",
    "RecordingUnitOfWork",
    "RecordingUnitOfWorkFactory",
    "ReplicaTracker",
    "Role",
    "compact_log",
]
