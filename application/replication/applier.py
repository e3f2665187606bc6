"""Applying the leader's log on a follower.

``LogApplier`` replays entries with the same discipline as ``Writer.run``: the library's
write lock, one unit of work holding the ops and the entry itself (so the applied index is
persisted with the data), commit, then the live state, through the same ``apply_change``
the leader used.
"""

from __future__ import annotations

import contextlib
import threading
from collections import defaultdict
from dataclasses import dataclass, field

from application.live import CommittedChange, LiveLibraries, LiveLibrary, apply_change
from application.live.text_build import run_text_build
from application.replication.log_feed import LogFeed
from domain.models import IndexSpec, Library
from domain.replication import (
    LogEntry,
    LoggedUnitOfWork,
    LoggedUnitOfWorkFactory,
    LogPosition,
    Op,
    decode_chunks,
    decode_document,
    decode_library,
)


class LogGap(Exception):
    """An entry arrived that does not follow the last applied one."""


@dataclass(slots=True)
class _Staged:
    """What an entry changes in memory once the store has committed it: the libraries it
    saves (None: deletes), in log order, and each library's change to its chunks and
    documents."""

    libraries: list[tuple[str, Library | None]] = field(default_factory=list)
    changes: defaultdict[str, CommittedChange] = field(
        default_factory=lambda: defaultdict(CommittedChange)
    )


class LogApplier:
    """Applies leader entries on a follower, in order and idempotently."""

    def __init__(
        self, uow_factory: LoggedUnitOfWorkFactory, live: LiveLibraries, feed: LogFeed
    ) -> None:
        self._uow_factory = uow_factory
        self._live = live
        self._feed = feed

    def position(self) -> LogPosition:
        with self._uow_factory() as uow:
            return uow.log.last()

    def apply(self, entry: LogEntry) -> bool:
        """Apply ``entry``; False if it was already applied. ``LogGap`` if one is missing."""
        touched = sorted({op.library_id for op in entry.ops})
        # Several libraries' locks, taken in id order: the one place that holds more than
        # one, and a fixed order keeps it deadlock-free.
        lives = [live for lib in touched if (live := self._live.find(lib)) is not None]
        with contextlib.ExitStack() as locks:
            for live in lives:
                locks.enter_context(live.lock.write())
            with self._uow_factory() as uow:
                last = uow.log.last()
                if entry.index <= last.index:
                    return False
                if entry.index != last.index + 1:
                    raise LogGap(f"entry {entry.index} does not follow {last.index}")
                staged = _Staged()
                for op in entry.ops:
                    _store(uow, op, staged)
                uow.log.append(entry)
                uow.commit()
            self._show(staged)
        self._feed.advance(LogPosition(entry.index, entry.term))
        return True

    def _show(self, staged: _Staged) -> None:
        """The committed entry in the live state, as the leader's ``Writer.run`` showed it:
        the library first, then its change through the same ``apply_change``."""
        for library_id, library in staged.libraries:
            if library is None:
                self._drop(library_id)
            else:
                self._show_library(library)
        for library_id, change in staged.changes.items():
            live = self._live.find(library_id)
            if live is not None:
                apply_change(live, change)

    def _drop(self, library_id: str) -> None:
        dropped = self._live.find(library_id)
        if dropped is not None:
            dropped.dropped = True
            self._live.discard(library_id)

    def _show_library(self, library: Library) -> None:
        live = self._live.find(library.id)
        if live is None:
            self._live.add(LiveLibrary(library, self._live.analyzers))
            return
        previous = live.library
        live.library = library
        if library.index != previous.index:
            _rebuild_in_background(live, library.index)
        if library.text_index != previous.text_index:
            self._rebuild_text_in_background(live)

    def _rebuild_text_in_background(self, live: LiveLibrary) -> None:
        """Follow the leader's ``text_index`` change as the leader did (``text_build.py``).
        The caller holds the write lock; the build waits for it on its own thread."""
        generation = live.change_text_index(live.library.text_index)
        if generation is None:
            return
        threading.Thread(
            target=run_text_build,
            args=(live, generation, self._uow_factory),
            name="follower-keyword-index-build",
            daemon=True,
        ).start()


def _store(uow: LoggedUnitOfWork, op: Op, staged: _Staged) -> None:
    """Write ``op`` to the store and stage what it changes in memory."""
    payload = op.payload
    library_id = op.library_id
    match op.kind:
        case "save_library":
            library = decode_library(payload)
            uow.libraries.save(library)
            staged.libraries.append((library_id, library))
        case "delete_library":
            uow.libraries.delete(library_id)
            staged.libraries.append((library_id, None))
        case "save_document":
            document = decode_document(payload)
            uow.documents.save(document)
            staged.changes[library_id].saved_documents.append(document)
        case "delete_document":
            document_id = str(payload["id"])
            change = staged.changes[library_id]
            change.removed_chunks.extend(uow.chunks.ids_of_document(library_id, document_id))
            uow.documents.delete(library_id, document_id)
            change.deleted_documents.append(document_id)
        case "save_chunks":
            chunks = decode_chunks(payload)
            uow.chunks.save_many(chunks)
            staged.changes[library_id].upserted_chunks.extend(chunks)
        case "delete_chunks":
            ids = [str(i) for i in payload["ids"]]
            uow.chunks.delete_many(library_id, ids)
            staged.changes[library_id].removed_chunks.extend(ids)
        case _:
            raise ValueError(f"unknown log op {op.kind!r}")


def _rebuild_in_background(live: LiveLibrary, spec: IndexSpec) -> None:
    """Follow the leader's index change: build ``spec`` off the lock, swap it in under it
    (the spec itself reached the store through the log). The caller holds the write lock."""
    pending = live.start_build(spec)
    threading.Thread(
        target=live.build, args=(pending,), name="follower-index-build", daemon=True
    ).start()
