"""The product's one container, with the store and the knobs a test steers overridden."""

from __future__ import annotations

from dependency_injector import providers

from application.index_service import Launcher
from application.live import LiveLibraries
from bootstrap.container import Container
from bootstrap.settings import Settings
from domain.embedding import EmbedderFactory
from domain.limits import Limits
from domain.ports import IndexSnapshotStore, UnitOfWorkFactory


def service_container(
    uow_factory: UnitOfWorkFactory,
    *,
    limits: Limits | None = None,
    launcher: Launcher | None = None,
    settings: Settings | None = None,
    live: LiveLibraries | None = None,
    index_snapshots: IndexSnapshotStore | None = None,
    embedders: EmbedderFactory | None = None,
) -> Container:
    """``bootstrap.container.Container`` whose services run on ``uow_factory`` (no log is
    recorded and no store is opened), index builds handed to ``launcher`` (threads when
    None), over ``live`` when given (else a fresh one), with ``index_snapshots`` (else,
    with the default memory-only settings, none) and ``embedders`` (else the real ones)."""
    container = Container(settings=settings or Settings(storage="memory"))
    container.uow_factory.override(providers.Object(uow_factory))
    if limits is not None:
        container.limits.override(providers.Object(limits))
    if launcher is not None:
        container.index_build_launcher.override(providers.Object(launcher))
    if live is not None:
        container.live.override(providers.Object(live))
    if index_snapshots is not None:
        container.index_snapshot_store.override(providers.Object(index_snapshots))
    if embedders is not None:
        container.embedder_factory.override(providers.Object(embedders))
    return container
