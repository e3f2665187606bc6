"""``text_index`` through the SDK, in both clients, against the real node: set on create,
changed by update (the keyword index rebuilt in the background), turned off. Expected BM25
scores are Lucene's formula evaluated here over the same terms."""

from __future__ import annotations

import asyncio
import time

import pytest
from stacksdb_client import AsyncStacksDB, Library, StacksDB, ValidationError

from domain.models import Bm25Params
from tests.domain.test_bm25_index import brute_force_scores
from tests.sdk.conftest import DIM, vec
from tests.support.server import ServerProcess

pytestmark = pytest.mark.e2e

TEXTS = {
    "a": "Running rivers run to the sea",
    "b": "the river runs and the river ran",
    "c": "a sea of troubles",
    "d": "RIVERS, seas and oceans",
}
QUERY = "river runs"


def fill(library: Library) -> None:
    library.add_chunks(
        [
            {"id": chunk_id, "document_id": "d", "text": text, "embedding": vec(i)}
            for i, (chunk_id, text) in enumerate(TEXTS.items())
        ]
    )


def keyword_scores(library: Library) -> dict[str, float]:
    return {hit.chunk_id: hit.score for hit in library.search(query=QUERY, mode="keyword").results}


def assert_scores(found: dict[str, float], params: Bm25Params) -> None:
    truth = brute_force_scores(TEXTS, QUERY, params)
    assert set(found) == set(truth)
    for chunk_id, score in found.items():
        assert score == pytest.approx(truth[chunk_id], rel=1e-5)


def test_text_index_on_create_update_and_none(db: StacksDB) -> None:
    plain = {"type": "bm25", "params": {"k1": 1.6, "b": 0.5, "language": "none"}}
    library = db.create_library("texts", DIM, text_index=plain)
    try:
        assert library.text_index == plain
        fill(library)
        assert_scores(keyword_scores(library), Bm25Params(k1=1.6, b=0.5, language="none"))

        english = {"type": "bm25", "params": {"k1": 1.2, "b": 0.75, "language": "english"}}
        assert library.update(text_index=english).text_index == english
        deadline = time.monotonic() + 30
        while (
            keyword_scores(library).keys() != brute_force_scores(TEXTS, QUERY, Bm25Params()).keys()
        ):
            assert time.monotonic() < deadline, "the keyword index was not rebuilt"
            time.sleep(0.05)
        assert_scores(keyword_scores(library), Bm25Params())

        off = db.update_library(library.id, text_index={"type": "none"})
        assert off.text_index["type"] == "none"
        with pytest.raises(ValidationError):
            library.search(query=QUERY, mode="keyword")
    finally:
        library.delete()


def test_async_client_sets_and_changes_text_index(server: ServerProcess) -> None:
    async def run() -> None:
        async with AsyncStacksDB(server.url, timeout=30) as db:
            library = await db.create_library("async-texts", DIM, text_index={"type": "none"})
            try:
                assert library.text_index["type"] == "none"
                updated = await library.update(text_index={"type": "bm25"})
                assert updated.text_index == {
                    "type": "bm25",
                    "params": {"k1": 1.2, "b": 0.75, "language": "english"},
                }
                assert (await db.get_library(library.id)).text_index == updated.text_index
            finally:
                await library.delete()

    asyncio.run(run())


def test_a_bare_type_name_is_that_type_with_its_default_params(db: StacksDB) -> None:
    # As ``index="hnsw"`` is: the SDK used to call dict("none") and raise a ValueError.
    library = db.create_library("named", DIM, text_index="none")
    try:
        assert library.text_index["type"] == "none"
        assert library.update(text_index="bm25").text_index == {
            "type": "bm25",
            "params": {"k1": 1.2, "b": 0.75, "language": "english"},  # API.md's defaults
        }
        assert db.update_library(library.id, text_index="none").text_index["type"] == "none"
    finally:
        library.delete()
