"""A background build's state machine: one build in flight per index, and the journal of
the writes made while it runs.

::

    idle --start(g)--> building(g) --complete(g)--> idle  (new index live, journal replayed)
                                   --fail(g)------> idle  (the old index keeps serving)
                                   --start(g+1)---> building(g+1)  (g superseded: its
                                                     complete and fail do nothing)

While a build is in flight every write to the serving index is journaled, and replayed
into the new index before it goes live, so nothing written during the build is lost.
Both the vector index (``build.py``) and the keyword index (``text_build.py``) build this
way, each adding what only it needs; what a journaled write carries (vectors, texts) is
the ``Payload``.

The mutex guards only this bookkeeping, which a builder thread may touch without the
library's lock; the library's lock orders builds against searches and writes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from domain.index.scoring import Labels

Spec = TypeVar("Spec")
Payload = TypeVar("Payload")
Payload_contra = TypeVar("Payload_contra", contravariant=True)


class Replayable(Protocol[Payload_contra]):
    """What a journal replays into: an index that adds and removes labels."""

    def add(self, labels: Labels, payload: Payload_contra, /) -> None: ...

    def remove(self, labels: Labels, /) -> None: ...


@dataclass(slots=True)
class _InFlight(Generic[Spec, Payload]):
    """The build in flight: its generation, spec and the writes it must replay."""

    generation: int
    spec: Spec
    journal: list[tuple[Labels, Payload | None]] = field(default_factory=list)


class JournaledBuilds(Generic[Spec, Payload]):
    """One index's build bookkeeping; thread-safe (see the module docstring)."""

    def __init__(self, copy_payload: Callable[[Payload], Payload]) -> None:
        # A journaled write keeps its own copy: the caller may reuse its buffers.
        self._copy_payload = copy_payload
        self._mutex = threading.Lock()
        self._in_flight: _InFlight[Spec, Payload] | None = None
        self._generation = 0

    def start(self, spec: Spec) -> int:
        """Begin a build of ``spec``, superseding any in flight; returns its generation.
        Writes are journaled from now on."""
        with self._mutex:
            self._generation += 1
            self._in_flight = _InFlight(self._generation, spec)
            return self._generation

    def journal(self, labels: Labels, payload: Payload | None) -> None:
        """Record a write to the serving index (``payload`` None: a removal), if building."""
        with self._mutex:
            if self._in_flight is not None:
                copied = None if payload is None else self._copy_payload(payload)
                self._in_flight.journal.append((labels.copy(), copied))

    def complete(self, generation: int, index: Replayable[Payload]) -> bool:
        """Replay the journal into ``index`` and end build ``generation``; False (and
        nothing changed) when it was superseded or cancelled."""
        with self._mutex:
            build = self._in_flight
            if build is None or build.generation != generation:
                return False
            for labels, payload in build.journal:
                if payload is None:
                    index.remove(labels)
                else:
                    index.add(labels, payload)
            self._in_flight = None
            return True

    def fail(self, generation: int) -> bool:
        """End build ``generation`` without a result; False when it was superseded."""
        with self._mutex:
            if self._in_flight is None or self._in_flight.generation != generation:
                return False
            self._in_flight = None
            return True

    def is_current(self, generation: int) -> bool:
        with self._mutex:
            return self._in_flight is not None and self._in_flight.generation == generation
