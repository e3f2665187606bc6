"""The types every index speaks in: label, key and mask arrays, a snapshot's named arrays,
per-query search overrides (``SearchParams``), one search of a batch (``IndexQuery``) and
search results (``Hits``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

Labels = NDArray[np.int64]
Keys = NDArray[np.float32]
Mask = NDArray[np.bool_]
Positions = NDArray[np.intp]
Scores = NDArray[np.float32]
# An index snapshot: named arrays that an index's ``from_state`` turns back into it (an .npz).
StateArrays = dict[str, NDArray[Any]]


@dataclass(frozen=True, slots=True)
class SearchParams:
    """Per-query overrides of an index's defaults; ``None`` keeps the index default."""

    ef: int | None = None
    nprobe: int | None = None


@dataclass(frozen=True, slots=True)
class IndexQuery:
    """One search of a batch (``VectorIndex.search_many``): what ``search`` takes."""

    vector: NDArray[np.float32]
    k: int
    allowed: Mask | None = None
    params: SearchParams | None = None
    exact: bool = False


@dataclass(frozen=True, slots=True)
class Hits:
    """Search results, best first: labels and client-facing scores, plus how they were found."""

    labels: Labels
    scores: NDArray[np.float32]
    strategy: str = "scan"
    extra: dict[str, float] = field(default_factory=dict)

    @classmethod
    def empty(cls, strategy: str = "scan") -> Hits:
        return cls(np.empty(0, np.int64), np.empty(0, np.float32), strategy)

    def __len__(self) -> int:
        return int(self.labels.shape[0])
