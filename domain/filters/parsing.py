"""``parse_filter``: a filter's JSON checked and turned into the tree of ``domain.filters.tree``.

Every refusal is an ``InvalidFilter`` that names the first node it cannot accept by its
location in the JSON (``filter.and[1].value``); operands are typed here, once, so neither
evaluator ever meets an operand of the wrong kind for its operator or field.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from domain.errors import InvalidFilter
from domain.filters.coercion import as_number, datetime_micros, rfc3339_micros
from domain.filters.tree import (
    LIST_OPS,
    RANGE_OPS,
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
    SystemField,
    Text,
)

DEFAULT_MAX_DEPTH = 10
# The largest double as JSON (and the OpenAPI schema) writes it, 1.7976931348623157e308: as
# a decimal it is a hair below the double itself.
_LARGEST = int(Decimal(repr(sys.float_info.max)))


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
        # An integer just past the largest double rounds down to it: refused as well, so
        # that what is accepted is what a schema states (|value| <= _LARGEST, as JSON has it).
        if not math.isfinite(number) or (isinstance(raw, int) and abs(raw) > _LARGEST):
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
