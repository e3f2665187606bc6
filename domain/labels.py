"""Dense integer labels for the chunks of one library.

Indexes and metadata columns are arrays indexed by label, so a chunk id (a string) is turned
into a small int once, here. Freed labels are reused so those arrays stay as long as the
library's live chunk count, not its history.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from domain.index.scoring import Labels


class LabelMap:
    def __init__(self) -> None:
        self._label_of: dict[str, int] = {}
        self._chunk_ids: list[str | None] = []
        self._document_ids: list[str | None] = []
        self._free: list[int] = []

    @classmethod
    def restore(cls, chunk_ids: Sequence[str | None]) -> LabelMap:
        """The map whose ``chunk_ids()`` was ``chunk_ids`` (from an index snapshot): the same
        label for every chunk, None marking a free label. Documents are set by ``assign``."""
        restored = cls()
        restored._chunk_ids = list(chunk_ids)
        restored._document_ids = [None] * len(chunk_ids)
        for label, chunk_id in enumerate(chunk_ids):
            if chunk_id is None:
                restored._free.append(label)
            elif restored._label_of.setdefault(chunk_id, label) != label:
                raise ValueError(f"chunk {chunk_id!r} holds two labels")
        restored._free.reverse()  # hand out the lowest free label first
        return restored

    def chunk_ids(self) -> list[str | None]:
        """The chunk behind each label, None for a free one: what ``restore`` takes."""
        return list(self._chunk_ids)

    def __len__(self) -> int:
        return len(self._label_of)

    def __contains__(self, chunk_id: str) -> bool:
        return chunk_id in self._label_of

    @property
    def capacity(self) -> int:
        """One past the largest label handed out: the length a label-indexed array needs."""
        return len(self._chunk_ids)

    def assign(self, chunk_ids: Sequence[str], document_ids: Sequence[str]) -> Labels:
        """Labels for these chunks, new ones for unknown ids; records each chunk's document."""
        labels = np.empty(len(chunk_ids), dtype=np.int64)
        for i, (chunk_id, document_id) in enumerate(zip(chunk_ids, document_ids, strict=True)):
            label = self._label_of.get(chunk_id)
            if label is None:
                label = self._allocate()
                self._label_of[chunk_id] = label
                self._chunk_ids[label] = chunk_id
            self._document_ids[label] = document_id
            labels[i] = label
        return labels

    def release(self, chunk_ids: Iterable[str]) -> Labels:
        """Forget these chunks; returns the labels they held (unknown ids are skipped)."""
        freed = []
        for chunk_id in chunk_ids:
            label = self._label_of.pop(chunk_id, None)
            if label is None:
                continue
            self._chunk_ids[label] = None
            self._document_ids[label] = None
            self._free.append(label)
            freed.append(label)
        return np.asarray(freed, dtype=np.int64)

    def label(self, chunk_id: str) -> int | None:
        return self._label_of.get(chunk_id)

    def labels(self, chunk_ids: Iterable[str]) -> Labels:
        return np.asarray([self._label_of[c] for c in chunk_ids], dtype=np.int64)

    def chunk_id(self, label: int) -> str:
        chunk_id = self._chunk_ids[label]
        if chunk_id is None:
            raise KeyError(label)
        return chunk_id

    def document_id(self, label: int) -> str:
        document_id = self._document_ids[label]
        if document_id is None:
            raise KeyError(label)
        return document_id

    def _allocate(self) -> int:
        if self._free:
            return self._free.pop()
        self._chunk_ids.append(None)
        self._document_ids.append(None)
        return len(self._chunk_ids) - 1
