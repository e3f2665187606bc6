"""The in-memory side of one library: its lock, labels, metadata, vector index and keyword
index.

The store (behind the unit of work) is the source of truth; a ``LiveLibrary`` is derived
from it at start-up (``loading.py``) and kept in step by the services, always under the
library's lock: writers commit to the store first, then apply the same change here
(``change.py``) while still holding the write lock, so a search (which holds the read
lock) never sees the two disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

import numpy as np

from application.live.build import IndexBuilds, PendingBuild, run_build
from application.live.text_build import TextBuilds
from application.locks import ReadWriteLock
from domain.errors import KeywordIndexBuilding, LibraryNotFound
from domain.filters import Filter
from domain.index.index_snapshot import IndexSnapshot
from domain.index.registry import new_index
from domain.index.scoring import Hits, Mask
from domain.labels import LabelMap
from domain.metadata_index import MetadataIndex
from domain.models import (
    Chunk,
    Document,
    IndexSpec,
    IndexState,
    IndexStatus,
    Library,
    TextIndexSpec,
    TextIndexType,
    utc_now,
)
from domain.ports import VectorIndex
from domain.text_index.analysis import Analyzers
from domain.text_index.bm25 import Bm25Index


class LiveLibrary:
    """One library's in-memory state. Every method expects the caller to hold ``lock``
    (read for queries, write for changes) unless it says otherwise."""

    def __init__(self, library: Library, analyzers: Analyzers) -> None:
        self.library = library
        self.analyzers = analyzers
        self.lock = ReadWriteLock()
        self.labels = LabelMap()
        self.metadata = MetadataIndex()
        self.index: VectorIndex = new_index(library.index, library.dimension, library.metric)
        # The keyword index over the chunks' texts; None with ``text_index`` none, and while
        # the first one is built after a PATCH turned it on (``text_build.py``).
        self.text: Bm25Index | None = new_text_index(library.text_index, analyzers)
        self.text_builds = TextBuilds()
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
        self._builds = IndexBuilds()

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
        self._builds.journal(labels, vectors)
        texts = [c.text for c in chunks]
        if self.text is not None:
            self.text.add(labels, texts)
        self.text_builds.journal(labels, texts)

    def remove(self, chunk_ids: Sequence[str]) -> None:
        labels = self.labels.release(chunk_ids)
        if labels.shape[0] == 0:
            return
        self.index.remove(labels)
        self.metadata.remove(labels)
        self._builds.journal(labels, None)
        if self.text is not None:
            self.text.remove(labels)
            if self.text.needs_compaction:
                self.text.compact()
        self.text_builds.journal(labels, None)

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

    def keyword_search(self, query: str, k: int, mask: Mask | None = None) -> Hits:
        """The ``k`` best chunks' labels for ``query`` by BM25 (``Bm25Index.search``); raises
        ``KeywordIndexBuilding`` while a PATCH is building the library's first one. The
        caller has checked that ``text_index`` is not none."""
        if self.text is None:
            raise KeywordIndexBuilding(self.id)
        return self.text.search(query, k, mask)

    def keyword_index_bytes(self) -> int:
        """Memory held by the keyword index (0 without one), for the metrics; any thread."""
        text = self.text
        return 0 if text is None else text.memory_bytes()

    # Keyword index changes (``text_build.py``): ``change_text_index`` needs the write lock;
    # the build then runs with no lock held (``run_text_build``) and ends in
    # ``finish_text_build``, under the write lock again.

    def change_text_index(self, spec: TextIndexSpec) -> int | None:
        """Follow a committed change of ``text_index`` to ``spec`` (already in ``library``):
        none drops the keyword index at once; otherwise returns the generation of a build for
        ``run_text_build`` to run (None when ``spec`` is what serves already)."""
        if spec.type is TextIndexType.NONE:
            self.text_builds.cancel()
            self.text = None
            return None
        if self.text is not None and self.text.params == spec.params:
            self.text_builds.cancel()
            return None
        return self.text_builds.start(spec)

    def finish_text_build(self, generation: int, index: Bm25Index) -> bool:
        """Replay the writes made during build ``generation`` into ``index`` and serve it;
        False when the build was superseded. Needs the write lock."""
        if not self.text_builds.complete(generation, index):
            return False
        self.text = index
        return True

    def index_status(self) -> IndexStatus:
        in_flight = self._builds.in_flight()
        if in_flight is not None:
            spec, progress = in_flight
            return IndexStatus(spec, IndexState.BUILDING, progress, len(self.index), self.built_at)
        return IndexStatus(
            self.index.spec, IndexState.READY, 1.0, len(self.index), self.built_at, self.build_error
        )

    # Background builds (``build.py``, the state machine in ``journal.py``). ``start_build``
    # and ``finish_build`` need the write lock; the build itself runs between them with no
    # library lock held.

    def start_build(self, spec: IndexSpec) -> PendingBuild:
        """Register a build of ``spec`` (superseding any in flight) with a copy of the
        vectors to build from; writes from now on are journaled for it. Needs the read lock
        at least."""
        labels, vectors = self.index.items()
        return PendingBuild(self._builds.start(spec), spec, labels, vectors)

    def build(
        self, pending: PendingBuild, before_swap: Callable[[VectorIndex], None] | None = None
    ) -> bool:
        """Run ``pending`` and make its index live; see ``build.run_build``."""
        return run_build(self, pending, before_swap)

    def report_progress(self, generation: int, progress: float) -> None:
        self._builds.report_progress(generation, progress)

    def finish_build(self, generation: int, index: VectorIndex) -> bool:
        """Replay the writes made during the build and make ``index`` live; False when the
        build was superseded or the library dropped. Needs the write lock."""
        if self.dropped or not self._builds.complete(generation, index):
            return False
        self.index = index
        self.index_source = "build"
        self.index_epoch += 1
        self.library.index = index.spec
        self.built_at = utc_now()
        self.build_error = None
        return True

    def fail_build(self, generation: int, reason: str) -> None:
        if self._builds.fail(generation):
            self.build_error = reason

    def is_building(self) -> bool:
        return self._builds.in_flight() is not None

    def is_current_build(self, generation: int) -> bool:
        return self._builds.is_current(generation)

    def snapshot(self) -> IndexSnapshot:
        """The serving index as an index snapshot at the current store position (copies,
        so it can be written after the lock is released). Needs the read lock."""
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


def new_text_index(spec: TextIndexSpec, analyzers: Analyzers) -> Bm25Index | None:
    """An empty keyword index for ``spec`` (None for ``none``)."""
    return None if spec.type is TextIndexType.NONE else Bm25Index(spec.params, analyzers)
