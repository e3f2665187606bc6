"""Index snapshots across a restart, IVF drift rebuilds, and deletes through rebuilds.

A "restart" here is what the server does at start-up: a fresh ``LiveLibraries`` loaded from
the same store, with the snapshots written by ``IndexSnapshotter`` (the real .npz adapter
in a temporary folder)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from adapters.persistence.index_snapshots import NpzIndexSnapshots
from adapters.persistence.memory import MemoryUnitOfWork
from application.dto import NewLibrary, SearchQuery
from application.index_snapshots import IndexSnapshotter
from application.live import LiveLibraries
from application.search_service import SearchService
from domain.index.ivf import IvfIndex
from domain.models import IndexState, IndexType
from domain.ports import UnitOfWorkFactory
from tests.application.conftest import DIM, Services, chunk_input, vector
from tests.support.services import service_container
from tests.support.text import ANALYZERS

QUERIES = [vector(10_000 + i) for i in range(20)]


def uow_factory(services: Services) -> UnitOfWorkFactory:
    def factory(*, read_only: bool = False) -> MemoryUnitOfWork:
        return MemoryUnitOfWork(services.store, read_only=read_only)

    return factory


def search_over(services: Services, live: LiveLibraries) -> SearchService:
    """The search service of a node whose live libraries are ``live``, over the same store."""
    return service_container(uow_factory(services), live=live).search_service()


def restart(services: Services, snapshots: NpzIndexSnapshots) -> LiveLibraries:
    live = LiveLibraries(ANALYZERS)
    live.load(uow_factory(services), snapshots=snapshots)
    return live


def answers(search: SearchService, library_id: str, k: int = 10) -> list[list[tuple[str, float]]]:
    return [
        [(hit.chunk_id, round(hit.score, 5)) for hit in search.search(library_id, q).hits]
        for q in (SearchQuery(vector=v, k=k) for v in QUERIES)
    ]


def indexed_library(services: Services, index_type: str, count: int = 300) -> str:
    library_id = services.libraries.create(NewLibrary(name="papers", dimension=DIM)).library.id
    inputs = [chunk_input(f"c{i}", document_id=f"d{i % 7}", seed=i) for i in range(count)]
    services.chunks.write_batch(library_id, inputs)
    services.chunks.delete(library_id, "c5")  # a free label inside the label map
    services.indexes.rebuild(library_id, index_type, None)
    services.run_pending_builds()
    return library_id


@pytest.fixture
def snapshots(tmp_path: Path) -> NpzIndexSnapshots:
    return NpzIndexSnapshots(tmp_path / "indexes")


@pytest.mark.parametrize("index_type", ["hnsw", "ivf"])
def test_restart_serves_the_snapshot_with_the_same_answers(
    services: Services, snapshots: NpzIndexSnapshots, index_type: str
) -> None:
    library_id = indexed_library(services, index_type)
    assert IndexSnapshotter(snapshots, services.live).save(services.live.get(library_id))
    before = answers(services.search, library_id)

    live = restart(services, snapshots)

    restored = live.get(library_id)
    assert restored.index_source == "snapshot"
    assert restored.index.spec.type.value == index_type
    assert len(restored.index) == 299
    assert answers(search_over(services, live), library_id) == before


def test_an_unchanged_index_is_not_saved_twice(
    services: Services, snapshots: NpzIndexSnapshots
) -> None:
    library_id = indexed_library(services, "hnsw")
    snapshotter = IndexSnapshotter(snapshots, services.live)
    assert snapshotter.save_all() == 1
    assert snapshotter.save_all() == 0
    services.chunks.delete(library_id, "c6")
    assert snapshotter.save_all() == 1


def test_a_write_after_the_snapshot_makes_it_stale_and_it_is_rebuilt(
    services: Services, snapshots: NpzIndexSnapshots, caplog: pytest.LogCaptureFixture
) -> None:
    library_id = indexed_library(services, "hnsw")
    IndexSnapshotter(snapshots, services.live).save(services.live.get(library_id))
    services.chunks.put(library_id, "c7", chunk_input("c7", seed=424_242))
    services.chunks.write_batch(library_id, [chunk_input("late", seed=31_337)])

    with caplog.at_level(logging.WARNING, logger="application.live"):
        live = restart(services, snapshots)

    assert live.get(library_id).index_source == "store"
    assert "stale (revision" in caplog.text
    search = search_over(services, live)
    for seed, chunk_id in ((31_337, "late"), (424_242, "c7")):
        hits = search.search(library_id, SearchQuery(vector=vector(seed), k=1)).hits
        assert [hit.chunk_id for hit in hits] == [chunk_id]


def test_a_corrupted_snapshot_is_rebuilt_from_the_store(
    services: Services, snapshots: NpzIndexSnapshots, caplog: pytest.LogCaptureFixture
) -> None:
    library_id = indexed_library(services, "hnsw")
    IndexSnapshotter(snapshots, services.live).save(services.live.get(library_id))
    before = answers(services.search, library_id)
    path = snapshots.path(library_id)
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 16] = bytes(b ^ 0xFF for b in data[middle : middle + 16])
    path.write_bytes(bytes(data))

    with caplog.at_level(logging.WARNING, logger="application.live"):
        live = restart(services, snapshots)

    assert live.get(library_id).index_source == "store"
    assert "corrupt" in caplog.text
    assert answers(search_over(services, live), library_id) == before


def test_a_library_created_again_under_the_same_id_ignores_the_old_snapshot(
    services: Services, snapshots: NpzIndexSnapshots, caplog: pytest.LogCaptureFixture
) -> None:
    def make() -> None:
        request = NewLibrary(name="x", dimension=DIM, id="same", index_type="hnsw")
        services.libraries.create(request)
        services.chunks.write_batch("same", [chunk_input(f"c{i}", seed=i) for i in range(50)])

    make()
    IndexSnapshotter(snapshots, services.live).save(services.live.get("same"))
    services.libraries.delete("same")
    make()  # the same revision (one write), the same chunk ids: only the library differs

    with caplog.at_level(logging.WARNING, logger="application.live"):
        live = restart(services, snapshots)

    assert live.get("same").index_source == "store"
    assert "earlier library" in caplog.text


def test_a_snapshot_of_the_previous_index_type_is_not_served(
    services: Services, snapshots: NpzIndexSnapshots, caplog: pytest.LogCaptureFixture
) -> None:
    library_id = indexed_library(services, "hnsw")
    IndexSnapshotter(snapshots, services.live).save(services.live.get(library_id))
    services.indexes.rebuild(library_id, "ivf", {"nlist": 4})  # no snapshotter: a crash
    services.run_pending_builds()

    with caplog.at_level(logging.WARNING, logger="application.live"):
        live = restart(services, snapshots)

    assert live.get(library_id).index.spec.type is IndexType.IVF
    assert live.get(library_id).index_source == "store"
    assert "the library uses" in caplog.text


def test_a_flat_library_keeps_no_snapshot(services: Services, snapshots: NpzIndexSnapshots) -> None:
    library_id = indexed_library(services, "hnsw")
    snapshotter = IndexSnapshotter(snapshots, services.live)
    snapshotter.save_all()
    assert snapshots.library_ids() == [library_id]
    services.indexes.rebuild(library_id, "flat", None)
    services.run_pending_builds()
    snapshotter.save_all()
    assert snapshots.library_ids() == []


def test_snapshots_of_deleted_libraries_are_removed(
    services: Services, snapshots: NpzIndexSnapshots
) -> None:
    library_id = indexed_library(services, "hnsw")
    snapshotter = IndexSnapshotter(snapshots, services.live)
    snapshotter.save_all()
    services.libraries.delete(library_id)
    snapshotter.save_all()
    assert snapshots.library_ids() == []


def test_a_build_that_goes_live_saves_its_snapshot(
    services: Services, snapshots: NpzIndexSnapshots
) -> None:
    pending: list[Callable[[], None]] = []
    container = service_container(
        uow_factory(services),
        launcher=pending.append,
        live=services.live,
        index_snapshots=snapshots,
    )
    indexes = container.index_service()
    library_id = services.libraries.create(NewLibrary(name="p", dimension=DIM)).library.id
    services.chunks.write_batch(library_id, [chunk_input(f"c{i}", seed=i) for i in range(80)])

    indexes.rebuild(library_id, "hnsw", {"m": 8})
    assert snapshots.library_ids() == []
    while pending:
        pending.pop(0)()

    assert snapshots.library_ids() == [library_id]
    assert restart(services, snapshots).get(library_id).index_source == "snapshot"


def test_ivf_drift_starts_one_background_rebuild_of_the_same_spec(services: Services) -> None:
    pending: list[Callable[[], None]] = []
    live = services.live
    container = service_container(uow_factory(services), launcher=pending.append, live=live)
    indexes = container.index_service()
    chunks = container.chunk_service()  # its writer asks the index service about drift
    library_id = services.libraries.create(
        NewLibrary(name="p", dimension=DIM, index_type="ivf", index_params={"nlist": 4})
    ).library.id
    chunks.write_batch(library_id, [chunk_input(f"a{i}", seed=i) for i in range(200)])
    indexes.rebuild(library_id, "ivf", {"nlist": 4})
    while pending:
        pending.pop(0)()
    index = live.get(library_id).index
    assert isinstance(index, IvfIndex) and not index.needs_rebuild

    for start in range(200, 400, 50):  # up to 400 vectors: not yet doubled
        batch = [chunk_input(f"a{i}", seed=i) for i in range(start, start + 50)]
        chunks.write_batch(library_id, batch)
    assert pending == []
    chunks.write_batch(library_id, [chunk_input("a400", seed=400)])  # 401 > 2 x 200

    assert len(pending) == 1
    assert indexes.status(library_id).state is IndexState.BUILDING
    chunks.write_batch(library_id, [chunk_input("a401", seed=401)])
    assert len(pending) == 1  # one rebuild at a time
    pending.pop(0)()

    status = indexes.status(library_id)
    assert (status.state, status.vector_count) == (IndexState.READY, 402)
    assert status.spec.params == live.get(library_id).library.index.params
    index = live.get(library_id).index
    assert isinstance(index, IvfIndex) and not index.needs_rebuild and index.nlist == 4


@pytest.mark.parametrize("index_type", ["ivf", "hnsw"])
def test_deleted_chunks_never_come_back_after_a_rebuild_or_a_restart(
    services: Services, snapshots: NpzIndexSnapshots, index_type: str
) -> None:
    library_id = services.libraries.create(NewLibrary(name="p", dimension=DIM)).library.id
    services.chunks.write_batch(library_id, [chunk_input(f"c{i}", seed=i) for i in range(400)])
    deleted = {f"c{i}" for i in range(0, 400, 3)}
    before = sorted(deleted)[: len(deleted) // 2]
    during = sorted(deleted)[len(deleted) // 2 :]
    for chunk_id in before:
        services.chunks.delete(library_id, chunk_id)
    services.indexes.rebuild(library_id, index_type, None)
    for chunk_id in during:  # journaled, replayed into the new index
        services.chunks.delete(library_id, chunk_id)
    services.run_pending_builds()
    IndexSnapshotter(snapshots, services.live).save(services.live.get(library_id))
    reloaded = restart(services, snapshots)
    assert reloaded.get(library_id).index_source == "snapshot"

    for live in (services.live, reloaded):
        search = search_over(services, live)
        assert len(live.get(library_id).index) == 400 - len(deleted)
        for seed in [*range(0, 400, 3), 9_999]:
            for exact in (False, True):
                query = SearchQuery(vector=vector(seed), k=50, exact=exact)
                found = {hit.chunk_id for hit in search.search(library_id, query).hits}
                assert found, "a search that finds nothing proves nothing"
                assert not found & deleted
