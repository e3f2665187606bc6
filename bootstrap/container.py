"""The composition root: the one place where adapters are chosen and wired into services."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any, get_type_hints

from dependency_injector import containers, providers

from adapters.http.metrics import HttpMetrics
from adapters.http.provided import PROVIDED
from adapters.persistence.index_snapshots import NpzIndexSnapshots
from adapters.text.snowball import SnowballEnglish
from application.chunk_service import ChunkService
from application.document_service import DocumentService
from application.embedding_service import EmbeddingService
from application.index_service import IndexService, Launcher, thread_launcher
from application.index_snapshots import IndexSnapshotter
from application.library_service import LibraryService
from application.live import LiveLibraries
from application.replication import (
    ClusterService,
    LogApplier,
    LogFeed,
    LogServer,
    NodeState,
    RecordingUnitOfWorkFactory,
    ReplicaTracker,
)
from application.search_service import SearchService
from application.writes import Writer
from bootstrap.cluster import ClusterRuntime
from bootstrap.embedders import Embedders, embedders_of
from bootstrap.settings import Settings
from bootstrap.storage import Storage, open_storage
from bootstrap.store_snapshots import snapshot_source
from domain.replication import LoggedUnitOfWorkFactory
from domain.text_index.analysis import Analyzers

# Named factories for what a provider cannot build by calling a constructor with providers.


def node_state_of(settings: Settings) -> NodeState:
    return NodeState(settings.node_id, settings.node_url)


def store_units_of_work(storage: Storage) -> LoggedUnitOfWorkFactory:
    """The store's own units of work: they log nothing themselves (see RecordingUnitOfWork)."""
    return storage.uow_factory


def readiness_check(storage: Storage) -> Callable[[], str | None]:
    return storage.readiness


def open_index_snapshots(settings: Settings) -> NpzIndexSnapshots | None:
    """Index snapshots sit beside the SQLite file; a memory-only node has nothing to restart."""
    if settings.storage != "sqlite":
        return None
    return NpzIndexSnapshots(settings.data_dir / "indexes")


def store_snapshot_source(settings: Settings) -> Callable[[], Path]:
    """What ``GET /v1/cluster/snapshot`` calls for a consistent copy of the store."""
    return partial(snapshot_source, settings)


def batch_search_threads() -> ThreadPoolExecutor:
    """Threads for a search batch's HNSW walks and IVF probes, one per core: the kernels
    hold no GIL, so more threads would only queue. Shared by every batch, so batches in
    flight add at most this many threads of kernel work whatever the search limiter admits."""
    return ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="search-batch")


def node_role_of(settings: Settings, state: NodeState) -> Callable[[], str | None]:
    """/readyz names the node's role in a cluster; a standalone node answers as it always did."""
    if settings.cluster is None:
        return _no_role
    return lambda: state.role.value


def _no_role() -> str | None:
    return None


class Container(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)

    storage: providers.Provider[Storage] = providers.Singleton(open_storage, settings)
    # Replication (application/replication/): the store's own units of work, and the
    # recording ones the services use, which log every commit under the node's authority.
    node_state = providers.Singleton(node_state_of, settings)
    log_feed = providers.Singleton(LogFeed)
    replica_tracker = providers.Singleton(ReplicaTracker)
    store_uow_factory = providers.Callable(store_units_of_work, storage)
    uow_factory = providers.Singleton(
        RecordingUnitOfWorkFactory, store_uow_factory, node_state, log_feed
    )
    # The one Limits value (bounds and planner thresholds) every service and schema reads.
    limits = providers.Singleton(Settings.limits, settings)
    # The keyword index's text analysers, English stemmed by Snowball.
    analyzers = providers.Singleton(Analyzers, english=providers.Singleton(SnowballEnglish))
    live = providers.Singleton(LiveLibraries, analyzers)

    index_snapshot_store = providers.Singleton(open_index_snapshots, settings)
    index_snapshotter = providers.Singleton(IndexSnapshotter, index_snapshot_store, live)
    # Index builds run on threads; a test or benchmark overrides this to run them itself.
    index_build_launcher: providers.Provider[Launcher] = providers.Object(thread_launcher)
    index_service = providers.Singleton(
        IndexService, uow_factory, live, index_build_launcher, snapshotter=index_snapshotter
    )
    # One embedder per spec, built on first use; the one way the services embed text.
    embedder_factory: providers.Provider[Embedders] = providers.Singleton(embedders_of, settings)
    embedding_service = providers.Singleton(EmbeddingService, embedder_factory, live, limits)
    writer = providers.Singleton(
        Writer,
        uow_factory,
        live,
        limits,
        embedding_service,
        index_service.provided.rebuild_if_drifted,
    )
    library_service = providers.Singleton(
        LibraryService, uow_factory, live, limits, embedding_service, index_build_launcher
    )
    document_service = providers.Singleton(DocumentService, uow_factory, live, writer, limits)
    chunk_service = providers.Singleton(ChunkService, uow_factory, live, writer, limits)
    search_threads = providers.Singleton(batch_search_threads)
    search_service = providers.Singleton(
        SearchService, uow_factory, live, limits, embedding_service, search_threads
    )

    log_applier = providers.Singleton(LogApplier, store_uow_factory, live, log_feed)
    log_server = providers.Singleton(
        LogServer, store_uow_factory, node_state, log_feed, replica_tracker
    )
    # The election and the follower start with the app; /v1/cluster lists what they see.
    cluster_runtime = providers.Singleton(
        ClusterRuntime,
        settings,
        node_state,
        log_feed,
        replica_tracker,
        log_applier,
        live,
        uow_factory,
        store_uow_factory,
    )
    cluster_service = providers.Singleton(
        ClusterService, node_state, log_feed, cluster_runtime.provided.members
    )
    snapshot_source = providers.Callable(store_snapshot_source, settings)
    node_role = providers.Callable(node_role_of, settings, node_state)

    http_metrics = providers.Singleton(HttpMetrics)
    readiness = providers.Callable(readiness_check, storage)


class WiringError(RuntimeError):
    """The routes ask the container for a provider it lacks, or one that makes another type."""


def check_provided(container: Container, wanted: Mapping[str, object]) -> None:
    """Raise ``WiringError`` unless ``container`` has every provider in ``wanted`` and each
    makes the type asked for (as far as the provider states it: a class it instantiates, or a
    factory function's return annotation)."""
    problems: list[str] = []
    for name, kind in wanted.items():
        provider = container.providers.get(name)
        if provider is None:
            problems.append(f"{name!r}: the container has no such provider")
            continue
        made = _made_type(provider)
        if made is None or made == kind:
            continue
        if isinstance(made, type) and isinstance(kind, type) and issubclass(made, kind):
            continue
        problems.append(f"{name!r}: the routes want {kind!r}, the container makes {made!r}")
    if problems:
        raise WiringError("; ".join(problems))


def _made_type(provider: providers.Provider[Any]) -> object | None:
    provides = getattr(provider, "provides", None)
    if isinstance(provides, type):
        return provides
    if callable(provides):
        return get_type_hints(provides).get("return")
    return None


def wire_routes(container: Container, modules: Iterable[ModuleType]) -> None:
    """Check the routes' providers against ``container`` (see ``adapters.http.provided``),
    then wire them."""
    check_provided(container, PROVIDED)
    container.wire(modules=list(modules))
