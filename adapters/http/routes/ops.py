"""Operations: liveness, readiness and Prometheus metrics."""

from collections.abc import Callable
from typing import Annotated

from dependency_injector.wiring import inject
from fastapi import APIRouter, Response, status
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from adapters.http.metrics import HttpMetrics
from adapters.http.problems import problem_response, problem_responses
from adapters.http.provided import on_loop, provide
from adapters.http.schemas.common import Health

router = APIRouter(tags=["operations"])

ReadinessCheck = Callable[[], str | None]
"""Returns None when the node is ready to serve, else the reason it is not."""

NodeRoleCheck = Callable[[], str | None]
"""Returns the node's role in a cluster, or None on a standalone node."""

_READINESS = provide("readiness", ReadinessCheck)
_NODE_ROLE = provide("node_role", NodeRoleCheck)
_HTTP_METRICS = provide("http_metrics", HttpMetrics)
Readiness = Annotated[ReadinessCheck, on_loop(_READINESS), _READINESS]
NodeRole = Annotated[NodeRoleCheck, on_loop(_NODE_ROLE), _NODE_ROLE]
Metrics = Annotated[HttpMetrics, on_loop(_HTTP_METRICS), _HTTP_METRICS]


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    return Health(status="alive")


@router.get(
    "/readyz",
    response_model=Health,
    responses=problem_responses(503),
)
@inject
def readyz(
    check: Readiness,
    role: NodeRole,
) -> Health | Response:
    reason = check()
    if reason is not None:
        return problem_response(status.HTTP_503_SERVICE_UNAVAILABLE, "Not ready", reason)
    return Health(status="ready", role=role())


@router.get("/metrics", response_class=Response)
@inject
def metrics(http_metrics: Metrics) -> Response:
    return Response(generate_latest(http_metrics.registry), media_type=CONTENT_TYPE_LATEST)
