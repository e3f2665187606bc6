"""The composition root: the one place where adapters are chosen and wired into services."""

from __future__ import annotations

from dependency_injector import containers, providers

from adapters.http.metrics import HttpMetrics
from application.chunk_service import ChunkService
from application.document_service import DocumentService
from application.index_service import IndexService
from application.library_service import LibraryService
from application.live import LiveLibraries
from application.search_service import SearchService
from application.writes import Writer
from bootstrap.settings import Settings
from bootstrap.storage import Storage, open_storage


class Container(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)

    storage: providers.Provider[Storage] = providers.Singleton(open_storage, settings)
    uow_factory = providers.Callable(lambda storage: storage.uow_factory, storage)
    limits = providers.Singleton(lambda s: s.limits(), settings)
    live = providers.Singleton(LiveLibraries)

    writer = providers.Singleton(Writer, uow_factory, live, limits)
    library_service = providers.Singleton(LibraryService, uow_factory, live, limits)
    document_service = providers.Singleton(DocumentService, uow_factory, live, writer)
    chunk_service = providers.Singleton(ChunkService, uow_factory, live, writer)
    search_service = providers.Singleton(SearchService, uow_factory, live, limits)
    index_service = providers.Singleton(IndexService, uow_factory, live)

    http_metrics = providers.Singleton(HttpMetrics)
    readiness = providers.Callable(lambda storage: storage.readiness, storage)
