"""Background index builds: the state machine each live library keeps for them.

::

    idle --start(g)--> building(g) --complete(g)--> idle  (new index live, journal replayed)
                                   --fail(g)------> idle  (reason reported, old index serves)
                                   --start(g+1)---> building(g+1)  (g superseded: its
                                                     complete and fail do nothing)

While a build is in flight every write to the serving index is journaled, and replayed
into the new index before it goes live, so nothing written during the build is lost.

The build itself (``run_build``) holds no library lock; starting and completing it need the
write lock. The mutex here guards only the bookkeeping, which the builder thread updates
(progress) without the library lock: progress must not wait for searches to drain.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

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


@dataclass(slots=True)
class _InFlight:
    """A background build in flight: the writes it must replay before going live."""

    generation: int
    spec: IndexSpec
    progress: float = 0.0
    journal: list[tuple[Labels, Matrix | None]] = field(default_factory=list)


class IndexBuilds:
    """One library's build bookkeeping; thread-safe (see the module docstring)."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._in_flight: _InFlight | None = None
        self._generation = 0

    def start(self, spec: IndexSpec, labels: Labels, vectors: Matrix) -> PendingBuild:
        """Begin building ``spec`` from ``labels`` and ``vectors``, superseding any build in
        flight; writes are journaled from now on."""
        with self._mutex:
            self._generation += 1
            self._in_flight = _InFlight(self._generation, spec)
            return PendingBuild(self._generation, spec, labels, vectors)

    def report_progress(self, generation: int, progress: float) -> None:
        with self._mutex:
            if self._in_flight is not None and self._in_flight.generation == generation:
                self._in_flight.progress = max(0.0, min(progress, 0.999))

    def journal(self, labels: Labels, vectors: Matrix | None) -> None:
        """Record a write to the serving index (``vectors`` None: a removal), if building."""
        with self._mutex:
            if self._in_flight is not None:
                self._in_flight.journal.append(
                    (labels.copy(), None if vectors is None else vectors.copy())
                )

    def complete(self, generation: int, index: VectorIndex) -> bool:
        """Replay the journal into ``index`` and end build ``generation``; False (and
        nothing changed) when it was superseded."""
        with self._mutex:
            build = self._in_flight
            if build is None or build.generation != generation:
                return False
            for labels, vectors in build.journal:
                if vectors is None:
                    index.remove(labels)
                else:
                    index.add(labels, vectors)
            self._in_flight = None
            return True

    def fail(self, generation: int) -> bool:
        """End build ``generation`` without a result; False when it was superseded."""
        with self._mutex:
            if self._in_flight is None or self._in_flight.generation != generation:
                return False
            self._in_flight = None
            return True

    def in_flight(self) -> tuple[IndexSpec, float] | None:
        """The spec and progress of the build in flight, or None."""
        with self._mutex:
            build = self._in_flight
            return None if build is None else (build.spec, build.progress)

    def is_current(self, generation: int) -> bool:
        with self._mutex:
            return self._in_flight is not None and self._in_flight.generation == generation


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
