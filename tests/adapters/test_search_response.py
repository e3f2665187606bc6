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
from adapters.http.schemas import SearchOut, SearchResultOut
from application.dto import SearchHit, SearchOutcome
from domain.models import Chunk, MetadataValue

INCLUDABLE = ("text", "metadata", "embedding")


def as_model(outcome: SearchOutcome, include: frozenset[str]) -> bytes:
    """The body as FastAPI wrote it from a SearchOut before the route rendered its own."""
    results = []
    for hit in outcome.hits:
        chunk = hit.chunk
        results.append(
            SearchResultOut(
                chunk_id=hit.chunk_id,
                document_id=hit.document_id,
                score=hit.score,
                text=chunk.text if chunk is not None and "text" in include else None,
                metadata=chunk.metadata if chunk is not None and "metadata" in include else None,
                embedding=(
                    chunk.embedding.tolist()
                    if chunk is not None and "embedding" in include
                    else None
                ),
            )
        )
    model = SearchOut(
        results=results,
        index=outcome.index_type,
        strategy=outcome.strategy,
        took_ms=round(outcome.took_ms, 3),
    )
    return model.model_dump_json().encode()


def rendered(outcome: SearchOutcome, include: frozenset[str]) -> bytes:
    return bytes(json_response(SearchOut.content(outcome, include), SearchOut).body)


def ordered(body: bytes) -> Any:
    """The JSON value with every object as a list of (key, value) pairs, so order counts."""
    return json.loads(body, object_pairs_hook=list)


def hit(i: int, metadata: dict[str, MetadataValue], *, stored: bool = True) -> SearchHit:
    embedding = np.linspace(-1, 1, 8, dtype=np.float32) * np.float32(i + 0.1)
    chunk = Chunk("lib", f"d{i}", f"text {i}", embedding, metadata, id=f"c{i}")
    return SearchHit(f"c{i}", f"d{i}", 1.0 / (i + 3), chunk if stored else None)


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
    outcome = SearchOutcome(
        [hit(i, m) for i, m in enumerate(metadatas)], "hnsw", "hnsw-filtered", took_ms
    )
    assert ordered(rendered(outcome, frozenset(include))) == ordered(
        as_model(outcome, frozenset(include))
    )


def test_search_body_of_a_hit_without_its_chunk_has_no_optional_fields() -> None:
    outcome = SearchOutcome([hit(0, {}, stored=False)], "flat", "scan", 0.5)
    body = json.loads(rendered(outcome, frozenset(INCLUDABLE)))
    assert list(body["results"][0]) == ["chunk_id", "document_id", "score"]
    assert ordered(rendered(outcome, frozenset(INCLUDABLE))) == ordered(
        as_model(outcome, frozenset(INCLUDABLE))
    )


@pytest.mark.parametrize("big", [2**64, -(2**70), 10**30])
def test_integers_past_64_bits_in_metadata_are_written_exactly(big: int) -> None:
    outcome = SearchOutcome([hit(0, {"n": big, "ok": 1})], "flat", "scan", 1.0)
    response = json_response(SearchOut.content(outcome, frozenset({"metadata"})), SearchOut)
    assert response.media_type == "application/json"
    assert json.loads(bytes(response.body))["results"][0]["metadata"] == {"n": big, "ok": 1}
