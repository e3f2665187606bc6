"""A small builder for the search filter language of API.md.

``F(name)`` names a field: a chunk metadata key, ``document.KEY`` for the chunk's document
metadata, or a system field (``created_at``, ``updated_at``, ``document_id``). Comparing it
gives a leaf; ``&``, ``|`` and ``~`` combine leaves::

    (F("year") >= 2020) & F("tag").isin(["ml", "ir"])
    # {"and": [{"field": "year", "op": "gte", "value": 2020},
    #          {"field": "tag", "op": "in", "value": ["ml", "ir"]}]}

Python's ``and``/``or``/``not`` cannot be overloaded: using a filter as a bool raises
``TypeError`` instead of silently dropping half of it. Mind the precedence: ``&`` binds tighter
than ``>=``, so write ``(F("a") >= 1) & (F("b") < 2)`` with the parentheses.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias

Scalar: TypeAlias = str | int | float | bool | datetime
FilterLike: TypeAlias = "FilterExpr | Mapping[str, Any]"


class FilterExpr:
    """A filter tree node; ``to_dict()`` is its JSON form."""

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def __and__(self, other: FilterExpr) -> FilterExpr:
        return _Bool("and", (*_operands(self, "and"), *_operands(other, "and")))

    def __or__(self, other: FilterExpr) -> FilterExpr:
        return _Bool("or", (*_operands(self, "or"), *_operands(other, "or")))

    def __invert__(self) -> FilterExpr:
        if isinstance(self, _Not):
            return self.operand
        return _Not(self)

    def __bool__(self) -> bool:
        raise TypeError(
            "a filter has no truth value: combine filters with &, | and ~, not and/or/not"
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.to_dict()!r})"


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class _Leaf(FilterExpr):
    field: str
    op: str
    value: Any

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "op": self.op, "value": _json_value(self.value)}


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class _Bool(FilterExpr):
    kind: str
    operands: tuple[FilterExpr, ...]

    def to_dict(self) -> dict[str, Any]:
        return {self.kind: [operand.to_dict() for operand in self.operands]}


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class _Not(FilterExpr):
    operand: FilterExpr

    def to_dict(self) -> dict[str, Any]:
        return {"not": self.operand.to_dict()}


def _operands(expr: FilterExpr, kind: str) -> tuple[FilterExpr, ...]:
    """``a & b & c`` is one flat ``and`` of three, not a nested pair."""
    if not isinstance(expr, FilterExpr):
        raise TypeError(f"cannot combine a filter with {type(expr).__name__}")
    if isinstance(expr, _Bool) and expr.kind == kind:
        return expr.operands
    return (expr,)


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | tuple | set | frozenset):
        return [_json_value(v) for v in value]
    return value


class F:
    """A field reference; its comparisons and methods build filter leaves."""

    __slots__ = ("name",)
    __hash__ = None  # type: ignore[assignment]  # == builds a filter, so a field is unhashable

    def __init__(self, name: str) -> None:
        if not name:
            raise ValueError("a filter field needs a name")
        self.name = name

    def _leaf(self, op: str, value: Any) -> FilterExpr:
        return _Leaf(self.name, op, value)

    # Comparison operators build filters instead of answering bools, as in SQLAlchemy.
    def __eq__(self, value: object) -> FilterExpr:  # type: ignore[override]
        return self._leaf("eq", value)

    def __ne__(self, value: object) -> FilterExpr:  # type: ignore[override]
        return self._leaf("ne", value)

    def __gt__(self, value: Scalar) -> FilterExpr:
        return self._leaf("gt", value)

    def __ge__(self, value: Scalar) -> FilterExpr:
        return self._leaf("gte", value)

    def __lt__(self, value: Scalar) -> FilterExpr:
        return self._leaf("lt", value)

    def __le__(self, value: Scalar) -> FilterExpr:
        return self._leaf("lte", value)

    def isin(self, values: Iterable[Scalar]) -> FilterExpr:
        """The field's value is one of ``values``."""
        return self._leaf("in", list(values))

    def notin(self, values: Iterable[Scalar]) -> FilterExpr:
        """The field's value is none of ``values``."""
        return self._leaf("nin", list(values))

    def contains(self, value: Scalar) -> FilterExpr:
        """A string field contains ``value`` as a substring, or a list field holds it."""
        return self._leaf("contains", value)

    def exists(self, present: bool = True) -> FilterExpr:
        """The chunk has the field (``present=False``: it does not)."""
        return self._leaf("exists", present)

    def __repr__(self) -> str:
        return f"F({self.name!r})"


Filter = F
"""API.md's spelling: ``from stacksdb_client import Filter as F``."""


def filter_json(value: FilterLike | None) -> dict[str, Any] | None:
    """The JSON tree of a filter built with ``F`` or given as a plain dict."""
    if value is None:
        return None
    if isinstance(value, FilterExpr):
        return value.to_dict()
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"filter must be built with F(...) or be a dict, not {type(value).__name__}")
