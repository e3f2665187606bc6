"""The REST API of API.md as a catalogue of ``Call`` values, one function per endpoint.

Shared by ``StacksDB`` and ``AsyncStacksDB``: a path, a body and whether the request may be
retried are decided here, once. One module a resource (``libraries``, ``documents``,
``chunks``, ``queries`` for search and counts, ``index``, ``embedding``); ``chunk_bodies``
turns the caller's chunks, vectors and texts into request bodies, and ``common`` holds the
paths and answer parsers they all use. This package lists every call, so that callers
write ``_calls.get_chunk``.
"""

from stacksdb_client._calls.chunk_bodies import chunk_batches, text_chunks
from stacksdb_client._calls.chunks import (
    create_chunk,
    delete_chunk,
    delete_where,
    get_chunk,
    list_chunks,
    put_chunk,
    update_chunk,
    write_chunks,
)
from stacksdb_client._calls.documents import (
    create_document,
    delete_document,
    get_document,
    list_documents,
    update_document,
)
from stacksdb_client._calls.embedding import embed
from stacksdb_client._calls.index import build_index, index_status
from stacksdb_client._calls.libraries import (
    create_library,
    delete_library,
    get_library,
    list_libraries,
    update_library,
)
from stacksdb_client._calls.queries import count, search, search_batch, search_body

__all__ = [
    "build_index",
    "chunk_batches",
    "count",
    "create_chunk",
    "create_document",
    "create_library",
    "delete_chunk",
    "delete_document",
    "delete_library",
    "delete_where",
    "embed",
    "get_chunk",
    "get_document",
    "get_library",
    "index_status",
    "list_chunks",
    "list_documents",
    "list_libraries",
    "put_chunk",
    "search",
    "search_batch",
    "search_body",
    "text_chunks",
    "update_chunk",
    "update_document",
    "update_library",
    "write_chunks",
]
