"""Index management: status, and rebuilds that run in the background (asked for, or after
an index drifted), each saved as a snapshot once it is live."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from application.index_snapshots import IndexSnapshotter
from application.live import LiveLibraries, LiveLibrary, PendingBuild
from domain.errors import LibraryNotFound
from domain.models import IndexSpec, IndexStatus
from domain.ports import UnitOfWorkFactory, VectorIndex

log = logging.getLogger(__name__)

Launcher = Callable[[Callable[[], None]], None]


def thread_launcher(job: Callable[[], None]) -> None:
    """Run ``job`` on a daemon thread (the default way builds go to the background)."""
    threading.Thread(target=job, name="index-build", daemon=True).start()


class IndexService:
    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        live: LiveLibraries,
        launch: Launcher = thread_launcher,
        snapshotter: IndexSnapshotter | None = None,
    ) -> None:
        self._uow_factory = uow_factory
        self._live = live
        self._launch = launch
        self._snapshotter = snapshotter
        # Library -> its size when drift last started a rebuild. A rebuild that leaves the
        # lists as unbalanced as before (skewed data) is not tried again until the library
        # grew or shrank by a tenth, so drift cannot loop.
        self._drift_sizes: dict[str, int] = {}
        self._drift_mutex = threading.Lock()

    def status(self, library_id: str) -> IndexStatus:
        return self._live.get(library_id).index_status()

    def rebuild(self, library_id: str, type_: str, params: dict[str, Any] | None) -> IndexStatus:
        """Start building a ``type_`` index in the background and return at once.

        Searches keep using the current index; writes made meanwhile are journaled and
        replayed into the new one before it goes live; a newer request supersedes an older
        build; a failed build leaves the current index serving and records why.
        """
        spec = IndexSpec.parse(type_, params)
        live = self._live.get(library_id)
        with live.lock.read():
            live.ensure_alive()
            pending = live.start_build(spec)
        self._launch(lambda: self._build(live, pending))
        return live.index_status()

    def rebuild_if_drifted(self, live: LiveLibrary) -> bool:
        """After a write: rebuild the index with the same spec in the background once it
        says it drifted (``VectorIndex.needs_rebuild``; IVF: it doubled since training, or a
        list grew 8x the average); True when a rebuild started. Call it without holding the
        library's lock."""
        with self._drift_mutex, live.lock.read():
            index = live.index
            if live.dropped or live.is_building() or not index.needs_rebuild:
                return False
            size = len(index)
            last = self._drift_sizes.get(live.id)
            if last is not None and 0.9 * last <= size <= 1.1 * last:
                return False
            self._drift_sizes[live.id] = size
            pending = live.start_build(index.spec)
        log.info(
            "library %s: %s index drifted at %d vectors; rebuilding",
            live.id,
            index.spec.type.value,
            size,
        )
        self._launch(lambda: self._build(live, pending))
        return True

    def _build(self, live: LiveLibrary, pending: PendingBuild) -> None:
        def persist(index: VectorIndex) -> None:
            self._persist_spec(live.id, index.spec)

        if not live.build(pending, before_swap=persist):
            return
        log.info("library %s: %s index live", live.id, pending.spec.type.value)
        if self._snapshotter is not None:
            _save_snapshot(self._snapshotter, live)

    def _persist_spec(self, library_id: str, spec: IndexSpec) -> None:
        with self._uow_factory() as uow:
            library = uow.libraries.get(library_id)
            if library is None:
                raise LibraryNotFound(library_id)
            library.index = spec
            uow.libraries.save(library)
            uow.commit()


def _save_snapshot(snapshotter: IndexSnapshotter, live: LiveLibrary) -> None:
    try:
        snapshotter.save(live)
    except OSError:  # the index serves anyway; the next snapshot may succeed
        log.exception("library %s: could not save its index snapshot", live.id)
