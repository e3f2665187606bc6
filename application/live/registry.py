"""The registry of live libraries: which libraries this node serves, by id."""

from __future__ import annotations

import threading
from collections.abc import Iterator

from application.live.loading import load_all
from application.live.state import LiveLibrary
from domain.errors import LibraryNotFound
from domain.ports import IndexSnapshotStore, UnitOfWorkFactory
from domain.text_index.analysis import Analyzers


class LiveLibraries:
    """The registry of live libraries.

    Lock order: a library's lock may be taken before the registry mutex, never after it;
    the mutex is held only for dictionary operations. So no cycle, so no deadlock.
    """

    def __init__(self, analyzers: Analyzers) -> None:
        # The text analysers every library's keyword index is built with.
        self.analyzers = analyzers
        self._libraries: dict[str, LiveLibrary] = {}
        self._mutex = threading.Lock()

    def get(self, library_id: str) -> LiveLibrary:
        live = self.find(library_id)
        if live is None:
            raise LibraryNotFound(library_id)
        return live

    def find(self, library_id: str) -> LiveLibrary | None:
        """The library, or None; one lookup, so no delete can slip between a check and a get."""
        with self._mutex:
            return self._libraries.get(library_id)

    def add(self, live: LiveLibrary) -> None:
        with self._mutex:
            self._libraries[live.id] = live

    def discard(self, library_id: str) -> None:
        """Forget the library registered under ``library_id`` if it was dropped.

        Callers mark the library ``dropped`` and commit its delete first; between that
        commit and this call a new library may be created under the same id and registered
        (creation does not wait for the old library's lock). That newer one stays.
        """
        with self._mutex:
            live = self._libraries.get(library_id)
            if live is not None and live.dropped:
                del self._libraries[library_id]

    def __contains__(self, library_id: str) -> bool:
        with self._mutex:
            return library_id in self._libraries

    def __iter__(self) -> Iterator[LiveLibrary]:
        with self._mutex:
            return iter(list(self._libraries.values()))

    def __len__(self) -> int:
        with self._mutex:
            return len(self._libraries)

    def load(
        self,
        uow_factory: UnitOfWorkFactory,
        batch_size: int = 2_000,
        snapshots: IndexSnapshotStore | None = None,
    ) -> None:
        """Register every stored library, read from the store (at start-up); see
        ``loading.load_all``."""
        for live in load_all(uow_factory, self.analyzers, batch_size, snapshots):
            self.add(live)
