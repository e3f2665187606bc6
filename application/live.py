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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from application.locks import ReadWriteLock
from domain.errors import LibraryNotFound
from domain.filters import Filter
from domain.index.factory import build_index, new_index
from domain.index.scoring import Labels, Mask
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
from domain.ports import UnitOfWorkFactory, VectorIndex

log = logging.getLogger(__name__)


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

    def start_build(self, spec: IndexSpec) -> tuple[int, Labels, Matrix]:
        """Register a build of ``spec`` (superseding any in flight) and return its
        generation and a snapshot of the vectors to build from. Needs the read lock at least."""
        labels, vectors = self.index.items()
        with self._build_mutex:
            self._generation += 1
            self._build = _Build(self._generation, spec)
            return self._generation, labels, vectors

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
        with self._mutex:
            live = self._libraries.get(library_id)
        if live is None:
            raise LibraryNotFound(library_id)
        return live

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

    def load(self, uow_factory: UnitOfWorkFactory, batch_size: int = 20_000) -> None:
        """Rebuild every library's in-memory state from the store (at start-up)."""
        cursor: str | None = None
        while True:
            with uow_factory(read_only=True) as uow:
                page = uow.libraries.list(100, cursor)
            for library in page.items:
                self.add(self._load_one(uow_factory, library, batch_size))
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    @staticmethod
    def _load_one(uow_factory: UnitOfWorkFactory, library: Library, batch_size: int) -> LiveLibrary:
        started = time.monotonic()
        live = LiveLibrary(library)
        label_blocks: list[Labels] = []
        vector_blocks: list[Matrix] = []
        with uow_factory(read_only=True) as uow:
            cursor: str | None = None
            while True:
                page = uow.documents.list(library.id, 1_000, cursor)
                live.save_documents([d for d in page.items if d.metadata])
                if page.next_cursor is None:
                    break
                cursor = page.next_cursor
            for batch in uow.chunks.scan(library.id, batch_size):
                labels = live.labels.assign([c.id for c in batch], [c.document_id for c in batch])
                live.metadata.upsert_many(labels, batch)
                label_blocks.append(labels)
                vector_blocks.append(np.stack([c.embedding for c in batch]))
                if len(live.labels) % 100_000 < batch_size <= len(live.labels):
                    log.info("library %s: read %d chunks", library.id, len(live.labels))
        if not label_blocks:
            return live
        labels = np.concatenate(label_blocks)
        vectors = np.concatenate(vector_blocks) if len(vector_blocks) > 1 else vector_blocks[0]
        del vector_blocks
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
