"""Index management: status, and rebuilds that run in the background."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from application.live import LiveLibraries, LiveLibrary
from domain.errors import LibraryNotFound
from domain.index.factory import build_index
from domain.models import IndexSpec, IndexStatus
from domain.ports import UnitOfWorkFactory

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
    ) -> None:
        self._uow_factory = uow_factory
        self._live = live
        self._launch = launch

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
            generation, labels, vectors = live.start_build(spec)
        self._launch(lambda: self._build(live, generation, spec, labels, vectors))
        return live.index_status()

    def _build(
        self, live: LiveLibrary, generation: int, spec: IndexSpec, labels: Any, vectors: Any
    ) -> None:
        library = live.library
        try:
            index = build_index(
                spec,
                library.dimension,
                library.metric,
                labels,
                vectors,
                lambda fraction: live.report_progress(generation, fraction),
            )
            del labels, vectors
            with live.lock.write():
                if live.dropped or not live.is_current_build(generation):
                    return  # dropped, or superseded by a newer request
                self._persist_spec(live.id, index.spec)
                live.finish_build(generation, index)
            log.info("library %s: %s index live", live.id, spec.type.value)
        except LibraryNotFound:
            return
        except Exception as exc:  # a build must never take the node down
            log.exception("library %s: index build failed", live.id)
            live.fail_build(generation, f"{type(exc).__name__}: {exc}")

    def _persist_spec(self, library_id: str, spec: IndexSpec) -> None:
        with self._uow_factory() as uow:
            library = uow.libraries.get(library_id)
            if library is None:
                raise LibraryNotFound(library_id)
            library.index = spec
            uow.libraries.save(library)
            uow.commit()
