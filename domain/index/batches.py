"""Helpers for the batches every index's ``add`` takes: labels with one vector each."""

from __future__ import annotations

import numpy as np

from domain.index.scoring import Labels
from domain.models import Matrix


def last_of_each(labels: Labels, vectors: Matrix) -> tuple[Labels, Matrix]:
    """Deduplicate ``labels`` keeping each one's last vector (sorted by label when any
    repeats; the batch as given otherwise). O(b log b) for a batch of b."""
    uniq, first_in_reversed = np.unique(labels[::-1], return_index=True)
    if uniq.shape[0] == labels.shape[0]:
        return labels, vectors
    return uniq, vectors[labels.shape[0] - 1 - first_in_reversed]
