"""Whether an index snapshot found at start-up may be served.

An index snapshot (an index file, ``domain/index/snapshot.py``; not a copy of the store)
is served only if its checksum holds, it reflects this library (creation time) at this
store position (revision), its index loads and has the library's spec, dimension and
metric, and its labels name exactly the vectors its index holds. Anything else is logged
and the index is built from the store: a stale or corrupt snapshot is never served.
"""

from __future__ import annotations

import logging

import numpy as np

from domain.index.index_snapshot import IndexSnapshot
from domain.index.registry import load_index
from domain.labels import LabelMap
from domain.models import Library
from domain.ports import IndexSnapshotStore, VectorIndex

log = logging.getLogger(__name__)


def usable_index_snapshot(
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
