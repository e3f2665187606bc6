"""The three repositories on SQLite, in SQLAlchemy Core, one module each.

Core rather than the ORM: the entities are plain slotted dataclasses the domain owns, bulk
chunk writes must be a single ``executemany`` (an ORM flush of 10,000 objects is many
times slower), and a start-up scan of a million rows should not build identity maps.

``library_repository``, ``document_repository`` and ``chunk_repository`` each map one
table's rows; ``statements`` holds what they share (the upsert that keeps ``seq``, and
``IN`` lists in batches). This module gathers the three for ``SqlUnitOfWork``.
"""

from adapters.persistence.sqlite.chunk_repository import SqlChunkRepository
from adapters.persistence.sqlite.document_repository import SqlDocumentRepository
from adapters.persistence.sqlite.library_repository import SqlLibraryRepository

__all__ = ["SqlChunkRepository", "SqlDocumentRepository", "SqlLibraryRepository"]
