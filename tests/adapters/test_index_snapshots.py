"""The .npz index snapshot files: round trip, atomic replacement, and damage detected."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from adapters.persistence.index_snapshots import NpzIndexSnapshots
from domain.index.hnsw import HnswIndex
from domain.index.index_snapshot import IndexSnapshot
from domain.index.registry import load_index
from domain.models import HnswParams, Metric

CREATED = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def snapshot(revision: int = 7) -> IndexSnapshot:
    rng = np.random.default_rng(0)
    labels = np.array([0, 1, 3, 4], dtype=np.int64)
    vectors = rng.standard_normal((4, 8)).astype(np.float32)
    index = HnswIndex.build(8, Metric.COSINE, HnswParams(m=4), labels, vectors)
    return IndexSnapshot(index.to_state(), ["a", "b", None, "c/d", "é"], revision, CREATED)


@pytest.fixture
def store(tmp_path: Path) -> NpzIndexSnapshots:
    return NpzIndexSnapshots(tmp_path / "indexes")


def test_a_saved_snapshot_loads_back_equal(store: NpzIndexSnapshots) -> None:
    saved = snapshot()
    store.save("lib/../x y", saved)

    loaded = store.load("lib/../x y")

    assert loaded is not None
    assert (loaded.revision, loaded.library_created_at) == (7, CREATED)
    assert list(loaded.chunk_ids) == ["a", "b", None, "c/d", "é"]
    assert loaded.state.keys() == saved.state.keys()
    for name, array in saved.state.items():
        assert np.array_equal(loaded.state[name], array), name
    assert len(load_index(loaded.state)) == 4
    assert store.library_ids() == ["lib/../x y"]
    assert [p.name for p in store.directory.iterdir()] == [store.path("lib/../x y").name]


def test_saving_again_replaces_the_snapshot_and_leaves_no_temporary_file(
    store: NpzIndexSnapshots,
) -> None:
    store.save("lib", snapshot(1))
    store.save("lib", snapshot(2))
    loaded = store.load("lib")
    assert loaded is not None and loaded.revision == 2
    assert len(list(store.directory.iterdir())) == 1


def test_a_missing_snapshot_is_none_and_delete_is_idempotent(store: NpzIndexSnapshots) -> None:
    assert store.load("nothing") is None
    store.save("lib", snapshot())
    store.delete("lib")
    store.delete("lib")
    assert store.load("lib") is None
    assert store.library_ids() == []


def test_a_flipped_byte_anywhere_is_detected_or_harmless(store: NpzIndexSnapshots) -> None:
    """Every 13th byte flipped in turn: the load fails, or (a byte no reader looks at, such
    as a zip timestamp) gives back exactly what was saved. Never a different snapshot."""
    saved = snapshot()
    store.save("lib", saved)
    path = store.path("lib")
    original = path.read_bytes()
    detected = 0
    for at in range(0, len(original), 13):
        damaged = bytearray(original)
        damaged[at] ^= 0xFF
        path.write_bytes(bytes(damaged))
        try:
            loaded = store.load("lib")
        except ValueError:
            detected += 1
            continue
        assert loaded is not None
        assert list(loaded.chunk_ids) == list(saved.chunk_ids)
        assert loaded.revision == saved.revision
        for name, array in saved.state.items():
            assert np.array_equal(loaded.state[name], array), (at, name)
    assert detected > 0


def test_every_flipped_byte_of_the_vectors_fails_the_load(store: NpzIndexSnapshots) -> None:
    saved = snapshot()
    store.save("lib", saved)
    path = store.path("lib")
    original = path.read_bytes()
    payload = saved.state["vectors"].tobytes()
    start = original.find(payload)
    assert start > 0
    for at in range(start, start + len(payload)):
        damaged = bytearray(original)
        damaged[at] ^= 0x10
        path.write_bytes(bytes(damaged))
        with pytest.raises(ValueError):
            store.load("lib")


def test_a_truncated_file_fails_the_load(store: NpzIndexSnapshots) -> None:
    store.save("lib", snapshot())
    path = store.path("lib")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ValueError):
        store.load("lib")
