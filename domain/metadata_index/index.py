"""``MetadataIndex``: what a filter can read of every chunk of one library, as columns.

The chunks' labels, ids and timestamps live here; their metadata in a ``Table`` over
labels, their documents' metadata in ``DocumentSlots``. ``mask`` walks the filter tree
once, each leaf answered by the columns of its scope.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
from numpy.typing import NDArray

from domain.filters import (
    And,
    Boolean,
    ChunkFields,
    Condition,
    Filter,
    Instant,
    Not,
    Op,
    Or,
    Scope,
    SystemField,
    Text,
    datetime_micros,
)
from domain.index.scoring import Labels, Mask
from domain.metadata_index.columns import RANGES, fit, grown, mask_of
from domain.metadata_index.documents import DocumentSlots
from domain.metadata_index.table import Table
from domain.models import Chunk, ChunkColumns, Metadata

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class MetadataIndex:
    """Columnar metadata of one library's chunks and documents, indexed by chunk label.

    Writes: ``upsert`` O(keys of the old and new metadata) amortised; ``remove`` O(keys);
    ``set_document_metadata`` O(keys of the document); ``remove_document`` O(its chunks'
    keys). Reads: ``mask`` O(n · filter nodes) vectorised, n the label capacity.
    Memory: 33 bytes per label slot (liveness, timestamps, document slot, chunk id pointer)
    plus one dict entry per chunk id; per key, 1 byte per label for presence plus the
    columns of the kinds its values have (8 bytes per label for numbers and datetimes, 4 for
    strings, 1 for booleans), and list elements in inverted lists. Chunks without metadata
    cost nothing more: ingest of such a batch is a few vectorised array writes.
    """

    def __init__(self) -> None:
        self._size = 0
        self._live: Mask = np.zeros(0, dtype=np.bool_)
        self._created: NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self._updated: NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self._label_of: dict[str, int] = {}
        # The chunk id at each label, None for a free one: a list, not a dict (~100 B less
        # per chunk), of the same string objects as ``_label_of``'s keys.
        self._chunk_ids: list[str | None] = []
        self._count = 0
        self._chunks = Table()
        self._documents = DocumentSlots()

    def __len__(self) -> int:
        """Live chunks."""
        return self._count

    @property
    def capacity(self) -> int:
        """One past the largest label ever upserted."""
        return self._size

    # --- writes ---------------------------------------------------------------------------

    def upsert(
        self,
        label: int,
        chunk_id: str,
        document_id: str,
        metadata: Metadata,
        created_at: datetime,
        updated_at: datetime,
    ) -> None:
        """Insert or replace what a filter can read of the chunk at ``label``.

        A label that held another chunk id, or a chunk id held by another label, is
        replaced: the index keeps one label per chunk id, as ``LabelMap`` does.
        """
        self._upsert_rows(
            [label],
            [chunk_id],
            [document_id],
            {0: metadata} if metadata else {},
            np.array([datetime_micros(created_at)], dtype=np.int64),
            np.array([datetime_micros(updated_at)], dtype=np.int64),
        )

    def upsert_many(self, labels: Sequence[int] | Labels, chunks: Sequence[Chunk]) -> None:
        """``upsert`` each chunk at the label in the same position: O(batch) Python for the
        id maps plus vectorised column writes, and per-key work only for chunks that carry
        metadata (or replace a chunk that did)."""
        if len(labels) != len(chunks):
            raise ValueError(f"{len(labels)} labels for {len(chunks)} chunks")
        micros: dict[datetime, int] = {}  # a batch shares a handful of timestamps

        def micros_of(moments: Iterable[datetime]) -> NDArray[np.int64]:
            return np.fromiter(
                (
                    micros[m] if m in micros else micros.setdefault(m, datetime_micros(m))
                    for m in moments
                ),
                dtype=np.int64,
                count=len(chunks),
            )

        self._upsert_rows(
            [int(label) for label in labels],
            [c.id for c in chunks],
            [c.document_id for c in chunks],
            {i: c.metadata for i, c in enumerate(chunks) if c.metadata},
            micros_of(c.created_at for c in chunks),
            micros_of(c.updated_at for c in chunks),
        )

    def upsert_columns(self, labels: Labels, columns: ChunkColumns) -> None:
        """``upsert_many`` from columns (a start-up load): the timestamps go in as arrays and
        only the rows with metadata cost per-key work."""
        if labels.shape[0] != len(columns):
            raise ValueError(f"{labels.shape[0]} labels for {len(columns)} chunks")
        self._upsert_rows(
            labels.tolist(),
            columns.ids,
            columns.document_ids,
            columns.metadata,
            columns.created_micros,
            columns.updated_micros,
        )

    def remove(self, labels: Iterable[int] | Labels) -> None:
        """Forget the chunks at these labels; labels not in the index are skipped."""
        for label in labels:
            self._remove_label(int(label))

    def set_document_metadata(self, document_id: str, metadata: Metadata) -> None:
        """Replace a document's metadata, read by ``document.KEY`` fields; O(its keys)."""
        self._documents.set_metadata(document_id, metadata)

    def remove_document(self, document_id: str) -> Labels:
        """Forget a document's metadata and all its chunks; returns the labels removed."""
        removed = self._documents.labels(document_id, self._size)
        if removed is None:
            return np.empty(0, dtype=np.int64)
        for label in removed:
            self._remove_label(int(label))
        self._documents.forget(document_id)
        return removed

    # --- reads ----------------------------------------------------------------------------

    def mask(self, filter_: Filter, capacity: int | None = None) -> Mask:
        """The labels whose chunk matches, as a bool array of length ``capacity`` (default
        ``self.capacity``); labels at or past the index's capacity are False."""
        n = self._size if capacity is None else capacity
        return fit(self._eval(filter_), n)

    def count(self, filter_: Filter) -> int:
        """How many chunks match: O(n · filter nodes)."""
        return int(np.count_nonzero(self._eval(filter_)))

    def selectivity(self, filter_: Filter) -> float:
        """The share of live chunks that match, in [0, 1] (1 for an empty library)."""
        live = len(self)
        return self.count(filter_) / live if live else 1.0

    def chunk_metadata(self, label: int) -> Metadata:
        """The metadata of the chunk at ``label`` as it was written (a copy; {} for none):
        what a search returns without reading the store. O(its keys)."""
        return self._chunks.written(label)

    def fields(self, label: int) -> ChunkFields:
        """What a filter reads of the chunk at ``label`` (KeyError if none): the input of
        ``domain.filters.matches`` for that chunk."""
        chunk_id = self._chunk_ids[label] if 0 <= label < self._size else None
        if chunk_id is None:
            raise KeyError(label)
        return ChunkFields(
            chunk_id,
            self._documents.id_at(label),
            _EPOCH + timedelta(microseconds=int(self._created[label])),
            _EPOCH + timedelta(microseconds=int(self._updated[label])),
            self._chunks.row(label),
            self._documents.metadata_at(label),
        )

    # --- evaluation -----------------------------------------------------------------------

    def _eval(self, node: Filter) -> Mask:
        n = self._size
        if isinstance(node, And):
            out = self._eval(node.children[0]).copy()
            for child in node.children[1:]:
                out &= self._eval(child)
            return out
        if isinstance(node, Or):
            out = self._eval(node.children[0]).copy()
            for child in node.children[1:]:
                out |= self._eval(child)
            return out
        if isinstance(node, Not):
            return self._live[:n] & ~self._eval(node.child)
        if node.op is Op.EXISTS and node.value == Boolean(False):
            present = Condition(node.field, Op.EXISTS, Boolean(True))
            return self._live[:n] & ~self._eval(present)
        return self._leaf(node)

    def _leaf(self, cond: Condition) -> Mask:
        """A leaf other than ``exists false``: missing fields never match."""
        n = self._size
        if cond.field.scope is Scope.CHUNK:
            return self._chunks.leaf(cond, n)
        if cond.field.scope is Scope.DOCUMENT:
            return self._documents.leaf(cond, n)
        live = self._live[:n]
        if cond.op is Op.EXISTS:
            return live.copy()
        system = SystemField(cond.field.key)
        if system.is_datetime:
            column = self._created if system is SystemField.CREATED_AT else self._updated
            return live & _compare_instants(cond, column[:n])
        if system is SystemField.ID:
            return self._on_strings(cond, self._label_of, lambda ls: mask_of(ls, n), live)
        documents = self._documents
        return self._on_strings(
            cond, documents.slot_of, lambda slots: documents.labels_mask(slots, n), live
        )

    def _on_strings(
        self,
        cond: Condition,
        slot_of: dict[str, int],
        gather: Callable[[list[int]], Mask],
        live: Mask,
    ) -> Mask:
        """``id``/``document_id`` leaves: every live chunk has one, always a string."""
        texts = [o.value for o in cond.operands if isinstance(o, Text)]
        if cond.op is Op.CONTAINS:
            # a Python loop over the distinct ids; ids are rarely searched by substring
            picked = [slot for text, slot in slot_of.items() if texts[0] in text]
        else:
            picked = [slot_of[t] for t in texts if t in slot_of]
        matched = live & gather(picked)
        if cond.op in (Op.NE, Op.NIN):
            return live & ~matched
        return matched

    # --- bookkeeping ----------------------------------------------------------------------

    def _upsert_rows(
        self,
        labels: list[int],
        chunk_ids: list[str],
        document_ids: list[str],
        metadatas: Mapping[int, Metadata],
        created: NDArray[np.int64],
        updated: NDArray[np.int64],
    ) -> None:
        """``upsert`` of many rows at once; rows apply in order (the last wins).
        ``metadatas`` holds the metadata of row ``i`` at key ``i``, only for rows with any;
        ``created`` and ``updated`` are microseconds since the epoch."""
        if not labels:
            return
        if min(labels) < 0:
            raise ValueError(f"labels are non-negative, got {min(labels)}")
        if len(set(labels)) < len(labels) or len(set(chunk_ids)) < len(chunk_ids):
            # a label or an id twice: one row at a time keeps the "last wins" order
            for i, (label, chunk_id, document_id) in enumerate(
                zip(labels, chunk_ids, document_ids, strict=True)
            ):
                metadata = metadatas.get(i)
                self._upsert_rows(
                    [label],
                    [chunk_id],
                    [document_id],
                    {} if metadata is None else {0: metadata},
                    created[i : i + 1],
                    updated[i : i + 1],
                )
            return
        self._ensure(max(labels) + 1)
        for label, chunk_id in zip(labels, chunk_ids, strict=True):
            previous = self._label_of.get(chunk_id)
            if previous is not None and previous != label:
                self._remove_label(previous)
            held = self._chunk_ids[label]
            if held is None:
                self._count += 1
            elif held != chunk_id:
                self._remove_label(label)
                self._count += 1
            self._label_of[chunk_id] = label
            self._chunk_ids[label] = chunk_id
        at = np.asarray(labels, dtype=np.int64)
        self._live[at] = True
        self._created[at] = created
        self._updated[at] = updated
        self._documents.assign(at, document_ids)
        rows = self._chunks.rows
        # Rows without metadata matter only where they replace a chunk that had some.
        stale = [i for i, label in enumerate(labels) if label in rows] if rows else []
        for i in sorted({*metadatas, *stale}):
            self._chunks.set(labels[i], metadatas.get(i, {}))

    def _ensure(self, size: int) -> None:
        if size <= self._size:
            return
        self._live = grown(self._live, size)
        self._created = grown(self._created, size)
        self._updated = grown(self._updated, size)
        room = self._documents.grow(size)
        self._chunk_ids.extend([None] * (room - len(self._chunk_ids)))
        self._size = size

    def _remove_label(self, label: int) -> None:
        chunk_id = self._chunk_ids[label] if label < self._size else None
        if chunk_id is None:
            return
        self._chunk_ids[label] = None
        self._count -= 1
        del self._label_of[chunk_id]
        self._live[label] = False
        self._chunks.clear(label)
        self._documents.unassign(label)


def _compare_instants(cond: Condition, column: NDArray[np.int64]) -> Mask:
    """A created_at/updated_at leaf over every label (operands are all instants)."""
    micros = [o.micros for o in cond.operands if isinstance(o, Instant)]
    if cond.op in RANGES:
        return RANGES[cond.op](column, micros[0])
    equal = np.isin(column, np.asarray(micros, dtype=np.int64))
    return ~equal if cond.op in (Op.NE, Op.NIN) else equal
