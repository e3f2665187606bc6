"""Keyword index builds in the background, after a library's ``text_index`` changed.

::

    idle --start(g)--> building(g) --complete(g)--> idle  (new index live, journal replayed)
                                   --fail(g)------> idle  (the old index keeps serving)
                                   --start(g+1)---> building(g+1)  (g superseded)
                                   --cancel-------> idle  (text_index set to none)

The state machine is ``journal.py``'s; ``cancel`` is the keyword index's own. A build reads
the library's texts from the store under the read lock (so the store and the labels agree:
no write is between its commit and its apply), indexes them with no lock held and swaps the
index in under the write lock. Every write from ``start`` on is journaled and replayed
before the swap. A write the read already saw is replayed too, which is harmless: each
journaled write sets or removes a label's whole text, so replaying every write since
``start`` leaves each label as its last write made it, whatever the read saw.

Searches keep the previous keyword index meanwhile (none, when there was none). The mutex
guards only the bookkeeping; the library's lock orders it against searches and writes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from application.live.journal import JournaledBuilds
from domain.index.scoring import Labels
from domain.models import TextIndexSpec
from domain.ports import UnitOfWorkFactory
from domain.text_index.bm25 import Bm25Index

if TYPE_CHECKING:
    from application.live.state import LiveLibrary

log = logging.getLogger(__name__)

# Rows per store read of a build: small batches keep what the read holds at once small.
READ_BATCH = 2_000


class TextBuilds(JournaledBuilds[TextIndexSpec, Sequence[str]]):
    """One library's keyword-index builds: ``journal.py``'s state machine, plus ``cancel``
    and the spec a build reads; thread-safe."""

    def __init__(self) -> None:
        super().__init__(list)

    def cancel(self) -> None:
        """End whatever build is in flight: ``text_index`` changed to none, or back to what
        serves already."""
        with self._mutex:
            self._in_flight = None

    def spec(self, generation: int) -> TextIndexSpec | None:
        """The spec of build ``generation``, or None when it is no longer the current one."""
        with self._mutex:
            build = self._in_flight
            return build.spec if build is not None and build.generation == generation else None


def run_text_build(live: LiveLibrary, generation: int, uow_factory: UnitOfWorkFactory) -> None:
    """Build keyword index ``generation`` of ``live`` from the stored texts and serve it,
    unless it was superseded or cancelled or the library dropped meanwhile. Call it with no
    lock held, on a background thread."""
    try:
        with live.lock.read():
            spec = live.text_builds.spec(generation)
            if live.dropped or spec is None:
                return
            labels, texts = stored_texts(live, uow_factory)
        index = Bm25Index(spec.params, live.analyzers)
        index.add(labels, texts)
        del labels, texts
        with live.lock.write():
            if not live.dropped and live.finish_text_build(generation, index):
                log.info("library %s: keyword index built (%d texts)", live.id, len(index))
    except Exception:  # a build must never take the node down; the old index keeps serving
        log.exception("library %s: keyword index build failed", live.id)
        live.text_builds.fail(generation)


def stored_texts(live: LiveLibrary, uow_factory: UnitOfWorkFactory) -> tuple[Labels, list[str]]:
    """Every stored chunk's label and text. Needs the library's lock (read at least), so
    every stored chunk has its label."""
    label_blocks: list[Labels] = [np.empty(0, np.int64)]
    texts: list[str] = []
    with uow_factory(read_only=True) as uow:
        for block in uow.chunks.scan_columns(live.id, READ_BATCH, with_text=True):
            label_blocks.append(live.labels.labels(block.ids))
            texts.extend(block.texts or ())
    return np.concatenate(label_blocks), texts
