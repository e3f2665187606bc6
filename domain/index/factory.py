"""Choosing, building and restoring an index from its specification."""

from __future__ import annotations

from collections.abc import Callable

from domain.index.flat import FlatIndex
from domain.index.hnsw import HnswIndex
from domain.index.ivf import IvfIndex
from domain.index.scoring import Labels, StateArrays
from domain.models import FlatParams, HnswParams, IndexSpec, IndexType, IvfParams, Matrix, Metric
from domain.ports import VectorIndex

Progress = Callable[[float], None]


def _no_progress(_: float) -> None:
    return None


def new_index(spec: IndexSpec, dimension: int, metric: Metric) -> VectorIndex:
    """An empty index of the given type."""
    params = spec.params
    if spec.type is IndexType.FLAT:
        return FlatIndex(dimension, metric)
    if spec.type is IndexType.IVF and isinstance(params, IvfParams):
        return IvfIndex(dimension, metric, params)
    if spec.type is IndexType.HNSW and isinstance(params, HnswParams):
        return HnswIndex(dimension, metric, params)
    raise ValueError(f"index type {spec.type.value!r} does not take {type(params).__name__}")


def build_index(
    spec: IndexSpec,
    dimension: int,
    metric: Metric,
    labels: Labels,
    vectors: Matrix,
    progress: Progress = _no_progress,
) -> VectorIndex:
    """A new index holding ``vectors``; ``progress`` is called with fractions in [0, 1] that
    move during the build (IVF: after training and per batch; HNSW: per layer and phase)."""
    params = spec.params
    if spec.type is IndexType.IVF and isinstance(params, IvfParams):
        return IvfIndex.build(dimension, metric, params, labels, vectors, progress)
    if spec.type is IndexType.HNSW and isinstance(params, HnswParams):
        return HnswIndex.build(dimension, metric, params, labels, vectors, progress)
    if not isinstance(params, FlatParams):
        raise ValueError(f"index type {spec.type.value!r} does not take {type(params).__name__}")
    index = FlatIndex(dimension, metric)
    index.reserve(labels.shape[0])
    step = 50_000
    for start in range(0, labels.shape[0], step):
        index.add(labels[start : start + step], vectors[start : start + step])
        progress(min(1.0, (start + step) / max(1, labels.shape[0])))
    progress(1.0)
    return index


def load_index(state: StateArrays) -> VectorIndex:
    """The index a ``to_state`` snapshot holds, whatever its type (the ``kind`` array).

    Raises ``ValueError`` for an unknown kind or inconsistent arrays, so a caller can
    rebuild from the store instead of serving a corrupt snapshot.
    """
    if "kind" not in state:
        raise ValueError("index state has no 'kind'")
    kind = str(state["kind"])
    loaders: dict[str, Callable[[StateArrays], VectorIndex]] = {
        IndexType.FLAT.value: FlatIndex.from_state,
        IndexType.IVF.value: IvfIndex.from_state,
        IndexType.HNSW.value: HnswIndex.from_state,
    }
    loader = loaders.get(kind)
    if loader is None:
        raise ValueError(f"unknown index kind {kind!r} in state")
    try:
        return loader(state)
    except (KeyError, TypeError, IndexError) as exc:
        raise ValueError(f"corrupt {kind} index state: {exc}") from exc
