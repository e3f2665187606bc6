"""The index registry: every index type is made, built and restored through one table."""

from __future__ import annotations

import numpy as np
import pytest

from domain.index.registry import build_index, kind_of, load_index, new_index, params_model
from domain.models import FlatParams, HnswParams, IndexSpec, IndexType, Metric

DIM = 8


def spec_of(index_type: IndexType) -> IndexSpec:
    return IndexSpec(index_type, params_model(index_type)())


@pytest.mark.parametrize("index_type", list(IndexType))
def test_every_index_type_is_registered_with_the_params_model_its_spec_parses_to(
    index_type: IndexType,
) -> None:
    assert kind_of(index_type).index_type is index_type
    assert type(IndexSpec.parse(index_type).params) is params_model(index_type)


@pytest.mark.parametrize("index_type", list(IndexType))
def test_new_build_and_load_give_an_index_of_the_spec_they_were_asked_for(
    index_type: IndexType,
) -> None:
    spec = spec_of(index_type)
    rng = np.random.default_rng(0)
    labels = np.arange(100, dtype=np.int64)
    vectors = rng.standard_normal((100, DIM)).astype(np.float32)
    fractions: list[float] = []

    empty = new_index(spec, DIM, Metric.L2)
    built = build_index(spec, DIM, Metric.L2, labels, vectors, fractions.append)
    loaded = load_index(built.to_state())

    assert (empty.spec, len(empty)) == (spec, 0)
    assert (built.spec, len(built), built.dimension, built.metric) == (spec, 100, DIM, Metric.L2)
    assert fractions and fractions[-1] == 1.0
    assert all(0.0 <= f <= 1.0 for f in fractions)
    assert (loaded.spec, len(loaded)) == (spec, 100)
    query = vectors[7]
    assert np.array_equal(loaded.search(query, 5).labels, built.search(query, 5).labels)
    assert not built.needs_rebuild


def test_a_spec_whose_params_belong_to_another_type_is_refused() -> None:
    mismatched = IndexSpec(IndexType.IVF, HnswParams())
    with pytest.raises(ValueError, match="does not take HnswParams"):
        new_index(mismatched, DIM, Metric.COSINE)
    with pytest.raises(ValueError, match="does not take HnswParams"):
        build_index(
            mismatched, DIM, Metric.COSINE, np.empty(0, np.int64), np.empty((0, DIM), np.float32)
        )
    assert new_index(IndexSpec(IndexType.FLAT, FlatParams()), DIM, Metric.DOT).spec.type is (
        IndexType.FLAT
    )


def test_a_state_of_unknown_kind_or_without_one_is_refused() -> None:
    with pytest.raises(ValueError, match="no 'kind'"):
        load_index({})
    with pytest.raises(ValueError, match="unknown index kind 'annoy'"):
        load_index({"kind": np.array("annoy")})


def test_only_approximate_indexes_keep_snapshots() -> None:
    assert {t for t in IndexType if kind_of(t).snapshot} == {IndexType.IVF, IndexType.HNSW}
