"""``apply_change``: the one order in which a committed change reaches the live state."""

from __future__ import annotations

import numpy as np

from application.live import CommittedChange, LiveLibrary, apply_change
from domain.filters import parse_filter
from domain.models import Chunk, Document, Library, Metric
from tests.support.text import ANALYZERS

DIM = 4


def chunk(library: Library, chunk_id: str, seed: int, document_id: str = "d") -> Chunk:
    vector = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return Chunk(library.id, document_id, "text", vector, id=chunk_id)


def indexed_ids(live: LiveLibrary) -> set[str | None]:
    names = live.labels.chunk_ids()
    return {names[int(label)] for label in live.index.items()[0]}


def test_a_chunk_removed_and_written_again_in_one_change_ends_up_with_its_new_vector() -> None:
    library = Library(name="l", dimension=DIM, metric=Metric.L2)
    live = LiveLibrary(library, ANALYZERS)
    apply_change(live, CommittedChange(upserted_chunks=[chunk(library, "a", seed=1)]))

    rewritten = chunk(library, "a", seed=2)
    apply_change(live, CommittedChange(removed_chunks=["a"], upserted_chunks=[rewritten]))

    assert indexed_ids(live) == {"a"}
    np.testing.assert_array_equal(live.index.items()[1], [rewritten.embedding])


def test_a_document_deleted_and_saved_again_in_one_change_keeps_its_new_metadata() -> None:
    library = Library(name="l", dimension=DIM)
    live = LiveLibrary(library, ANALYZERS)
    apply_change(
        live,
        CommittedChange(
            saved_documents=[Document(library.id, {"v": 1}, id="d")],
            upserted_chunks=[chunk(library, "a", seed=1)],
        ),
    )

    apply_change(
        live,
        CommittedChange(
            removed_chunks=["a"],
            deleted_documents=["d"],
            saved_documents=[Document(library.id, {"v": 2}, id="d")],
            upserted_chunks=[chunk(library, "b", seed=3)],
        ),
    )

    matching = live.allowed(parse_filter({"field": "document.v", "op": "eq", "value": 2}))
    assert indexed_ids(live) == {"b"}
    assert int(np.count_nonzero(matching)) == 1
