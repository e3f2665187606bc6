"""The filter builder emits exactly the JSON tree of API.md."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from stacksdb_client import F, Filter, FilterExpr
from stacksdb_client.filters import filter_json


def leaf(field: str, op: str, value: object) -> dict[str, object]:
    return {"field": field, "op": op, "value": value}


def test_each_comparison_and_method_builds_its_leaf() -> None:
    cases: list[tuple[FilterExpr, dict[str, object]]] = [
        (F("x") == 1, leaf("x", "eq", 1)),
        (F("x") != "a", leaf("x", "ne", "a")),
        (F("x") > 1, leaf("x", "gt", 1)),
        (F("x") >= 1.5, leaf("x", "gte", 1.5)),
        (F("x") < 2, leaf("x", "lt", 2)),
        (F("x") <= 2, leaf("x", "lte", 2)),
        (F("tag").isin(["ml", "ir"]), leaf("tag", "in", ["ml", "ir"])),
        (F("tag").notin(("db",)), leaf("tag", "nin", ["db"])),
        (F("name").contains("net"), leaf("name", "contains", "net")),
        (F("draft").exists(), leaf("draft", "exists", True)),
        (F("draft").exists(False), leaf("draft", "exists", False)),
        (F("document.lang") == "en", leaf("document.lang", "eq", "en")),
    ]
    for expr, expected in cases:
        assert expr.to_dict() == expected


def test_and_or_not_build_inner_nodes() -> None:
    expr = (F("year") >= 2020) & F("tag").isin(["ml", "ir"])
    assert expr.to_dict() == {"and": [leaf("year", "gte", 2020), leaf("tag", "in", ["ml", "ir"])]}
    either = (F("a") == 1) | ~(F("b") == 2)
    assert either.to_dict() == {"or": [leaf("a", "eq", 1), {"not": leaf("b", "eq", 2)}]}


def test_chains_of_the_same_operator_flatten_and_double_negation_cancels() -> None:
    a, b, c = F("a") == 1, F("b") == 2, F("c") == 3
    assert (a & b & c).to_dict() == {"and": [a.to_dict(), b.to_dict(), c.to_dict()]}
    assert (a | (b | c)).to_dict() == {"or": [a.to_dict(), b.to_dict(), c.to_dict()]}
    assert ((a | b) & c).to_dict() == {"and": [{"or": [a.to_dict(), b.to_dict()]}, c.to_dict()]}
    assert (~~a).to_dict() == a.to_dict()


def test_reflected_comparisons_and_datetimes() -> None:
    assert (F("year") >= 2020).to_dict() == leaf("year", "gte", 2020)
    when = datetime(2024, 5, 1, tzinfo=UTC)
    assert (F("created_at") > when).to_dict() == leaf("created_at", "gt", when.isoformat())


def test_using_a_filter_as_a_bool_is_an_error_not_a_silent_half_filter() -> None:
    with pytest.raises(TypeError, match="&, \\| and ~"):
        bool(F("a") == 1)
    with pytest.raises(TypeError):
        _ = (F("a") == 1) & {"field": "b"}  # type: ignore[operator]


def test_filter_is_the_api_md_spelling_and_raw_dicts_pass_through() -> None:
    assert Filter is F
    raw = {"or": [leaf("a", "eq", 1)]}
    assert filter_json(raw) == raw
    assert filter_json(None) is None
    assert filter_json(F("a") == 1) == leaf("a", "eq", 1)
    with pytest.raises(ValueError):
        F("")
