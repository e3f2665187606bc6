"""The columnar metadata index agrees exactly with the reference ``matches``, through writes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.filters import ChunkFields, Filter, matches, parse_filter
from domain.labels import LabelMap
from domain.metadata_index import MetadataIndex
from domain.models import Chunk, Metadata

T0 = datetime(2024, 1, 1, tzinfo=UTC)
TIMES = [T0 + timedelta(hours=h) for h in (-1, 0, 1, 2)]
# spellings of a few instants, with offsets, fractions and lower case, plus near misses
DATETIME_TEXTS = [
    "2024-01-01T00:00:00Z",
    "2024-01-01T01:00:00+01:00",
    "2024-01-01t00:00:00.0000001z",
    "2024-01-01T00:00:00.000001Z",
    "2023-12-31T23:00:00Z",
]
# pools kept small so that filters and values often meet
TEXTS = ["", "a", "ab", "b", "2024-01-01", "2024-01-01T00:00:00"]
CHUNK_KEYS = ["a", "b", "tags", "created_at"]
DOCUMENT_KEYS = ["a", "kind"]
CHUNK_IDS = [f"c{i}" for i in range(12)]
DOCUMENT_IDS = ["d0", "d1", "d2"]
FILTER_FIELDS = [
    *("a", "a", "b", "tags", "tags", "zz", "document.a", "document.kind"),
    *("id", "document_id", "created_at", "updated_at"),
]

integers = st.integers(-1, 2)
finite_floats = st.sampled_from([0.5, -1.0, -0.0, 1e300])
datetimes = st.sampled_from(DATETIME_TEXTS)
texts = st.sampled_from(TEXTS)
# each kind equally likely, so that filters and values often meet
values = st.one_of(
    st.none(),
    integers,
    finite_floats,
    st.sampled_from([float("inf"), float("-inf"), float("nan")]),
    st.booleans(),
    texts,
    datetimes,
    st.lists(st.one_of(texts, st.integers(-1, 1), st.booleans()), max_size=3),
)
operands = st.one_of(integers, finite_floats, st.booleans(), texts, datetimes)
ordered = st.one_of(integers, finite_floats, datetimes)


def metadata(keys: list[str]) -> st.SearchStrategy[Metadata]:
    return st.dictionaries(st.sampled_from(keys), values, max_size=len(keys))


@st.composite
def leaves(draw: st.DrawFn) -> dict[str, Any]:
    name = draw(st.sampled_from(FILTER_FIELDS))
    if name in ("created_at", "updated_at"):
        op = draw(st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte", "in", "nin", "exists"]))
        one: st.SearchStrategy[Any] = st.sampled_from(DATETIME_TEXTS)
    elif name in ("id", "document_id"):
        op = draw(st.sampled_from(["eq", "ne", "in", "nin", "contains", "exists"]))
        one = st.sampled_from([*CHUNK_IDS, *DOCUMENT_IDS, "c", "d", "1", "x"])
    else:
        op = draw(
            st.sampled_from(
                ["eq", "ne", "gt", "gte", "lt", "lte", "in", "nin", "contains", "exists"]
            )
        )
        one = ordered if op in ("gt", "gte", "lt", "lte") else operands
    if op == "exists":
        value: Any = draw(st.booleans())
    elif op in ("in", "nin"):
        value = draw(st.lists(one, min_size=1, max_size=3))
    else:
        value = draw(one)
    return {"field": name, "op": op, "value": value}


filters = st.recursive(
    leaves(),
    lambda children: st.one_of(
        st.builds(lambda cs: {"and": cs}, st.lists(children, min_size=1, max_size=3)),
        st.builds(lambda cs: {"or": cs}, st.lists(children, min_size=1, max_size=3)),
        st.builds(lambda c: {"not": c}, children),
    ),
    max_leaves=6,
)

upserts = st.tuples(
    st.just("upsert"),
    st.sampled_from(CHUNK_IDS),
    st.sampled_from(DOCUMENT_IDS),
    metadata(CHUNK_KEYS),
    st.sampled_from(TIMES),
    st.sampled_from(TIMES),
)
documents = st.tuples(st.just("document"), st.sampled_from(DOCUMENT_IDS), metadata(DOCUMENT_KEYS))
# a library is seeded with chunks and documents, then written to with any operation
seeds = st.tuples(
    st.lists(upserts, min_size=6, max_size=16), st.lists(documents, min_size=1, max_size=3)
).map(lambda parts: parts[0] + parts[1])
operations = st.one_of(
    upserts,
    documents,
    st.tuples(st.just("remove"), st.lists(st.sampled_from(CHUNK_IDS), max_size=2)),
    st.tuples(st.just("drop_document"), st.sampled_from(DOCUMENT_IDS)),
)


@dataclass
class Model:
    """The library as plain Python: what the index must agree with."""

    labels: LabelMap = field(default_factory=LabelMap)
    index: MetadataIndex = field(default_factory=MetadataIndex)
    chunks: dict[str, ChunkFields] = field(default_factory=dict)
    documents: dict[str, Metadata] = field(default_factory=dict)

    def apply(self, operation: tuple[Any, ...]) -> None:
        kind = operation[0]
        if kind == "upsert":
            _, chunk_id, document_id, meta, created, updated = operation
            label = int(self.labels.assign([chunk_id], [document_id])[0])
            self.index.upsert(label, chunk_id, document_id, meta, created, updated)
            self.chunks[chunk_id] = ChunkFields(chunk_id, document_id, created, updated, meta)
        elif kind == "remove":
            self.index.remove(self.labels.release(operation[1]))
            for chunk_id in operation[1]:
                self.chunks.pop(chunk_id, None)
        elif kind == "document":
            self.index.set_document_metadata(operation[1], operation[2])
            self.documents[operation[1]] = operation[2]
        else:
            document_id = operation[1]
            removed = self.index.remove_document(document_id)
            owned = [c for c, f in self.chunks.items() if f.document_id == document_id]
            assert sorted(removed.tolist()) == sorted(self.labels.labels(owned).tolist())
            self.labels.release(owned)
            for chunk_id in owned:
                del self.chunks[chunk_id]
            self.documents.pop(document_id, None)

    def expected(self, filter_: Filter) -> np.ndarray[Any, np.dtype[np.bool_]]:
        out = np.zeros(self.labels.capacity, dtype=np.bool_)
        for chunk_id, fields in self.chunks.items():
            document = self.documents.get(fields.document_id, {})
            seen = ChunkFields(
                fields.id,
                fields.document_id,
                fields.created_at,
                fields.updated_at,
                fields.metadata,
                document,
            )
            label = self.labels.label(chunk_id)
            assert label is not None
            out[label] = matches(filter_, seen)
        return out

    def check(self, filter_: Filter) -> None:
        got = self.index.mask(filter_, self.labels.capacity)
        want = self.expected(filter_)
        assert got.dtype == np.bool_
        assert got.tolist() == want.tolist(), filter_.to_json()
        assert self.index.count(filter_) == int(want.sum())


@settings(max_examples=200, deadline=None)
@given(seeds, st.lists(operations, max_size=12), st.lists(filters, min_size=1, max_size=4))
def test_mask_agrees_with_reference_after_every_write(
    seed: list[tuple[Any, ...]], ops: list[tuple[Any, ...]], raw_filters: list[Any]
) -> None:
    parsed = [parse_filter(raw) for raw in raw_filters]
    model = Model()
    for operation in seed:
        model.apply(operation)
    for filter_ in parsed:
        model.check(filter_)
    for operation in ops:
        model.apply(operation)
        for filter_ in parsed:
            model.check(filter_)
    assert len(model.index) == len(model.chunks)
    for chunk_id, fields in model.chunks.items():
        label = model.labels.label(chunk_id)
        assert label is not None
        stored = model.index.fields(label)
        assert (stored.id, stored.document_id, stored.metadata) == (
            fields.id,
            fields.document_id,
            {k: v for k, v in fields.metadata.items() if v is not None},
        )


@settings(max_examples=200, deadline=None)
@given(seeds, st.lists(operations, max_size=4), st.lists(leaves(), min_size=8, max_size=16))
def test_every_leaf_agrees_with_reference(
    seed: list[tuple[Any, ...]], ops: list[tuple[Any, ...]], raw_leaves: list[Any]
) -> None:
    model = Model()
    for operation in seed + ops:
        model.apply(operation)
    for raw in raw_leaves:
        model.check(parse_filter(raw))


@settings(max_examples=100, deadline=None)
@given(st.lists(filters, min_size=1, max_size=2), st.data())
def test_algebra_holds_on_masks(raw_filters: list[Any], data: st.DataObject) -> None:
    model = Model()
    for operation in data.draw(seeds) + data.draw(st.lists(operations, max_size=5)):
        model.apply(operation)
    f = parse_filter(raw_filters[0])
    g = parse_filter(raw_filters[-1])
    live = model.index.mask(parse_filter({"field": "id", "op": "exists", "value": True}))
    mask = model.index.mask
    assert (mask(parse_filter({"not": {"not": f.to_json()}})) == mask(f)).all()
    assert (mask(parse_filter({"not": f.to_json()})) == (live & ~mask(f))).all()
    both = parse_filter({"and": [f.to_json(), g.to_json()]})
    either_not = parse_filter({"or": [{"not": f.to_json()}, {"not": g.to_json()}]})
    assert (mask(parse_filter({"not": both.to_json()})) == mask(either_not)).all()


# --- examples ---------------------------------------------------------------------------------


def build(rows: Sequence[tuple[str, str, Metadata]]) -> tuple[MetadataIndex, LabelMap]:
    index, labels = MetadataIndex(), LabelMap()
    chunks = [
        Chunk("lib", doc, "", np.zeros(1, np.float32), meta, id=cid, created_at=T0, updated_at=T0)
        for cid, doc, meta in rows
    ]
    index.upsert_many(
        labels.assign([c.id for c in chunks], [c.document_id for c in chunks]), chunks
    )
    return index, labels


def ids(index: MetadataIndex, labels: LabelMap, raw: Any) -> set[str]:
    mask = index.mask(parse_filter(raw), labels.capacity)
    return {labels.chunk_id(int(i)) for i in np.flatnonzero(mask)}


def test_document_metadata_update_changes_every_chunk_of_the_document() -> None:
    index, labels = build([("c1", "d1", {}), ("c2", "d1", {}), ("c3", "d2", {})])
    draft = {"field": "document.status", "op": "eq", "value": "draft"}
    assert ids(index, labels, draft) == set()
    index.set_document_metadata("d1", {"status": "draft"})
    assert ids(index, labels, draft) == {"c1", "c2"}
    assert ids(index, labels, {"not": draft}) == {"c3"}
    index.set_document_metadata("d1", {"status": "final"})
    assert ids(index, labels, draft) == set()
    index.set_document_metadata("d2", {"status": "draft"})
    assert ids(index, labels, draft) == {"c3"}
    assert index.remove_document("d2").tolist() == [labels.label("c3")]
    assert ids(index, labels, {"not": draft}) == {"c1", "c2"}


def test_created_at_range() -> None:
    index, labels = MetadataIndex(), LabelMap()
    for hour in range(5):
        label = int(labels.assign([f"c{hour}"], ["d"])[0])
        at = T0 + timedelta(hours=hour)
        index.upsert(label, f"c{hour}", "d", {}, at, at)
    after = {"field": "created_at", "op": "gte", "value": "2024-01-01T03:00:00+01:00"}
    assert ids(index, labels, after) == {"c2", "c3", "c4"}
    window = {"and": [after, {"field": "created_at", "op": "lt", "value": "2024-01-01T04:00:00Z"}]}
    assert ids(index, labels, window) == {"c2", "c3"}
    assert index.selectivity(parse_filter(window)) == pytest.approx(2 / 5)


def test_mask_has_the_requested_length_and_forgets_removed_chunks() -> None:
    index, labels = build([("c1", "d", {"tag": "x"}), ("c2", "d", {"tag": "x"})])
    f = parse_filter({"field": "tag", "op": "eq", "value": "x"})
    assert index.mask(f, 5).tolist() == [True, True, False, False, False]
    assert index.mask(f, 1).tolist() == [True]
    exists = parse_filter({"field": "tag", "op": "exists", "value": True})
    index.mask(exists)[:] = False  # the caller owns the mask it gets
    assert index.mask(exists).tolist() == [True, True]
    index.remove(labels.release(["c1"]))
    assert index.mask(f).tolist() == [False, True]
    assert index.mask(parse_filter({"not": f.to_json()})).tolist() == [False, False]
    # a reused label carries only its new chunk's metadata
    label = int(labels.assign(["c9"], ["d"])[0])
    index.upsert(label, "c9", "d", {"tag": "y"}, T0, T0)
    assert ids(index, labels, f.to_json()) == {"c2"}
    assert ids(index, labels, {"field": "tag", "op": "ne", "value": "x"}) == {"c9"}


def test_string_contains_scans_distinct_values_not_chunks() -> None:
    rows: list[tuple[str, str, Metadata]] = [
        (f"c{i}", "d", {"name": ["alpha", "beta", "gamma"][i % 3]}) for i in range(300)
    ]
    index, labels = build(rows)
    got = ids(index, labels, {"field": "name", "op": "contains", "value": "ph"})
    assert got == {f"c{i}" for i in range(0, 300, 3)}
    assert index.count(parse_filter({"field": "name", "op": "contains", "value": "a"})) == 300


def test_document_metadata_outlives_its_chunks_until_the_document_is_removed() -> None:
    index, labels = build([("c1", "d1", {})])
    index.set_document_metadata("d1", {"kind": "paper"})
    index.remove(labels.release(["c1"]))
    # another document comes and goes meanwhile
    index.upsert(int(labels.assign(["c2"], ["d2"])[0]), "c2", "d2", {}, T0, T0)
    paper = {"field": "document.kind", "op": "eq", "value": "paper"}
    assert ids(index, labels, paper) == set()
    index.upsert(int(labels.assign(["c3"], ["d1"])[0]), "c3", "d1", {}, T0, T0)
    assert ids(index, labels, paper) == {"c3"}
    index.remove_document("d1")
    labels.release(["c3"])
    index.upsert(int(labels.assign(["c4"], ["d1"])[0]), "c4", "d1", {}, T0, T0)
    assert ids(index, labels, paper) == set()
