import json

import numpy as np

from domain.embedding import OpenAiSpec
from domain.models import Bm25Params, Chunk, Library, TextIndexSpec
from domain.replication import (
    LogEntry,
    decode_chunks,
    decode_library,
    encode_chunk,
    save_chunks_op,
    save_library_op,
)


def _chunks() -> list[Chunk]:
    rng = np.random.default_rng(7)
    return [
        Chunk("lib", f"d{i % 2}", f"text {i}", rng.standard_normal(5).astype(np.float32), {})
        for i in range(3)
    ] + [Chunk("lib", "d0", "tagged", np.arange(5, dtype=np.float32), {"tag": ["a", 1]})]


def _same(a: list[Chunk], b: list[Chunk]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.embedding.tobytes() == y.embedding.tobytes()
        assert x.embedding.dtype == np.float32 and x.embedding.flags.writeable
        assert (x.id, x.document_id, x.text) == (y.id, y.document_id, y.text)
        assert x.metadata == y.metadata
        assert (x.created_at, x.updated_at, x.library_id) == (y.created_at, y.updated_at, "lib")


def test_a_save_chunks_op_round_trips_bit_for_bit_through_its_json() -> None:
    chunks = _chunks()
    entry = LogEntry(1, 1, (save_chunks_op("lib", chunks),))
    wired = LogEntry.from_json(json.loads(json.dumps(entry.to_json())))
    _same(decode_chunks(wired.ops[0].payload), chunks)


def test_entries_logged_with_one_embedding_per_chunk_still_decode() -> None:
    chunks = _chunks()
    payload = {"library_id": "lib", "chunks": [encode_chunk(c) for c in chunks]}
    _same(decode_chunks(json.loads(json.dumps(payload))), chunks)


def test_an_empty_batch_decodes_to_no_chunks() -> None:
    assert decode_chunks(save_chunks_op("lib", []).payload) == []


def test_a_library_round_trips_with_its_embedder_and_keyword_index() -> None:
    library = Library(
        "docs",
        8,
        embedder=OpenAiSpec(url="http://127.0.0.1:9/v1", model="m", api_key_env="KEY"),
        text_index=TextIndexSpec(params=Bm25Params(k1=2.0, b=0.5, language="none")),
    )
    wired = json.loads(json.dumps(save_library_op(library).payload))
    assert decode_library(wired) == library


def test_libraries_logged_before_embedders_decode_with_the_defaults() -> None:
    payload = save_library_op(Library("old", 4)).payload
    del payload["embedder"], payload["text_index"]
    decoded = decode_library(payload)
    assert decoded.embedder is None
    assert decoded.text_index == TextIndexSpec()
