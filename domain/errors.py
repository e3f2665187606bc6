"""Domain exceptions, raised deep and mapped to HTTP problems once, at the edge."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of every error the core raises on purpose.

    ``title`` is a short, stable summary; ``detail`` the specific explanation;
    ``extra`` carries fields worth returning to a client (for example ``location``).
    """

    title = "Domain error"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class NotFound(DomainError):
    title = "Not found"


class LibraryNotFound(NotFound):
    title = "Library not found"

    def __init__(self, library_id: str) -> None:
        super().__init__(f"library {library_id!r} does not exist", library_id=library_id)


class DocumentNotFound(NotFound):
    title = "Document not found"

    def __init__(self, library_id: str, document_id: str) -> None:
        super().__init__(
            f"document {document_id!r} does not exist in library {library_id!r}",
            library_id=library_id,
            document_id=document_id,
        )


class ChunkNotFound(NotFound):
    title = "Chunk not found"

    def __init__(self, library_id: str, chunk_id: str) -> None:
        super().__init__(
            f"chunk {chunk_id!r} does not exist in library {library_id!r}",
            library_id=library_id,
            chunk_id=chunk_id,
        )


class Conflict(DomainError):
    title = "Conflict"


class AlreadyExists(Conflict):
    title = "Already exists"

    def __init__(self, kind: str, entity_id: str) -> None:
        super().__init__(f"{kind} {entity_id!r} already exists", kind=kind, id=entity_id)


class InvalidInput(DomainError):
    """Input that is well-formed JSON but breaks a rule of the domain (422)."""

    title = "Invalid input"


class DimensionMismatch(InvalidInput):
    title = "Dimension mismatch"

    def __init__(self, expected: int, got: int, *, location: str = "embedding") -> None:
        super().__init__(
            f"{location} has {got} values but the library's dimension is {expected}",
            expected=expected,
            got=got,
            location=location,
        )


class InvalidVector(InvalidInput):
    title = "Invalid vector"


class InvalidIndexParams(InvalidInput):
    title = "Invalid index parameters"


class InvalidCursor(InvalidInput):
    title = "Invalid cursor"

    def __init__(self) -> None:
        super().__init__("the cursor is malformed or does not belong to this listing")


class InvalidFilter(InvalidInput):
    title = "Invalid filter"


class LimitExceeded(InvalidInput):
    title = "Limit exceeded"


class Unavailable(DomainError):
    """The request cannot be served now but may be a moment later (503, Retry-After)."""

    title = "Unavailable"


class StoreUnavailable(Unavailable):
    """The store cannot take writes right now (disk full, read-only); reads may go on."""

    title = "Store unavailable"


class NotLeader(Unavailable):
    """A write reached a node that is not the leader and cannot be forwarded: no leader is
    known, or the write was forwarded once already, or this node lost its lease."""

    title = "Not the leader"


class LeaderUnreachable(Unavailable):
    """A follower forwarded a write to the leader it knows and got no answer."""

    title = "Leader unreachable"

    def __init__(self, leader_url: str, reason: object) -> None:
        super().__init__(f"forwarding to {leader_url} failed: {reason}")


class ReplicaBehind(Unavailable):
    """A read asked for a log entry (``min_index``) that this node has not applied in time."""

    title = "Replica behind"

    def __init__(self, applied: int, wanted: int) -> None:
        super().__init__(f"this node has applied {applied}, not yet {wanted}")


class WriteNotAcknowledged(Unavailable):
    """A write committed on the leader but cannot be acknowledged: too few followers hold
    it yet, or the leader lost its lease before answering. The client may retry it."""

    title = "Write not acknowledged"


class KeywordIndexBuilding(Unavailable):
    """A keyword search on a library whose keyword index was just turned on (PATCH
    ``text_index``) and is still being built from its texts (503: retry shortly)."""

    title = "Keyword index building"

    def __init__(self, library_id: str) -> None:
        super().__init__(f"library {library_id!r} is still building its keyword index")


class NoEmbedder(InvalidInput):
    """Text must become a vector (a chunk without ``embedding``, ``POST .../embed``) in a
    library that has no embedder (422)."""

    title = "No embedder"


class EmbedderFailed(DomainError):
    """A remote embedder answered with an error, a malformed body or vectors of the wrong
    shape (502); nothing was written."""

    title = "Embedder failed"


class EmbedderTimedOut(EmbedderFailed):
    """A remote embedder did not answer in time, retries included (504)."""

    title = "Embedder timed out"
