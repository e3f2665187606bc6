"""Choosing and building an index from its specification."""

from __future__ import annotations

from collections.abc import Callable

from domain.errors import InvalidIndexParams
from domain.index.flat import FlatIndex
from domain.index.scoring import Labels
from domain.models import IndexSpec, IndexType, Matrix, Metric
from domain.ports import VectorIndex

Progress = Callable[[float], None]


def _no_progress(_: float) -> None:
    return None


def new_index(spec: IndexSpec, dimension: int, metric: Metric) -> VectorIndex:
    """An empty index of the given type."""
    if spec.type is IndexType.FLAT:
        return FlatIndex(dimension, metric)
    raise InvalidIndexParams(
        f"index type {spec.type.value!r} is not available on this server", location="type"
    )


def build_index(
    spec: IndexSpec,
    dimension: int,
    metric: Metric,
    labels: Labels,
    vectors: Matrix,
    progress: Progress = _no_progress,
) -> VectorIndex:
    """A new index holding ``vectors``; ``progress`` is called with fractions in [0, 1]."""
    index = new_index(spec, dimension, metric)
    step = 50_000
    for start in range(0, labels.shape[0], step):
        index.add(labels[start : start + step], vectors[start : start + step])
        progress(min(1.0, (start + step) / max(1, labels.shape[0])))
    progress(1.0)
    return index
