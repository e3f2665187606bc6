"""The rules of each use case, on the in-memory store: all-or-nothing writes, upserts,
cascading deletes, search consistency with the store, automatic documents and counts."""

from __future__ import annotations

import numpy as np
import pytest

from application.dto import ChunkInput, ChunkPatch, NewLibrary, SearchQuery
from domain.errors import (
    AlreadyExists,
    ChunkNotFound,
    DimensionMismatch,
    DocumentNotFound,
    InvalidInput,
    LibraryNotFound,
    StoreUnavailable,
)
from domain.models import Metadata
from tests.application.conftest import DIM, Services, chunk_input, vector


def exact_ids(services: Services, library_id: str, query_seed: int, k: int = 100) -> list[str]:
    outcome = services.search.search(
        library_id, SearchQuery(vector=vector(query_seed), k=k, exact=True)
    )
    return [hit.chunk_id for hit in outcome.hits]


def stored_ids(services: Services, library_id: str) -> list[str]:
    return [c.id for c in services.chunks.list(library_id, 1000, None).items]


def test_batch_insert_with_one_taken_id_writes_nothing_and_leaves_the_index_untouched(
    services: Services, library_id: str
) -> None:
    services.chunks.write_batch(library_id, [chunk_input("a"), chunk_input("b")])
    live = services.live.get(library_id)
    before = (len(live.index), len(live.labels), exact_ids(services, library_id, 7))

    with pytest.raises(AlreadyExists):
        services.chunks.write_batch(
            library_id, [chunk_input("c", "other"), chunk_input("d"), chunk_input("a")]
        )

    assert (len(live.index), len(live.labels), exact_ids(services, library_id, 7)) == before
    assert stored_ids(services, library_id) == ["a", "b"]
    with pytest.raises(DocumentNotFound):
        services.documents.get(library_id, "other")


def test_batch_whose_commit_fails_leaves_store_and_index_as_they_were(
    services: Services, library_id: str
) -> None:
    services.chunks.write_batch(library_id, [chunk_input("a")])
    live = services.live.get(library_id)
    revision = live.library.revision

    services.switch.fail_commits = True
    with pytest.raises(StoreUnavailable):
        services.chunks.write_batch(library_id, [chunk_input("b"), chunk_input("c", "new-doc")])
    with pytest.raises(StoreUnavailable):
        services.chunks.delete(library_id, "a")
    services.switch.fail_commits = False

    assert stored_ids(services, library_id) == ["a"]
    assert len(live.index) == 1 and "b" not in live.labels and "a" in live.labels
    assert exact_ids(services, library_id, 1) == ["a"]
    assert live.library.revision == revision
    with pytest.raises(DocumentNotFound):
        services.documents.get(library_id, "new-doc")


def test_batch_with_an_invalid_vector_is_refused_before_anything_is_written(
    services: Services, library_id: str
) -> None:
    bad = ChunkInput("doc", "t", [1.0] * (DIM + 1), {}, "bad")
    with pytest.raises(DimensionMismatch):
        services.chunks.write_batch(library_id, [chunk_input("ok"), bad])
    nan = ChunkInput("doc", "t", [float("nan")] * DIM, {}, "nan")
    with pytest.raises(InvalidInput):
        services.chunks.write_batch(library_id, [chunk_input("ok"), nan])
    with pytest.raises(InvalidInput):
        services.chunks.write_batch(library_id, [chunk_input("twice"), chunk_input("twice")])
    assert stored_ids(services, library_id) == []
    assert len(services.live.get(library_id).index) == 0


def test_document_create_with_a_taken_chunk_id_creates_no_document(
    services: Services, library_id: str
) -> None:
    services.chunks.create(library_id, chunk_input("taken"))
    with pytest.raises(AlreadyExists):
        services.documents.create(
            library_id,
            metadata={"k": "v"},
            chunks=[chunk_input("fresh"), chunk_input("taken")],
            document_id="d2",
        )
    with pytest.raises(DocumentNotFound):
        services.documents.get(library_id, "d2")
    assert stored_ids(services, library_id) == ["taken"]


def test_upsert_replaces_text_vector_and_metadata_but_keeps_created_at(
    services: Services, library_id: str
) -> None:
    (first,) = services.chunks.write_batch(library_id, [chunk_input("a", seed=1, v="1")])
    replacement = ChunkInput("doc", "new text", vector(2), {"v": "2"}, "a")
    (second,) = services.chunks.write_batch(library_id, [replacement], mode="upsert")

    stored = services.chunks.get(library_id, "a")
    assert stored.created_at == first.created_at
    assert stored.updated_at >= first.updated_at
    assert stored.text == "new text" and stored.metadata == {"v": "2"}
    assert np.array_equal(stored.embedding, vector(2))
    assert second.created_at == first.created_at
    hit = services.search.search(library_id, SearchQuery(vector=vector(2), k=1)).hits[0]
    assert hit.chunk_id == "a"
    assert hit.score == pytest.approx(1.0, abs=1e-5)


def test_put_says_whether_it_created_and_keeps_created_at_on_replace(
    services: Services, library_id: str
) -> None:
    created, was_created = services.chunks.put(library_id, "p", chunk_input("ignored", seed=3))
    replaced, was_created_again = services.chunks.put(library_id, "p", chunk_input("x", seed=4))
    assert (was_created, was_created_again) == (True, False)
    assert created.id == replaced.id == "p"
    assert services.chunks.get(library_id, "p").created_at == created.created_at
    assert len(services.live.get(library_id).index) == 1


def test_patch_changes_only_the_given_fields_and_reindexes_a_new_vector(
    services: Services, library_id: str
) -> None:
    original = services.chunks.create(library_id, chunk_input("a", seed=1, tag="x"))
    services.chunks.create(library_id, chunk_input("b", seed=2))
    patched = services.chunks.patch(library_id, "a", ChunkPatch(embedding=vector(9)))
    assert patched.text == original.text and patched.metadata == {"tag": "x"}
    assert patched.created_at == original.created_at
    assert exact_ids(services, library_id, 9, k=1) == ["a"]
    with pytest.raises(ChunkNotFound):
        services.chunks.patch(library_id, "missing", ChunkPatch(text="t"))


def test_delete_document_removes_its_chunks_from_store_and_search(
    services: Services, library_id: str
) -> None:
    services.chunks.write_batch(
        library_id,
        [chunk_input("a1", "A"), chunk_input("a2", "A"), chunk_input("b1", "B")],
    )
    services.documents.delete(library_id, "A")

    assert stored_ids(services, library_id) == ["b1"]
    for seed in range(20):
        assert exact_ids(services, library_id, seed) == ["b1"]
    assert len(services.live.get(library_id).index) == 1
    with pytest.raises(DocumentNotFound):
        services.documents.delete(library_id, "A")
    with pytest.raises(ChunkNotFound):
        services.chunks.get(library_id, "a1")


def test_search_after_delete_never_returns_the_deleted_chunk(
    services: Services, library_id: str
) -> None:
    services.chunks.write_batch(library_id, [chunk_input(f"c{i}", seed=i) for i in range(30)])
    for i in range(0, 30, 2):
        services.chunks.delete(library_id, f"c{i}")
        for query in (i, i + 1, 100 + i):
            found = exact_ids(services, library_id, query, k=30)
            assert f"c{i}" not in found
            approx = services.search.search(library_id, SearchQuery(vector=vector(query), k=30))
            assert f"c{i}" not in {hit.chunk_id for hit in approx.hits}
    remaining = {f"c{i}" for i in range(1, 30, 2)}
    assert set(exact_ids(services, library_id, 0, k=30)) == remaining
    with pytest.raises(ChunkNotFound):
        services.chunks.delete(library_id, "c0")


def test_a_deleted_chunk_id_can_be_inserted_again_with_a_new_vector(
    services: Services, library_id: str
) -> None:
    services.chunks.create(library_id, chunk_input("a", seed=1))
    services.chunks.delete(library_id, "a")
    services.chunks.create(library_id, chunk_input("a", seed=2))
    hit = services.search.search(library_id, SearchQuery(vector=vector(2), k=5)).hits
    assert [h.chunk_id for h in hit] == ["a"]
    assert hit[0].score == pytest.approx(1.0, abs=1e-5)


def test_search_returns_the_stored_text_metadata_and_embedding_on_request(
    services: Services, library_id: str
) -> None:
    services.chunks.create(library_id, chunk_input("a", seed=5, lang="en"))
    include = frozenset({"text", "metadata", "embedding"})
    query = SearchQuery(vector=vector(5), k=1, include=include)
    (hit,) = services.search.search(library_id, query).hits
    assert hit.text == "text of a" and hit.metadata == {"lang": "en"}
    assert hit.embedding is not None and np.array_equal(hit.embedding, vector(5))
    assert hit.document_id == "doc"
    bare = SearchQuery(vector=vector(5), k=1, include=frozenset())
    (hit,) = services.search.search(library_id, bare).hits
    assert (hit.text, hit.metadata, hit.embedding) == (None, None, None)


def test_search_metadata_is_the_chunks_as_written_and_follows_every_write(
    services: Services, library_id: str
) -> None:
    """Search reads metadata from the live state, not the store: it must equal what the
    chunk holds, null values included, after a patch and never after a delete."""
    written: Metadata = {"lang": "en", "draft": None, "tags": ["a", "b"], "n": 3}
    services.chunks.create(
        library_id, ChunkInput("doc", "t", vector(7), metadata=dict(written), id="m")
    )
    query = SearchQuery(vector=vector(7), k=1)  # include defaults to metadata
    (hit,) = services.search.search(library_id, query).hits
    assert (hit.chunk_id, hit.metadata, hit.text) == ("m", written, None)
    services.chunks.patch(library_id, "m", ChunkPatch(metadata={"lang": "fr"}))
    (hit,) = services.search.search(library_id, query).hits
    assert hit.metadata == services.chunks.get(library_id, "m").metadata
    services.chunks.delete(library_id, "m")
    assert services.search.search(library_id, query).hits == []


def test_a_chunk_naming_an_unknown_document_creates_it_empty(
    services: Services, library_id: str
) -> None:
    services.chunks.create(library_id, chunk_input("a", "auto"))
    services.chunks.write_batch(library_id, [chunk_input("b", "auto"), chunk_input("c", "auto2")])
    auto = services.documents.get(library_id, "auto")
    assert auto.document.metadata == {} and auto.chunk_count == 2
    assert services.documents.get(library_id, "auto2").chunk_count == 1


def test_document_metadata_update_keeps_its_chunks(services: Services, library_id: str) -> None:
    services.documents.create(
        library_id, metadata={"a": 1}, chunks=[chunk_input("x")], document_id="d"
    )
    info = services.documents.update(library_id, "d", {"b": 2})
    assert info.document.metadata == {"b": 2} and info.chunk_count == 1
    with pytest.raises(DocumentNotFound):
        services.documents.update(library_id, "nope", {})


def test_counts_follow_every_write(services: Services, library_id: str) -> None:
    def counts() -> tuple[int, int]:
        info = services.libraries.get(library_id)
        return info.document_count, info.chunk_count

    assert counts() == (0, 0)
    services.documents.create(library_id, metadata={}, document_id="empty")
    assert counts() == (1, 0)
    services.chunks.write_batch(library_id, [chunk_input(f"c{i}", f"d{i % 3}") for i in range(9)])
    assert counts() == (4, 9)
    services.chunks.delete(library_id, "c0")
    assert counts() == (4, 8)
    services.documents.delete(library_id, "d1")
    assert counts() == (3, 5)
    assert services.libraries.get(library_id).index.vector_count == 5
    listed = services.libraries.list(10, None).items
    assert [(i.document_count, i.chunk_count) for i in listed] == [(3, 5)]


def test_library_delete_takes_everything_and_frees_the_id(
    services: Services, library_id: str
) -> None:
    services.chunks.write_batch(library_id, [chunk_input("a"), chunk_input("b", "other")])
    services.libraries.delete(library_id)

    assert library_id not in services.live
    for call in (
        lambda: services.libraries.get(library_id),
        lambda: services.chunks.get(library_id, "a"),
        lambda: services.documents.get(library_id, "doc"),
        lambda: services.search.search(library_id, SearchQuery(vector=vector(1))),
        lambda: services.chunks.create(library_id, chunk_input("c")),
        lambda: services.libraries.delete(library_id),
    ):
        with pytest.raises(LibraryNotFound):
            call()
    again = services.libraries.create(NewLibrary(name="again", dimension=DIM, id=library_id))
    assert (again.document_count, again.chunk_count) == (0, 0)
    assert stored_ids(services, library_id) == []


def test_a_library_created_with_a_taken_id_is_a_conflict_and_changes_nothing(
    services: Services, library_id: str
) -> None:
    with pytest.raises(AlreadyExists):
        services.libraries.create(NewLibrary(name="other", dimension=DIM + 1, id=library_id))
    assert services.libraries.get(library_id).library.name == "papers"
    assert services.libraries.get(library_id).library.dimension == DIM


def test_a_library_recreated_with_the_same_id_while_the_old_one_is_deleted_stays_live(
    services: Services, library_id: str
) -> None:
    """The delete has committed but not yet left the registry when the create lands: the
    delete must forget the library it dropped, not the new one under the same id."""
    services.chunks.create(library_id, chunk_input("old"))
    recreate = NewLibrary(name="reborn", dimension=DIM, id=library_id)
    services.switch.after_next_exit.append(lambda: services.libraries.create(recreate))

    services.libraries.delete(library_id)

    assert services.libraries.get(library_id).library.name == "reborn"
    services.chunks.create(library_id, chunk_input("new", seed=3))
    hits = services.search.search(library_id, SearchQuery(vector(3))).hits
    assert [hit.chunk_id for hit in hits] == ["new"]
