"""Start-up loading: every library's live state read from the store.

Each library's documents and chunks are read into a new ``LiveLibrary``; its index comes
from an index snapshot (an index file saved by ``application/index_snapshots.py``) when
``index_snapshot_check.py`` finds one that still matches the store, else it is built from
the vectors read. Its keyword index is built from the texts as they are read (a library's
texts are indexed in about 2 s per 100k chunks, so no snapshot of it is kept).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import numpy as np

from application.live.index_snapshot_check import usable_index_snapshot
from application.live.state import LiveLibrary
from domain.index.registry import build_index
from domain.index.scoring import Labels
from domain.labels import LabelMap
from domain.models import Library, Matrix
from domain.ports import IndexSnapshotStore, UnitOfWorkFactory
from domain.text_index.analysis import Analyzers

log = logging.getLogger(__name__)


def load_all(
    uow_factory: UnitOfWorkFactory,
    analyzers: Analyzers,
    batch_size: int = 2_000,
    snapshots: IndexSnapshotStore | None = None,
) -> Iterator[LiveLibrary]:
    """Every stored library's in-memory state, rebuilt from the store, its index taken
    from ``snapshots`` when a snapshot there still matches the store.

    Small batches keep the transient rows of a read small: what the allocator keeps of
    them stays resident after the load (81k x 384 vectors: 20,000-row batches left ~70
    MiB more resident than 2,000-row ones, and were no faster)."""
    cursor: str | None = None
    while True:
        with uow_factory(read_only=True) as uow:
            page = uow.libraries.list(100, cursor)
        for library in page.items:
            yield _load_one(uow_factory, analyzers, library, batch_size, snapshots)
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def _load_one(
    uow_factory: UnitOfWorkFactory,
    analyzers: Analyzers,
    library: Library,
    batch_size: int,
    snapshots: IndexSnapshotStore | None,
) -> LiveLibrary:
    """One library from the store, its index from an index snapshot that still fits
    (``index_snapshot_check.py``) and whose labels name exactly the stored chunks, or else
    built from the store: a stale or corrupt snapshot is never served."""
    started = time.monotonic()
    snapshot = usable_index_snapshot(snapshots, library)
    if snapshot is not None:
        index, restored, labels_map = snapshot
        read = _read_store(uow_factory, analyzers, library, batch_size, labels_map)
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
    read = _read_store(uow_factory, analyzers, library, batch_size)
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


Loaded = tuple[Labels, Matrix]


def _read_store(
    uow_factory: UnitOfWorkFactory,
    analyzers: Analyzers,
    library: Library,
    batch_size: int,
    restored: LabelMap | None = None,
) -> tuple[LiveLibrary, Loaded | None] | None:
    """The library's documents and chunks read into a new live library, with the labels
    and vectors read (None when there are none) to build its index from.

    With ``restored`` (a snapshot's labels) the chunks keep those labels and no vectors are
    kept; None is returned as soon as the stored chunks are not exactly the ones it names.
    """
    live = LiveLibrary(library, analyzers)
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
        text = live.text
        for block in uow.chunks.scan_columns(library.id, batch_size, with_text=text is not None):
            labels = live.labels.assign(block.ids, block.document_ids)
            if text is not None:
                text.add(labels, block.texts or [])
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
