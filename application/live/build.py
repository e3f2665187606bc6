"""Background builds of the vector index: the build itself (``run_build``) and the
progress it reports, over the journaled-build state machine of ``journal.py``.

The build holds no library lock; starting and completing it need the write lock. The
builder thread reports progress without the library lock (progress must not wait for
searches to drain), so the progress is kept under the bookkeeping's own mutex.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from application.live.journal import JournaledBuilds
from domain.errors import LibraryNotFound
from domain.index.registry import build_index
from domain.index.scoring import Labels
from domain.models import IndexSpec, Matrix
from domain.ports import VectorIndex

if TYPE_CHECKING:
    from application.live.state import LiveLibrary

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PendingBuild:
    """A build handed to a background thread: its generation, spec and input vectors."""

    generation: int
    spec: IndexSpec
    labels: Labels
    vectors: Matrix


def _copy_vectors(vectors: Matrix) -> Matrix:
    return vectors.copy()


class IndexBuilds(JournaledBuilds[IndexSpec, Matrix]):
    """One library's vector-index builds, with the progress of the one in flight."""

    def __init__(self) -> None:
        super().__init__(_copy_vectors)
        # (generation, fraction done): a fraction counts only for the build in flight.
        self._progress = (0, 0.0)

    def report_progress(self, generation: int, progress: float) -> None:
        with self._mutex:
            if self._in_flight is not None and self._in_flight.generation == generation:
                self._progress = (generation, max(0.0, min(progress, 0.999)))

    def in_flight(self) -> tuple[IndexSpec, float] | None:
        """The spec and progress of the build in flight, or None."""
        with self._mutex:
            build = self._in_flight
            if build is None:
                return None
            generation, progress = self._progress
            return build.spec, progress if generation == build.generation else 0.0


def run_build(
    live: LiveLibrary,
    pending: PendingBuild,
    before_swap: Callable[[VectorIndex], None] | None = None,
) -> bool:
    """Build ``pending`` with no library lock held, then, under the write lock, call
    ``before_swap`` (to persist the new spec, say) and make the index live. False when the
    build was superseded, the library dropped, or the build failed (the reason then shows
    in the index status while the previous index keeps serving). Call it without holding
    the lock, on a background thread."""
    library = live.library
    try:
        index = build_index(
            pending.spec,
            library.dimension,
            library.metric,
            pending.labels,
            pending.vectors,
            lambda fraction: live.report_progress(pending.generation, fraction),
        )
        with live.lock.write():
            if live.dropped or not live.is_current_build(pending.generation):
                return False
            if before_swap is not None:
                before_swap(index)
            return live.finish_build(pending.generation, index)
    except LibraryNotFound:
        return False
    except Exception as exc:  # a build must never take the node down
        log.exception("library %s: index build failed", live.id)
        live.fail_build(pending.generation, f"{type(exc).__name__}: {exc}")
        return False
