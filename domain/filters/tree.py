"""The filter tree: field references, operators, typed operands and the connectives.

Immutable values that ``domain.filters.parsing`` builds from JSON and that both evaluators
(``domain.filters.reference.matches`` and ``domain.metadata_index``) read. Every node turns
back into its JSON with ``to_json``. The language itself is described in ``domain.filters``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeAlias

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
