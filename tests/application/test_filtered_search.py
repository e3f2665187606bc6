"""Filtered search through ``SearchService`` agrees with brute force under the reference
predicate ``domain.filters.matches``, and malformed filters are refused without effect.

The model is plain Python: each chunk's raw vector, document, metadata and the timestamps
the service gave it, plus each document's metadata. Brute force scores every chunk the
predicate accepts with NumPy in float64; the service must return the same top-k (up to ties
and float32 rounding), over random typed metadata, random filter trees and random writes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, NamedTuple

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from application.dto import ChunkInput, ChunkPatch, NewLibrary, SearchQuery
from domain.errors import InvalidFilter
from domain.filters import ChunkFields, matches, parse_filter
from domain.models import Metadata, Metric
from tests.application.conftest import Services, build_services

DIM = 4
CHUNK_IDS = [f"c{i}" for i in range(14)]
DOCUMENT_IDS = ["d0", "d1", "d2"]
CHUNK_KEYS = ["year", "score", "tag", "tags", "flag", "when"]
DOCUMENT_KEYS = ["kind", "year"]
TEXTS = ["", "ml", "ir", "mlops", "db", "2024-05-01"]
DATETIME_TEXTS = [
    "2024-05-01T12:00:00Z",
    "2024-05-01T14:00:00+02:00",  # the same instant as the first
    "2024-05-01T12:00:00.000001Z",
    "2023-12-31T23:59:59Z",
    "2025-01-01t00:00:00z",
]
SCORE_TOLERANCE = 1e-4
# The explain phase traces every line of a failing example again: minutes with the
# services underneath, for a report the shrunk example already gives.
NO_EXPLAIN = [Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink]

Vector = NDArray[np.float32]

# -- random typed metadata --------------------------------------------------------------

integers = st.integers(-2, 3)
floats = st.sampled_from([-1.5, 0.0, 0.5, 2.0, 2.5, 1e300])
texts = st.sampled_from(TEXTS)
datetimes = st.sampled_from(DATETIME_TEXTS)
scalars = st.one_of(integers, floats, st.booleans(), texts, datetimes)
any_value = st.one_of(
    st.none(),
    scalars,
    st.lists(texts, max_size=3),
    st.lists(st.one_of(texts, integers, st.booleans()), max_size=3),
)
# Each key mostly holds one kind of value, as real metadata does, and sometimes any other
# kind (or null), so that filters meet both matching and mismatching types.
NATURAL: dict[str, st.SearchStrategy[Any]] = {
    "year": integers,
    "score": floats,
    "tag": texts,
    "tags": st.lists(texts, max_size=3),
    "flag": st.booleans(),
    "when": datetimes,
    "kind": texts,
}


def typed(key: str) -> st.SearchStrategy[Any]:
    natural = NATURAL[key]
    return st.one_of(natural, natural, natural, any_value)


def metadata(keys: list[str]) -> st.SearchStrategy[Metadata]:
    """Any subset of ``keys`` (the others missing), each with a typed value."""
    return st.fixed_dictionaries({}, optional={key: typed(key) for key in keys})


vector_seeds = st.integers(0, 2**16)
writes = st.lists(
    st.tuples(st.sampled_from(CHUNK_IDS), st.sampled_from(DOCUMENT_IDS), metadata(CHUNK_KEYS)),
    min_size=1,
    max_size=6,
    unique_by=lambda item: item[0],  # a batch names each chunk once
)
operations = st.one_of(
    st.tuples(st.just("upsert"), writes, vector_seeds),
    st.tuples(st.just("patch_metadata"), st.sampled_from(CHUNK_IDS), metadata(CHUNK_KEYS)),
    st.tuples(st.just("patch_vector"), st.sampled_from(CHUNK_IDS), vector_seeds),
    st.tuples(st.just("delete"), st.sampled_from(CHUNK_IDS)),
    st.tuples(st.just("document"), st.sampled_from(DOCUMENT_IDS), metadata(DOCUMENT_KEYS)),
    st.tuples(st.just("drop_document"), st.sampled_from(DOCUMENT_IDS)),
)

# -- random filter trees ----------------------------------------------------------------

FILTER_FIELDS = [
    *CHUNK_KEYS,
    "missing",
    *(f"document.{key}" for key in DOCUMENT_KEYS),
    *("id", "document_id", "created_at", "updated_at"),
]
ALL_OPS = ["eq", "ne", "gt", "gte", "lt", "lte", "in", "nin", "contains", "exists"]
ORDERED = {"year", "score", "when", "document.year"}


class Moment(NamedTuple):
    """A placeholder for an instant near one of the chunks' own timestamps, resolved by
    ``Model.resolve`` once the writes have run (so the drawn data never depends on the
    clock): the ``chunk``-th chunk's created_at (``updated`` false) or updated_at, shifted by
    ``shift`` microseconds, in one of three RFC 3339 spellings."""

    chunk: int
    updated: bool
    shift: int
    spelling: int


moments = st.builds(
    Moment, st.integers(0, 63), st.booleans(), st.integers(-1, 1), st.integers(0, 2)
)


@st.composite
def leaves(draw: st.DrawFn) -> dict[str, Any]:
    """A well-formed leaf; its operand is mostly of the kind the field usually holds."""
    name = draw(st.sampled_from(FILTER_FIELDS))
    if name in ("created_at", "updated_at"):
        op = draw(st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte", "in", "nin", "exists"]))
        one: st.SearchStrategy[Any] = moments
    elif name in ("id", "document_id"):
        op = draw(st.sampled_from(["eq", "ne", "in", "nin", "contains", "exists"]))
        one = st.sampled_from([*CHUNK_IDS, *DOCUMENT_IDS, "c1", "d", "x"])
    else:
        op = draw(st.sampled_from(ALL_OPS))
        key = name.removeprefix("document.")
        natural = NATURAL.get(key, scalars)
        if key == "tags":
            natural = texts
        if op in ("gt", "gte", "lt", "lte"):
            ordered = st.one_of(integers, floats, datetimes)
            one = st.one_of(natural, ordered) if name in ORDERED else ordered
        else:
            one = st.one_of(natural, natural, natural, natural, scalars)
    if op == "exists":
        value: Any = draw(st.booleans())
    elif op in ("in", "nin"):
        value = draw(st.lists(one, min_size=1, max_size=3))
    else:
        value = draw(one)
    return {"field": name, "op": op, "value": value}


def filter_trees(depth: int) -> st.SearchStrategy[dict[str, Any]]:
    """Trees at most ``depth`` levels deep, so a test knows how much room is left."""
    leaf = leaves()
    if depth <= 1:
        return leaf
    child = filter_trees(depth - 1)
    return st.one_of(
        leaf,
        leaf,
        st.builds(lambda cs: {"and": cs}, st.lists(child, min_size=1, max_size=2)),
        st.builds(lambda cs: {"or": cs}, st.lists(child, min_size=1, max_size=3)),
        st.builds(lambda c: {"not": c}, child),
    )


FILTERS = filter_trees(3)
SHALLOW_FILTERS = filter_trees(2)


def rfc3339_spellings(instant: datetime) -> list[str]:
    """The same instant as RFC 3339 text: Z, +00:00 and a +02:00 offset."""
    utc = instant.astimezone(UTC)
    plus_two = utc.astimezone(timezone(timedelta(hours=2)))
    return [utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), utc.isoformat(), plus_two.isoformat()]


# -- the model ----------------------------------------------------------------------------


def vector_of(seed: int) -> Vector:
    # a few seeds share a vector, so that equal scores (ties) happen too
    return np.random.default_rng(seed % 4096).standard_normal(DIM).astype(np.float32)


@dataclass
class ChunkModel:
    document_id: str
    vector: Vector
    metadata: Metadata
    created_at: datetime
    updated_at: datetime


@dataclass
class Model:
    """What the library holds, as the services acknowledged it."""

    metric: Metric
    chunks: dict[str, ChunkModel] = field(default_factory=dict)
    documents: dict[str, Metadata] = field(default_factory=dict)

    def fields(self, chunk_id: str) -> ChunkFields:
        chunk = self.chunks[chunk_id]
        return ChunkFields(
            chunk_id,
            chunk.document_id,
            chunk.created_at,
            chunk.updated_at,
            chunk.metadata,
            self.documents.get(chunk.document_id, {}),
        )

    def matching(self, raw: dict[str, Any]) -> set[str]:
        parsed = parse_filter(raw)
        return {chunk_id for chunk_id in self.chunks if matches(parsed, self.fields(chunk_id))}

    def score(self, chunk_id: str, query: Vector) -> float:
        x = self.chunks[chunk_id].vector.astype(np.float64)
        q = query.astype(np.float64)
        if self.metric is Metric.COSINE:
            return float(x @ q) / max(float(np.linalg.norm(x) * np.linalg.norm(q)), 1e-30)
        if self.metric is Metric.DOT:
            return float(x @ q)
        return float(np.linalg.norm(x - q))

    def resolve(self, raw: Any) -> Any:
        """``raw`` with every ``Moment`` replaced by RFC 3339 text."""
        if isinstance(raw, Moment):
            chunks = list(self.chunks.values())
            if not chunks:
                return "2024-05-01T12:00:00Z"
            chunk = chunks[raw.chunk % len(chunks)]
            moment = chunk.updated_at if raw.updated else chunk.created_at
            return rfc3339_spellings(moment + timedelta(microseconds=raw.shift))[raw.spelling]
        if isinstance(raw, dict):
            return {key: self.resolve(value) for key, value in raw.items()}
        if isinstance(raw, list):
            return [self.resolve(item) for item in raw]
        return raw


def apply(services: Services, library_id: str, model: Model, operation: tuple[Any, ...]) -> None:
    """Run one write through the services and record what they acknowledged."""
    kind = operation[0]
    if kind == "upsert":
        _, items, seed = operation
        inputs = [
            ChunkInput(doc, f"text {cid}", vector_of(seed + i), dict(meta), cid)
            for i, (cid, doc, meta) in enumerate(items)
        ]
        for chunk in services.chunks.write_batch(library_id, inputs, mode="upsert"):
            model.chunks[chunk.id] = ChunkModel(
                chunk.document_id,
                np.asarray(chunk.embedding, dtype=np.float32).copy(),
                dict(chunk.metadata),
                chunk.created_at,
                chunk.updated_at,
            )
            model.documents.setdefault(chunk.document_id, {})
        return
    if kind == "document":
        _, document_id, meta = operation
        if document_id in model.documents:
            services.documents.update(library_id, document_id, dict(meta))
        else:
            services.documents.create(library_id, metadata=dict(meta), document_id=document_id)
        model.documents[document_id] = dict(meta)
        return
    if kind == "drop_document":
        document_id = operation[1]
        if document_id not in model.documents:
            return
        services.documents.delete(library_id, document_id)
        del model.documents[document_id]
        for chunk_id in [c for c, m in model.chunks.items() if m.document_id == document_id]:
            del model.chunks[chunk_id]
        return
    chunk_id = operation[1]
    if chunk_id not in model.chunks:
        return
    if kind == "delete":
        services.chunks.delete(library_id, chunk_id)
        del model.chunks[chunk_id]
        return
    patch = (
        ChunkPatch(metadata=dict(operation[2]))
        if kind == "patch_metadata"
        else ChunkPatch(embedding=vector_of(operation[2]))
    )
    chunk = services.chunks.patch(library_id, chunk_id, patch)
    model.chunks[chunk_id] = ChunkModel(
        chunk.document_id,
        np.asarray(chunk.embedding, dtype=np.float32).copy(),
        dict(chunk.metadata),
        chunk.created_at,
        chunk.updated_at,
    )


def assert_search_equals_brute_force(
    services: Services,
    library_id: str,
    model: Model,
    raw: dict[str, Any],
    query: Vector,
    k: int,
    *,
    exact: bool,
) -> None:
    outcome = services.search.search(
        library_id, SearchQuery(query, k, raw, include=frozenset({"metadata"}), exact=exact)
    )
    allowed = model.matching(raw)
    share = "none" if not allowed else "all" if len(allowed) == len(model.chunks) else "some"
    event(f"chunks matching: {share}")
    lower_is_better = model.metric is Metric.L2
    want = sorted((model.score(c, query) for c in allowed), reverse=not lower_is_better)[:k]
    got_ids = [hit.chunk_id for hit in outcome.hits]
    assert len(got_ids) == len(set(got_ids)), got_ids
    # exactly min(k, matching) results, each a matching chunk with its true score,
    # and the scores are the brute-force top k: so the set is the top k up to ties
    assert len(got_ids) == len(want), (raw, got_ids, sorted(allowed))
    for hit in outcome.hits:
        assert hit.chunk_id in allowed, (raw, hit.chunk_id)
        assert hit.document_id == model.chunks[hit.chunk_id].document_id
        assert hit.metadata == model.chunks[hit.chunk_id].metadata
        assert hit.score == pytest.approx(model.score(hit.chunk_id, query), abs=SCORE_TOLERANCE)
    got_scores = [hit.score for hit in outcome.hits]
    assert got_scores == pytest.approx(want, abs=SCORE_TOLERANCE), raw
    if not allowed:
        assert outcome.strategy == "filtered-none"


def assert_listings_equal_predicate(
    services: Services, library_id: str, model: Model, raw: dict[str, Any], limit: int
) -> None:
    """``chunks.list`` and ``documents.list`` with the filter, cursor followed to the end."""
    listed: list[str] = []
    cursor: str | None = None
    while True:
        page = services.chunks.list(library_id, limit, cursor, filter_=raw)
        listed.extend(chunk.id for chunk in page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(listed) == len(set(listed))
    assert set(listed) == model.matching(raw), raw

    parsed = parse_filter(raw)
    documents: list[str] = []
    cursor = None
    while True:
        docs = services.documents.list(library_id, limit, cursor, filter_=raw)
        documents.extend(info.document.id for info in docs.items)
        cursor = docs.next_cursor
        if cursor is None:
            break
    want: set[str] = set()
    for document_id, meta in model.documents.items():
        stored = services.documents.get(library_id, document_id).document
        assert stored.metadata == meta
        # a document is filtered as its own metadata under both plain and document. keys
        seen = ChunkFields(
            document_id, document_id, stored.created_at, stored.updated_at, meta, meta
        )
        if matches(parsed, seen):
            want.add(document_id)
    assert len(documents) == len(set(documents))
    assert set(documents) == want, raw


# index type, metric and whether the query asks for exact=True: Flat is exact by default;
# HNSW and IVF must be exact when asked
CONFIGURATIONS = [
    ("flat", "cosine", False),
    ("flat", "l2", False),
    ("flat", "dot", True),
    ("hnsw", "cosine", True),
    ("hnsw", "l2", True),
    ("ivf", "dot", True),
    ("ivf", "cosine", True),
]


@pytest.mark.parametrize(("index_type", "metric", "exact"), CONFIGURATIONS)
@settings(
    max_examples=40,
    deadline=None,
    phases=NO_EXPLAIN,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    seed=st.lists(st.tuples(st.just("upsert"), writes, vector_seeds), min_size=2, max_size=4),
    documents=st.lists(
        st.tuples(st.just("document"), st.sampled_from(DOCUMENT_IDS), metadata(DOCUMENT_KEYS)),
        max_size=3,
    ),
    later=st.lists(operations, max_size=8),
    data=st.data(),
)
def test_exact_filtered_search_equals_brute_force_under_the_predicate(
    index_type: str,
    metric: str,
    exact: bool,
    seed: list[tuple[Any, ...]],
    documents: list[tuple[Any, ...]],
    later: list[tuple[Any, ...]],
    data: st.DataObject,
) -> None:
    services = build_services()
    library_id = services.libraries.create(
        NewLibrary(name="lib", dimension=DIM, metric=metric, index_type=index_type)
    ).library.id
    model = Model(Metric(metric))

    def check(round_: int) -> None:
        for _ in range(2):
            raw = model.resolve(data.draw(FILTERS, label=f"filter@{round_}"))
            query = vector_of(data.draw(vector_seeds, label="query"))
            k = data.draw(st.integers(1, len(CHUNK_IDS) + 2), label="k")
            assert_search_equals_brute_force(
                services, library_id, model, raw, query, k, exact=exact
            )
        raw = model.resolve(data.draw(FILTERS, label=f"listing filter@{round_}"))
        assert_listings_equal_predicate(
            services, library_id, model, raw, data.draw(st.integers(1, 4), label="page size")
        )

    for operation in [*documents, *seed]:
        apply(services, library_id, model, operation)
    check(0)
    # then random updates and deletes, checking again after each
    for round_, operation in enumerate(later, start=1):
        apply(services, library_id, model, operation)
        if round_ % 3 == 0 or round_ == len(later):
            check(round_)


# -- malformed filters ------------------------------------------------------------------

too_deep: dict[str, Any] = {"field": "year", "op": "eq", "value": 1}
for _ in range(12):
    too_deep = {"not": too_deep}

# (a malformed node, where under that node the parser must point)
MALFORMED: list[tuple[Any, str]] = [
    ({"field": "year", "op": "like", "value": 1}, ".op"),
    ({"field": "year", "op": 3, "value": 1}, ".op"),
    ({"field": "year", "op": "gt", "value": "abc"}, ".value"),
    ({"field": "year", "op": "gt", "value": True}, ".value"),
    ({"field": "year", "op": "lte", "value": [1]}, ".value"),
    ({"field": "year", "op": "eq", "value": None}, ".value"),
    ({"field": "year", "op": "eq", "value": {"x": 1}}, ".value"),
    ({"field": "year", "op": "eq", "value": float("nan")}, ".value"),
    ({"field": "tag", "op": "in", "value": []}, ".value"),
    ({"field": "tag", "op": "in", "value": "ml"}, ".value"),
    ({"field": "tag", "op": "nin", "value": ["ml", None]}, ".value[1]"),
    ({"field": "tag", "op": "exists", "value": "yes"}, ".value"),
    ({"field": "tag", "op": "contains", "value": ["ml"]}, ".value"),
    ({"field": "created_at", "op": "gte", "value": "2024-05-01"}, ".value"),
    ({"field": "created_at", "op": "gte", "value": "2024-05-01 12:00:00Z"}, ".value"),
    ({"field": "created_at", "op": "lt", "value": "2024-05-01T12:00:00"}, ".value"),
    ({"field": "created_at", "op": "gt", "value": 1714564800}, ".value"),
    ({"field": "updated_at", "op": "in", "value": ["2024-13-01T00:00:00Z"]}, ".value[0]"),
    ({"field": "created_at", "op": "contains", "value": "2024"}, ".value"),
    ({"field": "id", "op": "eq", "value": 3}, ".value"),
    ({"field": "document_id", "op": "gt", "value": 3}, ".value"),
    ({"field": 3, "op": "eq", "value": 1}, ".field"),
    ({"field": "", "op": "eq", "value": 1}, ".field"),
    ({"field": "document.", "op": "eq", "value": 1}, ".field"),
    ({"field": "year", "op": "eq"}, ""),
    ({"field": "year", "value": 1}, ""),
    ({"field": "year", "op": "eq", "value": 1, "extra": 2}, ".extra"),
    ({"and": []}, ".and"),
    ({"or": {"field": "year", "op": "eq", "value": 1}}, ".or"),
    ({"and": [], "or": []}, ""),
    ({"not": 5}, ".not"),
    ({"not": [{"field": "year", "op": "eq", "value": 1}]}, ".not"),
    ("year = 1", ""),
    (7, ""),
    ({"and": [None]}, ".and[0]"),  # null at the root means "no filter"; inside, it is bad
    ({"not": None}, ".not"),
    ([{"field": "year", "op": "eq", "value": 1}], ""),
    (too_deep, ""),
]


@st.composite
def placed(draw: st.DrawFn, bad: Any, valid: st.SearchStrategy[dict[str, Any]]) -> tuple[Any, str]:
    """``bad`` somewhere inside a tree of valid siblings, and the location of ``bad``."""
    tree, at = bad, "filter"
    path: list[tuple[str, int, list[Any]]] = []
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["and", "or", "not"]))
        if kind == "not":
            path.append(("not", 0, []))
            continue
        before = draw(st.lists(valid, max_size=2))
        after = draw(st.lists(valid, max_size=2))
        path.append((kind, len(before), [*before, None, *after]))
    suffix = ""
    for kind, position, siblings in path:
        if kind == "not":
            tree = {"not": tree}
            suffix = ".not" + suffix
        else:
            siblings[position] = tree
            tree = {kind: siblings}
            suffix = f".{kind}[{position}]" + suffix
    return tree, at + suffix


def snapshot(services: Services, library_id: str) -> tuple[Any, ...]:
    """Everything a filter could change if it were not a pure read."""
    chunks = services.chunks.list(library_id, 1000, None).items
    documents = services.documents.list(library_id, 1000, None).items
    live = services.live.get(library_id)
    return (
        [(c.id, c.document_id, c.metadata, c.embedding.tobytes(), c.updated_at) for c in chunks],
        [(d.document.id, d.document.metadata, d.chunk_count) for d in documents],
        len(live.index),
        len(live.labels),
    )


@settings(
    max_examples=150,
    deadline=None,
    phases=NO_EXPLAIN,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    data=st.data(), case=st.sampled_from(MALFORMED), index_type=st.sampled_from(["flat", "hnsw"])
)
def test_every_malformed_filter_is_invalid_filter_pointing_at_the_node_and_changes_nothing(
    data: st.DataObject, case: tuple[Any, str], index_type: str
) -> None:
    services = build_services()
    library_id = services.libraries.create(
        NewLibrary(name="lib", dimension=DIM, index_type=index_type)
    ).library.id
    services.documents.create(library_id, metadata={"kind": "paper"}, document_id="d0")
    services.chunks.write_batch(
        library_id,
        [
            ChunkInput("d0", "a", vector_of(1), {"year": 2020, "tag": "ml"}, "c0"),
            ChunkInput("d1", "b", vector_of(2), {"year": 2024, "tags": ["ir"]}, "c1"),
        ],
    )
    bad, suffix = case
    model = Model(Metric.COSINE)
    raw, at = data.draw(placed(bad, SHALLOW_FILTERS))
    raw = model.resolve(raw)
    location = at + suffix
    before = snapshot(services, library_id)
    query = vector_of(3)
    baseline = services.search.search(library_id, SearchQuery(query, 5))

    calls: list[Callable[[], object]] = [
        lambda: services.search.search(library_id, SearchQuery(query, 5, raw)),
        lambda: services.search.search(library_id, SearchQuery(query, 5, raw, exact=True)),
        lambda: services.chunks.list(library_id, 10, None, filter_=raw),
        lambda: services.documents.list(library_id, 10, None, filter_=raw),
    ]
    for call in calls:
        with pytest.raises(InvalidFilter) as caught:
            call()
        where = caught.value.extra["location"]
        assert isinstance(where, str) and where.startswith(location), (raw, where, location)
        assert caught.value.detail.startswith(where)
    assert snapshot(services, library_id) == before
    after = services.search.search(library_id, SearchQuery(query, 5))
    assert [h.chunk_id for h in after.hits] == [h.chunk_id for h in baseline.hits]
