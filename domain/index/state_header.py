"""The header every index's state (``VectorIndex.to_state``) opens with: the kind of index
that wrote it (what ``registry.load_index`` dispatches on), its metric and its dimension."""

from __future__ import annotations

import numpy as np

from domain.index.scoring import StateArrays
from domain.models import IndexType, Metric


def state_header(index_type: IndexType, metric: Metric, dimension: int) -> StateArrays:
    """The header arrays of a state saved by an index of ``index_type``."""
    return {
        "kind": np.array(index_type.value),
        "metric": np.array(metric.value),
        "dimension": np.array(dimension, dtype=np.int64),
    }


def read_state_header(state: StateArrays, index_type: IndexType) -> tuple[Metric, int]:
    """The metric and dimension a state was saved with; raises ``ValueError`` when an index
    of another type than ``index_type`` wrote it."""
    kind = str(state["kind"])
    if kind != index_type.value:
        raise ValueError(f"not a {index_type.value} index state: its kind is {kind!r}")
    return Metric(str(state["metric"])), int(state["dimension"])
