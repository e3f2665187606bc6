"""The filter's OpenAPI schema tells the truth: it accepts exactly what the parser accepts.

``adapters.http.schemas.filters`` states the filter language as JSON Schema for clients and
fuzzers; ``domain.filters.parsing.parse_filter`` is what the server runs. The judge of the
schema here is an independent validator (jsonschema-rs, formats checked), never our models.
Hypothesis builds filter-like JSON that is right and wrong in every way the language can be
(unknown operators, a value of the wrong type for the operator or the system field, empty
lists, extra keys, mixed connectives, non-objects, numbers past a double) and both must give
the same verdict on each. Depth is the one rule left to the parser (a setting), so the
parser runs here without a depth bound. Year 0000 and leap seconds, valid RFC 3339 that no
Python datetime holds, are refused by the parser and allowed by ``format: date-time``; no
generator of date-times (schemathesis uses Python dates) produces them.
"""

from __future__ import annotations

import sys
from decimal import Decimal
from typing import Any

import jsonschema_rs
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.http.schemas.filters import Filter
from domain.errors import InvalidFilter
from domain.filters.parsing import parse_filter
from domain.filters.tree import Op

# The largest double as the schema writes it (decimal), a hair below the double itself.
JSON_LARGEST = int(Decimal(repr(sys.float_info.max)))
VALIDATOR = jsonschema_rs.Draft202012Validator(Filter.model_json_schema(), validate_formats=True)
UNBOUNDED_DEPTH = 10_000

FIELDS = st.sampled_from(
    [
        "year",
        "tags",
        "a.b",
        "document.kind",
        "id",
        "document_id",
        "created_at",
        "updated_at",
        "document.",
        "",
    ]
) | st.text(max_size=4)
OPERATORS = [op.value for op in Op]
NOT_OPERATORS = st.sampled_from(["like", "EQ", ""]) | st.none() | st.integers(0, 3)
DATES = st.sampled_from(
    [
        "2024-05-01T12:00:00Z",
        "2024-05-01t12:00:00.123456789+05:30",
        "1999-12-31T23:59:59-23:59",
    ]
)
STRINGS = (
    DATES
    | st.sampled_from(
        [
            "2024-02-30T00:00:00Z",  # no such day
            "2024-05-01T24:00:00Z",
            "2024-05-01",
            "2024-05-01 12:00:00Z",
            "ml",
            "",
        ]
    )
    | st.text(max_size=4)
)
NUMBERS = (
    st.integers(-(2**64), 2**64)
    | st.sampled_from([2**1024, -(2**1100), 10**308, -JSON_LARGEST - 1, JSON_LARGEST + 1])
    | st.sampled_from([sys.float_info.max, -sys.float_info.max])
    | st.floats(allow_nan=False, allow_infinity=False)
)
SCALARS = st.booleans() | NUMBERS | STRINGS
ANY_VALUE = (
    st.none()
    | SCALARS
    | st.lists(SCALARS, max_size=3)
    | st.dictionaries(st.text(max_size=2), SCALARS)
)


def values_for(op: str) -> st.SearchStrategy[Any]:
    """Values of the type ``op`` takes (for some field), wrong ones now and then."""
    if op == "exists":
        return st.booleans()
    if op in ("in", "nin"):
        return st.lists(SCALARS, max_size=3)
    if op in ("gt", "gte", "lt", "lte"):
        return NUMBERS | DATES
    return SCALARS


@st.composite
def leaves(draw: st.DrawFn) -> Any:
    """A leaf, mostly well formed; sometimes an unknown operator, a value of another type,
    a missing key or a stranger one, or no object at all."""
    if draw(st.integers(0, 19)) == 0:
        return draw(ANY_VALUE)
    op: Any = draw(st.sampled_from(OPERATORS) if draw(st.integers(0, 19)) else NOT_OPERATORS)
    typed = op in OPERATORS and draw(st.integers(0, 9)) > 0
    value = draw(values_for(op) if typed else ANY_VALUE)
    node = {"field": draw(FIELDS), "op": op, "value": value}
    if draw(st.integers(0, 19)) == 0:
        del node[draw(st.sampled_from(["field", "op", "value"]))]
    if draw(st.integers(0, 19)) == 0:
        node[draw(st.sampled_from(["extra", "and", "not"]))] = draw(SCALARS)
    return node


def connectives(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    lists = st.lists(children, min_size=1, max_size=3)
    return (
        st.builds(lambda c: {"and": c}, lists)
        | st.builds(lambda c: {"or": c}, lists)
        | st.builds(lambda c: {"not": c}, children)
        | st.just({"or": []})
        | st.builds(lambda c, d: {"and": c, "or": d}, lists, lists)
        | st.builds(lambda c: {"and": c}, children)  # not a list
    )


FILTERS = st.recursive(leaves(), connectives, max_leaves=5)


def parser_accepts(raw: Any) -> bool:
    try:
        parse_filter(raw, max_depth=UNBOUNDED_DEPTH)
    except InvalidFilter:
        return False
    return True


@settings(max_examples=3000, deadline=None)
@given(FILTERS)
def test_the_schema_accepts_a_filter_exactly_when_the_parser_does(raw: Any) -> None:
    assert VALIDATOR.is_valid(raw) == parser_accepts(raw), raw


@given(st.sampled_from([op.value for op in Op]))
def test_every_operator_has_a_well_formed_leaf_the_schema_and_the_parser_accept(op: str) -> None:
    value: Any = {
        "exists": True,
        "in": [1, "a"],
        "nin": [True],
        "gt": 3,
        "gte": "2024-05-01T12:00:00Z",
        "lt": -1.5,
        "lte": 0,
    }.get(op, "ml")
    leaf = {"field": "document.year", "op": op, "value": value}
    assert parser_accepts(leaf)
    assert VALIDATOR.is_valid({"not": {"or": [leaf, {"and": [leaf]}]}})


def test_depth_is_left_to_the_parser_which_refuses_past_its_bound() -> None:
    deep: Any = {"field": "a", "op": "eq", "value": 1}
    for _ in range(20):
        deep = {"not": deep}
    assert VALIDATOR.is_valid(deep)
    assert parser_accepts(deep)
    try:
        parse_filter(deep, max_depth=10)
    except InvalidFilter as refused:
        assert "deeper than 10" in refused.detail
    else:
        raise AssertionError("a filter 21 levels deep passed a bound of 10")
