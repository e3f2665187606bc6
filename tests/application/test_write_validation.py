"""One set of rules for every chunk write: create, batch, put and patch reject the same
inputs, each error naming its field, and a rejected write changes nothing."""

from __future__ import annotations

import math

import numpy as np
import pytest

from application.dto import ChunkInput, ChunkPatch
from application.write_validation import ChunkEdit, WriteValidator
from domain.errors import DimensionMismatch, InvalidInput, InvalidVector, LimitExceeded
from domain.limits import Limits
from domain.models import Chunk
from tests.application.conftest import DIM, Services, chunk_input, vector

SMALL = Limits(max_batch=2, max_text_length=16, max_metadata_keys=1)


@pytest.fixture
def validator(services: Services) -> WriteValidator:
    return WriteValidator(SMALL, services.live, services.embeddings)


def location_of(error: pytest.ExceptionInfo[InvalidInput]) -> str:
    return str(error.value.extra["location"])


BAD_PATCHES = [
    (ChunkPatch(text="x" * 17), LimitExceeded, "text"),
    (ChunkPatch(metadata={"a": 1, "b": 2}), LimitExceeded, "metadata"),
    (ChunkPatch(metadata={"a.b": 1}), InvalidInput, "metadata.a.b"),
    (ChunkPatch(embedding=[1.0] * (DIM + 1)), DimensionMismatch, "embedding"),
    (ChunkPatch(embedding=[math.nan] * DIM), InvalidVector, "embedding"),
]


def as_new_chunk(patch: ChunkPatch) -> ChunkInput:
    """A new chunk carrying the patch's fields, valid values for the others."""
    return ChunkInput(
        document_id="doc",
        text="ok" if patch.text is None else patch.text,
        embedding=vector(1) if patch.embedding is None else patch.embedding,
        metadata={} if patch.metadata is None else patch.metadata,
        id="c",
    )


@pytest.mark.parametrize(("patch", "error", "field"), BAD_PATCHES)
def test_a_new_chunk_and_a_patch_are_rejected_for_the_same_field(
    validator: WriteValidator,
    library_id: str,
    patch: ChunkPatch,
    error: type[InvalidInput],
    field: str,
) -> None:
    with pytest.raises(error) as created:
        validator.new_chunks(library_id, [as_new_chunk(patch)], location="chunk")
    with pytest.raises(error) as patched:
        validator.chunk_edit(library_id, patch)

    assert location_of(created) == f"chunk[0].{field}"
    assert location_of(patched) == field


def test_a_batch_over_the_limit_is_refused_before_the_library_is_looked_up(
    validator: WriteValidator,
) -> None:
    inputs = [chunk_input(name) for name in "abc"]

    with pytest.raises(LimitExceeded) as caught:
        validator.new_chunks("no-such-library", inputs)

    assert location_of(caught) == "chunks"


def test_an_id_twice_in_one_request_names_its_second_place(
    validator: WriteValidator, library_id: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        validator.new_chunks(library_id, [chunk_input("a"), chunk_input("a")])

    assert location_of(caught) == "chunks[1].id"


def test_an_empty_document_id_is_refused(validator: WriteValidator, library_id: str) -> None:
    item = ChunkInput(document_id="", text="t", embedding=vector(1))

    with pytest.raises(InvalidInput) as caught:
        validator.new_chunks(library_id, [item])

    assert location_of(caught) == "chunks[0].document_id"


def test_new_chunks_get_an_id_when_none_is_given(
    validator: WriteValidator, library_id: str
) -> None:
    item = ChunkInput(document_id="doc", text="t", embedding=vector(1))

    (chunk,) = validator.new_chunks(library_id, [item])

    assert chunk.id
    assert chunk.embedding.dtype == np.float32


def test_an_edit_changes_only_its_fields_and_the_update_time() -> None:
    chunk = Chunk(library_id="l", document_id="d", text="old", embedding=vector(1), metadata={})
    before = chunk.embedding.copy()

    later = chunk.updated_at.replace(year=chunk.updated_at.year + 1)
    ChunkEdit(text="new").apply(chunk, later)

    assert (chunk.text, chunk.metadata, chunk.updated_at) == ("new", {}, later)
    assert np.array_equal(chunk.embedding, before)


def test_a_rejected_patch_leaves_the_stored_chunk_as_it_was(
    services: Services, library_id: str
) -> None:
    services.chunks.create(library_id, chunk_input("a"))
    before = services.chunks.get(library_id, "a")

    with pytest.raises(InvalidVector):
        services.chunks.patch(library_id, "a", ChunkPatch(text="new", embedding=[math.inf] * DIM))

    after = services.chunks.get(library_id, "a")
    assert (after.text, after.updated_at) == (before.text, before.updated_at)
