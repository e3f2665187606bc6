"""Text in, without vectors, from both clients: a library with the bundled MiniLM takes
``add_texts`` (chunks without embeddings), ``embed`` answers the vectors the server stored,
and a search with one of them finds its chunk first. (MiniLM pads a batch to its longest
text, so a text embedded in another batch agrees to float32 rounding, not bit for bit.)"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Sequence

import numpy as np
import pytest
from numpy.typing import NDArray
from stacksdb_client import AsyncStacksDB, StacksDB, ValidationError
from stacksdb_client._surface.chunks import TEXT_BATCH_SIZE

from tests.sdk.conftest import DIM, vec
from tests.support.server import ServerProcess

pytestmark = pytest.mark.e2e

MINILM = {"provider": "minilm"}
DEFAULT_TIMEOUT = inspect.signature(StacksDB).parameters["timeout"].default
TEXTS = [
    "a violin is a bowed string instrument",
    "the tide comes in twice a day",
    "bread is baked from flour and water",
    "a comet has a tail of gas and dust",
]
IDS = [f"t{i}" for i in range(len(TEXTS))]


def close(stored: list[float] | None, embedded: Sequence[float] | NDArray[np.float32]) -> bool:
    assert stored is not None
    return np.allclose(np.asarray(stored), np.asarray(embedded), rtol=0.0, atol=1e-6)


def test_add_texts_then_embed_gives_the_stored_vectors(db: StacksDB) -> None:
    lib = db.create_library("texts", embedder=MINILM)
    try:
        assert (lib.dimension, lib.embedder) == (384, MINILM)
        written = lib.add_texts(
            TEXTS, document_id="doc", metadatas=[{"n": i} for i in range(len(TEXTS))], ids=IDS
        )
        assert [c.id for c in written] == IDS
        vectors = np.array(lib.embed(TEXTS), dtype=np.float32)
        assert vectors.shape == (len(TEXTS), 384)
        for i, chunk_id in enumerate(IDS):
            chunk = lib.get_chunk(chunk_id)
            assert chunk.metadata == {"n": i}
            assert close(chunk.embedding, vectors[i])
        hits = lib.search(vectors[2], k=1).results
        assert hits[0].chunk_id == "t2" and hits[0].score == pytest.approx(1.0, abs=1e-5)
        # Alone rather than in a batch of four: padded differently, equal to float32 rounding.
        one = lib.add_chunk("doc", TEXTS[0], id="again")
        assert close(one.embedding, vectors[0])
    finally:
        lib.delete()


def test_add_texts_without_an_embedder_is_a_validation_error(db: StacksDB) -> None:
    lib = db.create_library("vectors", dimension=DIM)
    try:
        assert lib.embedder is None
        with pytest.raises(ValidationError):
            lib.add_texts(["no vector"], document_id="d")
        with pytest.raises(ValidationError):
            lib.embed(["no embedder"])
        lib.add_chunk("d", "has one", vec(1))
        assert lib.refresh().chunk_count == 1
    finally:
        lib.delete()


def test_add_texts_checks_its_arguments_line_up(db: StacksDB) -> None:
    lib = db.create_library("args", embedder=MINILM)
    try:
        with pytest.raises(ValueError, match="2 texts but 1 ids"):
            lib.add_texts(["a", "b"], document_id="d", ids=["only-one"])
        with pytest.raises(ValueError, match="2 texts but 3 document_id"):
            lib.add_texts(["a", "b"], document_id=["d1", "d2", "d3"])
        with pytest.raises(TypeError):
            lib.add_texts("one string", document_id="d")
        assert lib.refresh().chunk_count == 0
    finally:
        lib.delete()


def test_add_texts_sends_batches_the_default_timeout_outlasts(db: StacksDB) -> None:
    # add_texts once sent add_chunks' 500 a request: 500 texts at MiniLM's 256 tokens took
    # ~40 s on 2 cores, the client raised its 30 s timeout, and the server wrote them after.
    longest = " ".join(f"word{i}" for i in range(300))  # past the model's 256 tokens
    lib = db.create_library("batches", embedder=MINILM)
    try:
        started = time.monotonic()
        lib.embed([longest] * TEXT_BATCH_SIZE)
        assert time.monotonic() - started < DEFAULT_TIMEOUT

        written: list[int] = []
        texts = [f"text number {i}" for i in range(2 * TEXT_BATCH_SIZE + 1)]
        lib.add_texts(texts, document_id="d", on_progress=lambda done, _: written.append(done))
        assert written == [TEXT_BATCH_SIZE, 2 * TEXT_BATCH_SIZE, len(texts)]
        assert lib.refresh().chunk_count == len(texts)
    finally:
        lib.delete()


def test_the_async_client_adds_texts_and_embeds(server: ServerProcess) -> None:
    async def scenario() -> None:
        async with AsyncStacksDB(server.url, timeout=60) as db:
            lib = await db.create_library("async-texts", embedder=MINILM)
            try:
                ids = ["x", "y"]
                documents = ["dx", "dy"]
                await lib.add_texts(TEXTS[:2], document_id=documents, ids=ids)
                vectors = await lib.embed(TEXTS[:2], purpose="query")
                for chunk_id, document_id, vector in zip(ids, documents, vectors, strict=True):
                    chunk = await lib.get_chunk(chunk_id)
                    assert chunk.document_id == document_id
                    assert close(chunk.embedding, vector)
                hits = (await lib.search(vectors[1], k=1)).results
                assert hits[0].chunk_id == "y"
            finally:
                await lib.delete()

    asyncio.run(scenario())
