"""One metadata key over slots: a column per kind of value it has held, and its leaves."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from domain.filters import (
    Boolean,
    Condition,
    Instant,
    Number,
    Op,
    Operand,
    Text,
    as_number,
    rfc3339_micros,
)
from domain.index.scoring import Mask
from domain.metadata_index.columns import RANGES, Column, fit
from domain.metadata_index.lists import InvertedLists
from domain.metadata_index.strings import StringDictionary
from domain.models import MetadataValue


class Field:
    """One metadata key over slots, with a column per kind its values have had.

    A string that is an RFC 3339 date-time is kept twice: as a string and as an instant,
    so that it answers both text and datetime operands, as ``domain.filters`` specifies.
    """

    def __init__(self) -> None:
        self.present = Column(np.bool_)
        self.count = 0
        self.numbers = Column(np.float64)
        self.booleans = Column(np.bool_)
        self.instants = Column(np.int64)
        self.strings = StringDictionary()
        self.lists = InvertedLists()

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
            self.lists.put(slot, value)

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
            self.lists.drop(slot, value)

    def comparable(self, operand: Operand, n: int) -> Mask:
        """Slots holding a scalar of the operand's kind."""
        return fit(self._column(operand).has, n)

    def equal_any(self, operands: Sequence[Operand], n: int) -> Mask:
        out = self.strings.equal_any([o.value for o in operands if isinstance(o, Text)], n)
        for kind in (Number, Boolean, Instant):
            values = [raw(o) for o in operands if isinstance(o, kind)]
            if values:
                out |= self._kind_column(kind).isin(values, n)
        return out

    def _column(self, operand: Operand) -> Column:
        return self._kind_column(type(operand))

    def _kind_column(self, kind: type) -> Column:
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
            out = self.lists.holding(raw(operand), n)
            if isinstance(operand, Text):
                out |= self.strings.containing(operand.value, n)
            return out
        if op in RANGES:
            return self._column(operands[0]).where(RANGES[op], raw(operands[0]), n)
        equal = self.equal_any(operands, n)
        if op in (Op.EQ, Op.IN):
            return equal
        comparable = np.zeros(n, dtype=np.bool_)
        for operand in operands:
            comparable |= self.comparable(operand, n)
        return comparable & ~equal


def raw(operand: Operand) -> Any:
    """The operand as its column stores it: microseconds for an instant, else its value."""
    return operand.micros if isinstance(operand, Instant) else operand.value
