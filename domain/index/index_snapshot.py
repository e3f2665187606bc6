"""An index snapshot: what a built index needs to be served again after a restart.

The index's own arrays (``to_state``) are not enough on their own: labels are small ints
handed out by the library's ``LabelMap`` as chunks arrived, so the snapshot also carries the
chunk id behind every label, and the store position it reflects (``Library.revision``, with
the library's creation time, which tells apart a library deleted and created again under
the same id). A loader serves it only when all of these still match the store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from domain.index.scoring import StateArrays


@dataclass(frozen=True, slots=True)
class IndexSnapshot:
    """``state`` from ``VectorIndex.to_state``; ``chunk_ids[label]`` the chunk behind each
    label (None for a free one); ``revision`` and ``library_created_at`` the store position."""

    state: StateArrays
    chunk_ids: Sequence[str | None]
    revision: int
    library_created_at: datetime

    @property
    def chunk_count(self) -> int:
        return sum(1 for chunk_id in self.chunk_ids if chunk_id is not None)
