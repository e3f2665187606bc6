"""How the indexes' arrays grow: geometrically, by 1.25x (low, so the spare room stays a
small fraction of the data) and never below a floor, keeping the rows in use. One rule for
Flat's matrix, IVF's lists, HNSW's nodes and every label -> position map."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

GROWTH = 1.25
MIN_CAPACITY = 64


def grown_capacity(needed: int, capacity: int, floor: int = MIN_CAPACITY) -> int:
    """The capacity to grow to for ``needed`` rows: at least 1.25x ``capacity``, amortised
    O(1) copies per row appended."""
    return max(needed, int(capacity * GROWTH), floor)


def regrown(array: NDArray[Any], size: int, keep: int, fill: Any = None) -> NDArray[Any]:
    """``array`` reallocated to ``size`` rows (same dtype and row shape) holding its first
    ``keep`` rows; the others are ``fill``, or left uninitialised when it is None."""
    shape = (size, *array.shape[1:])
    out = np.empty(shape, dtype=array.dtype) if fill is None else np.full(shape, fill, array.dtype)
    out[:keep] = array[:keep]
    return out


def with_label_space(label_map: NDArray[Any], needed: int) -> NDArray[Any]:
    """A label -> position map with room for every label below ``needed``, new labels -1
    (absent): ``label_map`` itself when it already has the room."""
    current = label_map.shape[0]
    if needed <= current:
        return label_map
    return regrown(label_map, grown_capacity(needed, current), current, fill=-1)
