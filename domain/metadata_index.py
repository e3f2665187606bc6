"""Columnar metadata of one library, for evaluating a filter over every chunk at once.

``MetadataIndex`` keeps, per metadata key, typed NumPy columns indexed by the chunk's label
(see ``domain.labels.LabelMap``): float64 numbers, int64 microseconds for RFC 3339 strings,
booleans, and strings dictionary-encoded as int32 codes; list values go to inverted lists
(element -> set of labels). ``id``, ``document_id``, ``created_at`` and ``updated_at`` are
columns too. Document metadata (``document.KEY``) is kept once per document, in the same
columnar form over document slots, plus each label's document slot: a ``document.KEY`` leaf
is evaluated over documents (usually far fewer than chunks) and gathered onto labels with
one fancy-index, so updating a document's metadata costs O(its keys), not O(its chunks).

``mask(filter)`` answers exactly what ``domain.filters.matches`` answers for each chunk
(the property tests check it). Every leaf costs O(n) vectorised NumPy work over the labels,
except: ``contains`` on a string field loops in Python over the field's *distinct* strings
(not its chunks); ``contains`` on ``id`` loops over the chunk ids; ``eq``/``in`` on ``id``
and list membership cost O(matches). ``and``/``or``/``not`` are O(n) per node.

Not thread-safe: callers hold the library's lock, as they do for its vector index.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeAlias

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
    Number,
    Op,
    Operand,
    Or,
    Scope,
    SystemField,
    Text,
    as_number,
    datetime_micros,
    rfc3339_micros,
)
from domain.index.scoring import Labels, Mask
from domain.models import Chunk, ChunkColumns, Metadata, MetadataValue

_MIN_SLOTS = 64
_NO_SLOT = -1

# A list element as a hashable key: strings, numbers (as doubles) and booleans kept apart
# (True == 1 in Python, not here).
_Member: TypeAlias = tuple[str, str | float | bool]
_Compare: TypeAlias = Callable[[NDArray[Any], Any], NDArray[np.bool_]]

_RANGES: dict[Op, _Compare] = {
    Op.GT: np.greater,
    Op.GTE: np.greater_equal,
    Op.LT: np.less,
    Op.LTE: np.less_equal,
}


def _fit(mask: Mask, n: int) -> Mask:
    """``mask`` cut or padded with False to length ``n``."""
    if mask.shape[0] == n:
        return mask
    if mask.shape[0] > n:
        return mask[:n]
    out = np.zeros(n, dtype=np.bool_)
    out[: mask.shape[0]] = mask
    return out


def _grown(array: NDArray[Any], size: int) -> NDArray[Any]:
    """``array`` with room for ``size`` slots (doubling, so O(1) amortised per slot)."""
    if array.shape[0] >= size:
        return array
    out = np.zeros(max(size, 2 * array.shape[0], _MIN_SLOTS), dtype=array.dtype)
    out[: array.shape[0]] = array
    return out


def _mask_of(slots: Iterable[int], n: int) -> Mask:
    out = np.zeros(n, dtype=np.bool_)
    picked = np.fromiter(slots, dtype=np.int64)
    out[picked[picked < n]] = True
    return out


class _Column:
    """One typed column over slots: ``values`` and ``has`` (a value of this type is set)."""

    def __init__(self, dtype: type[np.generic]) -> None:
        self.values: NDArray[Any] = np.zeros(0, dtype=dtype)
        self.has: Mask = np.zeros(0, dtype=np.bool_)

    def put(self, slot: int, value: Any) -> None:
        self.values = _grown(self.values, slot + 1)
        self.has = _grown(self.has, slot + 1)
        self.values[slot] = value
        self.has[slot] = True

    def drop(self, slot: int) -> None:
        if slot < self.has.shape[0]:
            self.has[slot] = False

    def where(self, compare: _Compare, operand: Any, n: int) -> Mask:
        """Slots holding a value ``v`` with ``compare(v, operand)``; O(n) vectorised."""
        return _fit(self.has & compare(self.values, operand), n)

    def isin(self, operands: Sequence[Any], n: int) -> Mask:
        return _fit(self.has & np.isin(self.values, np.asarray(operands)), n)


class _Strings:
    """Scalar strings dictionary-encoded: an int32 code per slot, a refcount per string.

    Codes of strings no slot holds any more are reused, so the dictionary stays as large as
    the number of distinct live strings.
    """

    def __init__(self) -> None:
        self.codes = _Column(np.int32)
        self.code_of: dict[str, int] = {}
        self.refs: list[int] = []
        self.text_of: list[str] = []
        self._free: list[int] = []

    def put(self, slot: int, text: str) -> None:
        code = self.code_of.get(text)
        if code is None:
            code = self._free.pop() if self._free else len(self.refs)
            if code == len(self.refs):
                self.refs.append(0)
                self.text_of.append(text)
            self.code_of[text], self.text_of[code] = code, text
        self.refs[code] += 1
        self.codes.put(slot, code)

    def drop(self, slot: int, text: str) -> None:
        self.codes.drop(slot)
        code = self.code_of[text]
        self.refs[code] -= 1
        if self.refs[code] == 0:
            del self.code_of[text]
            self._free.append(code)

    def equal_any(self, texts: Iterable[str], n: int) -> Mask:
        codes = [self.code_of[t] for t in texts if t in self.code_of]
        if not codes:
            return np.zeros(n, dtype=np.bool_)
        if len(codes) == 1:
            return self.codes.where(np.equal, codes[0], n)
        return self.codes.isin(codes, n)

    def containing(self, part: str, n: int) -> Mask:
        """Slots whose string contains ``part``: a Python loop over distinct strings only."""
        return self.equal_any([t for t in self.code_of if part in t], n)


class _Field:
    """One metadata key over slots, with a column per kind its values have had."""

    def __init__(self) -> None:
        self.present = _Column(np.bool_)
        self.count = 0
        self.numbers = _Column(np.float64)
        self.booleans = _Column(np.bool_)
        self.instants = _Column(np.int64)
        self.strings = _Strings()
        self.members: dict[_Member, set[int]] = {}

    def put(self, slot: int, value: MetadataValue) -> None:
        self.present.put(slot, True)
        self.count += 1
        if isinstance(value, bool):
            self.booleans.put(slot, value)
        elif isinstance(value, int | float):
            self.numbers.put(slot, as_number(value))
        elif isinstance(value, str):
            self.strings.put(slot, value)
            micros = rfc3339_micros(value)
            if micros is not None:
                self.instants.put(slot, micros)
        elif isinstance(value, list):
            for member in _members(value):
                self.members.setdefault(member, set()).add(slot)

    def drop(self, slot: int, value: MetadataValue) -> None:
        self.present.drop(slot)
        self.count -= 1
        if isinstance(value, bool):
            self.booleans.drop(slot)
        elif isinstance(value, int | float):
            self.numbers.drop(slot)
        elif isinstance(value, str):
            self.strings.drop(slot, value)
            self.instants.drop(slot)
        elif isinstance(value, list):
            for member in _members(value):
                holders = self.members[member]
                holders.discard(slot)
                if not holders:
                    del self.members[member]

    def comparable(self, operand: Operand, n: int) -> Mask:
        """Slots holding a scalar of the operand's kind."""
        return _fit(self._column(operand).has, n)

    def equal_any(self, operands: Sequence[Operand], n: int) -> Mask:
        out = self.strings.equal_any([o.value for o in operands if isinstance(o, Text)], n)
        for kind in (Number, Boolean, Instant):
            values = [_raw(o) for o in operands if isinstance(o, kind)]
            if values:
                out |= self._kind_column(kind).isin(values, n)
        return out

    def _column(self, operand: Operand) -> _Column:
        return self._kind_column(type(operand))

    def _kind_column(self, kind: type) -> _Column:
        if kind is Number:
            return self.numbers
        if kind is Boolean:
            return self.booleans
        if kind is Instant:
            return self.instants
        return self.strings.codes

    def leaf(self, cond: Condition, n: int) -> Mask:
        """The slots a leaf other than ``exists`` matches (a missing value never does)."""
        op, operands = cond.op, cond.operands
        if op is Op.CONTAINS:
            operand = operands[0]
            holders = self.members.get(_member(_raw(operand)), set())
            out = _mask_of(holders, n)
            if isinstance(operand, Text):
                out |= self.strings.containing(operand.value, n)
            return out
        if op in _RANGES:
            return self._column(operands[0]).where(_RANGES[op], _raw(operands[0]), n)
        equal = self.equal_any(operands, n)
        if op in (Op.EQ, Op.IN):
            return equal
        comparable = np.zeros(n, dtype=np.bool_)
        for operand in operands:
            comparable |= self.comparable(operand, n)
        return comparable & ~equal


def _raw(operand: Operand) -> Any:
    return operand.micros if isinstance(operand, Instant) else operand.value


def _member(value: str | float | bool) -> _Member:
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, str):
        return ("s", value)
    return ("n", as_number(value))


def _members(items: list[Any]) -> set[_Member]:
    return {_member(v) for v in items if isinstance(v, str | int | float)}


class _Table:
    """Metadata dictionaries over slots (labels or document slots), one ``_Field`` per key."""

    def __init__(self) -> None:
        self.fields: dict[str, _Field] = {}
        self.rows: dict[int, Metadata] = {}

    def set(self, slot: int, metadata: Metadata) -> None:
        """Replace the slot's metadata: O(old keys + new keys). The row keeps the metadata
        as written (null values too: search results return it); only non-null values are
        indexed, as a filter reads null as absent."""
        self.clear(slot)
        if not metadata:
            return  # most chunks carry no metadata: no empty dict per chunk (~160 B each)
        row = {k: list(v) if isinstance(v, list) else v for k, v in metadata.items()}
        self.rows[slot] = row
        for key, value in row.items():
            if value is not None:
                self.fields.setdefault(key, _Field()).put(slot, value)

    def clear(self, slot: int) -> None:
        row = self.rows.pop(slot, None)
        if row is None:
            return
        for key, value in row.items():
            if value is None:
                continue
            column = self.fields[key]
            column.drop(slot, value)
            if column.count == 0:
                del self.fields[key]  # keeps memory bounded by the keys in use

    def row(self, slot: int) -> Metadata:
        """The slot's metadata as a filter reads it: null values are absent."""
        return {k: v for k, v in self.rows.get(slot, {}).items() if v is not None}

    def written(self, slot: int) -> Metadata:
        """The slot's metadata as it was written, null values included (a copy)."""
        return dict(self.rows.get(slot, {}))

    def leaf(self, cond: Condition, n: int) -> Mask:
        column = self.fields.get(cond.field.key)
        if column is None:
            return np.zeros(n, dtype=np.bool_)
        if cond.op is Op.EXISTS:
            # presence (exists false is its complement); a copy, never the column itself
            return _fit(column.present.has, n).copy()
        return column.leaf(cond, n)


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
        self._doc_of: NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self._label_of: dict[str, int] = {}
        # The chunk id at each label, None for a free one: a list, not a dict (~100 B less
        # per chunk), of the same string objects as ``_label_of``'s keys.
        self._chunk_ids: list[str | None] = []
        self._count = 0
        self._chunks = _Table()
        # documents, by slot; a document's labels are found by scanning ``_doc_of`` (only a
        # document delete needs them), so a count per slot is all that is kept
        self._doc_slot: dict[str, int] = {}
        self._doc_ids: list[str | None] = []
        self._doc_chunks: list[int] = []
        self._doc_known: list[bool] = []
        self._doc_free: list[int] = []
        self._documents = _Table()

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
        slot = self._document_slot(document_id)
        self._doc_known[slot] = True
        self._documents.set(slot, metadata)

    def remove_document(self, document_id: str) -> Labels:
        """Forget a document's metadata and all its chunks; returns the labels removed."""
        slot = self._doc_slot.get(document_id)
        if slot is None:
            return np.empty(0, dtype=np.int64)
        removed = np.flatnonzero(self._doc_of[: self._size] == slot)
        for label in removed:
            self._remove_label(int(label))
        self._doc_known[slot] = False
        self._documents.clear(slot)
        self._release_document(slot)
        return removed

    # --- reads ----------------------------------------------------------------------------

    def mask(self, filter_: Filter, capacity: int | None = None) -> Mask:
        """The labels whose chunk matches, as a bool array of length ``capacity`` (default
        ``self.capacity``); labels at or past the index's capacity are False."""
        n = self._size if capacity is None else capacity
        return _fit(self._eval(filter_), n)

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
        doc_slot = int(self._doc_of[label])
        document_id = self._doc_ids[doc_slot]
        assert document_id is not None  # a live label always has a document
        return ChunkFields(
            chunk_id,
            document_id,
            _EPOCH + timedelta(microseconds=int(self._created[label])),
            _EPOCH + timedelta(microseconds=int(self._updated[label])),
            self._chunks.row(label),
            self._documents.row(doc_slot),
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
            on_documents = self._documents.leaf(cond, len(self._doc_ids))
            # one extra False for the slot -1 that dead labels point at
            return np.append(on_documents, False)[self._doc_of[:n]]
        live = self._live[:n]
        if cond.op is Op.EXISTS:
            return live.copy()
        system = SystemField(cond.field.key)
        if system.is_datetime:
            column = self._created if system is SystemField.CREATED_AT else self._updated
            return live & _compare_instants(cond, column[:n])
        if system is SystemField.ID:
            return self._on_strings(cond, self._label_of, lambda ls: _mask_of(ls, n), live)
        return self._on_strings(cond, self._doc_slot, self._doc_labels_mask, live)

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

    def _doc_labels_mask(self, slots: list[int]) -> Mask:
        n = self._size
        if not slots:
            return np.zeros(n, dtype=np.bool_)
        return np.isin(self._doc_of[:n], np.asarray(slots, dtype=np.int64))

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
        self._move_to_documents(at, document_ids)
        rows = self._chunks.rows
        # Rows without metadata matter only where they replace a chunk that had some.
        stale = [i for i, label in enumerate(labels) if label in rows] if rows else []
        for i in sorted({*metadatas, *stale}):
            self._chunks.set(labels[i], metadatas.get(i, {}))

    def _move_to_documents(self, labels: Labels, document_ids: list[str]) -> None:
        slot_of = {d: self._document_slot(d) for d in dict.fromkeys(document_ids)}
        new = np.fromiter((slot_of[d] for d in document_ids), dtype=np.int64, count=labels.shape[0])
        old = self._doc_of[labels]
        moved = old != new
        if not moved.any():
            return
        self._doc_of[labels[moved]] = new[moved]
        for slot, count in zip(*np.unique(new[moved], return_counts=True), strict=True):
            self._doc_chunks[int(slot)] += int(count)
        left = old[moved]
        left = left[left != _NO_SLOT]
        for slot, count in zip(*np.unique(left, return_counts=True), strict=True):
            self._doc_chunks[int(slot)] -= int(count)
            self._release_document(int(slot))

    def _ensure(self, size: int) -> None:
        if size <= self._size:
            return
        self._live = _grown(self._live, size)
        self._created = _grown(self._created, size)
        self._updated = _grown(self._updated, size)
        grown = _grown(self._doc_of, size)
        grown[self._doc_of.shape[0] :] = _NO_SLOT
        self._doc_of = grown
        self._chunk_ids.extend([None] * (grown.shape[0] - len(self._chunk_ids)))
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
        slot = int(self._doc_of[label])
        self._doc_of[label] = _NO_SLOT
        self._doc_chunks[slot] -= 1
        self._release_document(slot)

    def _document_slot(self, document_id: str) -> int:
        slot = self._doc_slot.get(document_id)
        if slot is not None:
            return slot
        if self._doc_free:
            slot = self._doc_free.pop()
            self._doc_ids[slot] = document_id
        else:
            slot = len(self._doc_ids)
            self._doc_ids.append(document_id)
            self._doc_chunks.append(0)
            self._doc_known.append(False)
        self._doc_slot[document_id] = slot
        return slot

    def _release_document(self, slot: int) -> None:
        """Free a document slot that has no chunks and no metadata set."""
        if self._doc_chunks[slot] or self._doc_known[slot]:
            return
        document_id = self._doc_ids[slot]
        if document_id is None:
            return
        del self._doc_slot[document_id]
        self._doc_ids[slot] = None
        self._doc_free.append(slot)


def _compare_instants(cond: Condition, column: NDArray[np.int64]) -> Mask:
    """A created_at/updated_at leaf over every label (operands are all instants)."""
    micros = [o.micros for o in cond.operands if isinstance(o, Instant)]
    if cond.op in _RANGES:
        return _RANGES[cond.op](column, micros[0])
    equal = np.isin(column, np.asarray(micros, dtype=np.int64))
    return ~equal if cond.op in (Op.NE, Op.NIN) else equal
