"""List values over slots, as inverted lists: each element -> the slots whose list holds it."""

from __future__ import annotations

from typing import Any, TypeAlias

from domain.filters import as_number
from domain.index.scoring import Mask
from domain.metadata_index.columns import mask_of

# A list element as a hashable key: strings, numbers (as doubles) and booleans kept apart
# (True == 1 in Python, not here).
Member: TypeAlias = tuple[str, str | float | bool]


def member(value: str | float | bool) -> Member:
    """The key of one list element (or of a ``contains`` operand)."""
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, str):
        return ("s", value)
    return ("n", as_number(value))


def _members(items: list[Any]) -> set[Member]:
    return {member(v) for v in items if isinstance(v, str | int | float)}


class InvertedLists:
    """The list values of one key: membership costs O(matches), not O(slots).

    Only scalar elements are indexed (a list is reachable through ``contains`` and
    ``exists`` alone); an element no slot holds any more is forgotten.
    """

    def __init__(self) -> None:
        self._holders: dict[Member, set[int]] = {}

    def put(self, slot: int, items: list[Any]) -> None:
        for key in _members(items):
            self._holders.setdefault(key, set()).add(slot)

    def drop(self, slot: int, items: list[Any]) -> None:
        for key in _members(items):
            holders = self._holders[key]
            holders.discard(slot)
            if not holders:
                del self._holders[key]

    def holding(self, value: str | float | bool, n: int) -> Mask:
        """Slots whose list has ``value`` as an element."""
        return mask_of(self._holders.get(member(value), set()), n)
