"""Saving index snapshots: when, and for which libraries.

A snapshot saves the rebuild of an approximate index at start-up (HNSW over 81k x 384
vectors takes minutes to build and about a second to load). Saved:

- right after a background build goes live (``IndexService``);
- every ``interval`` seconds for libraries whose index changed since their last snapshot
  (``run_periodically``), so a crash costs at most the writes of one interval in rebuild
  time: a snapshot older than the store is rebuilt, never served;
- at graceful shutdown (``save_all``).

Only index types registered with ``snapshot`` set are saved (``domain/index/registry.py``).
Flat is not: loading it from the store is one copy of the vectors already read for the
metadata, as fast as reading a snapshot, and a snapshot would double the disk used.
"""

from __future__ import annotations

import logging
import threading
import time

from application.live import LiveLibraries, LiveLibrary
from domain.index.registry import kind_of
from domain.ports import IndexSnapshotStore

log = logging.getLogger(__name__)


class IndexSnapshotter:
    def __init__(self, store: IndexSnapshotStore | None, live: LiveLibraries) -> None:
        self._store = store
        self._live = live
        # One save at a time: two writers of one library's file would race on the rename.
        self._mutex = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.saved = 0

    @property
    def enabled(self) -> bool:
        return self._store is not None

    def save(self, live: LiveLibrary) -> bool:
        """Snapshot ``live``'s index if its type keeps snapshots and it changed since the last;
        True when a snapshot was written. The read lock is held only to copy the arrays."""
        store = self._store
        if store is None:
            return False
        with self._mutex:
            with live.lock.read():
                if live.dropped:
                    return False
                if not kind_of(live.index.spec.type).snapshot:
                    live.snapshot_mark = None
                    store.delete(live.id)  # of an approximate index it had before
                    return False
                position = live.position
                if live.snapshot_mark == position:
                    return False
                snapshot = live.snapshot()
            started = time.monotonic()
            store.save(live.id, snapshot)
            live.snapshot_mark = position
            self.saved += 1
            log.info(
                "library %s: index snapshot saved at revision %d in %.1fs",
                live.id,
                snapshot.revision,
                time.monotonic() - started,
            )
            return True

    def save_all(self) -> int:
        """Snapshot every changed approximate index and delete the snapshots of libraries
        that are gone or went back to a type without snapshots; how many were written."""
        store = self._store
        if store is None:
            return 0
        written = 0
        for live in self._live:
            try:
                written += self.save(live)
            except OSError:
                log.exception("library %s: could not save its index snapshot", live.id)
        for library_id in store.library_ids():
            if library_id not in self._live:
                store.delete(library_id)
        return written

    def run_periodically(self, interval: float) -> None:
        """Start a daemon thread calling ``save_all`` every ``interval`` seconds (0: never)."""
        if self._store is None or interval <= 0 or self._thread is not None:
            return

        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    self.save_all()
                except Exception:  # a failed snapshot must not stop the next ones
                    log.exception("periodic index snapshots failed")

        self._thread = threading.Thread(target=loop, name="index-snapshots", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the periodic thread (it finishes a save in progress first)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
