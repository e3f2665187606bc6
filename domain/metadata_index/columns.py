"""Typed NumPy columns over slots, and the mask helpers every part of the index shares.

A slot is a chunk's label or a document's slot. A ``Column`` is one array of values and
one of flags (a value of this type is set), grown by doubling; a ``Mask`` is a bool array
over slots, cut or padded to the length a caller asks for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeAlias

import numpy as np
from numpy.typing import NDArray

from domain.filters import Op
from domain.index.scoring import Mask

_MIN_SLOTS = 64

Compare: TypeAlias = Callable[[NDArray[Any], Any], NDArray[np.bool_]]

RANGES: dict[Op, Compare] = {
    Op.GT: np.greater,
    Op.GTE: np.greater_equal,
    Op.LT: np.less,
    Op.LTE: np.less_equal,
}


def fit(mask: Mask, n: int) -> Mask:
    """``mask`` cut or padded with False to length ``n``."""
    if mask.shape[0] == n:
        return mask
    if mask.shape[0] > n:
        return mask[:n]
    out = np.zeros(n, dtype=np.bool_)
    out[: mask.shape[0]] = mask
    return out


def grown(array: NDArray[Any], size: int) -> NDArray[Any]:
    """``array`` with room for ``size`` slots (doubling, so O(1) amortised per slot)."""
    if array.shape[0] >= size:
        return array
    out = np.zeros(max(size, 2 * array.shape[0], _MIN_SLOTS), dtype=array.dtype)
    out[: array.shape[0]] = array
    return out


def mask_of(slots: Iterable[int], n: int) -> Mask:
    """The slots as a mask of length ``n``; slots at or past ``n`` are dropped."""
    out = np.zeros(n, dtype=np.bool_)
    picked = np.fromiter(slots, dtype=np.int64)
    out[picked[picked < n]] = True
    return out


class Column:
    """One typed column over slots: ``values`` and ``has`` (a value of this type is set)."""

    def __init__(self, dtype: type[np.generic]) -> None:
        self.values: NDArray[Any] = np.zeros(0, dtype=dtype)
        self.has: Mask = np.zeros(0, dtype=np.bool_)

    def put(self, slot: int, value: Any) -> None:
        self.values = grown(self.values, slot + 1)
        self.has = grown(self.has, slot + 1)
        self.values[slot] = value
        self.has[slot] = True

    def drop(self, slot: int) -> None:
        if slot < self.has.shape[0]:
            self.has[slot] = False

    def where(self, compare: Compare, operand: Any, n: int) -> Mask:
        """Slots holding a value ``v`` with ``compare(v, operand)``; O(n) vectorised."""
        return fit(self.has & compare(self.values, operand), n)

    def isin(self, operands: Sequence[Any], n: int) -> Mask:
        return fit(self.has & np.isin(self.values, np.asarray(operands)), n)
