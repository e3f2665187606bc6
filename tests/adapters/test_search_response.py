"""The search route renders its body with orjson from plain dicts; the body must mean what
the declared ``SearchOut`` model would have written, key order included."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.http.json_response import json_response
from adapters.http.schemas.search import SearchOut, SearchResultOut
from application.dto import SearchHit, SearchOutcome
from domain.models import MetadataValue

INCLUDABLE = ("text", "metadata", "embedding")


def as_model(outcome: SearchOutcome) -> bytes:
    """The body as FastAPI wrote it from a SearchOut before the route rendered its own."""
    results = [
        SearchResultOut(
            chunk_id=hit.chunk_id,
            document_id=hit.document_id,
            score=hit.score,
            text=hit.text,
            metadata=hit.metadata,
            embedding=None if hit.embedding is None else hit.embedding.tolist(),
        )
        for hit in outcome.hits
    ]
    model = SearchOut(
        results=results,
        index=outcome.index_type,
        strategy=outcome.strategy,
        took_ms=round(outcome.took_ms, 3),
    )
    return model.model_dump_json().encode()


def rendered(outcome: SearchOutcome) -> bytes:
    return bytes(json_response(SearchOut.content(outcome), SearchOut).body)


def ordered(body: bytes) -> Any:
    """The JSON value with every object as a list of (key, value) pairs, so order counts."""
    return json.loads(body, object_pairs_hook=list)


def hit(i: int, metadata: dict[str, MetadataValue], include: frozenset[str]) -> SearchHit:
    """A hit carrying the fields ``include`` names, as the search service makes them."""
    embedding = np.linspace(-1, 1, 8, dtype=np.float32) * np.float32(i + 0.1)
    return SearchHit(
        f"c{i}",
        f"d{i}",
        1.0 / (i + 3),
        text=f"text {i}" if "text" in include else None,
        metadata=metadata if "metadata" in include else None,
        embedding=embedding if "embedding" in include else None,
    )


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
metadata = st.dictionaries(
    st.text(min_size=1, max_size=10), st.one_of(scalars, st.lists(scalars, max_size=3))
)


@given(
    st.lists(metadata, max_size=5),
    st.sets(st.sampled_from(INCLUDABLE)),
    st.floats(min_value=0, max_value=1e4),
)
def test_search_body_means_what_the_search_out_model_writes(
    metadatas: list[dict[str, MetadataValue]], include: set[str], took_ms: float
) -> None:
    fields = frozenset(include)
    outcome = SearchOutcome(
        [hit(i, m, fields) for i, m in enumerate(metadatas)], "hnsw", "hnsw-filtered", took_ms
    )
    assert ordered(rendered(outcome)) == ordered(as_model(outcome))


def test_search_body_of_a_hit_with_nothing_included_has_no_optional_fields() -> None:
    outcome = SearchOutcome([hit(0, {}, frozenset())], "flat", "scan", 0.5)
    body = json.loads(rendered(outcome))
    assert list(body["results"][0]) == ["chunk_id", "document_id", "score"]
    assert ordered(rendered(outcome)) == ordered(as_model(outcome))


@pytest.mark.parametrize("big", [2**64, -(2**70), 10**30])
def test_integers_past_64_bits_in_metadata_are_written_exactly(big: int) -> None:
    outcome = SearchOutcome(
        [hit(0, {"n": big, "ok": 1}, frozenset({"metadata"}))], "flat", "scan", 1.0
    )
    response = json_response(SearchOut.content(outcome), SearchOut)
    assert response.media_type == "application/json"
    assert json.loads(bytes(response.body))["results"][0]["metadata"] == {"n": big, "ok": 1}
