"""The in-memory side of each library: its lock, labels and vector index.

The store (behind the unit of work) is the source of truth; a ``LiveLibrary`` is derived
from it at start-up and kept in step by the services, always under the library's lock:
writers commit to the store first, then apply the same change here while still holding the
write lock, so a search (which holds the read lock) never sees the two disagree.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from application.locks import ReadWriteLock
from domain.errors import LibraryNotFound
from domain.filters import Filter
from domain.index.registry import build_index, load_index, new_index
from domain.index.scoring import Labels, Mask
from domain.index.snapshot import IndexSnapshot
from domain.labels import LabelMap
from domain.metadata_index import MetadataIndex
from domain.models import (
    Chunk,
    Document,
    IndexSpec,
    IndexState,
    IndexStatus,
    Library,
    Matrix,
    utc_now,
)
from domain.ports import IndexSnapshotStore, UnitOfWorkFactory, VectorIndex

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PendingBuild:
    """A build handed to a background thread: its generation, spec and input vectors."""

    generation: int
    spec: IndexSpec
    labels: Labels
    vectors: Matrix


@dataclass(slots=True)
class _Build:
    """A background build in flight: the writes it must replay before going live."""

    generation: int
    spec: IndexSpec
    progress: float = 0.0
    journal: list[tuple[Labels, Matrix | None]] = field(default_factory=list)


class LiveLibrary:
    """One library's in-memory state. Every method expects the caller to hold ``lock``
    (read for queries, write for changes) unless it says otherwise."""

    def __init__(self, library: Library) -> None:
        self.library = library
        self.lock = ReadWriteLock()
        self.labels = LabelMap()
        self.metadata = MetadataIndex()
        self.index: VectorIndex = new_index(library.index, library.dimension, library.metric)
        self.dropped = False
        self.built_at: datetime | None = utc_now()
        self.build_error: str | None = None
        # Where the serving index came from: "new" (created empty), "store" (built from the
        # stored chunks at start-up), "snapshot" (an index snapshot) or "build" (PUT .../index).
        self.index_source = "new"
        # Bumped whenever ``index`` is replaced: with the revision, it tells a snapshot
        # writer whether the index changed since the last snapshot.
        self.index_epoch = 0
        self.snapshot_mark: tuple[int, int] | None = None
        self._build: _Build | None = None
        self._generation = 0
        # Guards the build bookkeeping, which the builder thread reads and writes without
        # the library lock (progress updates must not wait for searches to drain).
        self._build_mutex = threading.Lock()

    @property
    def id(self) -> str:
        return self.library.id

    def ensure_alive(self) -> None:
        """Raise if the library was deleted while the caller waited for its lock."""
        if self.dropped:
            raise LibraryNotFound(self.library.id)

    def upsert(self, chunks: Sequence[Chunk]) -> None:
        if not chunks:
            return
        labels = self.labels.assign([c.id for c in chunks], [c.document_id for c in chunks])
        vectors = np.stack([c.embedding for c in chunks]).astype(np.float32, copy=False)
        self.index.add(labels, vectors)
        self.metadata.upsert_many(labels, chunks)
        self._journal(labels, vectors)

    def remove(self, chunk_ids: Sequence[str]) -> None:
        labels = self.labels.release(chunk_ids)
        if labels.shape[0] == 0:
            return
        self.index.remove(labels)
        self.metadata.remove(labels)
        self._journal(labels, None)

    def save_documents(self, documents: Sequence[Document]) -> None:
        """Keep the document metadata that ``document.KEY`` filters read in step."""
        for document in documents:
            self.metadata.set_document_metadata(document.id, document.metadata)

    def forget_documents(self, document_ids: Sequence[str]) -> None:
        """Drop deleted documents' metadata (their chunks go through ``remove``)."""
        for document_id in document_ids:
            self.metadata.remove_document(document_id)

    def allowed(self, filter_: Filter) -> Mask:
        """The labels whose chunk matches ``filter_``, as a mask for ``VectorIndex.search``."""
        return self.metadata.mask(filter_, self.labels.capacity)

    def index_status(self) -> IndexStatus:
        with self._build_mutex:
            build = self._build
            if build is not None:
                return IndexStatus(
                    build.spec, IndexState.BUILDING, build.progress, len(self.index), self.built_at
                )
        return IndexStatus(
            self.index.spec, IndexState.READY, 1.0, len(self.index), self.built_at, self.build_error
        )

    # Background builds. ``start_build`` and ``finish_build`` need the write lock; the build
    # itself runs between them with no library lock held.

    def start_build(self, spec: IndexSpec) -> PendingBuild:
        """Register a build of ``spec`` (superseding any in flight) with a copy of the
        vectors to build from; writes from now on are journaled for it. Needs the read lock
        at least."""
        labels, vectors = self.index.items()
        with self._build_mutex:
            self._generation += 1
            self._build = _Build(self._generation, spec)
            return PendingBuild(self._generation, spec, labels, vectors)

    def build(
        self, pending: PendingBuild, before_swap: Callable[[VectorIndex], None] | None = None
    ) -> bool:
        """Build ``pending`` with no library lock held, then, under the write lock, call
        ``before_swap`` (to persist the new spec, say) and make the index live. False when
        the build was superseded, the library dropped, or the build failed (the reason then
        shows in the index status while the previous index keeps serving). Call it without
        holding the lock, on a background thread."""
        library = self.library
        try:
            index = build_index(
                pending.spec,
                library.dimension,
                library.metric,
                pending.labels,
                pending.vectors,
                lambda fraction: self.report_progress(pending.generation, fraction),
            )
            with self.lock.write():
                if self.dropped or not self.is_current_build(pending.generation):
                    return False
                if before_swap is not None:
                    before_swap(index)
                return self.finish_build(pending.generation, index)
        except LibraryNotFound:
            return False
        except Exception as exc:  # a build must never take the node down
            log.exception("library %s: index build failed", self.id)
            self.fail_build(pending.generation, f"{type(exc).__name__}: {exc}")
            return False

    def report_progress(self, generation: int, progress: float) -> None:
        with self._build_mutex:
            if self._build is not None and self._build.generation == generation:
                self._build.progress = max(0.0, min(progress, 0.999))

    def finish_build(self, generation: int, index: VectorIndex) -> bool:
        """Replay the writes made during the build and make ``index`` live; False when the
        build was superseded or the library dropped. Needs the write lock."""
        with self._build_mutex:
            build = self._build
            if build is None or build.generation != generation or self.dropped:
                return False
            for labels, vectors in build.journal:
                if vectors is None:
                    index.remove(labels)
                else:
                    index.add(labels, vectors)
            self._build = None
        self.index = index
        self.index_source = "build"
        self.index_epoch += 1
        self.library.index = index.spec
        self.built_at = utc_now()
        self.build_error = None
        return True

    def fail_build(self, generation: int, reason: str) -> None:
        with self._build_mutex:
            if self._build is None or self._build.generation != generation:
                return
            self._build = None
        self.build_error = reason

    def is_building(self) -> bool:
        with self._build_mutex:
            return self._build is not None

    def snapshot(self) -> IndexSnapshot:
        """The serving index as a snapshot at the current store position (copies, so it can
        be written after the lock is released). Needs the read lock."""
        return IndexSnapshot(
            state=self.index.to_state(),
            chunk_ids=self.labels.chunk_ids(),
            revision=self.library.revision,
            library_created_at=self.library.created_at,
        )

    @property
    def position(self) -> tuple[int, int]:
        """(revision, index epoch): changes whenever a snapshot of the index would."""
        return self.library.revision, self.index_epoch

    def is_current_build(self, generation: int) -> bool:
        with self._build_mutex:
            return self._build is not None and self._build.generation == generation

    def _journal(self, labels: Labels, vectors: Matrix | None) -> None:
        with self._build_mutex:
            if self._build is not None:
                self._build.journal.append(
                    (labels.copy(), None if vectors is None else vectors.copy())
                )


class LiveLibraries:
    """The registry of live libraries.

    Lock order: a library's lock may be taken before the registry mutex, never after it;
    the mutex is held only for dictionary operations. So no cycle, so no deadlock.
    """

    def __init__(self) -> None:
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
        """Rebuild every library's in-memory state from the store (at start-up), taking its
        index from ``snapshots`` when a snapshot there still matches the store.

        Small batches keep the transient rows of a read small: what the allocator keeps of
        them stays resident after the load (81k x 384 vectors: 20,000-row batches left ~70
        MiB more resident than 2,000-row ones, and were no faster)."""
        cursor: str | None = None
        while True:
            with uow_factory(read_only=True) as uow:
                page = uow.libraries.list(100, cursor)
            for library in page.items:
                self.add(_load_one(uow_factory, library, batch_size, snapshots))
            if page.next_cursor is None:
                return
            cursor = page.next_cursor


def _load_one(
    uow_factory: UnitOfWorkFactory,
    library: Library,
    batch_size: int,
    snapshots: IndexSnapshotStore | None,
) -> LiveLibrary:
    """One library from the store, its index from a snapshot that still fits or rebuilt.

    A snapshot is served only if its checksum holds, it reflects this library (creation
    time) at this store position (revision), its index loads and has the library's spec,
    and its labels name exactly the stored chunks. Anything else is logged and the index
    is built from the store: a stale or corrupt snapshot is never served.
    """
    started = time.monotonic()
    snapshot = _usable_snapshot(snapshots, library)
    if snapshot is not None:
        index, restored, labels_map = snapshot
        read = _read_store(uow_factory, library, batch_size, labels_map)
        if read is not None:
            live = read[0]
            live.index = index
            live.index_source = "snapshot"
            live.snapshot_mark = live.position
            log.info(
                "library %s: %d vectors, %s index loaded from its snapshot (revision %d) in %.1fs",
                library.id,
                len(index),
                library.index.type.value,
                restored.revision,
                time.monotonic() - started,
            )
            return live
        log.warning(
            "library %s: index snapshot ignored: its chunks differ from the store's; "
            "rebuilding from the store",
            library.id,
        )
    read = _read_store(uow_factory, library, batch_size)
    if read is None:
        raise AssertionError("a store read without a snapshot's labels always fits")
    live, loaded = read
    live.index_source = "store"
    if loaded is None:
        return live
    labels, vectors = loaded
    del read, loaded
    count = int(labels.shape[0])

    def progress(fraction: float) -> None:
        log.info("library %s: indexing %.0f%%", library.id, fraction * 100)

    live.index = build_index(
        library.index,
        library.dimension,
        library.metric,
        labels,
        vectors,
        progress if count >= 100_000 else lambda _: None,
    )
    log.info(
        "library %s: %d vectors loaded into a %s index in %.1fs",
        library.id,
        count,
        library.index.type.value,
        time.monotonic() - started,
    )
    return live


def _usable_snapshot(
    snapshots: IndexSnapshotStore | None, library: Library
) -> tuple[VectorIndex, IndexSnapshot, LabelMap] | None:
    """The library's snapshot, its index and its labels if they may be served at the
    store's position, else None (and a log line saying why)."""
    if snapshots is None:
        return None
    try:
        snapshot = snapshots.load(library.id)
        if snapshot is None:
            return None
        reason = _mismatch(snapshot, library)
        if reason is None:
            index = load_index(snapshot.state)
            labels = LabelMap.restore(snapshot.chunk_ids)
            reason = _index_mismatch(index, snapshot, library)
            if reason is None:
                return index, snapshot, labels
    except ValueError as exc:
        reason = f"corrupt ({exc})"
    log.warning(
        "library %s: index snapshot ignored: %s; rebuilding from the store", library.id, reason
    )
    return None


def _mismatch(snapshot: IndexSnapshot, library: Library) -> str | None:
    if snapshot.library_created_at != library.created_at:
        return "it belongs to an earlier library with the same id"
    if snapshot.revision != library.revision:
        return f"stale (revision {snapshot.revision}, the store is at {library.revision})"
    return None


def _index_mismatch(index: VectorIndex, snapshot: IndexSnapshot, library: Library) -> str | None:
    if index.spec != library.index:
        return f"it holds {index.spec}, the library uses {library.index}"
    if index.dimension != library.dimension or index.metric is not library.metric:
        return "its dimension or metric differs from the library's"
    if len(index) != snapshot.chunk_count:
        return f"its index holds {len(index)} vectors for {snapshot.chunk_count} labels"
    indexed = np.sort(index.items()[0])
    named = np.flatnonzero([chunk_id is not None for chunk_id in snapshot.chunk_ids])
    if not np.array_equal(indexed, named):
        return "its index and its label list name different labels"
    return None


Loaded = tuple[Labels, Matrix]


def _read_store(
    uow_factory: UnitOfWorkFactory,
    library: Library,
    batch_size: int,
    restored: LabelMap | None = None,
) -> tuple[LiveLibrary, Loaded | None] | None:
    """The library's documents and chunks read into a new live library, with the labels
    and vectors read (None when there are none) to build its index from.

    With ``restored`` (a snapshot's labels) the chunks keep those labels and no vectors are
    kept; None is returned as soon as the stored chunks are not exactly the ones it names.
    """
    live = LiveLibrary(library)
    if restored is not None:
        live.labels = restored
    expected = len(live.labels)
    label_blocks: list[Labels] = []
    vectors = np.empty((0, library.dimension), dtype=np.float32)
    stored = 0
    with uow_factory(read_only=True) as uow:
        cursor: str | None = None
        while True:
            page = uow.documents.list(library.id, 1_000, cursor)
            live.save_documents([d for d in page.items if d.metadata])
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        if restored is None:
            # One matrix of the right size, filled in place: no list of blocks to
            # concatenate, so the vectors are held once while the index is built.
            vectors = np.empty((uow.libraries.counts(library.id)[1], library.dimension), np.float32)
        for block in uow.chunks.scan_columns(library.id, batch_size):
            labels = live.labels.assign(block.ids, block.document_ids)
            n = len(block)
            if restored is not None:
                if len(live.labels) > expected:
                    return None  # a stored chunk the snapshot does not know
            else:
                if stored + n > vectors.shape[0]:  # the count is a bound, not a promise
                    vectors = _with_rows(vectors, stored + n)
                vectors[stored : stored + n] = block.embeddings
                label_blocks.append(labels)
            stored += n
            live.metadata.upsert_columns(labels, block)
            if stored % 100_000 < batch_size <= stored:
                log.info("library %s: read %d chunks", library.id, stored)
    if restored is not None:
        # Every stored chunk had a label already, so equal counts mean equal sets.
        return (live, None) if stored == expected else None
    if not label_blocks:
        return live, None
    labels_read = np.concatenate(label_blocks) if len(label_blocks) > 1 else label_blocks[0]
    return live, (labels_read, vectors[:stored])


def _with_rows(matrix: Matrix, rows: int) -> Matrix:
    """``matrix`` with room for at least ``rows`` rows (doubling), its rows kept."""
    grown = np.empty((max(rows, 2 * matrix.shape[0]), matrix.shape[1]), dtype=matrix.dtype)
    grown[: matrix.shape[0]] = matrix
    return grown
