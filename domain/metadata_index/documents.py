"""Document slots: each document's metadata kept once, and each label's document slot.

A ``document.KEY`` leaf is evaluated over documents (usually far fewer than chunks) and
gathered onto labels with one fancy-index, so updating a document's metadata costs
O(its keys), not O(its chunks).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from domain.filters import Condition
from domain.index.scoring import Labels, Mask
from domain.metadata_index.columns import grown
from domain.metadata_index.table import Table
from domain.models import Metadata

NO_SLOT = -1


class DocumentSlots:
    """The documents of one library by slot, their metadata, and the slot of each label.

    A slot lives while its document has chunks or has had its metadata set, and is reused
    once free. A document's labels are found by scanning ``of_label`` (only a document
    delete needs them), so a chunk count per slot is all that is kept.
    """

    def __init__(self) -> None:
        # the document slot of each label; NO_SLOT for a label without a chunk
        self.of_label: NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self.slot_of: dict[str, int] = {}
        self.ids: list[str | None] = []
        self.metadata = Table()
        self._chunks: list[int] = []
        self._known: list[bool] = []
        self._free: list[int] = []

    def __len__(self) -> int:
        """Slots ever allocated, free ones included: the length of a mask over slots."""
        return len(self.ids)

    def grow(self, labels: int) -> int:
        """Room for ``labels`` labels; returns the new room (new labels have no slot)."""
        more = grown(self.of_label, labels)
        more[self.of_label.shape[0] :] = NO_SLOT
        self.of_label = more
        return int(more.shape[0])

    def id_at(self, label: int) -> str:
        """The document id of the chunk at a live ``label``."""
        document_id = self.ids[int(self.of_label[label])]
        assert document_id is not None  # a live label always has a document
        return document_id

    def metadata_at(self, label: int) -> Metadata:
        """The metadata of the document of the chunk at a live ``label``, as a filter reads it."""
        return self.metadata.row(int(self.of_label[label]))

    def set_metadata(self, document_id: str, metadata: Metadata) -> None:
        """Replace a document's metadata; O(its keys)."""
        slot = self._slot(document_id)
        self._known[slot] = True
        self.metadata.set(slot, metadata)

    def labels(self, document_id: str, size: int) -> Labels | None:
        """The labels below ``size`` of the document's chunks (O(size)), None if unknown."""
        slot = self.slot_of.get(document_id)
        if slot is None:
            return None
        return np.flatnonzero(self.of_label[:size] == slot)

    def forget(self, document_id: str) -> None:
        """Drop a document's metadata; its slot is freed once it has no chunks either."""
        slot = self.slot_of.get(document_id)
        if slot is None:
            return
        self._known[slot] = False
        self.metadata.clear(slot)
        self._release(slot)

    def assign(self, labels: Labels, document_ids: Sequence[str]) -> None:
        """Put the chunk at ``labels[i]`` in document ``document_ids[i]``: vectorised, with
        per-slot work only for the documents that gain or lose chunks."""
        slot_of = {d: self._slot(d) for d in dict.fromkeys(document_ids)}
        new = np.fromiter((slot_of[d] for d in document_ids), dtype=np.int64, count=labels.shape[0])
        old = self.of_label[labels]
        moved = old != new
        if not moved.any():
            return
        self.of_label[labels[moved]] = new[moved]
        for slot, count in zip(*np.unique(new[moved], return_counts=True), strict=True):
            self._chunks[int(slot)] += int(count)
        left = old[moved]
        left = left[left != NO_SLOT]
        for slot, count in zip(*np.unique(left, return_counts=True), strict=True):
            self._chunks[int(slot)] -= int(count)
            self._release(int(slot))

    def unassign(self, label: int) -> None:
        """The chunk at ``label`` is gone: it leaves its document."""
        slot = int(self.of_label[label])
        self.of_label[label] = NO_SLOT
        self._chunks[slot] -= 1
        self._release(slot)

    def leaf(self, cond: Condition, n: int) -> Mask:
        """A ``document.KEY`` leaf over the first ``n`` labels: evaluated per document, then
        gathered onto labels."""
        on_documents = self.metadata.leaf(cond, len(self.ids))
        # one extra False for the slot -1 that dead labels point at
        return np.append(on_documents, False)[self.of_label[:n]]

    def labels_mask(self, slots: list[int], n: int) -> Mask:
        """The first ``n`` labels whose document is at one of ``slots``."""
        if not slots:
            return np.zeros(n, dtype=np.bool_)
        return np.isin(self.of_label[:n], np.asarray(slots, dtype=np.int64))

    def _slot(self, document_id: str) -> int:
        slot = self.slot_of.get(document_id)
        if slot is not None:
            return slot
        if self._free:
            slot = self._free.pop()
            self.ids[slot] = document_id
        else:
            slot = len(self.ids)
            self.ids.append(document_id)
            self._chunks.append(0)
            self._known.append(False)
        self.slot_of[document_id] = slot
        return slot

    def _release(self, slot: int) -> None:
        """Free a document slot that has no chunks and no metadata set."""
        if self._chunks[slot] or self._known[slot]:
            return
        document_id = self.ids[slot]
        if document_id is None:
            return
        del self.slot_of[document_id]
        self.ids[slot] = None
        self._free.append(slot)
