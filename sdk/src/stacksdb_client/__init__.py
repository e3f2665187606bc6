"""stacksdb-client: a typed Python client for the StacksDB vector database.

::

    from stacksdb_client import StacksDB, F

    with StacksDB("http://127.0.0.1:8000") as db:
        lib = db.create_library("papers", dimension=384)
        lib.add_chunks([{"document_id": "d1", "text": "...", "embedding": vector}])
        hits = lib.search(vector, k=5, filter=F("year") >= 2020).results
"""

from stacksdb_client._core import ArrayLike, RetryPolicy, Vector, Vectors
from stacksdb_client._version import __version__
from stacksdb_client.aio import AsyncLibrary, AsyncStacksDB
from stacksdb_client.client import Library, ProgressCallback, StacksDB
from stacksdb_client.errors import (
    APIError,
    AuthError,
    ConflictError,
    IndexBuildError,
    NotFoundError,
    PayloadTooLargeError,
    RequestTimeoutError,
    ServerError,
    StacksDBError,
    UnavailableError,
    UnreachableError,
    ValidationError,
    WaitTimeoutError,
)
from stacksdb_client.filters import F, Filter, FilterExpr, FilterLike
from stacksdb_client.models import (
    Chunk,
    Document,
    Hybrid,
    IndexStatus,
    LibraryInfo,
    Page,
    SearchGroup,
    SearchMode,
    SearchResponse,
    SearchResult,
)

__all__ = [
    "APIError",
    "ArrayLike",
    "AsyncLibrary",
    "AsyncStacksDB",
    "AuthError",
    "Chunk",
    "ConflictError",
    "Document",
    "F",
    "Filter",
    "FilterExpr",
    "FilterLike",
    "Hybrid",
    "IndexBuildError",
    "IndexStatus",
    "Library",
    "LibraryInfo",
    "NotFoundError",
    "Page",
    "PayloadTooLargeError",
    "ProgressCallback",
    "RequestTimeoutError",
    "RetryPolicy",
    "SearchGroup",
    "SearchMode",
    "SearchResponse",
    "SearchResult",
    "ServerError",
    "StacksDB",
    "StacksDBError",
    "UnavailableError",
    "UnreachableError",
    "ValidationError",
    "Vector",
    "Vectors",
    "WaitTimeoutError",
    "__version__",
]
