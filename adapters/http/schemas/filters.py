"""The filter language as typed models, for the OpenAPI document only.

``domain.filters.parsing.parse_filter`` is the one validator of a filter: it names the node
it refuses (``filter.and[1].value``) and its rules are the language. These models state the
same rules as a JSON Schema, so that generated clients and fuzzers see what the parser
accepts: a leaf ``{field, op, value}`` whose value type follows from its operator and, for
the system fields, from the field; ``{"and": [...]}``, ``{"or": [...]}``, ``{"not": F}``.
A request's filter is never validated by them (``FilterJson`` takes any JSON value and
hands it to the parser), so the parser's precise 422s stay the answer.

What a schema cannot say is checked by the parser alone: the nesting depth
(``Limits.max_filter_depth``, a setting) and numbers too large for a double.
``tests/adapters/test_filter_schema.py`` checks that schema and parser agree.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any, Literal

from fastapi import FastAPI
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    PlainValidator,
    RootModel,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from domain.filters.tree import DOCUMENT_PREFIX, SystemField

_SYSTEM_FIELDS = [f.value for f in SystemField]
_DATETIME_FIELDS = [f.value for f in SystemField if f.is_datetime]
_TEXT_FIELDS = [f.value for f in SystemField if not f.is_datetime]

# Any finite double: the parser refuses a number it cannot hold as one.
_LARGEST = sys.float_info.max
FiniteNumber = Annotated[float, Field(ge=-_LARGEST, le=_LARGEST)]
DateTime = Annotated[
    str,
    Field(
        json_schema_extra={"format": "date-time"},
        description="RFC 3339, with an offset: 2024-05-01T12:00:00Z.",
    ),
]
Value = str | FiniteNumber | bool
MetadataField = Annotated[
    str,
    Field(
        min_length=1,
        description=f"A chunk metadata key, or {DOCUMENT_PREFIX}KEY for the chunk's document "
        "metadata (the system fields have leaves of their own).",
        json_schema_extra={"not": {"enum": [*_SYSTEM_FIELDS, DOCUMENT_PREFIX]}},
    ),
]
AnyField = Annotated[
    str,
    Field(min_length=1, json_schema_extra={"not": {"const": DOCUMENT_PREFIX}}),
]
DatetimeField = Literal["created_at", "updated_at"]
TextField = Literal["id", "document_id"]


class _Node(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FilterCompare(_Node):
    """Equality, inequality or containment (a list holds the value, a string contains it)."""

    field: MetadataField
    op: Literal["eq", "ne", "contains"]
    value: Value


class FilterRange(_Node):
    """Order: a number, or an RFC 3339 date-time (compared as an instant)."""

    field: MetadataField
    op: Literal["gt", "gte", "lt", "lte"]
    value: FiniteNumber | DateTime


class FilterMember(_Node):
    """The value is one of (``in``) or none of (``nin``) a non-empty list."""

    field: MetadataField
    op: Literal["in", "nin"]
    value: list[Value] = Field(min_length=1)


class FilterExists(_Node):
    """The field is present (``true``) or absent (``false``); any field."""

    field: AnyField
    op: Literal["exists"]
    value: bool


class FilterTimeCompare(_Node):
    """A system datetime field against an RFC 3339 date-time."""

    field: DatetimeField
    op: Literal["eq", "ne", "gt", "gte", "lt", "lte"]
    value: DateTime


class FilterTimeMember(_Node):
    field: DatetimeField
    op: Literal["in", "nin"]
    value: list[DateTime] = Field(min_length=1)


class FilterTextCompare(_Node):
    """A system id field (``id``, ``document_id``) against a string."""

    field: TextField
    op: Literal["eq", "ne", "contains"]
    value: str


class FilterTextMember(_Node):
    field: TextField
    op: Literal["in", "nin"]
    value: list[str] = Field(min_length=1)


class FilterAnd(_Node):
    and_: list[Filter] = Field(alias="and", min_length=1)


class FilterOr(_Node):
    or_: list[Filter] = Field(alias="or", min_length=1)


class FilterNot(_Node):
    not_: Filter = Field(alias="not")


class Filter(
    RootModel[
        FilterCompare
        | FilterRange
        | FilterMember
        | FilterExists
        | FilterTimeCompare
        | FilterTimeMember
        | FilterTextCompare
        | FilterTextMember
        | FilterAnd
        | FilterOr
        | FilterNot
    ]
):
    """A filter tree: a leaf ``{field, op, value}``, or ``and``/``or``/``not`` of filters,
    nested at most ``max_filter_depth`` levels (a setting)."""


for _model in (FilterAnd, FilterOr, FilterNot):
    _model.model_rebuild()


class _DocumentedAs:
    """Puts ``Filter``'s JSON Schema on a field that the models do not validate."""

    def __get_pydantic_json_schema__(
        self, _schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return handler(_FILTER_CORE_SCHEMA)


def _as_is(value: Any) -> Any:
    """Any JSON value goes on to ``parse_filter``, which refuses what is not a filter."""
    return value


FilterJson = Annotated[Any, PlainValidator(_as_is), _DocumentedAs()]
"""A filter in a request model: documented as ``Filter``, checked by the parser."""

_JSON_QUERY = "x-stacksdb-filter-json"
FILTER_QUERY = {_JSON_QUERY: True}
"""``json_schema_extra`` of a query parameter that carries a filter as JSON text: the
document states it as ``content: application/json`` with the ``Filter`` schema
(``document_filter_queries``), which is how OpenAPI says "this string is JSON of that"."""


def document_filter_queries(app: FastAPI) -> None:
    """Make ``app``'s OpenAPI document state each ``FILTER_QUERY`` parameter as JSON content
    of the ``Filter`` schema (wraps whatever ``app.openapi`` is)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        document = build()
        marked = [
            parameter
            for path_item in document.get("paths", {}).values()
            for operation in path_item.values()
            for parameter in operation.get("parameters", [])
            if parameter.get("schema", {}).pop(_JSON_QUERY, False)
        ]
        for parameter in marked:
            del parameter["schema"]
            parameter["content"] = {"application/json": {"schema": {"$ref": _FILTER_REF}}}
        if marked:
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            own = Filter.model_json_schema(ref_template=_FILTER_REF.replace("Filter", "{model}"))
            schemas.update(own.pop("$defs", {}))
            schemas.setdefault("Filter", own)
        return document

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override


_FILTER_REF = "#/components/schemas/Filter"


_FILTER_CORE_SCHEMA = Filter.__pydantic_core_schema__
