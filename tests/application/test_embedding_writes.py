"""Writes that leave the embedding to the library's embedder: texts are embedded after
every other check and outside the library's lock (searches and other writes go on), a
batch all or nothing, and what the embedder answers is held to the library's dimension."""

from __future__ import annotations

import threading
import zlib
from collections.abc import Sequence

import numpy as np
import pytest
from numpy.typing import NDArray

from application.dto import ChunkInput, ChunkPatch, NewLibrary, SearchQuery
from domain.embedding import EmbedderSpec, OpenAiSpec, Purpose
from domain.errors import EmbedderFailed, InvalidInput, LimitExceeded, NoEmbedder
from domain.limits import Limits
from tests.application.conftest import Services, build_services

DIM = 6
SPEC = OpenAiSpec(url="http://embedder.invalid/v1", model="fake")


def truth(text: str, purpose: Purpose = Purpose.DOCUMENT) -> NDArray[np.float32]:
    seed = zlib.crc32(f"{purpose.value}|{text}".encode())
    return np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)


class SeededEmbedder:
    """An ``Embedder`` whose vector for a text is seeded by the text and purpose; it can be
    held at the door (``gate``), made to fail, or to answer another width."""

    name = "seeded"

    def __init__(self) -> None:
        self.dimension = DIM
        self.calls: list[tuple[list[str], Purpose]] = []
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.gate.set()
        self.failure: Exception | None = None
        self.width = DIM

    def embed(self, texts: Sequence[str], purpose: Purpose) -> NDArray[np.float32]:
        self.calls.append((list(texts), purpose))
        self.entered.set()
        assert self.gate.wait(10)
        if self.failure is not None:
            raise self.failure
        rows = [np.resize(truth(t, purpose), self.width) for t in texts]
        return np.ascontiguousarray(rows, dtype=np.float32)


@pytest.fixture
def embedder() -> SeededEmbedder:
    return SeededEmbedder()


@pytest.fixture
def services(embedder: SeededEmbedder) -> Services:
    def factory(spec: EmbedderSpec) -> SeededEmbedder:
        return embedder

    return build_services(
        launcher=lambda build: build(), limits=Limits(max_metadata_keys=2), embedders=factory
    )


@pytest.fixture
def library_id(services: Services) -> str:
    return services.libraries.create(
        NewLibrary(name="texts", dimension=None, embedder=SPEC)
    ).library.id


def text_only(chunk_id: str, text: str | None = None) -> ChunkInput:
    return ChunkInput("doc", text or f"text of {chunk_id}", None, {}, chunk_id)


def stored(services: Services, library_id: str, chunk_id: str) -> NDArray[np.float32]:
    return services.chunks.get(library_id, chunk_id).embedding


def test_the_library_takes_the_embedders_dimension(services: Services, library_id: str) -> None:
    assert services.libraries.get(library_id).library.dimension == DIM


def test_missing_embeddings_are_made_in_one_call_and_given_ones_kept(
    services: Services, library_id: str, embedder: SeededEmbedder
) -> None:
    given = np.arange(DIM, dtype=np.float32)
    items = [text_only("a"), ChunkInput("doc", "own", given, {}, "b"), text_only("c")]
    services.chunks.write_batch(library_id, items)
    assert embedder.calls == [(["text of a", "text of c"], Purpose.DOCUMENT)]
    assert np.array_equal(stored(services, library_id, "a"), truth("text of a"))
    assert np.array_equal(stored(services, library_id, "b"), given)
    assert np.array_equal(stored(services, library_id, "c"), truth("text of c"))


def test_a_write_refused_by_validation_sends_no_text_to_the_embedder(
    services: Services, library_id: str, embedder: SeededEmbedder
) -> None:
    bad = ChunkInput("doc", "t", None, {"a": 1, "b": 2, "c": 3}, "bad")
    with pytest.raises(LimitExceeded) as refused:
        services.chunks.write_batch(library_id, [text_only("ok"), bad])
    assert refused.value.extra["location"] == "chunks[1].metadata"
    assert embedder.calls == []


def test_a_failing_embedder_leaves_nothing_written(
    services: Services, library_id: str, embedder: SeededEmbedder
) -> None:
    services.chunks.create(library_id, text_only("kept"))
    embedder.failure = EmbedderFailed("provider down")
    with pytest.raises(EmbedderFailed):
        services.chunks.write_batch(library_id, [text_only("x", "lost"), text_only("y")])
    with pytest.raises(EmbedderFailed):
        services.documents.create(
            library_id, metadata={}, chunks=[text_only("z")], document_id="new"
        )
    info = services.libraries.get(library_id)
    assert (info.chunk_count, info.document_count) == (1, 1)
    assert len(services.live.get(library_id).index) == 1


def test_an_answer_of_another_width_is_an_embedder_failure(
    services: Services, library_id: str, embedder: SeededEmbedder
) -> None:
    embedder.width = DIM + 1
    with pytest.raises(EmbedderFailed, match="dimension is 6"):
        services.chunks.create(library_id, text_only("wide"))
    assert services.libraries.get(library_id).chunk_count == 0


def test_embedding_runs_outside_the_write_lock_so_searches_and_writes_go_on(
    services: Services, library_id: str, embedder: SeededEmbedder
) -> None:
    services.chunks.create(library_id, ChunkInput("doc", "x", truth("seed"), {}, "first"))
    embedder.gate.clear()
    embedder.entered.clear()
    slow = threading.Thread(
        target=services.chunks.write_batch, args=(library_id, [text_only("slow")])
    )
    slow.start()
    try:
        assert embedder.entered.wait(10)
        # The slow write is inside the embedder now; the library is not locked meanwhile.
        hits = services.search.search(library_id, SearchQuery(vector=truth("seed"), k=1)).hits
        assert [h.chunk_id for h in hits] == ["first"]
        services.chunks.create(library_id, ChunkInput("doc", "y", truth("other"), {}, "second"))
        assert services.libraries.get(library_id).chunk_count == 2
    finally:
        embedder.gate.set()
        slow.join(10)
    assert services.libraries.get(library_id).chunk_count == 3


def test_a_new_text_is_embedded_again_and_metadata_alone_is_not(
    services: Services, library_id: str, embedder: SeededEmbedder
) -> None:
    services.chunks.create(library_id, text_only("c", "before"))
    services.chunks.patch(library_id, "c", ChunkPatch(text="after"))
    assert np.array_equal(stored(services, library_id, "c"), truth("after"))
    calls = len(embedder.calls)
    services.chunks.patch(library_id, "c", ChunkPatch(metadata={"k": 1}))
    assert len(embedder.calls) == calls
    assert np.array_equal(stored(services, library_id, "c"), truth("after"))


def test_a_query_is_embedded_as_a_query(services: Services, library_id: str) -> None:
    library = services.live.get(library_id).library
    vector = services.embeddings.query_vector(library, "what is it")
    assert np.array_equal(vector, truth("what is it", Purpose.QUERY))


def test_without_an_embedder_a_missing_embedding_names_its_field(services: Services) -> None:
    plain = services.libraries.create(NewLibrary(name="plain", dimension=DIM)).library.id
    with pytest.raises(NoEmbedder) as refused:
        services.chunks.write_batch(
            plain, [ChunkInput("d", "t", truth("t"), {}, "a"), text_only("b")]
        )
    assert refused.value.extra["location"] == "chunks[1].embedding"
    with pytest.raises(NoEmbedder):
        services.embeddings.embed(plain, ["t"])
    assert services.libraries.get(plain).chunk_count == 0


def test_embed_is_bounded_and_refuses_empty_texts(services: Services, library_id: str) -> None:
    with pytest.raises(LimitExceeded):
        services.embeddings.embed(library_id, [])
    with pytest.raises(LimitExceeded):
        services.embeddings.embed(library_id, ["t"] * (Limits().max_embed_texts + 1))
    with pytest.raises(InvalidInput, match="nothing to embed"):
        services.embeddings.embed(library_id, ["fine", "  "])
