"""Stateful model test of the service layer: random sequences of library, document and chunk
operations, index rebuilds and searches on the services wired over the in-memory store
(as bootstrap/container.py wires them over SQLite), compared after every step with the
plain model of tests/support/stateful.py; every search against brute force."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import numpy as np
from hypothesis import HealthCheck, settings

from application.dto import ChunkInput, ChunkPatch, LibraryPatch, NewLibrary, SearchQuery
from domain.errors import Conflict, InvalidInput, NotFound
from domain.models import Chunk
from tests.application.conftest import Services, build_services
from tests.support.stateful import (
    CONFLICT,
    INVALID,
    NOT_FOUND,
    ChunkRow,
    ChunkSpec,
    LibraryView,
    Metadata,
    Refused,
    StacksMachine,
    Vector,
)

T = TypeVar("T")
PAGE = 1000


@contextmanager
def refusals() -> Iterator[None]:
    """Domain errors as the model's refusal kinds."""
    try:
        yield
    except NotFound as exc:
        raise Refused(NOT_FOUND, exc.detail) from exc
    except Conflict as exc:
        raise Refused(CONFLICT, exc.detail) from exc
    except InvalidInput as exc:
        raise Refused(INVALID, exc.detail) from exc


def _input(spec: ChunkSpec) -> ChunkInput:
    return ChunkInput(spec.document_id, spec.text, spec.vector, dict(spec.metadata), spec.id)


def _row(chunk: Chunk) -> ChunkRow:
    vector = tuple(float(x) for x in chunk.embedding)
    return ChunkRow(chunk.document_id, chunk.text, vector, dict(chunk.metadata))


class ServiceDriver:
    """The model's operations on ``Services``; implements ``tests.support.stateful.Driver``."""

    def __init__(self, services: Services) -> None:
        self.s = services

    def _call(self, call: Callable[[], T]) -> T:
        with refusals():
            return call()

    def library_ids(self) -> set[str]:
        return {info.library.id for info in self.s.libraries.list(PAGE, None).items}

    def create_library(
        self, library_id: str, name: str, dimension: int, metric: str, metadata: Metadata
    ) -> None:
        request = NewLibrary(
            name=name, dimension=dimension, metric=metric, metadata=metadata, id=library_id
        )
        self._call(lambda: self.s.libraries.create(request))

    def patch_library(self, library_id: str, name: str | None, metadata: Metadata | None) -> None:
        patch = LibraryPatch(name=name, metadata=metadata)
        self._call(lambda: self.s.libraries.update(library_id, patch))

    def delete_library(self, library_id: str) -> None:
        self._call(lambda: self.s.libraries.delete(library_id))

    def library(self, library_id: str) -> LibraryView:
        info = self._call(lambda: self.s.libraries.get(library_id))
        lib = info.library
        return LibraryView(
            lib.name,
            lib.dimension,
            lib.metric.value,
            lib.metadata,
            info.document_count,
            info.chunk_count,
        )

    def create_document(
        self, library_id: str, document_id: str, metadata: Metadata, chunks: list[ChunkSpec]
    ) -> None:
        inputs = [_input(c) for c in chunks]
        self._call(
            lambda: self.s.documents.create(
                library_id, metadata=metadata, chunks=inputs, document_id=document_id
            )
        )

    def patch_document(self, library_id: str, document_id: str, metadata: Metadata) -> None:
        self._call(lambda: self.s.documents.update(library_id, document_id, metadata))

    def delete_document(self, library_id: str, document_id: str) -> None:
        self._call(lambda: self.s.documents.delete(library_id, document_id))

    def documents(self, library_id: str) -> dict[str, tuple[Metadata, int]]:
        page = self._call(lambda: self.s.documents.list(library_id, PAGE, None))
        assert page.next_cursor is None
        return {i.document.id: (i.document.metadata, i.chunk_count) for i in page.items}

    def write_batch(self, library_id: str, chunks: list[ChunkSpec], mode: str) -> None:
        inputs = [_input(c) for c in chunks]
        written = self._call(
            lambda: self.s.chunks.write_batch(
                library_id, inputs, "upsert" if mode == "upsert" else "insert"
            )
        )
        assert [c.id for c in written] == [c.id for c in chunks]

    def put_chunk(self, library_id: str, chunk: ChunkSpec) -> bool:
        _, created = self._call(lambda: self.s.chunks.put(library_id, chunk.id, _input(chunk)))
        return created

    def patch_chunk(
        self,
        library_id: str,
        chunk_id: str,
        text: str | None,
        vector: Vector | None,
        metadata: Metadata | None,
    ) -> None:
        patch = ChunkPatch(text=text, embedding=vector, metadata=metadata)
        self._call(lambda: self.s.chunks.patch(library_id, chunk_id, patch))

    def delete_chunk(self, library_id: str, chunk_id: str) -> None:
        self._call(lambda: self.s.chunks.delete(library_id, chunk_id))

    def chunks(self, library_id: str) -> dict[str, ChunkRow]:
        page = self._call(lambda: self.s.chunks.list(library_id, PAGE, None))
        assert page.next_cursor is None
        return {c.id: _row(c) for c in page.items}

    def rebuild_index(self, library_id: str, index_type: str) -> None:
        self._call(lambda: self.s.indexes.rebuild(library_id, index_type, None))
        self.s.run_pending_builds()
        assert self.s.indexes.status(library_id).spec.type.value == index_type

    def search(
        self, library_id: str, vector: Vector, k: int, exact: bool, tag: str | None
    ) -> list[tuple[str, float]]:
        query = SearchQuery(
            vector=np.asarray(vector, dtype=np.float32),
            k=k,
            exact=exact,
            filter=None if tag is None else {"field": "tag", "op": "eq", "value": tag},
            include=frozenset(),
        )
        outcome = self._call(lambda: self.s.search.search(library_id, query))
        return [(hit.chunk_id, hit.score) for hit in outcome.hits]


class ServiceMachine(StacksMachine):
    driver_factory = staticmethod(lambda: ServiceDriver(build_services()))


ServiceMachine.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_services_agree_with_the_model_after_every_step = ServiceMachine.TestCase
