"""Metadata dictionaries over slots: the rows as written and one ``Field`` per key in use."""

from __future__ import annotations

import numpy as np

from domain.filters import Condition, Op
from domain.index.scoring import Mask
from domain.metadata_index.columns import fit
from domain.metadata_index.fields import Field
from domain.models import Metadata


class Table:
    """Metadata dictionaries over slots (labels or document slots), one ``Field`` per key."""

    def __init__(self) -> None:
        self.fields: dict[str, Field] = {}
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
                self.fields.setdefault(key, Field()).put(slot, value)

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
            return fit(column.present.has, n).copy()
        return column.leaf(cond, n)
