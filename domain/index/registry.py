"""The index registry: the one place that knows every index type.

Each ``IndexKind`` says, for one ``IndexType``, which params model validates its settings,
how to make an empty index, how to build one over many vectors at once (with progress) and
how to restore one from a ``to_state`` snapshot. Everything else (``IndexSpec.parse``, the
live libraries, snapshots, the index service) asks here and never names a concrete class.

Adding an index: write its module in ``domain/index/`` (a class that implements
``domain.ports.VectorIndex``, with a ``build`` classmethod and ``from_state``, and a params
model subclassing ``domain.models.IndexParams``), add its ``IndexType`` member, and add one
``IndexKind`` to ``_KINDS`` below. A type without a kind fails at import.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from domain.index.flat import FlatIndex
from domain.index.hnsw import HnswIndex
from domain.index.ivf import IvfIndex
from domain.index.scoring import Labels, StateArrays
from domain.models import (
    FlatParams,
    HnswParams,
    IndexParams,
    IndexSpec,
    IndexType,
    IvfParams,
    Matrix,
    Metric,
)
from domain.ports import VectorIndex

Progress = Callable[[float], None]
P = TypeVar("P", bound=IndexParams)


def _no_progress(_: float) -> None:
    return None


# No slots: a slotted frozen dataclass cannot take the ``__orig_class__`` that
# ``IndexKind[FlatParams](...)`` sets.
@dataclass(frozen=True)
class IndexKind(Generic[P]):
    """One index type: its params model, and how to make, build and restore an index.

    ``build(dimension, metric, params, labels, vectors, progress)`` returns an index holding
    ``vectors`` and calls ``progress`` with fractions in [0, 1] as it goes. ``snapshot``
    says whether a built index is worth saving across restarts: true for an approximate
    index, whose rebuild is slow; a Flat index loads from the store as fast as from a file.
    """

    index_type: IndexType
    params: type[P]
    new: Callable[[int, Metric, P], VectorIndex]
    build: Callable[[int, Metric, P, Labels, Matrix, Progress], VectorIndex]
    load: Callable[[StateArrays], VectorIndex]
    snapshot: bool

    def params_of(self, spec: IndexSpec) -> P:
        """``spec.params``, checked to be this kind's params model."""
        params = spec.params
        if spec.type is not self.index_type or not isinstance(params, self.params):
            raise ValueError(
                f"index type {spec.type.value!r} does not take {type(params).__name__}"
            )
        return params


def _new_flat(dimension: int, metric: Metric, _: FlatParams) -> FlatIndex:
    return FlatIndex(dimension, metric)


def _build_flat(
    dimension: int,
    metric: Metric,
    _: FlatParams,
    labels: Labels,
    vectors: Matrix,
    progress: Progress = _no_progress,
) -> FlatIndex:
    """Flat's bulk build: room reserved once, then added in steps that report progress."""
    index = FlatIndex(dimension, metric)
    index.reserve(labels.shape[0])
    step = 50_000
    for start in range(0, labels.shape[0], step):
        index.add(labels[start : start + step], vectors[start : start + step])
        progress(min(1.0, (start + step) / max(1, labels.shape[0])))
    progress(1.0)
    return index


_KINDS: dict[IndexType, IndexKind[Any]] = {
    kind.index_type: kind
    for kind in (
        IndexKind[FlatParams](
            IndexType.FLAT,
            params=FlatParams,
            new=_new_flat,
            build=_build_flat,
            load=FlatIndex.from_state,
            snapshot=False,
        ),
        IndexKind[IvfParams](
            IndexType.IVF,
            params=IvfParams,
            new=IvfIndex,
            build=IvfIndex.build,
            load=IvfIndex.from_state,
            snapshot=True,
        ),
        IndexKind[HnswParams](
            IndexType.HNSW,
            params=HnswParams,
            new=HnswIndex,
            build=HnswIndex.build,
            load=HnswIndex.from_state,
            snapshot=True,
        ),
    )
}
_BY_NAME = {index_type.value: kind for index_type, kind in _KINDS.items()}

_unregistered = [t.value for t in IndexType if t not in _KINDS]
if _unregistered:
    raise ImportError(f"index types without an IndexKind in the registry: {_unregistered}")


def kind_of(index_type: IndexType) -> IndexKind[Any]:
    """The registered kind of ``index_type`` (every ``IndexType`` has one)."""
    return _KINDS[index_type]


def params_model(index_type: IndexType) -> type[IndexParams]:
    """The params model that validates ``index_type``'s settings."""
    return _KINDS[index_type].params


def new_index(spec: IndexSpec, dimension: int, metric: Metric) -> VectorIndex:
    """An empty index of the given type."""
    kind = kind_of(spec.type)
    return kind.new(dimension, metric, kind.params_of(spec))


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
    kind = kind_of(spec.type)
    return kind.build(dimension, metric, kind.params_of(spec), labels, vectors, progress)


def load_index(state: StateArrays) -> VectorIndex:
    """The index a ``to_state`` snapshot holds, whatever its type (the ``kind`` array).

    Raises ``ValueError`` for an unknown kind or inconsistent arrays, so a caller can
    rebuild from the store instead of serving a corrupt snapshot.
    """
    if "kind" not in state:
        raise ValueError("index state has no 'kind'")
    name = str(state["kind"])
    kind = _BY_NAME.get(name)
    if kind is None:
        raise ValueError(f"unknown index kind {name!r} in state")
    try:
        return kind.load(state)
    except (KeyError, TypeError, IndexError) as exc:
        raise ValueError(f"corrupt {name} index state: {exc}") from exc
