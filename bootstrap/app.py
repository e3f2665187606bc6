"""The application factory: settings in, a wired FastAPI app out."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI

from adapters.http.allowed_methods import install_allowed_methods
from adapters.http.cluster_edge import ClusterEdge
from adapters.http.limits import document_limits
from adapters.http.metrics import (
    KeywordIndexMemoryCollector,
    LibraryVectorsCollector,
    MetricsMiddleware,
)
from adapters.http.middleware import ApiKeyAuth, BodySizeLimit
from adapters.http.problems import install_problem_handlers
from adapters.http.replication_metrics import ReplicationCollector
from adapters.http.routes import chunks, cluster, documents, embeddings, libraries, ops, search
from adapters.http.schemas.filters import document_filter_queries
from bootstrap.container import Container, wire_routes
from bootstrap.settings import Settings

log = logging.getLogger("stacksdb")

ROUTE_MODULES = (libraries, documents, chunks, search, embeddings, cluster, ops)

DESCRIPTION = """
A vector database for retrieval: libraries of documents made of chunks (text, embedding,
metadata), searched by k-nearest neighbours with Flat, IVF or HNSW indexes.
Every error is an RFC 9457 `application/problem+json` body.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    container = Container(settings=settings)
    wire_routes(container, ROUTE_MODULES)
    replication = container.cluster_runtime()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        live = container.live()
        snapshots = container.index_snapshot_store()
        await asyncio.to_thread(live.load, container.uow_factory(), snapshots=snapshots)
        log.info("serving %d libraries", len(live))
        await asyncio.to_thread(replication.start)
        snapshotter = container.index_snapshotter()
        snapshotter.run_periodically(settings.index_snapshot_interval)
        yield
        await asyncio.to_thread(replication.stop)
        snapshotter.stop()
        # Approximate indexes are saved so the next start need not rebuild them.
        await asyncio.to_thread(snapshotter.save_all)
        container.storage().close()
        await asyncio.to_thread(container.embedder_factory().close)

    app = FastAPI(
        title="StacksDB",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.container = container
    app.state.search_limiter = anyio.CapacityLimiter(settings.search_threads)
    install_problem_handlers(app)
    document_limits(app, container.limits())  # after the problem schema's openapi override
    document_filter_queries(app)
    for module in ROUTE_MODULES:
        app.include_router(module.router)
    install_allowed_methods(app)  # after the routers: it reads their methods

    metrics = container.http_metrics()
    live = container.live()
    metrics.add_collector(
        LibraryVectorsCollector(lambda: [(lib.id, len(lib.index)) for lib in live])
    )
    metrics.add_collector(
        KeywordIndexMemoryCollector(lambda: [(lib.id, lib.keyword_index_bytes()) for lib in live])
    )
    metrics.add_collector(
        ReplicationCollector(
            container.node_state(),
            container.log_feed(),
            container.replica_tracker(),
            replication.follower_lag,
            replication.snapshots_restored,
        )
    )
    # Added inner to outer: the size limit runs after the key check; metrics see everything;
    # the cluster edge forwards writes (after the key check) and gates acknowledgements.
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(
        ClusterEdge,
        state=container.node_state(),
        feed=container.log_feed(),
        tracker=container.replica_tracker(),
        min_replicas=settings.min_replicas,
        replica_timeout=settings.replica_timeout,
        forward_timeout=settings.forward_timeout,
        max_read_wait=settings.max_read_wait,
    )
    if settings.api_key:
        app.add_middleware(ApiKeyAuth, api_key=settings.api_key)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app
