"""The synchronous client, method by method, against a real `stacksdb serve` node."""

from __future__ import annotations

import numpy as np
import pytest
from stacksdb_client import (
    Chunk,
    Document,
    F,
    IndexStatus,
    Library,
    LibraryInfo,
    NotFoundError,
    SearchResponse,
    StacksDB,
)

from tests.sdk.conftest import DIM, vec

pytestmark = pytest.mark.e2e


def test_create_library_returns_a_handle_with_the_server_fields(db: StacksDB) -> None:
    lib = db.create_library(
        "papers",
        DIM,
        metric="dot",
        index={"type": "flat"},
        description="ml papers",
        metadata={"team": "ir"},
        id="sdk-papers",
    )
    try:
        assert isinstance(lib.info, LibraryInfo)
        assert (lib.id, lib.name, lib.dimension, lib.metric) == ("sdk-papers", "papers", DIM, "dot")
        assert lib.description == "ml papers"
        assert lib.metadata == {"team": "ir"}
        assert lib.info.index.type == "flat" and lib.info.index.ready
        assert lib.document_count == 0 and lib.chunk_count == 0
    finally:
        lib.delete()


def test_get_update_and_delete_library(db: StacksDB, library: Library) -> None:
    assert db.get_library(library.id).info == library.info

    renamed = db.update_library(library.id, name="renamed", metadata={"v": 2})
    assert (renamed.name, renamed.metadata, renamed.description) == ("renamed", {"v": 2}, "")
    library.update(description="about it")
    assert library.name == "renamed" and library.description == "about it"

    doomed = db.create_library("doomed", DIM)
    db.delete_library(doomed.id)
    with pytest.raises(NotFoundError):
        db.get_library(doomed.id)


def test_list_libraries_pages_and_iter_libraries_follows_the_cursor(db: StacksDB) -> None:
    created = {db.create_library(f"page-{i}", 2).id for i in range(5)}
    try:
        first = db.list_libraries(limit=2)
        assert len(first.items) == 2 and first.next_cursor is not None
        second = db.list_libraries(limit=2, cursor=first.next_cursor)
        assert {lib.id for lib in first.items}.isdisjoint(lib.id for lib in second.items)

        walked = [lib.id for lib in db.iter_libraries(page_size=2)]
        assert len(walked) == len(set(walked))
        assert created <= set(walked)
    finally:
        for library_id in created:
            db.delete_library(library_id)


def test_documents_create_get_list_iterate_update_delete(library: Library) -> None:
    doc = library.create_document(
        id="doc-1",
        metadata={"title": "attention"},
        chunks=[{"text": "a", "embedding": vec(1)}, {"text": "b", "embedding": vec(2)}],
    )
    assert isinstance(doc, Document)
    assert (doc.id, doc.library_id, doc.chunk_count) == ("doc-1", library.id, 2)
    for i in range(4):
        library.create_document(metadata={"n": i})

    assert library.get_document("doc-1").metadata == {"title": "attention"}
    page = library.list_documents(limit=3)
    assert len(page.items) == 3 and page.next_cursor is not None
    assert len({d.id for d in library.iter_documents(page_size=2)}) == 5

    assert library.update_document("doc-1", {"title": "new"}).metadata == {"title": "new"}
    library.delete_document("doc-1")
    with pytest.raises(NotFoundError):
        library.get_document("doc-1")
    assert library.refresh().document_count == 4


def test_single_chunk_add_get_patch_put_delete(library: Library) -> None:
    chunk = library.add_chunk("d1", "hello", vec(1), metadata={"lang": "en"}, id="c1")
    assert isinstance(chunk, Chunk)
    assert (chunk.id, chunk.document_id, chunk.text, chunk.metadata) == (
        "c1",
        "d1",
        "hello",
        {"lang": "en"},
    )

    fetched = library.get_chunk("c1")
    assert fetched.embedding == pytest.approx(vec(1), rel=1e-6)

    patched = library.update_chunk("c1", text="hi", metadata={"lang": "fr"})
    assert (patched.text, patched.metadata) == ("hi", {"lang": "fr"})
    assert library.update_chunk("c1", embedding=np.array(vec(3))).embedding == pytest.approx(
        vec(3), rel=1e-6
    )

    replaced = library.put_chunk("c1", document_id="d1", text="replaced", embedding=vec(4))
    assert (replaced.text, replaced.metadata) == ("replaced", {})
    created = library.put_chunk("c2", document_id="d2", text="new", embedding=vec(5))
    assert created.id == "c2"

    library.delete_chunk("c1")
    with pytest.raises(NotFoundError):
        library.get_chunk("c1")


def test_add_chunks_batches_reports_progress_and_accepts_numpy(library: Library) -> None:
    matrix = np.random.default_rng(0).standard_normal((23, DIM)).astype(np.float32)
    chunks = [{"document_id": f"d{i % 3}", "text": f"t{i}", "id": f"c{i}"} for i in range(23)]
    progress: list[tuple[int, int | None]] = []

    written = library.add_chunks(
        chunks, embeddings=matrix, batch_size=10, on_progress=lambda d, t: progress.append((d, t))
    )

    assert [c.id for c in written] == [f"c{i}" for i in range(23)]
    assert progress == [(10, 23), (20, 23), (23, 23)]
    assert library.get_chunk("c7").embedding == pytest.approx(matrix[7].tolist(), rel=1e-6)

    rows = ({"document_id": "d9", "text": "row", "embedding": row} for row in matrix[:4])
    assert len(library.add_chunks(rows, batch_size=3)) == 4
    assert library.refresh().chunk_count == 27


def test_add_chunks_upsert_replaces_existing_ids(library: Library) -> None:
    library.add_chunks([{"id": "u1", "document_id": "d", "text": "old", "embedding": vec(1)}])
    library.add_chunks(
        [{"id": "u1", "document_id": "d", "text": "new", "embedding": vec(2)}], upsert=True
    )
    assert library.get_chunk("u1").text == "new"
    assert library.refresh().chunk_count == 1


def test_iter_chunks_follows_the_cursor_per_document_and_with_embeddings(
    library: Library,
) -> None:
    library.add_chunks(
        [
            {"id": f"c{i:02}", "document_id": "even" if i % 2 == 0 else "odd", "text": str(i)}
            for i in range(15)
        ],
        embeddings=[vec(i) for i in range(15)],
    )
    page = library.list_chunks(limit=4)
    assert len(page.items) == 4 and page.next_cursor is not None
    assert all(c.embedding is None for c in page.items)

    everything = list(library.iter_chunks(page_size=4))
    assert sorted(c.id for c in everything) == [f"c{i:02}" for i in range(15)]

    odd = list(library.iter_chunks("odd", include_embedding=True, page_size=3))
    assert sorted(c.id for c in odd) == [f"c{i:02}" for i in range(1, 15, 2)]
    assert all(c.embedding is not None and len(c.embedding) == DIM for c in odd)


def test_search_returns_typed_results_best_first_with_requested_fields(library: Library) -> None:
    library.add_chunks(
        [
            {"id": f"c{i}", "document_id": "d", "text": f"text {i}", "metadata": {"i": i}}
            for i in range(10)
        ],
        embeddings=np.stack([np.array(vec(i)) for i in range(10)]),
    )
    answer = library.search(np.array(vec(3)), k=3, include=["text", "metadata", "embedding"])
    assert isinstance(answer, SearchResponse)
    top = answer.results[0]
    assert top.chunk_id == "c3"
    assert (top.text, top.metadata) == ("text 3", {"i": 3})
    assert top.score == pytest.approx(1.0)
    assert top.embedding == pytest.approx(vec(3), rel=1e-6)
    scores = [r.score for r in answer.results]
    assert scores == sorted(scores, reverse=True)

    lean = library.search(vec(3), k=2, include=[], exact=True)
    assert lean.results[0].text is None and lean.results[0].metadata is None


def test_search_with_a_filter_returns_only_matching_chunks(library: Library) -> None:
    library.add_chunks(
        [
            {
                "document_id": "d",
                "text": f"paper {i}",
                "metadata": {"year": 2015 + i, "tag": ["ml", "ir", "db"][i % 3]},
            }
            for i in range(9)
        ],
        embeddings=[vec(i) for i in range(9)],
    )
    wanted = (F("year") >= 2018) & F("tag").isin(["ml", "ir"])
    answer = library.search(vec(0), k=9, filter=wanted, include=["metadata"])
    got = sorted(r.metadata["year"] for r in answer.results if r.metadata is not None)
    assert got == [2018, 2019, 2021, 2022]

    as_dict = library.search(vec(0), k=9, filter={"field": "tag", "op": "eq", "value": "db"})
    assert len(as_dict.results) == 3


def test_build_index_and_wait_for_index_reports_progress(library: Library) -> None:
    library.add_chunks(
        [{"document_id": "d", "text": str(i)} for i in range(200)],
        embeddings=np.random.default_rng(1).standard_normal((200, DIM)),
        batch_size=100,
    )
    started = library.build_index("flat")
    assert isinstance(started, IndexStatus) and started.type == "flat"
    seen: list[IndexStatus] = []

    ready = library.wait_for_index(timeout=60, poll_interval=0.05, on_progress=seen.append)

    assert ready.ready and ready.error is None
    assert (ready.type, ready.vector_count) == ("flat", 200)
    assert seen and seen[-1] == ready
    assert library.index_status() == ready
    assert library.search(vec(1), k=5, params={"nprobe": 8}).index == "flat"
