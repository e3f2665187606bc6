"""The one way a committed change reaches a library's live state.

The leader's write path (``Writer.run``) and a follower's log applier (``LogApplier``) both
commit a change to the store first and then hand it here, under the library's write lock.
One function, so the two cannot drift apart: a follower replaying the log ends up with the
same labels, metadata and index as its leader had after the same writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from domain.models import Chunk, Document

if TYPE_CHECKING:
    from application.live.state import LiveLibrary


@dataclass(slots=True)
class CommittedChange:
    """What one committed write did to a library's chunks and documents."""

    removed_chunks: list[str] = field(default_factory=list)
    deleted_documents: list[str] = field(default_factory=list)
    saved_documents: list[Document] = field(default_factory=list)
    upserted_chunks: list[Chunk] = field(default_factory=list)


def apply_change(live: LiveLibrary, change: CommittedChange) -> None:
    """Apply ``change`` to ``live`` in the one order: remove chunks, forget documents, save
    documents, upsert chunks. The caller holds the write lock and has committed the change.

    Removals go first, so a chunk removed and written again in one change ends up present
    with its new vector, and a document deleted and saved again keeps its new metadata.
    """
    live.remove(change.removed_chunks)
    live.forget_documents(change.deleted_documents)
    live.save_documents(change.saved_documents)
    live.upsert(change.upserted_chunks)
