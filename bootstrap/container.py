"""The composition root: the one place where adapters are chosen and wired into services."""

from __future__ import annotations

from functools import partial

from dependency_injector import containers, providers

from adapters.http.metrics import HttpMetrics
from adapters.persistence.index_snapshots import NpzIndexSnapshots
from application.chunk_service import ChunkService
from application.document_service import DocumentService
from application.index_service import IndexService
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
from bootstrap.settings import Settings
from bootstrap.snapshots import snapshot_source
from bootstrap.storage import Storage, open_storage


class Container(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)

    storage: providers.Provider[Storage] = providers.Singleton(open_storage, settings)
    # Replication (application/replication.py): the store's own units of work, and the
    # recording ones the services use, which log every commit under the node's authority.
    node_state = providers.Singleton(lambda s: NodeState(s.node_id, s.node_url), settings)
    log_feed = providers.Singleton(LogFeed)
    replica_tracker = providers.Singleton(ReplicaTracker)
    store_uow_factory = providers.Callable(lambda storage: storage.uow_factory, storage)
    uow_factory = providers.Singleton(
        RecordingUnitOfWorkFactory, store_uow_factory, node_state, log_feed
    )
    # The one Limits value (bounds and planner thresholds) every service and schema reads.
    limits = providers.Singleton(Settings.limits, settings)
    live = providers.Singleton(LiveLibraries)

    # Index snapshots sit beside the SQLite file; a memory-only node has nothing to restart.
    index_snapshot_store = providers.Singleton(
        lambda s: NpzIndexSnapshots(s.data_dir / "indexes") if s.storage == "sqlite" else None,
        settings,
    )
    index_snapshotter = providers.Singleton(IndexSnapshotter, index_snapshot_store, live)
    index_service = providers.Singleton(
        IndexService, uow_factory, live, snapshotter=index_snapshotter
    )
    writer = providers.Singleton(
        Writer, uow_factory, live, limits, index_service.provided.rebuild_if_drifted
    )
    library_service = providers.Singleton(LibraryService, uow_factory, live, limits)
    document_service = providers.Singleton(DocumentService, uow_factory, live, writer)
    chunk_service = providers.Singleton(ChunkService, uow_factory, live, writer)
    search_service = providers.Singleton(SearchService, uow_factory, live, limits)

    log_applier = providers.Singleton(LogApplier, store_uow_factory, live, log_feed)
    log_server = providers.Singleton(
        LogServer, store_uow_factory, node_state, log_feed, replica_tracker
    )
    cluster_service = providers.Singleton(ClusterService, node_state, log_feed)
    snapshot_source = providers.Callable(lambda s: partial(snapshot_source, s), settings)
    # /readyz names the node's role in a cluster; a standalone node answers as it always did.
    node_role = providers.Callable(
        lambda s, state: (lambda: state.role.value) if s.cluster else (lambda: None),
        settings,
        node_state,
    )

    http_metrics = providers.Singleton(HttpMetrics)
    readiness = providers.Callable(lambda storage: storage.readiness, storage)
