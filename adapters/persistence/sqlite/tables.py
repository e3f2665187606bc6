"""The SQLite schema, as SQLAlchemy Core tables.

Every table has a ``seq`` column: a number drawn from the ``sequences`` counter when a row
is first inserted and kept when it is replaced, so listings and scans page in insertion
order by keyset (``seq > ?``) whatever the ids look like. The counter never goes back, so
a seq is never reused, not even after the newest row is deleted: a cursor cannot skip a
row inserted later.

Documents and chunks are keyed by (library_id, id): ids are unique per library. Deleting a
library cascades to its documents and deleting a document to its chunks (the engine turns
``foreign_keys`` on for every connection).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

# Bumped when the schema changes; stored in ``PRAGMA user_version``. Version 2 added the
# libraries' ``embedder_json`` and ``text_index_json`` (``engine.MIGRATIONS``).
SCHEMA_VERSION = 2

# The one counter every table draws its seq from (one row update per write batch).
SEQ_COUNTER = "seq"

schema = MetaData()

sequences = Table(
    "sequences",
    schema,
    Column("name", String, primary_key=True),
    Column("value", BigInteger, nullable=False),
)

libraries = Table(
    "libraries",
    schema,
    Column("id", String, primary_key=True),
    Column("seq", BigInteger, nullable=False, unique=True),
    Column("name", String, nullable=False),
    Column("description", Text, nullable=False),
    Column("metadata_json", Text, nullable=False),
    Column("dimension", Integer, nullable=False),
    Column("metric", String, nullable=False),
    Column("index_type", String, nullable=False),
    Column("index_params_json", Text, nullable=False),
    # NULL: no embedder, and the default keyword index (rows written before version 2).
    Column("embedder_json", Text, nullable=True),
    Column("text_index_json", Text, nullable=True),
    Column("revision", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

documents = Table(
    "documents",
    schema,
    Column(
        "library_id",
        String,
        ForeignKey("libraries.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("id", String, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("metadata_json", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("library_id", "id"),
    Index("ix_documents_library_seq", "library_id", "seq", unique=True),
)

chunks = Table(
    "chunks",
    schema,
    Column("library_id", String, nullable=False),
    Column("id", String, nullable=False),
    Column("document_id", String, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("text", Text, nullable=False),
    Column("embedding", LargeBinary, nullable=False),
    Column("metadata_json", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("library_id", "id"),
    ForeignKeyConstraint(
        ["library_id", "document_id"],
        ["documents.library_id", "documents.id"],
        ondelete="CASCADE",
    ),
    # Serves the cascade from documents, ids_of_document, chunk_counts and the listing of
    # one document's chunks in seq order.
    Index("ix_chunks_library_document_seq", "library_id", "document_id", "seq"),
    # Serves listing and scanning a library's chunks in seq order.
    Index("ix_chunks_library_seq", "library_id", "seq", unique=True),
)

# The replication log (domain.replication): one row per committed write, appended in the
# write's own transaction. Where it ends survives compaction in ``sequences`` (the rows
# named by LOG_LAST_INDEX and LOG_LAST_TERM).
replication_log = Table(
    "replication_log",
    schema,
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("term", BigInteger, nullable=False),
    Column("ops_json", Text, nullable=False),
)

LOG_LAST_INDEX = "log.last_index"
LOG_LAST_TERM = "log.last_term"
