"""A library's keyword index kept in step with its chunks: through the write path, a PATCH
of ``text_index`` (a background build that replays the writes made meanwhile), ``none``, and a
start-up load from the store. Truth is BM25 computed by brute force over the stored texts."""

from __future__ import annotations

import numpy as np
import pytest

from adapters.persistence.memory import MemoryUnitOfWork
from application.dto import ChunkInput, LibraryPatch, NewLibrary
from application.live import LiveLibrary
from application.live.loading import load_all
from domain.errors import KeywordIndexBuilding
from domain.models import Bm25Params, TextIndexSpec, TextIndexType
from tests.application.conftest import DIM, Services, vector
from tests.domain.test_bm25_index import brute_force_scores
from tests.support.text import ANALYZERS

WORDS = ["river", "rivers", "bank", "banks", "money", "loan", "the", "of", "stream"]
WORDS += ["flows", "running", "runs", "water"]
QUERIES = ["river bank", "money loan loans", "running water", "the stream of the river"]


def text_chunk(chunk_id: str, seed: int) -> ChunkInput:
    """A chunk of 3 to 14 words drawn from a small vocabulary, so terms repeat within and
    across texts and lengths vary (what BM25's tf saturation and length norm act on)."""
    rng = np.random.default_rng(seed)
    text = " ".join(rng.choice(WORDS, int(rng.integers(3, 15))))
    return ChunkInput(document_id="doc", text=text, embedding=vector(seed), id=chunk_id)


def stored_texts(services: Services, library_id: str) -> dict[str, str]:
    return {c.id: c.text for c in services.chunks.list(library_id, 1000, None).items}


def assert_keyword_search_matches_brute_force(
    live: LiveLibrary, texts: dict[str, str], params: Bm25Params
) -> None:
    for query in QUERIES:
        truth = brute_force_scores(texts, query, params)
        hits = live.keyword_search(query, len(texts) + 1)
        found = {
            live.labels.chunk_id(int(label)): score
            for label, score in zip(hits.labels.tolist(), hits.scores.tolist(), strict=True)
        }
        assert set(found) == set(truth), query
        for chunk_id, score in found.items():
            assert score == pytest.approx(truth[chunk_id], rel=1e-6)


@pytest.fixture
def library_id(services: Services) -> str:
    return services.libraries.create(NewLibrary(name="texts", dimension=DIM)).library.id


def test_keyword_index_follows_creates_rewrites_and_deletes(
    services: Services, library_id: str
) -> None:
    services.chunks.write_batch(library_id, [text_chunk(f"c{i}", i) for i in range(40)])
    services.chunks.put(library_id, "c3", text_chunk("c3", 1000))
    for i in range(0, 40, 4):
        services.chunks.delete(library_id, f"c{i}")
    services.chunks.write_batch(library_id, [text_chunk(f"n{i}", 100 + i) for i in range(12)])

    live = services.live.get(library_id)
    assert_keyword_search_matches_brute_force(
        live, stored_texts(services, library_id), Bm25Params()
    )


def test_keyword_search_keeps_to_the_filter_mask(services: Services, library_id: str) -> None:
    chunks = [text_chunk(f"c{i}", i) for i in range(30)]
    services.chunks.write_batch(library_id, chunks)
    live = services.live.get(library_id)
    allowed = np.zeros(live.labels.capacity, np.bool_)
    kept = {f"c{i}" for i in range(0, 30, 3)}
    allowed[live.labels.labels(kept)] = True

    hits = live.keyword_search("river bank", 30, allowed)

    texts = {c.id: c.text for c in chunks if c.id in kept}
    truth = brute_force_scores(stored_texts(services, library_id), "river bank", Bm25Params())
    assert {live.labels.chunk_id(int(label)) for label in hits.labels} == set(truth) & set(texts)


def test_patching_text_index_builds_in_the_background_and_keeps_writes_made_meanwhile(
    services: Services, library_id: str
) -> None:
    services.chunks.write_batch(library_id, [text_chunk(f"c{i}", i) for i in range(30)])
    plain = TextIndexSpec(params=Bm25Params(k1=2.0, b=0.3, language="none"))
    info = services.libraries.update(library_id, LibraryPatch(text_index=plain))
    assert info.library.text_index == plain

    live = services.live.get(library_id)
    assert live.text is not None and live.text.params == Bm25Params()  # the old one serves
    services.chunks.write_batch(library_id, [text_chunk(f"n{i}", 200 + i) for i in range(5)])
    services.chunks.delete(library_id, "c7")
    services.chunks.put(library_id, "c8", text_chunk("c8", 300))
    services.run_pending_builds()

    assert live.text is not None and live.text.params == plain.params
    assert_keyword_search_matches_brute_force(
        live, stored_texts(services, library_id), plain.params
    )


def test_text_index_none_drops_the_keyword_index_and_bm25_builds_it_again(
    services: Services, library_id: str
) -> None:
    services.chunks.write_batch(library_id, [text_chunk(f"c{i}", i) for i in range(10)])
    live = services.live.get(library_id)
    services.libraries.update(
        library_id, LibraryPatch(text_index=TextIndexSpec(type=TextIndexType.NONE))
    )
    assert live.text is None and services.pending_builds == []

    services.libraries.update(library_id, LibraryPatch(text_index=TextIndexSpec()))
    with pytest.raises(KeywordIndexBuilding):
        live.keyword_search("river", 5)
    services.chunks.write_batch(library_id, [text_chunk("late", 77)])
    services.run_pending_builds()
    assert_keyword_search_matches_brute_force(
        live, stored_texts(services, library_id), Bm25Params()
    )


def test_a_newer_text_index_supersedes_a_build_still_in_flight(
    services: Services, library_id: str
) -> None:
    services.chunks.write_batch(library_id, [text_chunk(f"c{i}", i) for i in range(10)])
    first = TextIndexSpec(params=Bm25Params(k1=0.5))
    second = TextIndexSpec(params=Bm25Params(k1=1.8, language="none"))
    services.libraries.update(library_id, LibraryPatch(text_index=first))
    services.libraries.update(library_id, LibraryPatch(text_index=second))
    services.run_pending_builds()  # the first build finds itself superseded and does nothing

    live = services.live.get(library_id)
    assert live.text is not None and live.text.params == second.params
    assert_keyword_search_matches_brute_force(
        live, stored_texts(services, library_id), second.params
    )


def test_a_library_created_with_its_text_index_and_loaded_again_from_the_store(
    services: Services,
) -> None:
    spec = TextIndexSpec(params=Bm25Params(k1=0.9, b=1.0, language="none"))
    library_id = services.libraries.create(
        NewLibrary(name="plain", dimension=DIM, text_index=spec)
    ).library.id
    services.chunks.write_batch(library_id, [text_chunk(f"c{i}", i) for i in range(50)])
    for i in range(0, 50, 5):
        services.chunks.delete(library_id, f"c{i}")

    def uow_factory(*, read_only: bool = False) -> MemoryUnitOfWork:
        return MemoryUnitOfWork(services.store, read_only=read_only)

    loaded = {live.id: live for live in load_all(uow_factory, ANALYZERS, batch_size=7)}

    live = loaded[library_id]
    assert live.library.text_index == spec
    assert_keyword_search_matches_brute_force(live, stored_texts(services, library_id), spec.params)
