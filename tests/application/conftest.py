"""The application services of bootstrap/container.py, with the in-memory store in place of
SQLite: fast service tests with no database and no server."""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType

import numpy as np
import pytest

from adapters.persistence.memory import MemoryStore, MemoryUnitOfWork
from application.chunk_service import ChunkService
from application.document_service import DocumentService
from application.dto import ChunkInput, NewLibrary
from application.embedding_service import EmbeddingService
from application.index_service import IndexService
from application.library_service import LibraryService
from application.live import LiveLibraries
from application.search_service import SearchService
from domain.embedding import EmbedderFactory
from domain.errors import StoreUnavailable
from domain.limits import Limits
from domain.models import Vector
from tests.support.services import service_container

DIM = 4


class SwitchableUnitOfWork(MemoryUnitOfWork):
    """A real in-memory unit of work whose ``commit`` fails while ``switch.fail_commits``
    is set: the disk-full or I/O error that a durable store can answer at commit time."""

    def __init__(self, store: MemoryStore, switch: CommitSwitch, *, read_only: bool) -> None:
        super().__init__(store, read_only=read_only)
        self._switch = switch

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        super().__exit__(exc_type, exc, tb)
        hooks, self._switch.after_next_exit = self._switch.after_next_exit, []
        for hook in hooks:
            hook()

    def commit(self) -> None:
        if self._switch.fail_commits:
            raise StoreUnavailable("commit refused by the test")
        super().commit()


@dataclass
class CommitSwitch:
    """How the test steers the store: fail commits, or run something in the gap right after
    the next unit of work ends (the store free again, the service not yet done)."""

    fail_commits: bool = False
    after_next_exit: list[Callable[[], object]] = field(default_factory=list)


@dataclass
class Services:
    """Every use case over one in-memory store, plus the pieces a test may inspect."""

    store: MemoryStore
    live: LiveLibraries
    libraries: LibraryService
    documents: DocumentService
    chunks: ChunkService
    search: SearchService
    indexes: IndexService
    embeddings: EmbeddingService
    switch: CommitSwitch
    pending_builds: list[Callable[[], None]] = field(default_factory=list)

    def run_pending_builds(self) -> None:
        """Run the index builds the service handed to its launcher, oldest first."""
        while self.pending_builds:
            self.pending_builds.pop(0)()


def build_services(
    launcher: Callable[[Callable[[], None]], None] | None = None,
    limits: Limits | None = None,
    embedders: EmbedderFactory | None = None,
) -> Services:
    store = MemoryStore()
    switch = CommitSwitch()

    def uow_factory(*, read_only: bool = False) -> MemoryUnitOfWork:
        return SwitchableUnitOfWork(store, switch, read_only=read_only)

    pending: list[Callable[[], None]] = []
    container = service_container(
        uow_factory,
        limits=limits or Limits(),
        launcher=launcher or pending.append,
        embedders=embedders,
    )
    return Services(
        store=store,
        live=container.live(),
        libraries=container.library_service(),
        documents=container.document_service(),
        chunks=container.chunk_service(),
        search=container.search_service(),
        indexes=container.index_service(),
        embeddings=container.embedding_service(),
        switch=switch,
        pending_builds=pending,
    )


@pytest.fixture
def services() -> Services:
    """Services whose index builds wait in ``pending_builds`` until the test runs them."""
    return build_services()


@pytest.fixture
def library_id(services: Services) -> str:
    return services.libraries.create(NewLibrary(name="papers", dimension=DIM)).library.id


def vector(seed: int) -> Vector:
    return np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)


def chunk_input(
    chunk_id: str, document_id: str = "doc", seed: int | None = None, **metadata: str
) -> ChunkInput:
    """A chunk whose text names it and whose vector is seeded by its id (or ``seed``)."""
    return ChunkInput(
        document_id=document_id,
        text=f"text of {chunk_id}",
        embedding=vector(seed if seed is not None else zlib.crc32(chunk_id.encode())),
        metadata=dict(metadata),
        id=chunk_id,
    )
