"""``matches``: the reference semantics of a filter, one chunk at a time in plain Python.

What a filter means is stated in ``domain.filters``; this walk is that statement as code,
and the columnar ``domain.metadata_index.MetadataIndex`` is checked against it (property
tests). ``ChunkFields`` is everything a filter can read about one chunk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeAlias

from domain.filters.coercion import as_number, datetime_micros, rfc3339_micros
from domain.filters.tree import (
    And,
    Boolean,
    Condition,
    FieldRef,
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
)
from domain.models import Chunk, Document, Metadata, MetadataValue, Scalar


@dataclass(frozen=True, slots=True)
class ChunkFields:
    """Everything a filter can read about one chunk."""

    id: str
    document_id: str
    created_at: datetime
    updated_at: datetime
    metadata: Metadata = field(default_factory=dict)
    document_metadata: Metadata = field(default_factory=dict)

    @classmethod
    def of(cls, chunk: Chunk, document: Document | None = None) -> ChunkFields:
        return cls(
            chunk.id,
            chunk.document_id,
            chunk.created_at,
            chunk.updated_at,
            chunk.metadata,
            document.metadata if document is not None else {},
        )


def matches(filter_: Filter, fields: ChunkFields) -> bool:
    """Whether one chunk matches: the reference semantics, a plain recursive walk.

    O(nodes) per chunk (plus the length of strings and lists the leaves read). Use it for
    a handful of chunks; ``MetadataIndex.mask`` evaluates a whole library vectorised.
    """
    if isinstance(filter_, And):
        return all(matches(child, fields) for child in filter_.children)
    if isinstance(filter_, Or):
        return any(matches(child, fields) for child in filter_.children)
    if isinstance(filter_, Not):
        return not matches(filter_.child, fields)
    return _leaf_matches(filter_, _read(filter_.field, fields))


_Read: TypeAlias = MetadataValue | datetime


def _read(ref: FieldRef, fields: ChunkFields) -> _Read:
    if ref.scope is Scope.CHUNK:
        return fields.metadata.get(ref.key)
    if ref.scope is Scope.DOCUMENT:
        return fields.document_metadata.get(ref.key)
    system = SystemField(ref.key)
    if system is SystemField.ID:
        return fields.id
    if system is SystemField.DOCUMENT_ID:
        return fields.document_id
    return fields.created_at if system is SystemField.CREATED_AT else fields.updated_at


def _leaf_matches(cond: Condition, value: _Read) -> bool:
    op = cond.op
    if op is Op.EXISTS:
        return (value is not None) == (cond.value == Boolean(True))
    if value is None:
        return False
    if op is Op.CONTAINS:
        return _contains(value, cond.operands[0])
    if isinstance(value, list):
        return False  # lists are only reachable through contains and exists
    if op is Op.IN:
        return any(_key(value, o) == _okey(o) for o in cond.operands)
    if op is Op.NIN:
        keys = [(_key(value, o), _okey(o)) for o in cond.operands]
        return any(k is not None for k, _ in keys) and all(k != target for k, target in keys)
    operand = cond.operands[0]
    key = _key(value, operand)
    if key is None:
        return False
    if op is Op.EQ:
        return key == _okey(operand)
    if op is Op.NE:
        return key != _okey(operand)
    return _in_range(op, _rank(key), _rank(_okey(operand)))


def _in_range(op: Op, left: float, right: float) -> bool:
    if op is Op.GT:
        return left > right
    if op is Op.GTE:
        return left >= right
    if op is Op.LT:
        return left < right
    return left <= right


# A value as seen by one kind of operand: (kind, value); equal keys mean equal values.
_Key: TypeAlias = tuple[str, str | float | int | bool]


def _rank(key: _Key) -> float:
    """The ordered part of a number's or an instant's key (ranges apply to nothing else)."""
    value = key[1]
    if isinstance(value, str):
        raise TypeError(f"{key[0]} values have no order")
    return value


def _okey(operand: Operand) -> _Key:
    if isinstance(operand, Instant):
        return ("datetime", operand.micros)
    return (type(operand).__name__, operand.value)


def _key(value: Scalar | datetime, operand: Operand) -> _Key | None:
    """The value seen as the operand's kind, or None when it is not comparable with it."""
    if isinstance(operand, Boolean):
        return ("Boolean", value) if isinstance(value, bool) else None
    if isinstance(operand, Number):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return ("Number", as_number(value))
    if isinstance(operand, Text):
        return ("Text", value) if isinstance(value, str) else None
    if isinstance(value, datetime):
        return ("datetime", datetime_micros(value))
    micros = rfc3339_micros(value) if isinstance(value, str) else None
    return None if micros is None else ("datetime", micros)


def _contains(value: MetadataValue | datetime, operand: Operand) -> bool:
    if isinstance(value, list):
        target = _okey(operand)
        return any(_key(item, operand) == target for item in value)
    if isinstance(value, str) and isinstance(operand, Text):
        return operand.value in value
    return False
