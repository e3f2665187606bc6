"""/v1/cluster: the node's view of the cluster, and the log and snapshots followers pull."""

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

from dependency_injector.wiring import inject
from fastapi import APIRouter, Query
from fastapi.responses import FileResponse
from pydantic import BaseModel
from starlette.background import BackgroundTask

from adapters.http.provided import on_loop, provide
from adapters.http.schemas.common import Problem
from application.replication import ClusterService, LogServer

router = APIRouter(prefix="/v1/cluster", tags=["cluster"])

SnapshotSource = Callable[[], Path]
"""Takes a consistent copy of the store and returns its path (the caller deletes it)."""

_CLUSTER = provide("cluster_service", ClusterService)
_LOG_SERVER = provide("log_server", LogServer)
_SNAPSHOT_SOURCE = provide("snapshot_source", SnapshotSource)
Cluster = Annotated[ClusterService, on_loop(_CLUSTER), _CLUSTER]
Log = Annotated[LogServer, on_loop(_LOG_SERVER), _LOG_SERVER]
Snapshots = Annotated[SnapshotSource, on_loop(_SNAPSHOT_SOURCE), _SNAPSHOT_SOURCE]


class PeerOut(BaseModel):
    node_id: str
    url: str


class MemberOut(BaseModel):
    node_id: str
    url: str
    role: str
    applied_index: int


class ClusterOut(BaseModel):
    node_id: str
    role: str
    leader: PeerOut | None
    term: int
    applied_index: int
    nodes: list[MemberOut]


class LogBatchOut(BaseModel):
    term: int
    last_index: int
    entries: list[dict[str, object]]


@router.get("", response_model=ClusterOut)
@inject
def cluster(service: Cluster) -> ClusterOut:
    status = service.status()
    leader = status.leader
    return ClusterOut(
        node_id=status.node_id,
        role=status.role.value,
        leader=None if leader is None else PeerOut(node_id=leader.node_id, url=leader.url),
        term=status.term,
        applied_index=status.applied_index,
        nodes=[
            MemberOut(node_id=m.node_id, url=m.url, role=m.role, applied_index=m.applied_index)
            for m in status.nodes
        ],
    )


@router.get(
    "/log",
    response_model=LogBatchOut,
    responses={
        409: {"model": Problem, "description": "Snapshot required"},
        503: {"model": Problem, "description": "Not the leader"},
    },
)
@inject
def pull_log(
    server: Log,
    node_id: Annotated[str, Query(min_length=1, max_length=128)],
    after: Annotated[int, Query(ge=0)] = 0,
    term: Annotated[int, Query(ge=0)] = 0,
    wait: Annotated[float, Query(ge=0, le=30)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> LogBatchOut:
    """Entries after ``after`` (long-polls up to ``wait`` seconds). Followers call it; the
    call also tells the leader that the follower holds entry ``after`` (term ``term``)."""
    batch = server.pull(node_id, after, term, wait, limit)
    return LogBatchOut(
        term=batch.term,
        last_index=batch.last_index,
        entries=[entry.to_json() for entry in batch.entries],
    )


@router.get("/snapshot", response_class=FileResponse)
@inject
def snapshot(
    take: Snapshots,
) -> FileResponse:
    """A consistent copy of this node's SQLite store (data and log), as a file."""
    path = take()
    return FileResponse(
        path,
        media_type="application/vnd.sqlite3",
        filename="stacksdb-snapshot.sqlite3",
        background=BackgroundTask(path.unlink, missing_ok=True),
    )
