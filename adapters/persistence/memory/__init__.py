"""In-memory persistence: implements the ``UnitOfWork`` port and its three repositories.

Used for fast service tests and as a real "no persistence" option: it keeps every
behaviour the SQLite adapter has (insertion-order pagination with the same cursors,
cascading deletes, all-or-nothing units of work), only not past the process's life.

Concurrency: a unit of work holds the store's lock from ``__enter__`` to ``__exit__``, so
units of work run one at a time and none ever sees another's uncommitted changes.
Writes go straight into the store and are recorded in an undo journal; ``commit`` forgets
the journal, ``rollback`` (or leaving the block without committing) replays it backwards.

Isolation from callers: the store keeps its own copies of entities and hands out fresh
copies, so mutating a saved or fetched entity never changes what is stored.

Modules: ``store`` (the tables), ``copies`` (copying entities in and out),
``transaction`` (mode and undo journal), one module per repository, ``unit_of_work``.
Wiring: ``store = MemoryStore()``, then ``MemoryUnitOfWork(store)`` per unit of work.
"""

from adapters.persistence.memory.chunk_repository import MemoryChunkRepository
from adapters.persistence.memory.document_repository import MemoryDocumentRepository
from adapters.persistence.memory.library_repository import MemoryLibraryRepository
from adapters.persistence.memory.store import MemoryStore
from adapters.persistence.memory.unit_of_work import DEFAULT_LOCK_TIMEOUT, MemoryUnitOfWork

__all__ = [
    "DEFAULT_LOCK_TIMEOUT",
    "MemoryChunkRepository",
    "MemoryDocumentRepository",
    "MemoryLibraryRepository",
    "MemoryStore",
    "MemoryUnitOfWork",
]
