"""The metadata filter language: a JSON tree parsed into immutable, typed domain objects.

A filter is a tree. A leaf is ``{"field": NAME, "op": OP, "value": V}``; inner nodes are
``{"and": [F, ...]}``, ``{"or": [F, ...]}`` and ``{"not": F}``. ``parse_filter`` turns the
JSON into ``Condition``/``And``/``Or``/``Not`` and raises ``InvalidFilter`` with a
``location`` such as ``filter.and[1].value`` for the first node it cannot accept.

Fields
    ``KEY``: a key of the chunk's metadata. ``document.KEY``: a key of the metadata of the
    chunk's document. System fields ``id``, ``document_id`` (strings) and ``created_at``,
    ``updated_at`` (datetimes) take precedence over chunk metadata keys of the same name.

Values are typed, per chunk (there is no schema):
    * text: a string;
    * number: an int or a float, compared together as IEEE-754 doubles (integers beyond
      2**53 compare approximately, as in JSON and JavaScript); ``True``/``False`` are never
      numbers;
    * boolean;
    * datetime: a string in RFC 3339 ``date-time`` form with an explicit offset, e.g.
      ``2024-05-01T12:00:00Z`` or ``2024-05-01T14:00:00.5+02:00``, compared as instants to
      the microsecond. A metadata string that is such a date-time is both a text and a
      datetime value. A filter string that is such a date-time is a datetime operand for
      ``eq, ne, in, nin, gt, gte, lt, lte``: it matches metadata strings that are date-times
      of the same instant, whatever their offset or spelling. ``contains`` always treats its
      operand as text. On ``id`` and ``document_id`` strings are always text. On
      ``created_at``/``updated_at`` every value must be such a date-time;
    * list: a list of scalars, reachable through ``contains`` (membership) and ``exists``.

Operators
    ``eq, ne``: a scalar of any kind. ``gt, gte, lt, lte``: a number or a datetime.
    ``in, nin``: a non-empty list of scalars. ``contains``: a string is a substring of a
    string field or an element of a list field; a number or a boolean is an element of a
    list field. ``exists``: a boolean.

Semantics (``matches`` is the reference; ``domain.metadata_index`` agrees with it exactly)
    * A field is *missing* when the key is absent or its value is ``null``.
    * Every leaf but ``exists`` matches only a field that holds a value comparable with the
      operand: same kind (text with text, number with number, boolean with boolean,
      datetime with date-time strings), a scalar for ``eq, ne, gt..lte, in, nin``. So a
      missing field or a value of another kind never matches, not even ``ne`` or ``nin``:
      ``ne`` means "has a value of this kind, and it differs". ``nin`` means "has a scalar
      comparable with at least one listed value, and equal to none". This keeps every leaf
      a statement about a value the chunk has; ``not`` is the one way to select chunks for
      which a leaf fails, missing fields included: ``not(eq x)`` matches a chunk without
      the field, ``ne x`` does not; ``and(exists true, not(eq x))`` is the in-between.
    * ``exists true`` matches a field that is present (any kind, an empty list too);
      ``exists false`` its complement.
    * ``and``/``or``/``not`` are the Boolean connectives over those leaves (two-valued).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any, TypeAlias

from domain.errors import InvalidFilter
from domain.models import Chunk, Document, Metadata, MetadataValue, Scalar

DEFAULT_MAX_DEPTH = 10
DOCUMENT_PREFIX = "document."


class Op(StrEnum):
    EQ = "eq"
    NE = "ne"
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"
    IN = "in"
    NIN = "nin"
    CONTAINS = "contains"
    EXISTS = "exists"


RANGE_OPS = frozenset({Op.GT, Op.GTE, Op.LT, Op.LTE})
LIST_OPS = frozenset({Op.IN, Op.NIN})


class Scope(StrEnum):
    """Where a field's value comes from."""

    CHUNK = "chunk"
    DOCUMENT = "document"
    SYSTEM = "system"


class SystemField(StrEnum):
    ID = "id"
    DOCUMENT_ID = "document_id"
    CREATED_AT = "created_at"
    UPDATED_AT = "updated_at"

    @property
    def is_datetime(self) -> bool:
        return self in (SystemField.CREATED_AT, SystemField.UPDATED_AT)


@dataclass(frozen=True, slots=True)
class FieldRef:
    """A parsed field name: ``scope`` and the key within it (the system field's name)."""

    scope: Scope
    key: str

    @classmethod
    def parse(cls, name: str) -> FieldRef | None:
        """The field a name refers to, or None for an empty name or ``document.``."""
        if name in SystemField.__members__.values():
            return cls(Scope.SYSTEM, name)
        if name.startswith(DOCUMENT_PREFIX):
            key = name[len(DOCUMENT_PREFIX) :]
            return cls(Scope.DOCUMENT, key) if key else None
        return cls(Scope.CHUNK, name) if name else None

    @property
    def system(self) -> SystemField | None:
        return SystemField(self.key) if self.scope is Scope.SYSTEM else None

    def __str__(self) -> str:
        return DOCUMENT_PREFIX + self.key if self.scope is Scope.DOCUMENT else self.key


# --- operands -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Text:
    value: str

    def to_json(self) -> Any:
        return self.value


@dataclass(frozen=True, slots=True)
class Number:
    value: float

    def to_json(self) -> Any:
        return int(self.value) if self.value.is_integer() else self.value


@dataclass(frozen=True, slots=True)
class Boolean:
    value: bool

    def to_json(self) -> Any:
        return self.value


@dataclass(frozen=True, slots=True)
class Instant:
    """A datetime as microseconds since the Unix epoch (UTC); ``text`` is how it was given."""

    micros: int
    text: str = field(compare=False)

    def to_json(self) -> Any:
        return self.text


Operand: TypeAlias = Text | Number | Boolean | Instant


# --- the tree -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Condition:
    """A leaf. ``value`` is one operand, a tuple of them for ``in``/``nin``, and a
    ``Boolean`` for ``exists``."""

    field: FieldRef
    op: Op
    value: Operand | tuple[Operand, ...]

    @property
    def operands(self) -> tuple[Operand, ...]:
        return self.value if isinstance(self.value, tuple) else (self.value,)

    def to_json(self) -> dict[str, Any]:
        value = self.value
        raw = [o.to_json() for o in value] if isinstance(value, tuple) else value.to_json()
        return {"field": str(self.field), "op": self.op.value, "value": raw}


@dataclass(frozen=True, slots=True)
class And:
    children: tuple[Filter, ...]

    def to_json(self) -> dict[str, Any]:
        return {"and": [c.to_json() for c in self.children]}


@dataclass(frozen=True, slots=True)
class Or:
    children: tuple[Filter, ...]

    def to_json(self) -> dict[str, Any]:
        return {"or": [c.to_json() for c in self.children]}


@dataclass(frozen=True, slots=True)
class Not:
    child: Filter

    def to_json(self) -> dict[str, Any]:
        return {"not": self.child.to_json()}


Filter: TypeAlias = Condition | And | Or | Not


# --- datetimes ----------------------------------------------------------------------------

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)
_EPOCH = datetime(1970, 1, 1)
_MICROSECOND = timedelta(microseconds=1)


@lru_cache(maxsize=65_536)
def rfc3339_micros(text: str) -> int | None:
    """Microseconds since the epoch of an RFC 3339 ``date-time`` string, else None.

    Strict: ``T`` (or ``t``) between date and time, an offset (``Z`` or ``±hh:mm``) is
    required, fractions beyond microseconds are truncated, leap seconds are refused.
    O(len(text)); cached because metadata repeats its values.
    """
    if not text[:1].isdigit():
        return None
    found = _RFC3339.fullmatch(text)
    if found is None:
        return None
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = found.groups()
    micros = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        naive = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micros
        )
    except ValueError:
        return None
    offset = 0
    if not zulu:
        if int(off_h) > 23 or int(off_m) > 59:
            return None
        offset = (int(off_h) * 60 + int(off_m)) * (1 if sign == "+" else -1)
    return (naive - _EPOCH) // _MICROSECOND - offset * 60_000_000


def datetime_micros(value: datetime) -> int:
    """Microseconds since the epoch; a naive datetime is taken to be UTC."""
    offset = value.utcoffset() or timedelta(0)
    return (value.replace(tzinfo=None) - _EPOCH) // _MICROSECOND - offset // _MICROSECOND


def as_number(value: int | float) -> float:
    """A metadata number as a double; integers too large for one become +-inf."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


# --- parsing ------------------------------------------------------------------------------


def parse_filter(
    raw: object, *, max_depth: int = DEFAULT_MAX_DEPTH, location: str = "filter"
) -> Filter:
    """Parse the JSON tree ``raw`` (already decoded: dicts, lists, scalars).

    Raises ``InvalidFilter`` whose ``detail`` starts with the offending node's location
    and whose ``extra["location"]`` is that location, e.g. ``filter.or[2].not.op``. A tree
    deeper than ``max_depth`` levels (a lone leaf is one level) is refused. O(nodes).
    """
    return _Parser(max_depth).node(raw, location, 1)


def _fail(location: str, message: str) -> InvalidFilter:
    return InvalidFilter(f"{location}: {message}", location=location)


_CONNECTIVES = ("and", "or", "not")
_LEAF_KEYS = frozenset({"field", "op", "value"})


class _Parser:
    def __init__(self, max_depth: int) -> None:
        self._max_depth = max_depth

    def node(self, raw: object, at: str, depth: int) -> Filter:
        if not isinstance(raw, Mapping):
            raise _fail(at, f"a filter must be an object, got {_json_type(raw)}")
        if depth > self._max_depth:
            raise _fail(at, f"the filter is nested deeper than {self._max_depth} levels")
        keys = set(raw)
        connectives = [k for k in _CONNECTIVES if k in keys]
        if not connectives:
            return self.leaf(raw, at)
        if len(keys) != 1:
            extra = sorted(str(k) for k in keys if k != connectives[0])
            raise _fail(
                at,
                f"a {connectives[0]!r} node takes no other keys, got {', '.join(extra)}",
            )
        name = connectives[0]
        body = raw[name]
        if name == "not":
            return Not(self.node(body, f"{at}.not", depth + 1))
        if not isinstance(body, list):
            raise _fail(f"{at}.{name}", f"expected a list of filters, got {_json_type(body)}")
        if not body:
            raise _fail(f"{at}.{name}", "expected at least one filter")
        children = tuple(
            self.node(child, f"{at}.{name}[{i}]", depth + 1) for i, child in enumerate(body)
        )
        return And(children) if name == "and" else Or(children)

    def leaf(self, raw: Mapping[Any, Any], at: str) -> Condition:
        unknown = sorted(str(k) for k in raw if k not in _LEAF_KEYS)
        if unknown:
            raise _fail(
                f"{at}.{unknown[0]}",
                f"unknown key {unknown[0]!r}; a node is a leaf {{field, op, value}} "
                "or one of and, or, not",
            )
        for key in ("field", "op", "value"):
            if key not in raw:
                raise _fail(at, f"a leaf needs {key!r}")
        name, op_name = raw["field"], raw["op"]
        if not isinstance(name, str):
            raise _fail(f"{at}.field", f"expected a string, got {_json_type(name)}")
        ref = FieldRef.parse(name)
        if ref is None:
            raise _fail(f"{at}.field", f"{name!r} is not a field name")
        if not isinstance(op_name, str) or op_name not in Op.__members__.values():
            allowed = ", ".join(o.value for o in Op)
            raise _fail(f"{at}.op", f"unknown operator {op_name!r}; expected one of {allowed}")
        op = Op(op_name)
        return Condition(ref, op, _operand_for(ref, op, raw["value"], f"{at}.value"))


def _operand_for(ref: FieldRef, op: Op, raw: object, at: str) -> Operand | tuple[Operand, ...]:
    if op is Op.EXISTS:
        if not isinstance(raw, bool):
            raise _fail(at, f"'exists' takes true or false, got {_json_type(raw)}")
        return Boolean(raw)
    if op in LIST_OPS:
        if not isinstance(raw, list | tuple):
            raise _fail(at, f"{op.value!r} takes a list of values, got {_json_type(raw)}")
        if not raw:
            raise _fail(at, f"{op.value!r} takes at least one value")
        return tuple(_scalar(ref, op, item, f"{at}[{i}]") for i, item in enumerate(raw))
    return _scalar(ref, op, raw, at)


def _scalar(ref: FieldRef, op: Op, raw: object, at: str) -> Operand:
    system = ref.system
    if op is Op.CONTAINS and system is not None and system.is_datetime:
        raise _fail(at, f"'contains' does not apply to {system.value}, a datetime")
    operand = _typed(raw, at, textual=op is Op.CONTAINS or system in _TEXT_FIELDS)
    if system is not None and system.is_datetime and not isinstance(operand, Instant):
        raise _fail(
            at,
            f"{system.value} compares with RFC 3339 date-times such as "
            f"'2024-05-01T12:00:00Z', got {_describe(raw)}",
        )
    if system in _TEXT_FIELDS and not isinstance(operand, Text):
        raise _fail(at, f"{system} is a string, got {_describe(raw)}")
    if op in RANGE_OPS and not isinstance(operand, Number | Instant):
        raise _fail(
            at,
            f"{op.value!r} takes a number or an RFC 3339 date-time, got {_describe(raw)}",
        )
    return operand


_TEXT_FIELDS = frozenset({SystemField.ID, SystemField.DOCUMENT_ID})


def _typed(raw: object, at: str, *, textual: bool) -> Operand:
    if isinstance(raw, bool):
        return Boolean(raw)
    if isinstance(raw, int | float):
        number = as_number(raw)
        if not math.isfinite(number):
            raise _fail(at, f"{raw!r} is not a finite number")
        return Number(number)
    if isinstance(raw, datetime):
        if raw.utcoffset() is None:
            raise _fail(at, "a datetime needs a time zone")
        return Instant(datetime_micros(raw), raw.isoformat())
    if isinstance(raw, str):
        micros = None if textual else rfc3339_micros(raw)
        return Text(raw) if micros is None else Instant(micros, raw)
    raise _fail(at, f"expected a string, number or boolean, got {_json_type(raw)}")


def _json_type(raw: object) -> str:
    if raw is None:
        return "null"
    if isinstance(raw, bool):
        return "a boolean"
    if isinstance(raw, int | float):
        return "a number"
    if isinstance(raw, str):
        return "a string"
    if isinstance(raw, list | tuple):
        return "a list"
    if isinstance(raw, Mapping):
        return "an object"
    return type(raw).__name__


def _describe(raw: object) -> str:
    return f"{raw!r}" if isinstance(raw, str) else _json_type(raw)


# --- the reference evaluator --------------------------------------------------------------


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
