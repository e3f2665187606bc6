"""A grouped search's body and a batch's body, rendered from plain dicts by orjson, mean what
the declared ``SearchOut``/``SearchBatchOut`` models write for the same data, key order
included; group keys keep their JSON type (``true`` is not ``1``)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from adapters.http.json_response import json_response
from adapters.http.schemas.search import SearchBatchOut, SearchOut
from application.dto import SearchGroup, SearchHit, SearchOutcome


def ordered(body: bytes) -> Any:
    return json.loads(body, object_pairs_hook=list)


def hit(i: int) -> SearchHit:
    return SearchHit(f"c{i}", f"d{i % 3}", 1.0 / (i + 2), metadata={"i": i})


keys = st.one_of(st.booleans(), st.integers(-5, 5), st.floats(-2, 2), st.text(max_size=5))


def outcome_with(groups: list[tuple[Any, int]] | None) -> SearchOutcome:
    if groups is None:
        return SearchOutcome([hit(i) for i in range(3)], "flat", "scan", 1.25)
    made = [SearchGroup(key, [hit(j) for j in range(n)]) for key, n in groups]
    return SearchOutcome([], "hnsw", "hnsw-filtered", 2.5, made)


@given(st.lists(st.tuples(keys, st.integers(0, 3)), max_size=4))
def test_a_grouped_body_means_what_the_model_writes(groups: list[tuple[Any, int]]) -> None:
    content = SearchOut.content(outcome_with(groups))
    body = bytes(json_response(content, SearchOut).body)
    assert ordered(body) == ordered(SearchOut.model_validate(content).model_dump_json().encode())
    parsed = json.loads(body)
    assert "results" not in parsed
    assert [(type(g["key"]), g["key"]) for g in parsed["groups"]] == [
        (type(k), k) for k, _ in groups
    ]


def test_a_batch_body_holds_each_answer_in_order() -> None:
    outcomes = [outcome_with(None), outcome_with([("a", 2), (True, 1)]), outcome_with(None)]
    content = SearchBatchOut.content(outcomes)
    body = bytes(json_response(content, SearchBatchOut).body)
    model = SearchBatchOut.model_validate(content).model_dump_json().encode()
    assert ordered(body) == ordered(model)
    answers = json.loads(body)["results"]
    assert [next(iter(a)) for a in answers] == ["results", "groups", "results"]
    assert answers[1]["groups"][1]["key"] is True
