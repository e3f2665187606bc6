"""Helpers for batches: of vectors every index's ``add`` takes (labels with one vector
each), and of searches its ``search_many`` takes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import TypeVar

import numpy as np

from domain.index.scoring import Labels
from domain.models import Matrix

T = TypeVar("T")
R = TypeVar("R")


def last_of_each(labels: Labels, vectors: Matrix) -> tuple[Labels, Matrix]:
    """Deduplicate ``labels`` keeping each one's last vector (sorted by label when any
    repeats; the batch as given otherwise). O(b log b) for a batch of b."""
    uniq, first_in_reversed = np.unique(labels[::-1], return_index=True)
    if uniq.shape[0] == labels.shape[0]:
        return labels, vectors
    return uniq, vectors[labels.shape[0] - 1 - first_in_reversed]


def fan_out(run: Callable[[T], R], items: Sequence[T], executor: Executor | None) -> list[R]:
    """``run`` on every item, answers in order: on ``executor``'s threads when given (for
    kernels that release the GIL), else one after another in this thread."""
    if executor is None or len(items) < 2:
        return [run(item) for item in items]
    return list(executor.map(run, items))
