"""Background index rebuilds: searches keep using the old index while the new one builds,
writes made meanwhile reach the new index, and a failed build leaves the old one serving."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest

import application.live.build
from application.dto import NewLibrary, SearchQuery
from application.index_service import thread_launcher
from domain.index.registry import build_index
from domain.models import IndexState, Vector
from domain.ports import VectorIndex
from tests.application.conftest import Services, build_services, chunk_input, vector


def exact_ids(services: Services, library_id: str, query: Vector, k: int = 50) -> list[str]:
    hits = services.search.search(library_id, SearchQuery(vector=query, k=k, exact=True)).hits
    return [hit.chunk_id for hit in hits]


def brute_force_ids(services: Services, library_id: str, query: Vector, k: int = 50) -> list[str]:
    """The truth: cosine scores over every stored chunk, computed here in NumPy."""
    chunks = services.chunks.list(library_id, 1000, None).items
    matrix = np.stack([c.embedding for c in chunks])
    matrix = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
    scores = matrix @ (query / np.linalg.norm(query))
    order = np.argsort(-scores, kind="stable")[:k]
    return [chunks[i].id for i in order]


def test_writes_made_during_a_build_end_up_in_the_new_index(
    services: Services, library_id: str
) -> None:
    services.chunks.write_batch(library_id, [chunk_input(f"old{i}", seed=i) for i in range(20)])
    old_index = services.live.get(library_id).index

    status = services.indexes.rebuild(library_id, "flat", None)
    assert status.state is IndexState.BUILDING
    services.chunks.write_batch(library_id, [chunk_input(f"new{i}", seed=50 + i) for i in range(5)])
    services.chunks.delete(library_id, "old3")
    services.chunks.put(library_id, "old4", chunk_input("x", seed=99))
    assert services.live.get(library_id).index is old_index  # still serving during the build

    services.run_pending_builds()

    live = services.live.get(library_id)
    assert live.index is not old_index
    status = services.indexes.status(library_id)
    assert (status.state, status.vector_count, status.error) == (IndexState.READY, 24, None)
    for seed in (3, 4, 52, 99, 1000):
        assert exact_ids(services, library_id, vector(seed)) == brute_force_ids(
            services, library_id, vector(seed)
        )
    assert "old3" not in exact_ids(services, library_id, vector(3))
    assert exact_ids(services, library_id, vector(99), k=1) == ["old4"]


def test_a_failed_build_leaves_the_old_index_serving_and_reports_why(
    services: Services, library_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    services.chunks.write_batch(library_id, [chunk_input(f"c{i}", seed=i) for i in range(10)])
    old_index = services.live.get(library_id).index

    def broken_build(*args: Any, **kwargs: Any) -> VectorIndex:
        raise MemoryError("no room for the new index")

    monkeypatch.setattr(application.live.build, "build_index", broken_build)
    services.indexes.rebuild(library_id, "flat", None)
    services.chunks.create(library_id, chunk_input("during", seed=77))
    services.run_pending_builds()

    status = services.indexes.status(library_id)
    assert status.state is IndexState.READY
    assert status.error is not None and "no room for the new index" in status.error
    assert services.live.get(library_id).index is old_index
    assert exact_ids(services, library_id, vector(77), k=1) == ["during"]
    assert status.vector_count == 11

    monkeypatch.setattr(application.live.build, "build_index", build_index)
    services.indexes.rebuild(library_id, "flat", None)
    services.run_pending_builds()
    assert services.indexes.status(library_id).error is None


def test_a_newer_rebuild_supersedes_an_older_one_still_in_flight(
    services: Services, library_id: str
) -> None:
    services.chunks.write_batch(library_id, [chunk_input(f"c{i}", seed=i) for i in range(5)])
    services.indexes.rebuild(library_id, "flat", None)
    services.chunks.create(library_id, chunk_input("between", seed=40))
    services.indexes.rebuild(library_id, "flat", None)
    services.chunks.create(library_id, chunk_input("after", seed=41))
    first, second = services.pending_builds

    first()
    assert services.indexes.status(library_id).state is IndexState.BUILDING
    second()
    status = services.indexes.status(library_id)
    assert (status.state, status.vector_count) == (IndexState.READY, 7)
    assert exact_ids(services, library_id, vector(40), k=1) == ["between"]
    assert exact_ids(services, library_id, vector(41), k=1) == ["after"]


def test_a_build_for_a_library_deleted_meanwhile_is_dropped_quietly(
    services: Services, library_id: str
) -> None:
    services.chunks.create(library_id, chunk_input("a"))
    services.indexes.rebuild(library_id, "flat", None)
    services.libraries.delete(library_id)
    services.run_pending_builds()
    assert library_id not in services.live


def test_on_a_thread_searches_and_writes_go_on_while_the_build_is_held(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The build runs on its own thread with no library lock: a build stalled mid-way
    blocks neither searches nor writes, and what was written meanwhile is in the result."""
    services = build_services(launcher=thread_launcher)
    library_id = services.libraries.create(NewLibrary(name="t", dimension=4)).library.id
    services.chunks.write_batch(library_id, [chunk_input(f"c{i}", seed=i) for i in range(50)])
    started, release, finished = threading.Event(), threading.Event(), threading.Event()

    def held_build(*args: Any, **kwargs: Any) -> VectorIndex:
        started.set()
        assert release.wait(10)
        return build_index(*args, **kwargs)

    monkeypatch.setattr(application.live.build, "build_index", held_build)
    live = services.live.get(library_id)
    original_finish = live.finish_build

    def finish_and_signal(generation: int, index: VectorIndex) -> bool:
        done = original_finish(generation, index)
        finished.set()
        return done

    monkeypatch.setattr(live, "finish_build", finish_and_signal)
    services.indexes.rebuild(library_id, "flat", None)
    assert started.wait(10)

    services.chunks.write_batch(library_id, [chunk_input(f"n{i}", seed=100 + i) for i in range(10)])
    services.chunks.delete(library_id, "c0")
    assert exact_ids(services, library_id, vector(100), k=1) == ["n0"]
    assert services.indexes.status(library_id).state is IndexState.BUILDING

    release.set()
    assert finished.wait(10)
    assert services.indexes.status(library_id).vector_count == 59
    for seed in (0, 1, 105, 500):
        assert exact_ids(services, library_id, vector(seed)) == brute_force_ids(
            services, library_id, vector(seed)
        )
