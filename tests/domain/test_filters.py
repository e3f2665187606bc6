"""The filter language: parsing (every malformed case names its node) and the reference
semantics of ``matches``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from domain.errors import InvalidFilter
from domain.filters import (
    And,
    Boolean,
    ChunkFields,
    Condition,
    FieldRef,
    Instant,
    Not,
    Number,
    Op,
    Or,
    Scope,
    Text,
    matches,
    parse_filter,
    rfc3339_micros,
)
from domain.models import Metadata

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def leaf(field: Any, op: Any, value: Any) -> dict[str, Any]:
    return {"field": field, "op": op, "value": value}


def chunk(metadata: Metadata | None = None, document: Metadata | None = None) -> ChunkFields:
    return ChunkFields("c1", "d1", T0, T0 + timedelta(days=1), metadata or {}, document or {})


def operand(raw: Any) -> object:
    parsed = parse_filter(raw)
    assert isinstance(parsed, Condition)
    return parsed.value


def check(raw: Any, fields: ChunkFields) -> bool:
    return matches(parse_filter(raw), fields)


# --- parsing: the tree ----------------------------------------------------------------------


def test_parse_builds_typed_immutable_tree() -> None:
    parsed = parse_filter(
        {
            "and": [
                leaf("year", "gte", 2020),
                {"not": leaf("document.kind", "in", ["draft", "old"])},
                {
                    "or": [
                        leaf("created_at", "lt", "2024-05-01T00:00:00Z"),
                        leaf("x", "exists", True),
                    ]
                },
            ]
        }
    )
    assert parsed == And(
        (
            Condition(FieldRef(Scope.CHUNK, "year"), Op.GTE, Number(2020.0)),
            Not(Condition(FieldRef(Scope.DOCUMENT, "kind"), Op.IN, (Text("draft"), Text("old")))),
            Or(
                (
                    Condition(
                        FieldRef(Scope.SYSTEM, "created_at"),
                        Op.LT,
                        Instant(rfc3339_micros("2024-05-01T00:00:00Z") or 0, ""),
                    ),
                    Condition(FieldRef(Scope.CHUNK, "x"), Op.EXISTS, Boolean(True)),
                )
            ),
        )
    )
    with pytest.raises(AttributeError):
        parsed.children = ()  # type: ignore[misc]


def test_to_json_round_trips() -> None:
    raw = {
        "or": [
            leaf("tags", "contains", "ml"),
            {"not": leaf("id", "nin", ["a", "b"])},
            leaf("updated_at", "gt", "2024-01-01T00:00:00+02:00"),
            leaf("score", "lte", 0.5),
        ]
    }
    assert parse_filter(raw).to_json() == raw
    assert parse_filter(parse_filter(raw).to_json()) == parse_filter(raw)


@pytest.mark.parametrize(
    ("raw", "location"),
    [
        ([leaf("a", "eq", 1)], "filter"),
        ("a = 1", "filter"),
        (None, "filter"),
        ({}, "filter"),
        ({"and": leaf("a", "eq", 1)}, "filter.and"),
        ({"and": []}, "filter.and"),
        ({"or": []}, "filter.or"),
        ({"or": [leaf("a", "eq", 1), 3]}, "filter.or[1]"),
        ({"and": [leaf("a", "eq", 1)], "or": [leaf("a", "eq", 1)]}, "filter"),
        ({"not": [leaf("a", "eq", 1)]}, "filter.not"),
        ({"not": leaf("a", "eq", 1), "field": "a"}, "filter"),
        ({"field": "a", "op": "eq"}, "filter"),
        ({"field": "a", "value": 1}, "filter"),
        ({"op": "eq", "value": 1}, "filter"),
        ({"field": "a", "op": "eq", "value": 1, "extra": 2}, "filter.extra"),
        (leaf(3, "eq", 1), "filter.field"),
        (leaf("", "eq", 1), "filter.field"),
        (leaf("document.", "eq", 1), "filter.field"),
        ({"and": [leaf("a", "eq", 1), leaf("a", "like", "x")]}, "filter.and[1].op"),
        (leaf("a", None, 1), "filter.op"),
        (leaf("a", "EQ", 1), "filter.op"),
    ],
)
def test_malformed_tree_names_the_offending_node(raw: Any, location: str) -> None:
    with pytest.raises(InvalidFilter) as caught:
        parse_filter(raw)
    assert caught.value.extra["location"] == location
    assert caught.value.detail.startswith(f"{location}: ")


@pytest.mark.parametrize(
    ("raw", "location"),
    [
        (leaf("a", "eq", None), "filter.value"),
        (leaf("a", "eq", {"x": 1}), "filter.value"),
        (leaf("a", "eq", ["x"]), "filter.value"),
        (leaf("a", "ne", float("nan")), "filter.value"),
        (leaf("a", "eq", float("inf")), "filter.value"),
        (leaf("a", "eq", 10**400), "filter.value"),
        (leaf("a", "gt", "abc"), "filter.value"),
        (leaf("a", "gt", True), "filter.value"),
        (leaf("a", "lte", [1, 2]), "filter.value"),
        (leaf("a", "gte", "2024-01-01"), "filter.value"),
        (leaf("a", "in", "x"), "filter.value"),
        (leaf("a", "in", []), "filter.value"),
        (leaf("a", "nin", 3), "filter.value"),
        ({"and": [leaf("a", "eq", 1), leaf("a", "in", ["x", None])]}, "filter.and[1].value[1]"),
        (leaf("a", "in", [["x"]]), "filter.value[0]"),
        (leaf("a", "contains", ["x"]), "filter.value"),
        (leaf("a", "contains", None), "filter.value"),
        (leaf("a", "exists", "yes"), "filter.value"),
        (leaf("a", "exists", 1), "filter.value"),
        (leaf("created_at", "gte", "2024-01-01"), "filter.value"),
        (leaf("created_at", "gte", "yesterday"), "filter.value"),
        (leaf("created_at", "gte", 1704067200), "filter.value"),
        (leaf("created_at", "eq", "2024-01-01T00:00:00"), "filter.value"),
        (leaf("created_at", "eq", "2024-02-30T00:00:00Z"), "filter.value"),
        (leaf("updated_at", "in", ["2024-01-01T00:00:00Z", "soon"]), "filter.value[1]"),
        (leaf("created_at", "contains", "2024"), "filter.value"),
        (leaf("id", "eq", 3), "filter.value"),
        (leaf("id", "gt", "a"), "filter.value"),
        (leaf("document_id", "contains", True), "filter.value"),
        (leaf("document_id", "in", ["d1", 2]), "filter.value[1]"),
        (leaf("created_at", "eq", datetime(2024, 1, 1)), "filter.value"),
    ],
)
def test_wrong_value_for_the_operator_or_field_names_the_value(raw: Any, location: str) -> None:
    with pytest.raises(InvalidFilter) as caught:
        parse_filter(raw)
    assert caught.value.extra["location"] == location


def nested(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = leaf("a", "eq", 1)
    for _ in range(depth - 1):
        node = {"not": node}
    return node


def test_depth_limit_is_configurable_and_counts_levels() -> None:
    parse_filter(nested(10))
    with pytest.raises(InvalidFilter) as caught:
        parse_filter(nested(11))
    assert caught.value.extra["location"] == "filter" + ".not" * 10
    parse_filter(nested(3), max_depth=3)
    with pytest.raises(InvalidFilter):
        parse_filter({"and": [leaf("a", "eq", 1), nested(3)]}, max_depth=3)


def test_location_prefix_can_be_chosen_by_the_caller() -> None:
    with pytest.raises(InvalidFilter) as caught:
        parse_filter({"or": [leaf("a", "zz", 1)]}, location="body.filter")
    assert caught.value.extra["location"] == "body.filter.or[0].op"


def test_field_names_resolve_to_scopes() -> None:
    assert FieldRef.parse("created_at") == FieldRef(Scope.SYSTEM, "created_at")
    assert FieldRef.parse("document.created_at") == FieldRef(Scope.DOCUMENT, "created_at")
    assert FieldRef.parse("document.a.b") == FieldRef(Scope.DOCUMENT, "a.b")
    assert FieldRef.parse("documents") == FieldRef(Scope.CHUNK, "documents")


def test_strings_are_datetimes_only_in_strict_rfc3339_form() -> None:
    assert rfc3339_micros("1970-01-01T00:00:00Z") == 0
    assert rfc3339_micros("1970-01-01T01:00:00+01:00") == 0
    assert rfc3339_micros("1969-12-31t23:59:59.9999999z") == -1
    assert rfc3339_micros("1970-01-01T00:00:00.5-00:30") == 1_800_500_000
    for text in (
        "2024-01-01",
        "2024-01-01T00:00:00",
        "2024-01-01 00:00:00Z",
        "2024-13-01T00:00:00Z",
        "2024-01-01T24:00:00Z",
        "2024-01-01T00:00:60Z",
        "2024-01-01T00:00:00+24:00",
        "x",
    ):
        assert rfc3339_micros(text) is None, text
    assert isinstance(operand(leaf("a", "eq", "2024-01-01T00:00:00Z")), Instant)
    assert isinstance(operand(leaf("a", "eq", "2024-01-01")), Text)
    # contains and id fields read strings as text
    assert isinstance(operand(leaf("a", "contains", "2024-01-01T00:00:00Z")), Text)
    assert isinstance(operand(leaf("id", "eq", "2024-01-01T00:00:00Z")), Text)
    aware = datetime(2024, 1, 1, 2, tzinfo=timezone(timedelta(hours=2)))
    assert parse_filter(leaf("created_at", "eq", aware)) == parse_filter(
        leaf("created_at", "eq", "2024-01-01T00:00:00Z")
    )


# --- the reference semantics ----------------------------------------------------------------


def test_missing_field_matches_no_comparison_not_even_ne_or_nin() -> None:
    fields = chunk({"other": 1, "nothing": None})
    for op, value in [
        ("eq", 1),
        ("ne", 1),
        ("gt", 0),
        ("lt", 5),
        ("in", [1]),
        ("nin", [1]),
        ("contains", "x"),
        ("exists", True),
    ]:
        assert not check(leaf("a", op, value), fields), op
        assert not check(leaf("nothing", op, value), fields), op
    assert check(leaf("a", "exists", False), fields)
    assert check(leaf("nothing", "exists", False), fields)


def test_not_is_the_way_to_reach_missing_fields() -> None:
    missing, other, same = chunk({}), chunk({"a": "y"}), chunk({"a": "x"})
    ne = leaf("a", "ne", "x")
    not_eq = {"not": leaf("a", "eq", "x")}
    assert [check(ne, c) for c in (missing, other, same)] == [False, True, False]
    assert [check(not_eq, c) for c in (missing, other, same)] == [True, True, False]
    nin = leaf("a", "nin", ["x", "z"])
    assert [check(nin, c) for c in (missing, other, same)] == [False, True, False]


def test_values_of_another_kind_do_not_match() -> None:
    fields = chunk({"s": "5", "n": 5, "b": True, "l": ["5"]})
    assert not check(leaf("s", "eq", 5), fields)
    assert not check(leaf("s", "ne", 5), fields)
    assert not check(leaf("s", "gt", 1), fields)
    assert not check(leaf("n", "eq", "5"), fields)
    assert not check(leaf("n", "ne", "5"), fields)
    assert not check(leaf("b", "eq", 1), fields)
    assert not check(leaf("n", "eq", True), fields)
    assert not check(leaf("l", "eq", "5"), fields)
    assert not check(leaf("l", "ne", "5"), fields)
    assert not check(leaf("l", "in", ["5"]), fields)
    assert check(leaf("n", "nin", ["5", 6]), fields)  # comparable with 6, equal to neither
    assert not check(leaf("n", "nin", ["5", True]), fields)  # comparable with none


def test_ints_and_floats_compare_as_numbers_and_booleans_are_not_numbers() -> None:
    fields = chunk({"n": 2, "f": 2.0, "b": False})
    assert check(leaf("n", "eq", 2.0), fields)
    assert check(leaf("f", "eq", 2), fields)
    assert check(leaf("n", "in", [1, 2.0]), fields)
    assert check(leaf("f", "gt", 1), fields)
    assert not check(leaf("b", "eq", 0), fields)
    assert check(leaf("b", "eq", False), fields)
    assert check(leaf("b", "ne", True), fields)


def test_datetime_strings_compare_as_instants_whatever_their_offset() -> None:
    fields = chunk({"when": "2024-01-01T02:00:00+02:00", "day": "2024-01-01"})
    assert check(leaf("when", "eq", "2024-01-01T00:00:00Z"), fields)
    assert check(leaf("when", "gt", "2023-12-31T23:59:59.999999Z"), fields)
    assert check(leaf("when", "lte", "2024-01-01T00:00:00.000000Z"), fields)
    assert not check(leaf("when", "lt", "2024-01-01T00:00:00Z"), fields)
    assert check(leaf("when", "in", ["2024-01-01T01:00:00+01:00"]), fields)
    # still a string for text equality and substrings
    assert check(leaf("when", "eq", "2024-01-01T02:00:00+02:00"), fields)
    assert check(leaf("when", "contains", "+02:00"), fields)
    # not a date-time: only text comparisons apply
    assert check(leaf("day", "eq", "2024-01-01"), fields)
    assert not check(leaf("day", "eq", "2024-01-01T00:00:00Z"), fields)
    assert not check(leaf("day", "ne", "2024-01-01T00:00:00Z"), fields)


def test_contains_is_substring_on_strings_and_membership_on_lists() -> None:
    fields = chunk({"name": "vector database", "tags": ["ml", "ir", 3, True]})
    assert check(leaf("name", "contains", "data"), fields)
    assert not check(leaf("name", "contains", "Data"), fields)
    assert check(leaf("tags", "contains", "ml"), fields)
    assert not check(leaf("tags", "contains", "m"), fields)
    assert check(leaf("tags", "contains", 3.0), fields)
    assert check(leaf("tags", "contains", True), fields)
    assert not check(leaf("tags", "contains", 1), fields)
    assert not check(leaf("name", "contains", 3), fields)
    assert check(leaf("tags", "exists", True), chunk({"tags": []}))


def test_system_and_document_fields() -> None:
    fields = chunk({"created_at": "ignored"}, {"kind": "paper"})
    assert check(leaf("created_at", "eq", "2024-01-01T00:00:00Z"), fields)
    assert check(leaf("updated_at", "gt", "2024-01-01T00:00:00Z"), fields)
    assert check(leaf("id", "eq", "c1"), fields)
    assert check(leaf("document_id", "contains", "d"), fields)
    assert check(leaf("document.kind", "eq", "paper"), fields)
    assert not check(leaf("kind", "eq", "paper"), fields)
    assert check(leaf("document.other", "exists", False), fields)
    assert check(leaf("id", "ne", "c2"), fields)


def test_connectives() -> None:
    fields = chunk({"a": 1, "b": "x"})
    yes, no = leaf("a", "eq", 1), leaf("b", "eq", "y")
    assert check({"and": [yes, {"not": no}]}, fields)
    assert not check({"and": [yes, no]}, fields)
    assert check({"or": [no, yes]}, fields)
    assert not check({"or": [no, {"not": yes}]}, fields)
