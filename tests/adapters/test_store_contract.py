"""The persistence contract: one suite that every store adapter must pass.

Each test runs against the in-memory adapter and against SQLite on a real file, so the two
cannot drift apart (ordering, cursors, cascades, copies, all-or-nothing).
"""

from __future__ import annotations

import dataclasses
import json
from base64 import urlsafe_b64decode, urlsafe_b64encode
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.persistence.errors import InactiveUnitOfWork, ReadOnlyUnitOfWork
from adapters.persistence.memory import MemoryStore, MemoryUnitOfWork
from adapters.persistence.sqlite import SqlUnitOfWork, create_sqlite_engine
from domain.errors import DocumentNotFound, InvalidCursor, LibraryNotFound, StoreUnavailable
from domain.models import (
    Chunk,
    Document,
    HnswParams,
    IndexSpec,
    IndexType,
    Library,
    Metric,
)
from domain.ports import UnitOfWork, UnitOfWorkFactory

DIM = 8
T0 = datetime(2024, 5, 17, 12, 30, 45, 123456, tzinfo=UTC)


class OpenUnitOfWork(Protocol):
    def __call__(self, *, read_only: bool = ..., lock_timeout: float = ...) -> UnitOfWork: ...


@pytest.fixture(params=["memory", "sqlite"])
def open_uow(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OpenUnitOfWork]:
    if request.param == "memory":
        yield partial(MemoryUnitOfWork, MemoryStore())
        return
    engine = create_sqlite_engine(tmp_path / "store.sqlite3")
    yield partial(SqlUnitOfWork, engine)
    engine.dispose()


def test_both_adapters_satisfy_the_unit_of_work_factory_port(tmp_path: Path) -> None:
    engine = create_sqlite_engine(tmp_path / "port.sqlite3")
    store = MemoryStore()
    factories: list[UnitOfWorkFactory] = [
        partial(MemoryUnitOfWork, store),
        partial(SqlUnitOfWork, engine),
    ]
    for factory in factories:
        with factory() as uow:
            assert uow.libraries.get("nothing") is None
    engine.dispose()


# --- builders ---------------------------------------------------------------------------


def a_library(**fields: Any) -> Library:
    fields.setdefault("name", "papers")
    fields.setdefault("dimension", DIM)
    return Library(**fields)


def a_chunk(library_id: str, document_id: str, n: int = 0, **fields: Any) -> Chunk:
    fields.setdefault("text", f"chunk {n}")
    fields.setdefault("embedding", np.arange(DIM, dtype=np.float32) + np.float32(n))
    return Chunk(library_id=library_id, document_id=document_id, **fields)


def seed(
    open_uow: OpenUnitOfWork, documents: int = 2, chunks_per_document: int = 3
) -> tuple[Library, list[Document], list[Chunk]]:
    """A committed library with documents and chunks, chunks saved document by document."""
    library = a_library()
    docs = [Document(library_id=library.id, id=f"doc-{d}") for d in range(documents)]
    chunks = [
        a_chunk(library.id, doc.id, d * chunks_per_document + c, id=f"{doc.id}-c{c}")
        for d, doc in enumerate(docs)
        for c in range(chunks_per_document)
    ]
    with open_uow() as uow:
        uow.libraries.save(library)
        for doc in docs:
            uow.documents.save(doc)
        uow.chunks.save_many(chunks)
        uow.commit()
    return library, docs, chunks


def bits(vector: np.ndarray[Any, Any]) -> bytes:
    return np.ascontiguousarray(vector, dtype="<f4").tobytes()


# --- save and get ------------------------------------------------------------------------


def test_saved_library_reads_back_with_every_field(open_uow: OpenUnitOfWork) -> None:
    library = a_library(
        name="Papers ünïcode",
        dimension=384,
        metric=Metric.L2,
        description="arXiv abstracts",
        metadata={"owner": "ana", "tags": ["ml", "ir"], "year": 2024, "score": 0.5, "on": True},
        index=IndexSpec.parse("hnsw", {"m": 32, "ef_search": 100}),
        created_at=T0,
        updated_at=T0 + timedelta(microseconds=1),
        revision=41,
    )
    with open_uow() as uow:
        uow.libraries.save(library)
        uow.commit()
    with open_uow() as uow:
        loaded = uow.libraries.get(library.id)
    assert loaded == library
    assert loaded is not None
    assert loaded.index.type is IndexType.HNSW
    assert loaded.index.params == HnswParams(m=32, ef_search=100)
    assert loaded.metric is Metric.L2


def test_saving_a_library_again_replaces_it_and_keeps_its_documents(
    open_uow: OpenUnitOfWork,
) -> None:
    library, docs, chunks = seed(open_uow)
    library.name = "renamed"
    library.revision = 7
    with open_uow() as uow:
        uow.libraries.save(library)
        uow.commit()
    with open_uow() as uow:
        assert uow.libraries.get(library.id) == library
        assert uow.libraries.counts(library.id) == (len(docs), len(chunks))


def test_saving_a_document_again_replaces_it_and_keeps_its_chunks(
    open_uow: OpenUnitOfWork,
) -> None:
    library, docs, _ = seed(open_uow)
    replaced = dataclasses.replace(docs[0], metadata={"title": "new"}, updated_at=T0)
    with open_uow() as uow:
        uow.documents.save(replaced)
        uow.commit()
    with open_uow() as uow:
        assert uow.documents.get(library.id, docs[0].id) == replaced
        assert uow.chunks.ids_of_document(library.id, docs[0].id) == [
            f"{docs[0].id}-c{c}" for c in range(3)
        ]


def test_get_of_unknown_ids_returns_none(open_uow: OpenUnitOfWork) -> None:
    library, docs, _ = seed(open_uow)
    with open_uow() as uow:
        assert uow.libraries.get("missing") is None
        assert uow.documents.get(library.id, "missing") is None
        assert uow.documents.get("missing", docs[0].id) is None
        assert uow.chunks.get(library.id, "missing") is None
        assert uow.chunks.get("missing", "doc-0-c0") is None


def test_ids_are_unique_per_library_not_globally(open_uow: OpenUnitOfWork) -> None:
    first, second = a_library(), a_library()
    with open_uow() as uow:
        for library in (first, second):
            uow.libraries.save(library)
            uow.documents.save(Document(library_id=library.id, id="same-doc"))
            uow.chunks.save_many([a_chunk(library.id, "same-doc", text=library.id, id="same")])
        uow.commit()
    with open_uow() as uow:
        for library in (first, second):
            chunk = uow.chunks.get(library.id, "same")
            assert chunk is not None
            assert chunk.text == library.id


def test_chunk_fields_round_trip(open_uow: OpenUnitOfWork) -> None:
    library, _, _ = seed(open_uow)
    chunk = a_chunk(
        library.id,
        "doc-1",
        text="naïve café — 東京 \x00 end",
        metadata={"page": 3, "ratio": 1.0, "tags": ["a", "b"], "flag": False, "none": None},
        created_at=T0,
        updated_at=T0 + timedelta(days=1, microseconds=999_999),
    )
    with open_uow() as uow:
        uow.chunks.save_many([chunk])
        uow.commit()
    with open_uow() as uow:
        loaded = uow.chunks.get(library.id, chunk.id)
    assert loaded is not None
    assert (loaded.library_id, loaded.document_id, loaded.id) == (
        chunk.library_id,
        chunk.document_id,
        chunk.id,
    )
    assert loaded.text == chunk.text
    assert loaded.metadata == chunk.metadata
    # JSON must not turn 1.0 into 1 nor False into 0.
    assert type(loaded.metadata["ratio"]) is float
    assert type(loaded.metadata["page"]) is int
    assert loaded.metadata["flag"] is False


def test_timestamps_round_trip_as_aware_utc_with_microseconds(open_uow: OpenUnitOfWork) -> None:
    library = a_library(created_at=T0, updated_at=T0.replace(microsecond=1))
    document = Document(library_id=library.id, created_at=T0.replace(microsecond=999_999))
    with open_uow() as uow:
        uow.libraries.save(library)
        uow.documents.save(document)
        uow.commit()
    with open_uow() as uow:
        loaded_library = uow.libraries.get(library.id)
        loaded_document = uow.documents.get(library.id, document.id)
    assert loaded_library is not None
    assert loaded_document is not None
    for loaded, original in [
        (loaded_library.created_at, library.created_at),
        (loaded_library.updated_at, library.updated_at),
        (loaded_document.created_at, document.created_at),
    ]:
        assert loaded == original
        assert loaded.microsecond == original.microsecond
        assert loaded.utcoffset() == timedelta(0)


def test_embedding_round_trips_bit_exact(open_uow: OpenUnitOfWork) -> None:
    library, _, _ = seed(open_uow)
    special = np.array(
        [0.1, -0.0, 1e-45, -3.4028235e38, 3.4028235e38, 1.17549435e-38, np.pi, -1 / 3],
        dtype=np.float32,
    )
    chunk = a_chunk(library.id, "doc-0", embedding=special)
    with open_uow() as uow:
        uow.chunks.save_many([chunk])
        uow.commit()
    with open_uow() as uow:
        loaded = uow.chunks.get(library.id, chunk.id)
        listed = [c for c in uow.chunks.list(library.id, 1_000, None).items if c.id == chunk.id]
    assert loaded is not None
    for embedding in (loaded.embedding, listed[0].embedding):
        assert embedding.dtype == np.float32
        assert embedding.flags.c_contiguous
        assert embedding.flags.writeable
        assert bits(embedding) == bits(special)


def test_float64_embeddings_are_stored_as_float32(open_uow: OpenUnitOfWork) -> None:
    library, _, _ = seed(open_uow)
    wide = np.linspace(-1, 1, DIM, dtype=np.float64)
    with open_uow() as uow:
        uow.chunks.save_many([a_chunk(library.id, "doc-0", id="wide", embedding=wide)])
        uow.commit()
    with open_uow() as uow:
        loaded = uow.chunks.get(library.id, "wide")
    assert loaded is not None
    assert loaded.embedding.dtype == np.float32
    assert bits(loaded.embedding) == bits(wide.astype(np.float32))


def test_store_keeps_its_own_copies_of_entities(open_uow: OpenUnitOfWork) -> None:
    library, _, chunks = seed(open_uow)
    chunks[0].embedding[0] = 1000.0
    chunks[0].metadata["leak"] = True
    library.metadata["leak"] = True
    with open_uow() as uow:
        fetched = uow.chunks.get(library.id, chunks[0].id)
        assert fetched is not None
        fetched.embedding[:] = -1.0
        fetched.metadata["leak"] = True
        again = uow.chunks.get(library.id, chunks[0].id)
        stored_library = uow.libraries.get(library.id)
    assert again is not None
    assert again.embedding[0] == 0.0
    assert again.embedding[1] == 1.0
    assert "leak" not in again.metadata
    assert stored_library is not None
    assert "leak" not in stored_library.metadata


def test_upserting_a_chunk_replaces_it_in_place(open_uow: OpenUnitOfWork) -> None:
    library, _, chunks = seed(open_uow)
    replacement = a_chunk(library.id, "doc-1", 99, id=chunks[1].id, text="replaced")
    with open_uow() as uow:
        uow.chunks.save_many([replacement])
        uow.commit()
    with open_uow() as uow:
        listed = uow.chunks.list(library.id, 100, None).items
        counts = uow.documents.chunk_counts(library.id, ["doc-0", "doc-1"])
        assert uow.chunks.ids_of_document(library.id, "doc-1")[0] == chunks[1].id
    assert [c.id for c in listed] == [c.id for c in chunks]
    assert listed[1].text == "replaced"
    assert listed[1].document_id == "doc-1"
    assert bits(listed[1].embedding) == bits(replacement.embedding)
    assert counts == {"doc-0": 2, "doc-1": 4}


def test_saving_chunks_of_a_missing_document_raises_and_writes_nothing(
    open_uow: OpenUnitOfWork,
) -> None:
    library, _, chunks = seed(open_uow)
    batch = [a_chunk(library.id, "doc-0", id="fine"), a_chunk(library.id, "ghost", id="orphan")]
    with open_uow() as uow:
        with pytest.raises(DocumentNotFound) as raised:
            uow.chunks.save_many(batch)
        assert raised.value.extra["document_id"] == "ghost"
        assert uow.chunks.existing_ids(library.id, ["fine", "orphan"]) == set()
        with pytest.raises(LibraryNotFound):
            uow.chunks.save_many([a_chunk("no-such-library", "doc-0")])
        with pytest.raises(LibraryNotFound):
            uow.documents.save(Document(library_id="no-such-library"))
        uow.commit()
    with open_uow() as uow:
        assert uow.libraries.counts(library.id) == (2, len(chunks))


def test_get_many_returns_found_chunks_by_id(open_uow: OpenUnitOfWork) -> None:
    library, _, chunks = seed(open_uow)
    with open_uow() as uow:
        found = uow.chunks.get_many(library.id, [chunks[4].id, "missing", chunks[0].id])
    assert set(found) == {chunks[4].id, chunks[0].id}
    assert found[chunks[4].id].text == chunks[4].text


def test_save_many_handles_ten_thousand_chunks_in_one_batch(open_uow: OpenUnitOfWork) -> None:
    library, _, _ = seed(open_uow, documents=1, chunks_per_document=0)
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((10_000, DIM)).astype(np.float32)
    batch = [
        a_chunk(library.id, "doc-0", i, id=f"bulk-{i}", embedding=vectors[i]) for i in range(10_000)
    ]
    with open_uow() as uow:
        uow.chunks.save_many(batch)
        uow.commit()
    with open_uow() as uow:
        ids = [f"bulk-{i}" for i in range(0, 10_000, 7)]
        assert uow.chunks.existing_ids(library.id, ids) == set(ids)
        assert len(uow.chunks.get_many(library.id, ids)) == len(ids)
        assert uow.libraries.counts(library.id) == (1, 10_000)
        stored = np.concatenate([b.embeddings for b in uow.chunks.scan_columns(library.id, 3_000)])
    assert stored.tobytes() == vectors.tobytes()


# --- listing and cursors -----------------------------------------------------------------


def test_libraries_list_in_creation_order_across_several_pages(open_uow: OpenUnitOfWork) -> None:
    libraries = [a_library(name=f"lib-{i}") for i in range(7)]
    with open_uow() as uow:
        for library in libraries:
            uow.libraries.save(library)
        uow.commit()
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    with open_uow() as uow:
        while True:
            page = uow.libraries.list(3, cursor)
            pages += 1
            seen.extend(lib.id for lib in page.items)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
    assert seen == [lib.id for lib in libraries]
    assert pages == 3


def test_last_page_has_no_cursor_even_when_exactly_full(open_uow: OpenUnitOfWork) -> None:
    library, docs, _ = seed(open_uow, documents=4, chunks_per_document=0)
    with open_uow() as uow:
        first = uow.documents.list(library.id, 2, None)
        assert first.next_cursor is not None
        second = uow.documents.list(library.id, 2, first.next_cursor)
        assert second.next_cursor is None
        everything = uow.documents.list(library.id, 4, None)
        assert everything.next_cursor is None
    assert [d.id for d in first.items + second.items] == [d.id for d in docs]
    assert everything.items == docs


def test_listing_an_unknown_or_empty_collection_gives_one_empty_page(
    open_uow: OpenUnitOfWork,
) -> None:
    with open_uow() as uow:
        for page in (
            uow.libraries.list(10, None),
            uow.documents.list("missing", 10, None),
            uow.chunks.list("missing", 10, None),
            uow.chunks.list("missing", 10, None, document_id="missing"),
        ):
            assert page.items == []
            assert page.next_cursor is None


def test_chunks_list_in_insertion_order_optionally_of_one_document(
    open_uow: OpenUnitOfWork,
) -> None:
    library, _, chunks = seed(open_uow, documents=3, chunks_per_document=4)
    # A later chunk of doc-0 goes after everything saved before it.
    late = a_chunk(library.id, "doc-0", 50, id="late")
    with open_uow() as uow:
        uow.chunks.save_many([late])
        uow.commit()
    with open_uow() as uow:
        all_ids = _drain_chunks(uow, library.id, 5, None)
        doc0_ids = _drain_chunks(uow, library.id, 2, "doc-0")
    assert all_ids == [c.id for c in chunks] + ["late"]
    assert doc0_ids == [c.id for c in chunks if c.document_id == "doc-0"] + ["late"]


def _drain_chunks(
    uow: UnitOfWork, library_id: str, limit: int, document_id: str | None
) -> list[str]:
    ids: list[str] = []
    cursor: str | None = None
    while True:
        page = uow.chunks.list(library_id, limit, cursor, document_id=document_id)
        assert len(page.items) <= limit
        ids.extend(c.id for c in page.items)
        if page.next_cursor is None:
            return ids
        cursor = page.next_cursor


def test_deleted_and_reinserted_items_move_to_the_end_of_the_listing(
    open_uow: OpenUnitOfWork,
) -> None:
    library, _, chunks = seed(open_uow)
    with open_uow() as uow:
        uow.chunks.delete_many(library.id, [chunks[0].id])
        uow.chunks.save_many([chunks[0]])
        uow.commit()
    with open_uow() as uow:
        ids = [c.id for c in uow.chunks.list(library.id, 100, None).items]
    assert ids == [c.id for c in chunks[1:]] + [chunks[0].id]


def test_a_cursor_still_works_after_the_item_it_points_at_is_deleted(
    open_uow: OpenUnitOfWork,
) -> None:
    library, _, chunks = seed(open_uow)
    with open_uow() as uow:
        first = uow.chunks.list(library.id, 2, None)
        assert first.next_cursor is not None
        uow.chunks.delete_many(library.id, [chunks[1].id])
        uow.commit()
    with open_uow() as uow:
        rest = uow.chunks.list(library.id, 100, first.next_cursor)
    assert [c.id for c in rest.items] == [c.id for c in chunks[2:]]


def _token(payload: object) -> str:
    return urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "not a cursor!",
        "%%%",
        "x" * 1000,
        urlsafe_b64encode(b"\xff\xfe").decode(),
        _token([1, 2]),
        _token({"s": 1}),
        _token("just a string"),
    ],
)
def test_a_malformed_cursor_raises_invalid_cursor(open_uow: OpenUnitOfWork, cursor: str) -> None:
    library, _, _ = seed(open_uow)
    with open_uow() as uow:
        with pytest.raises(InvalidCursor):
            uow.libraries.list(10, cursor)
        with pytest.raises(InvalidCursor):
            uow.documents.list(library.id, 10, cursor)
        with pytest.raises(InvalidCursor):
            uow.chunks.list(library.id, 10, cursor)


def test_a_cursor_with_a_tampered_position_raises_invalid_cursor(open_uow: OpenUnitOfWork) -> None:
    seed(open_uow)
    seed(open_uow)
    with open_uow() as uow:
        cursor = uow.libraries.list(1, None).next_cursor
        assert cursor is not None
        payload = json.loads(urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        for bad in (-1, True, "3", 1.5, None):
            with pytest.raises(InvalidCursor):
                uow.libraries.list(1, _token({**payload, "s": bad}))


def test_a_cursor_of_another_listing_raises_invalid_cursor(open_uow: OpenUnitOfWork) -> None:
    first, _, _ = seed(open_uow)
    second, _, _ = seed(open_uow)
    with open_uow() as uow:
        library_cursor = uow.libraries.list(1, None).next_cursor
        document_cursor = uow.documents.list(first.id, 1, None).next_cursor
        chunk_cursor = uow.chunks.list(first.id, 1, None).next_cursor
        doc_chunk_cursor = uow.chunks.list(first.id, 1, None, document_id="doc-0").next_cursor
        assert library_cursor and document_cursor and chunk_cursor and doc_chunk_cursor
        with pytest.raises(InvalidCursor):
            uow.documents.list(first.id, 1, library_cursor)
        with pytest.raises(InvalidCursor):
            uow.documents.list(second.id, 1, document_cursor)
        with pytest.raises(InvalidCursor):
            uow.chunks.list(second.id, 1, chunk_cursor)
        with pytest.raises(InvalidCursor):
            uow.chunks.list(first.id, 1, chunk_cursor, document_id="doc-0")
        with pytest.raises(InvalidCursor):
            uow.chunks.list(first.id, 1, doc_chunk_cursor, document_id="doc-1")
        assert uow.chunks.list(first.id, 1, doc_chunk_cursor, document_id="doc-0").items


def test_a_page_size_below_one_is_refused(open_uow: OpenUnitOfWork) -> None:
    with open_uow() as uow:
        with pytest.raises(ValueError):
            uow.libraries.list(0, None)
        with pytest.raises(ValueError):
            next(uow.chunks.scan_columns("any", 0))


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    operations=st.lists(
        st.tuples(st.sampled_from(["save", "delete"]), st.integers(min_value=0, max_value=15)),
        max_size=40,
    ),
    page_size=st.integers(min_value=1, max_value=9),
)
def test_paging_yields_exactly_the_stored_chunks_in_insertion_order(
    open_uow: OpenUnitOfWork, operations: list[tuple[str, int]], page_size: int
) -> None:
    # Model: a dict keeps first-insertion order, replacement in place and re-insertion at
    # the end, which is the order the contract promises.
    library, _, _ = seed(open_uow, documents=1, chunks_per_document=0)
    model: dict[str, str] = {}
    with open_uow() as uow:
        for step, (operation, n) in enumerate(operations):
            chunk_id = f"c{n}"
            if operation == "save":
                text = f"v{step}"
                uow.chunks.save_many([a_chunk(library.id, "doc-0", n, id=chunk_id, text=text)])
                model[chunk_id] = text
            else:
                uow.chunks.delete_many(library.id, [chunk_id])
                model.pop(chunk_id, None)
        uow.commit()
    with open_uow() as uow:
        listed: list[tuple[str, str]] = []
        cursor: str | None = None
        while True:
            page = uow.chunks.list(library.id, page_size, cursor)
            listed.extend((c.id, c.text) for c in page.items)
            if page.next_cursor is None:
                break
            assert len(page.items) == page_size
            cursor = page.next_cursor
        scanned = [i for b in uow.chunks.scan_columns(library.id, page_size) for i in b.ids]
        assert uow.chunks.ids_of_document(library.id, "doc-0") == list(model)
        assert uow.libraries.counts(library.id) == (1, len(model))
    assert listed == list(model.items())
    assert scanned == list(model)


# --- delete, counts, ids -----------------------------------------------------------------


def test_deleting_a_library_cascades_to_its_documents_and_chunks(
    open_uow: OpenUnitOfWork,
) -> None:
    library, docs, chunks = seed(open_uow)
    other, other_docs, other_chunks = seed(open_uow)
    with open_uow() as uow:
        uow.libraries.delete(library.id)
        uow.commit()
    with open_uow() as uow:
        assert uow.libraries.get(library.id) is None
        assert uow.libraries.counts(library.id) == (0, 0)
        assert uow.documents.existing_ids(library.id, [d.id for d in docs]) == set()
        assert uow.chunks.existing_ids(library.id, [c.id for c in chunks]) == set()
        assert list(uow.chunks.scan_columns(library.id)) == []
        assert uow.libraries.counts(other.id) == (len(other_docs), len(other_chunks))
        assert [lib.id for lib in uow.libraries.list(10, None).items] == [other.id]


def test_deleting_a_document_cascades_to_its_chunks_only(open_uow: OpenUnitOfWork) -> None:
    library, _, chunks = seed(open_uow)
    with open_uow() as uow:
        uow.documents.delete(library.id, "doc-0")
        uow.commit()
    with open_uow() as uow:
        assert uow.documents.get(library.id, "doc-0") is None
        assert uow.chunks.ids_of_document(library.id, "doc-0") == []
        remaining = [c.id for c in uow.chunks.list(library.id, 100, None).items]
        assert uow.libraries.counts(library.id) == (1, 3)
    assert remaining == [c.id for c in chunks if c.document_id == "doc-1"]


def test_deleting_missing_ids_is_a_no_op(open_uow: OpenUnitOfWork) -> None:
    library, docs, chunks = seed(open_uow)
    with open_uow() as uow:
        uow.libraries.delete("missing")
        uow.documents.delete(library.id, "missing")
        uow.documents.delete("missing", "doc-0")
        uow.chunks.delete_many(library.id, ["missing"])
        uow.chunks.delete_many("missing", [chunks[0].id])
        uow.commit()
    with open_uow() as uow:
        assert uow.libraries.counts(library.id) == (len(docs), len(chunks))


def test_delete_many_removes_only_the_named_chunks(open_uow: OpenUnitOfWork) -> None:
    library, _, chunks = seed(open_uow)
    doomed = [chunks[1].id, chunks[4].id, chunks[4].id]
    with open_uow() as uow:
        uow.chunks.delete_many(library.id, iter(doomed))
        uow.commit()
    with open_uow() as uow:
        left = uow.chunks.existing_ids(library.id, [c.id for c in chunks])
        counts = uow.documents.chunk_counts(library.id, ["doc-0", "doc-1"])
    assert left == {c.id for c in chunks} - set(doomed)
    assert counts == {"doc-0": 2, "doc-1": 2}


def test_counts_and_chunk_counts(open_uow: OpenUnitOfWork) -> None:
    library, _, _ = seed(open_uow, documents=3, chunks_per_document=2)
    with open_uow() as uow:
        uow.documents.save(Document(library_id=library.id, id="empty"))
        uow.chunks.save_many([a_chunk(library.id, "doc-2", 9, id="extra")])
        uow.commit()
    with open_uow() as uow:
        assert uow.libraries.counts(library.id) == (4, 7)
        assert uow.libraries.counts("missing") == (0, 0)
        counts = uow.documents.chunk_counts(library.id, ["doc-2", "empty", "unknown", "doc-0"])
        assert uow.documents.chunk_counts("missing", ["doc-0"]) == {"doc-0": 0}
        assert uow.documents.chunk_counts(library.id, []) == {}
    assert counts == {"doc-2": 3, "empty": 0, "unknown": 0, "doc-0": 2}


def test_existing_ids_reports_only_ids_of_that_library(open_uow: OpenUnitOfWork) -> None:
    library, _, chunks = seed(open_uow)
    other, _, _ = seed(open_uow, documents=1, chunks_per_document=0)
    with open_uow() as uow:
        uow.documents.save(Document(library_id=other.id, id="only-in-other"))
        uow.commit()
    with open_uow() as uow:
        docs = uow.documents.existing_ids(library.id, ["doc-0", "only-in-other", "doc-1", "x"])
        found = uow.chunks.existing_ids(library.id, (c.id for c in [chunks[0], chunks[5]]))
        assert uow.chunks.existing_ids(other.id, [chunks[0].id]) == set()
        assert uow.documents.existing_ids(library.id, []) == set()
    assert docs == {"doc-0", "doc-1"}
    assert found == {chunks[0].id, chunks[5].id}


def test_ids_of_document_are_in_insertion_order(open_uow: OpenUnitOfWork) -> None:
    library, _, _ = seed(open_uow, documents=2, chunks_per_document=0)
    with open_uow() as uow:
        uow.chunks.save_many([a_chunk(library.id, "doc-0", id=i) for i in ["z", "a", "m"]])
        uow.chunks.save_many([a_chunk(library.id, "doc-1", id="b")])
        uow.chunks.save_many([a_chunk(library.id, "doc-0", id="c")])
        uow.commit()
    with open_uow() as uow:
        assert uow.chunks.ids_of_document(library.id, "doc-0") == ["z", "a", "m", "c"]
        assert uow.chunks.ids_of_document(library.id, "missing") == []


def test_scan_columns_yields_every_chunk_once_in_insertion_order_without_the_text(
    open_uow: OpenUnitOfWork,
) -> None:
    library = a_library()
    doc = Document(library_id=library.id, id="d")
    chunks = [
        a_chunk(
            library.id,
            "d",
            n,
            id=f"c{n}",
            metadata={"tag": "x", "n": n} if n % 3 == 0 else {},
            created_at=T0 + timedelta(microseconds=n),
            updated_at=T0 + timedelta(seconds=n),
        )
        for n in range(7)
    ]
    with open_uow() as uow:
        uow.libraries.save(library)
        uow.documents.save(doc)
        uow.chunks.save_many(chunks)
        uow.commit()
    with open_uow(read_only=True) as uow:
        blocks = list(uow.chunks.scan_columns(library.id, batch_size=3))
        assert list(uow.chunks.scan_columns("missing")) == []
    assert [len(b) for b in blocks] == [3, 3, 1]
    assert [i for b in blocks for i in b.ids] == [c.id for c in chunks]
    assert [d for b in blocks for d in b.document_ids] == ["d"] * 7
    matrix = np.concatenate([b.embeddings for b in blocks])
    assert matrix.dtype == np.float32 and matrix.shape == (7, DIM)
    assert bits(matrix) == b"".join(bits(c.embedding) for c in chunks)
    assert [b.metadata for b in blocks] == [
        {0: {"tag": "x", "n": 0}},
        {0: {"tag": "x", "n": 3}},
        {0: {"tag": "x", "n": 6}},
    ]
    created = np.concatenate([b.created_micros for b in blocks])
    updated = np.concatenate([b.updated_micros for b in blocks])
    t0 = int((T0 - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1))
    assert created.tolist() == [t0 + n for n in range(7)]
    assert updated.tolist() == [t0 + n * 1_000_000 for n in range(7)]
    assert all(b.texts is None for b in blocks)


def test_scan_columns_with_text_yields_each_chunks_text_beside_its_id(
    open_uow: OpenUnitOfWork,
) -> None:
    library, _, chunks = seed(open_uow, documents=3, chunks_per_document=4)
    texts = {c.id: f"text of {c.id}: Ünïcode, “quotes” and\nnewlines" for c in chunks}
    with open_uow() as uow:
        uow.chunks.save_many([dataclasses.replace(c, text=texts[c.id]) for c in chunks])
        uow.commit()
    with open_uow(read_only=True) as uow:
        blocks = list(uow.chunks.scan_columns(library.id, batch_size=5, with_text=True))
    assert [len(b.texts or []) for b in blocks] == [len(b) for b in blocks] == [5, 5, 2]
    assert {i: t for b in blocks for i, t in zip(b.ids, b.texts or [], strict=True)} == texts


# --- units of work -----------------------------------------------------------------------


def test_an_exception_inside_a_unit_of_work_leaves_nothing(open_uow: OpenUnitOfWork) -> None:
    library = a_library()
    with pytest.raises(RuntimeError, match="boom"), open_uow() as uow:
        uow.libraries.save(library)
        uow.documents.save(Document(library_id=library.id, id="d"))
        uow.chunks.save_many([a_chunk(library.id, "d")])
        raise RuntimeError("boom")
    with open_uow() as uow:
        assert uow.libraries.get(library.id) is None
        assert uow.libraries.counts(library.id) == (0, 0)
        assert uow.libraries.list(10, None).items == []


def test_leaving_a_unit_of_work_without_commit_leaves_nothing(open_uow: OpenUnitOfWork) -> None:
    library, docs, chunks = seed(open_uow)
    before = _snapshot(open_uow, library.id)
    with open_uow() as uow:
        library.name = "changed"
        uow.libraries.save(library)
        uow.documents.save(dataclasses.replace(docs[0], metadata={"changed": True}))
        uow.documents.save(Document(library_id=library.id, id="new-doc"))
        uow.chunks.save_many(
            [
                a_chunk(library.id, "new-doc", id="new"),
                a_chunk(library.id, "doc-1", id=chunks[0].id),
            ]
        )
        uow.chunks.delete_many(library.id, [chunks[2].id])
        uow.documents.delete(library.id, "doc-1")
    assert _snapshot(open_uow, library.id) == before


def test_rolling_back_a_deleted_library_restores_it_with_its_contents(
    open_uow: OpenUnitOfWork,
) -> None:
    library, _, _ = seed(open_uow)
    before = _snapshot(open_uow, library.id)
    with open_uow() as uow:
        uow.libraries.delete(library.id)
        uow.libraries.save(a_library(id=library.id, name="impostor"))
        uow.documents.save(Document(library_id=library.id, id="doc-0"))
        uow.rollback()
        assert uow.libraries.counts(library.id) == (2, 6)
    assert _snapshot(open_uow, library.id) == before


def test_rollback_undoes_only_changes_since_the_last_commit(open_uow: OpenUnitOfWork) -> None:
    kept, dropped = a_library(name="kept"), a_library(name="dropped")
    with open_uow() as uow:
        uow.libraries.save(kept)
        uow.commit()
        uow.libraries.save(dropped)
        uow.rollback()
        assert uow.libraries.get(dropped.id) is None
        # Still usable after a rollback, and after a commit.
        uow.libraries.save(dropped)
        uow.commit()
        assert uow.libraries.counts(kept.id) == (0, 0)
    with open_uow() as uow:
        assert [lib.name for lib in uow.libraries.list(10, None).items] == ["kept", "dropped"]


def test_a_second_unit_of_work_sees_committed_data(open_uow: OpenUnitOfWork) -> None:
    library = a_library()
    with open_uow() as writer:
        writer.libraries.save(library)
        writer.commit()
    with open_uow(read_only=True) as reader:
        assert reader.libraries.get(library.id) == library
    with open_uow() as other:
        assert other.libraries.get(library.id) == library


def test_a_read_only_unit_of_work_refuses_writes(open_uow: OpenUnitOfWork) -> None:
    library, _, chunks = seed(open_uow)
    with open_uow(read_only=True) as uow:
        writes: list[Callable[[], None]] = [
            lambda: uow.libraries.save(a_library()),
            lambda: uow.libraries.delete(library.id),
            lambda: uow.documents.save(Document(library_id=library.id)),
            lambda: uow.documents.delete(library.id, "doc-0"),
            lambda: uow.chunks.save_many([a_chunk(library.id, "doc-0")]),
            lambda: uow.chunks.delete_many(library.id, [chunks[0].id]),
        ]
        for write in writes:
            with pytest.raises(ReadOnlyUnitOfWork):
                write()
        assert uow.libraries.counts(library.id) == (2, 6)


def test_repositories_refuse_use_outside_the_with_block(open_uow: OpenUnitOfWork) -> None:
    uow = open_uow()
    with pytest.raises(InactiveUnitOfWork):
        uow.libraries.get("x")
    with uow:
        uow.libraries.save(a_library())
        uow.commit()
    with pytest.raises(InactiveUnitOfWork):
        uow.libraries.list(10, None)
    with pytest.raises(InactiveUnitOfWork):
        uow.commit()


def test_a_writer_nested_in_a_writer_fails_fast_instead_of_deadlocking(
    open_uow: OpenUnitOfWork,
) -> None:
    with open_uow() as outer:
        outer.libraries.save(a_library())
        with pytest.raises(StoreUnavailable), open_uow(lock_timeout=0.05):
            pass
        outer.commit()


def _snapshot(open_uow: OpenUnitOfWork, library_id: str) -> dict[str, Any]:
    """Everything stored under one library, embeddings as bytes, for equality checks."""
    with open_uow() as uow:
        library = uow.libraries.get(library_id)
        documents = uow.documents.list(library_id, 1000, None).items
        chunks = [
            (c.id, c.document_id, c.text, c.metadata, bits(c.embedding), c.created_at)
            for c in uow.chunks.list(library_id, 1000, None).items
        ]
        counts = uow.libraries.counts(library_id)
        by_document = {d.id: uow.chunks.ids_of_document(library_id, d.id) for d in documents}
        libraries = [lib.id for lib in uow.libraries.list(1000, None).items]
    return {
        "library": library,
        "documents": documents,
        "chunks": chunks,
        "counts": counts,
        "by_document": by_document,
        "libraries": libraries,
    }
