"""A plain-Python model of StacksDB and a hypothesis state machine that checks a real
implementation against it, step by step.

The model is the specification in its simplest form: dictionaries of libraries, documents
and chunks, and brute-force NumPy search. A ``Driver`` runs the same operations on the real
thing (the services, or a live server over HTTP) and reports refusals as a ``Refused`` with
a kind (``not_found``, ``conflict``, ``invalid``). After every step the machine compares
everything the driver can list with the model, and every search with brute force: the
same ids as the exact top-k, modulo ties, with the same scores.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, TypeVar

import numpy as np
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

T = TypeVar("T")

NOT_FOUND = "not_found"
CONFLICT = "conflict"
INVALID = "invalid"

LIBRARY_IDS = ("lib-a", "lib-b")
DOCUMENT_IDS = ("doc-0", "doc-1", "doc-2")
CHUNK_IDS = tuple(f"chunk-{i}" for i in range(8))
METRICS = ("cosine", "dot", "l2")
INDEX_TYPES = ("flat", "ivf", "hnsw")
TAGS = ("red", "blue")
# Few distinct coordinates, so that equal vectors and tied scores are common.
COORDINATES = (-1.0, -0.5, 0.0, 0.5, 1.0, 2.0)
TOLERANCE = 1e-4

Vector = tuple[float, ...]
Metadata = dict[str, Any]


class Refused(Exception):
    """The implementation refused an operation; ``kind`` says how."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


@dataclass(frozen=True)
class ChunkSpec:
    id: str
    document_id: str
    text: str
    vector: Vector
    metadata: Metadata


@dataclass
class ChunkRow:
    document_id: str
    text: str
    vector: Vector
    metadata: Metadata


@dataclass
class LibraryRow:
    name: str
    dimension: int
    metric: str
    metadata: Metadata
    index_type: str = "flat"
    documents: dict[str, Metadata] = field(default_factory=dict)
    chunks: dict[str, ChunkRow] = field(default_factory=dict)

    def document_counts(self) -> dict[str, tuple[Metadata, int]]:
        counts = dict.fromkeys(self.documents, 0)
        for row in self.chunks.values():
            counts[row.document_id] += 1
        return {d: (self.documents[d], counts[d]) for d in self.documents}


@dataclass(frozen=True)
class LibraryView:
    name: str
    dimension: int
    metric: str
    metadata: Metadata
    document_count: int
    chunk_count: int


class Driver(Protocol):
    """One implementation under test. Every method raises ``Refused`` to refuse."""

    def library_ids(self) -> set[str]: ...

    def create_library(
        self, library_id: str, name: str, dimension: int, metric: str, metadata: Metadata
    ) -> None: ...

    def patch_library(self, library_id: str, name: str | None, metadata: Metadata | None) -> None:
        """Change the given fields."""

    def delete_library(self, library_id: str) -> None: ...

    def library(self, library_id: str) -> LibraryView: ...

    def create_document(
        self, library_id: str, document_id: str, metadata: Metadata, chunks: list[ChunkSpec]
    ) -> None: ...

    def patch_document(self, library_id: str, document_id: str, metadata: Metadata) -> None: ...

    def delete_document(self, library_id: str, document_id: str) -> None: ...

    def documents(self, library_id: str) -> dict[str, tuple[Metadata, int]]:
        """Every document: (metadata, chunk count)."""

    def write_batch(self, library_id: str, chunks: list[ChunkSpec], mode: str) -> None: ...

    def put_chunk(self, library_id: str, chunk: ChunkSpec) -> bool:
        """Create or replace; True when it created."""

    def patch_chunk(
        self,
        library_id: str,
        chunk_id: str,
        text: str | None,
        vector: Vector | None,
        metadata: Metadata | None,
    ) -> None: ...

    def delete_chunk(self, library_id: str, chunk_id: str) -> None: ...

    def chunks(self, library_id: str) -> dict[str, ChunkRow]: ...

    def rebuild_index(self, library_id: str, index_type: str) -> None:
        """Rebuild and wait until the new index serves."""

    def search(
        self, library_id: str, vector: Vector, k: int, exact: bool, tag: str | None
    ) -> list[tuple[str, float]]:
        """(chunk id, score) best first; ``tag`` filters on the chunk metadata ``tag``."""


def brute_force(row: LibraryRow, query: Vector, tag: str | None) -> dict[str, float]:
    """The score of every chunk that passes the filter, in float64."""
    ids = [c for c, r in row.chunks.items() if tag is None or r.metadata.get("tag") == tag]
    if not ids:
        return {}
    matrix = np.array([row.chunks[c].vector for c in ids], dtype=np.float64)
    q = np.array(query, dtype=np.float64)
    if row.metric == "l2":
        scores = np.sqrt(((matrix - q) ** 2).sum(axis=1))
    elif row.metric == "dot":
        scores = matrix @ q
    else:
        norms = np.maximum(np.linalg.norm(matrix, axis=1), 1e-12)
        scores = (matrix / norms[:, None]) @ (q / max(float(np.linalg.norm(q)), 1e-12))
    return dict(zip(ids, (float(s) for s in scores), strict=True))


def check_top_k(
    results: list[tuple[str, float]], expected: dict[str, float], k: int, metric: str, exact: bool
) -> None:
    """``results`` is a right top-k of ``expected`` (all of it when ``exact``), modulo ties.

    An approximate search may miss true neighbours, but whatever it returns must be live,
    pass the filter, carry its true score and come best first.
    """
    sign = 1.0 if metric == "l2" else -1.0  # sort key: lower is better
    ids = [chunk_id for chunk_id, _ in results]
    assert len(ids) == len(set(ids)), f"a chunk returned twice: {ids}"
    assert set(ids) <= expected.keys(), f"not live or not matching: {set(ids) - expected.keys()}"
    for chunk_id, score in results:
        tolerance = TOLERANCE * max(1.0, abs(expected[chunk_id]))
        assert abs(score - expected[chunk_id]) <= tolerance, (chunk_id, score, expected[chunk_id])
    keys = [sign * score for _, score in results]
    assert all(a <= b + TOLERANCE * max(1.0, abs(b)) for a, b in itertools.pairwise(keys)), results
    if not exact:
        return
    want = min(k, len(expected))
    assert len(results) == want, (results, want)
    if want == 0:
        return
    ranked = sorted(sign * s for s in expected.values())
    boundary = ranked[want - 1]
    margin = TOLERANCE * max(1.0, abs(boundary))
    must = {c for c, s in expected.items() if sign * s < boundary - margin}
    assert must <= set(ids), f"missing true neighbours {must - set(ids)}"
    assert all(sign * expected[c] <= boundary + margin for c in ids), results


def vectors(dimension: int) -> st.SearchStrategy[Vector]:
    return st.tuples(*[st.sampled_from(COORDINATES)] * dimension)


metadata_values = st.fixed_dictionaries(
    {}, optional={"tag": st.sampled_from(TAGS), "n": st.integers(-5, 5)}
)
texts = st.text(max_size=12)


def chunk_specs(
    dimension: int, document_id: st.SearchStrategy[str], *, max_size: int = 4
) -> st.SearchStrategy[list[ChunkSpec]]:
    spec = st.builds(
        ChunkSpec,
        id=st.sampled_from(CHUNK_IDS),
        document_id=document_id,
        text=texts,
        vector=vectors(dimension),
        metadata=metadata_values,
    )
    return st.lists(spec, min_size=1, max_size=max_size)


class StacksMachine(RuleBasedStateMachine):
    """Random library, document and chunk operations and searches, checked against the
    model after every step. A subclass sets ``driver_factory``: each run gets a fresh
    implementation from it."""

    driver_factory: ClassVar[Callable[[], Driver]]

    def __init__(self) -> None:
        super().__init__()
        self.model: dict[str, LibraryRow] = {}
        self.driver = type(self).driver_factory()

    # Helpers

    @contextmanager
    def refused_as(self, kind: str | None) -> Iterator[None]:
        """The block must succeed (``kind`` None) or be refused with exactly ``kind``."""
        if kind is None:
            yield
            return
        try:
            yield
        except Refused as refusal:
            assert refusal.kind == kind, f"refused as {refusal.kind}, expected {kind}"
            return
        raise AssertionError(f"accepted an operation the model refuses as {kind}")

    def run(self, kind: str | None, call: Callable[[], T]) -> T | None:
        with self.refused_as(kind):
            return call()
        return None

    def dimension_of(self, library_id: str) -> int:
        row = self.model.get(library_id)
        return row.dimension if row is not None else 2

    def upsert_rows(self, row: LibraryRow, chunks: list[ChunkSpec]) -> None:
        for spec in chunks:
            row.documents.setdefault(spec.document_id, {})
            row.chunks[spec.id] = ChunkRow(
                spec.document_id, spec.text, spec.vector, dict(spec.metadata)
            )

    # Libraries

    @rule(
        library_id=st.sampled_from(LIBRARY_IDS),
        dimension=st.sampled_from((2, 3)),
        metric=st.sampled_from(METRICS),
        name=st.text(min_size=1, max_size=8),
        metadata=metadata_values,
    )
    def create_library(
        self, library_id: str, dimension: int, metric: str, name: str, metadata: Metadata
    ) -> None:
        kind = CONFLICT if library_id in self.model else None
        self.run(
            kind,
            lambda: self.driver.create_library(library_id, name, dimension, metric, metadata),
        )
        if kind is None:
            self.model[library_id] = LibraryRow(name, dimension, metric, dict(metadata))

    @rule(
        library_id=st.sampled_from(LIBRARY_IDS),
        name=st.none() | st.text(min_size=1, max_size=8),
        metadata=st.none() | metadata_values,
    )
    def patch_library(self, library_id: str, name: str | None, metadata: Metadata | None) -> None:
        row = self.model.get(library_id)
        self.run(
            None if row else NOT_FOUND,
            lambda: self.driver.patch_library(library_id, name, metadata),
        )
        if row is not None:
            row.name = name if name is not None else row.name
            row.metadata = dict(metadata) if metadata is not None else row.metadata

    @rule(library_id=st.sampled_from(LIBRARY_IDS))
    def delete_library(self, library_id: str) -> None:
        kind = None if library_id in self.model else NOT_FOUND
        self.run(kind, lambda: self.driver.delete_library(library_id))
        self.model.pop(library_id, None)

    @precondition(lambda self: bool(self.model))
    @rule(library_id=st.sampled_from(LIBRARY_IDS), index_type=st.sampled_from(INDEX_TYPES))
    def rebuild_index(self, library_id: str, index_type: str) -> None:
        row = self.model.get(library_id)
        self.run(
            None if row else NOT_FOUND, lambda: self.driver.rebuild_index(library_id, index_type)
        )
        if row is not None:
            row.index_type = index_type

    # Documents

    @rule(
        library_id=st.sampled_from(LIBRARY_IDS),
        document_id=st.sampled_from(DOCUMENT_IDS),
        metadata=metadata_values,
        data=st.data(),
    )
    def create_document(
        self, library_id: str, document_id: str, metadata: Metadata, data: st.DataObject
    ) -> None:
        dimension = self.dimension_of(library_id)
        chunks = data.draw(
            st.lists(
                st.builds(
                    ChunkSpec,
                    id=st.sampled_from(CHUNK_IDS),
                    document_id=st.just(document_id),
                    text=texts,
                    vector=vectors(dimension),
                    metadata=metadata_values,
                ),
                max_size=3,
            )
        )
        row = self.model.get(library_id)
        ids = [c.id for c in chunks]
        kind: str | None = None
        if row is None:
            kind = NOT_FOUND
        elif len(set(ids)) < len(ids):
            kind = INVALID
        elif document_id in row.documents or any(i in row.chunks for i in ids):
            kind = CONFLICT
        self.run(
            kind, lambda: self.driver.create_document(library_id, document_id, metadata, chunks)
        )
        if kind is None and row is not None:
            row.documents[document_id] = dict(metadata)
            self.upsert_rows(row, chunks)

    @rule(
        library_id=st.sampled_from(LIBRARY_IDS),
        document_id=st.sampled_from(DOCUMENT_IDS),
        metadata=metadata_values,
    )
    def patch_document(self, library_id: str, document_id: str, metadata: Metadata) -> None:
        row = self.model.get(library_id)
        kind = NOT_FOUND if row is None or document_id not in row.documents else None
        self.run(kind, lambda: self.driver.patch_document(library_id, document_id, metadata))
        if kind is None and row is not None:
            row.documents[document_id] = dict(metadata)

    @rule(library_id=st.sampled_from(LIBRARY_IDS), document_id=st.sampled_from(DOCUMENT_IDS))
    def delete_document(self, library_id: str, document_id: str) -> None:
        row = self.model.get(library_id)
        kind = NOT_FOUND if row is None or document_id not in row.documents else None
        self.run(kind, lambda: self.driver.delete_document(library_id, document_id))
        if kind is None and row is not None:
            del row.documents[document_id]
            row.chunks = {c: r for c, r in row.chunks.items() if r.document_id != document_id}

    # Chunks

    @rule(
        library_id=st.sampled_from(LIBRARY_IDS),
        mode=st.sampled_from(("insert", "upsert")),
        data=st.data(),
    )
    def write_batch(self, library_id: str, mode: str, data: st.DataObject) -> None:
        chunks = data.draw(
            chunk_specs(self.dimension_of(library_id), st.sampled_from(DOCUMENT_IDS))
        )
        row = self.model.get(library_id)
        ids = [c.id for c in chunks]
        kind: str | None = None
        if row is None:
            kind = NOT_FOUND
        elif len(set(ids)) < len(ids):
            kind = INVALID
        elif mode == "insert" and any(i in row.chunks for i in ids):
            kind = CONFLICT
        self.run(kind, lambda: self.driver.write_batch(library_id, chunks, mode))
        if kind is None and row is not None:
            self.upsert_rows(row, chunks)

    @rule(library_id=st.sampled_from(LIBRARY_IDS), data=st.data())
    def put_chunk(self, library_id: str, data: st.DataObject) -> None:
        (chunk,) = data.draw(
            chunk_specs(self.dimension_of(library_id), st.sampled_from(DOCUMENT_IDS), max_size=1)
        )
        row = self.model.get(library_id)
        created = self.run(
            None if row else NOT_FOUND, lambda: self.driver.put_chunk(library_id, chunk)
        )
        if row is not None:
            assert created == (chunk.id not in row.chunks)
            self.upsert_rows(row, [chunk])

    @rule(
        library_id=st.sampled_from(LIBRARY_IDS),
        chunk_id=st.sampled_from(CHUNK_IDS),
        text=st.none() | texts,
        metadata=st.none() | metadata_values,
        data=st.data(),
    )
    def patch_chunk(
        self,
        library_id: str,
        chunk_id: str,
        text: str | None,
        metadata: Metadata | None,
        data: st.DataObject,
    ) -> None:
        vector = data.draw(st.none() | vectors(self.dimension_of(library_id)))
        row = self.model.get(library_id)
        kind = NOT_FOUND if row is None or chunk_id not in row.chunks else None
        self.run(
            kind, lambda: self.driver.patch_chunk(library_id, chunk_id, text, vector, metadata)
        )
        if kind is None and row is not None:
            old = row.chunks[chunk_id]
            row.chunks[chunk_id] = ChunkRow(
                old.document_id,
                text if text is not None else old.text,
                vector if vector is not None else old.vector,
                dict(metadata) if metadata is not None else old.metadata,
            )

    @rule(library_id=st.sampled_from(LIBRARY_IDS), chunk_id=st.sampled_from(CHUNK_IDS))
    def delete_chunk(self, library_id: str, chunk_id: str) -> None:
        row = self.model.get(library_id)
        kind = NOT_FOUND if row is None or chunk_id not in row.chunks else None
        self.run(kind, lambda: self.driver.delete_chunk(library_id, chunk_id))
        if kind is None and row is not None:
            del row.chunks[chunk_id]

    # Search

    @rule(
        library_id=st.sampled_from(LIBRARY_IDS),
        k=st.integers(1, 6),
        exact=st.booleans(),
        tag=st.none() | st.sampled_from(TAGS),
        data=st.data(),
    )
    def search(
        self, library_id: str, k: int, exact: bool, tag: str | None, data: st.DataObject
    ) -> None:
        query = data.draw(vectors(self.dimension_of(library_id)))
        row = self.model.get(library_id)
        results = self.run(
            None if row else NOT_FOUND,
            lambda: self.driver.search(library_id, query, k, exact, tag),
        )
        if row is None or results is None:
            return
        # The flat index is exact by construction; IVF and HNSW may approximate.
        check_top_k(results, brute_force(row, query, tag), k, row.metric, exact or _flat(row))

    # After every step

    @invariant()
    def the_implementation_holds_what_the_model_holds(self) -> None:
        assert self.driver.library_ids() == set(self.model)
        for library_id, row in self.model.items():
            view = self.driver.library(library_id)
            assert view == LibraryView(
                row.name,
                row.dimension,
                row.metric,
                row.metadata,
                len(row.documents),
                len(row.chunks),
            )
            assert self.driver.documents(library_id) == row.document_counts()
            assert self.driver.chunks(library_id) == row.chunks


def _flat(row: LibraryRow) -> bool:
    return row.index_type == "flat"
