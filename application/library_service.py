"""Use cases for libraries: create, read, list, update, delete."""

from __future__ import annotations

import threading
from functools import partial

from application.dto import CommitReceipt, LibraryInfo, LibraryPatch, NewLibrary
from application.embedding_service import EmbeddingService
from application.index_service import Launcher, thread_launcher
from application.live import LiveLibraries, LiveLibrary
from application.live.text_build import run_text_build
from domain.errors import AlreadyExists, InvalidInput, LibraryNotFound
from domain.limits import Limits
from domain.models import IndexSpec, Library, Metric, Page, utc_now
from domain.ports import UnitOfWork, UnitOfWorkFactory


class LibraryService:
    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        live: LiveLibraries,
        limits: Limits,
        embeddings: EmbeddingService,
        launch: Launcher = thread_launcher,
    ) -> None:
        self._uow_factory = uow_factory
        self._live = live
        self._limits = limits
        self._embeddings = embeddings
        self._launch = launch  # keyword index builds after a PATCH of text_index
        # Serialises creations so two requests with the same client id cannot both pass the
        # existence check. Taken before nothing else, so it adds no lock-order edge.
        self._create_mutex = threading.Lock()

    def create(self, request: NewLibrary, receipt: CommitReceipt | None = None) -> LibraryInfo:
        self._limits.check_metadata(request.metadata)
        try:
            metric = Metric(request.metric)
        except ValueError:
            raise InvalidInput(
                f"unknown metric {request.metric!r}; expected cosine, dot or l2", location="metric"
            ) from None
        spec = IndexSpec.parse(request.index_type, request.index_params)
        dimension = self._dimension_of(request)  # last: it may ask a remote embedder
        library = Library(
            name=request.name,
            dimension=dimension,
            metric=metric,
            description=request.description,
            metadata=dict(request.metadata),
            index=spec,
            embedder=request.embedder,
            text_index=request.text_index,
        )
        if request.id is not None:
            library.id = request.id
        # Built before the commit: a library whose index cannot be made must not reach the
        # store, where it would also stop every later start-up from loading.
        live = LiveLibrary(library, self._live.analyzers)
        with self._create_mutex:
            with self._uow_factory() as uow:
                if request.id is not None and uow.libraries.get(request.id) is not None:
                    raise AlreadyExists("library", request.id)
                uow.libraries.save(library)
                log_index = uow.commit()
            self._live.add(live)
        if receipt is not None:
            receipt.record(log_index)
        return LibraryInfo(library, live.index_status(), 0, 0)

    def get(self, library_id: str) -> LibraryInfo:
        live = self._live.get(library_id)
        with live.lock.read():
            live.ensure_alive()
            with self._uow_factory(read_only=True) as uow:
                return self._info(uow, live)

    def list(self, limit: int, cursor: str | None) -> Page[LibraryInfo]:
        self._limits.check_page_size(limit)
        with self._uow_factory(read_only=True) as uow:
            page = uow.libraries.list(limit, cursor)
            infos = []
            for library in page.items:
                live = self._live.find(library.id)
                if live is None:
                    continue  # deleted between the listing and now
                infos.append(self._info(uow, live))
        return Page(infos, page.next_cursor)

    def update(
        self, library_id: str, patch: LibraryPatch, receipt: CommitReceipt | None = None
    ) -> LibraryInfo:
        """Change the library's fields. A new ``text_index`` is stored at once and its
        keyword index built in the background, searches keeping the previous one meanwhile
        (``text_build.py``); ``none`` drops it at once."""
        if patch.metadata is not None:
            self._limits.check_metadata(patch.metadata)
        live = self._live.get(library_id)
        with live.lock.write():
            live.ensure_alive()
            with self._uow_factory() as uow:
                library = uow.libraries.get(library_id)
                if library is None:
                    raise LibraryNotFound(library_id)
                if patch.name is not None:
                    library.name = patch.name
                if patch.description is not None:
                    library.description = patch.description
                if patch.metadata is not None:
                    library.metadata = dict(patch.metadata)
                if patch.text_index is not None:
                    library.text_index = patch.text_index
                library.updated_at = utc_now()
                uow.libraries.save(library)
                log_index = uow.commit()
                live.library = library
                build = (
                    None if patch.text_index is None else live.change_text_index(patch.text_index)
                )
                if receipt is not None:
                    receipt.record(log_index)
                info = self._info(uow, live)
        if build is not None:  # launched with the lock released: the build takes it itself
            self._launch(partial(run_text_build, live, build, self._uow_factory))
        return info

    def delete(self, library_id: str, receipt: CommitReceipt | None = None) -> None:
        live = self._live.get(library_id)
        with live.lock.write():
            live.ensure_alive()
            with self._uow_factory() as uow:
                uow.libraries.delete(library_id)
                log_index = uow.commit()
            live.dropped = True
            self._live.discard(library_id)
        if receipt is not None:
            receipt.record(log_index)

    def _dimension_of(self, request: NewLibrary) -> int:
        """The library's dimension: the request's, or its embedder's (which a remote
        provider is asked for, before anything is stored); the two must agree."""
        if request.embedder is None:
            if request.dimension is None:
                raise InvalidInput(
                    "dimension is required for a library without an embedder",
                    location="dimension",
                )
            self._limits.check_dimension(request.dimension)
            return request.dimension
        made = self._embeddings.dimension(request.embedder)
        if request.dimension is not None and request.dimension != made:
            raise InvalidInput(
                f"dimension is {request.dimension} but the {request.embedder.provider} "
                f"embedder makes {made}-dimensional vectors; leave dimension out to use its own",
                location="dimension",
            )
        self._limits.check_dimension(made)
        return made

    @staticmethod
    def _info(uow: UnitOfWork, live: LiveLibrary) -> LibraryInfo:
        documents, chunks = uow.libraries.counts(live.id)
        return LibraryInfo(live.library, live.index_status(), documents, chunks)
