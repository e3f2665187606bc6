"""Errors only the HTTP edge raises: what is wrong with a request before any domain rule
sees it (a key, a size, a body that does not parse). Domain errors live in
``domain.errors``; ``adapters.http.problems`` maps both kinds to problem+json answers.
"""

from __future__ import annotations

from typing import Any, ClassVar

from fastapi import status
from starlette.exceptions import HTTPException


class EdgeError(Exception):
    """Base of every error the HTTP edge raises on purpose; shaped like ``DomainError``:
    a stable ``title``, a specific ``detail`` and ``extra`` fields for the client."""

    title: ClassVar[str] = "Bad request"

    def __init__(self, detail: str, **extra: Any) -> None:
        # Not super(): BodyTooLarge is also an HTTPException, whose __init__ takes a status.
        Exception.__init__(self, detail)
        self.detail = detail
        self.extra = extra


class Unauthorized(EdgeError):
    """The API key is set and the request does not carry it."""

    title = "Unauthorized"

    def __init__(self) -> None:
        super().__init__("a valid 'Authorization: Bearer <api key>' header is required")


class BodyTooLarge(EdgeError, HTTPException):
    """A body over the size limit, by its Content-Length or as it streams in.

    Also an ``HTTPException``, because FastAPI turns any other error met while reading a
    body into a 400 but lets this one through to the app's exception handler."""

    title = "Content too large"

    def __init__(self, max_bytes: int) -> None:
        detail = f"the request body is over the limit of {max_bytes} bytes"
        EdgeError.__init__(self, detail)
        HTTPException.__init__(self, status.HTTP_413_CONTENT_TOO_LARGE, detail)


class UnparsableRequest(EdgeError):
    """The HTTP parser rejected the request below the app (a URL over 65,535 bytes)."""

    title = "Bad request"

    def __init__(self, reason: str) -> None:
        super().__init__(f"the HTTP request could not be parsed: {reason}")


class MalformedJson(EdgeError):
    """The body is not valid JSON."""

    title = "Malformed JSON"


class ValidationFailed(EdgeError):
    """A body or parameter that is valid JSON but fails its schema."""

    title = "Validation failed"
