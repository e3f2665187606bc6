"""Typed exceptions: one class per kind of failure, carrying the RFC 9457 problem fields.

::

    StacksDBError
    ├── APIError                 the server answered with an error status
    │   ├── ValidationError      400, 422 (and PayloadTooLargeError, 413)
    │   ├── AuthError            401, 403
    │   ├── NotFoundError        404
    │   ├── ConflictError        409
    │   └── ServerError          5xx (and UnavailableError, 503)
    ├── UnreachableError         no answer: refused, reset, DNS... (also a ConnectionError)
    ├── RequestTimeoutError      no answer in time (also a TimeoutError)
    ├── WaitTimeoutError         wait_for_index gave up (also a TimeoutError)
    └── IndexBuildError          the index build failed on the server
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from stacksdb_client.models import IndexStatus

_PROBLEM_KEYS = frozenset({"type", "title", "status", "detail", "instance", "errors"})


class StacksDBError(Exception):
    """Base of every error the client raises."""


class APIError(StacksDBError):
    """The server answered with an error status.

    ``type``, ``title``, ``status``, ``detail``, ``instance`` and ``errors`` are the
    problem+json fields; ``extra`` holds the other fields of the problem (for example
    ``library_id`` or ``expected``/``got`` of a dimension mismatch); ``problem`` is the whole
    body as sent and ``headers`` the answer's headers.
    """

    def __init__(
        self,
        *,
        status: int,
        title: str,
        detail: str,
        type: str = "about:blank",
        instance: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        extra: dict[str, Any] | None = None,
        problem: dict[str, Any] | None = None,
        method: str = "",
        url: str = "",
        headers: dict[str, str] | None = None,
    ) -> None:
        where = f" ({method} {url})" if method else ""
        super().__init__(f"{status} {title}: {detail}{where}")
        self.status = status
        self.title = title
        self.detail = detail
        self.type = type
        self.instance = instance
        self.errors = errors or []
        self.extra = extra or {}
        self.problem = problem or {}
        self.method = method
        self.url = url
        self.headers = headers or {}


class ValidationError(APIError):
    """400 (malformed request), 422 (a body that breaks a rule: wrong dimension, bad filter)."""


class PayloadTooLargeError(ValidationError):
    """413: the body is over the server's size limit; send smaller batches."""


class AuthError(APIError):
    """401 or 403: the API key is missing or wrong."""


class NotFoundError(APIError):
    """404: no such library, document or chunk."""


class ConflictError(APIError):
    """409: an id that already exists."""


class ServerError(APIError):
    """5xx: the server failed; not the request's fault."""


class UnavailableError(ServerError):
    """503: the node cannot serve right now (store read-only, not the leader, not caught up
    with ``X-StacksDB-Min-Index``). Retried for idempotent requests before it is raised."""


class UnreachableError(StacksDBError, ConnectionError):
    """The server could not be reached or dropped the connection, after the retries."""

    def __init__(self, url: str, cause: Exception) -> None:
        reason = str(cause) or type(cause).__name__
        super().__init__(f"cannot reach the StacksDB server at {url}: {reason}")
        self.url = url


class RequestTimeoutError(StacksDBError, TimeoutError):
    """The server did not answer within the client's timeout, after the retries."""

    def __init__(self, url: str, cause: Exception) -> None:
        reason = str(cause) or type(cause).__name__
        super().__init__(f"the StacksDB server at {url} did not answer in time: {reason}")
        self.url = url


class WaitTimeoutError(StacksDBError, TimeoutError):
    """``wait_for_index`` gave up before the index was ready."""


class IndexBuildError(StacksDBError):
    """The last index build failed; ``status.error`` says why. The previous index (if any)
    keeps answering searches."""

    def __init__(self, status: IndexStatus) -> None:
        super().__init__(f"building the {status.type} index failed: {status.error}")
        self.status = status


def _class_for(status: int) -> type[APIError]:
    if status == 413:
        return PayloadTooLargeError
    if status in (400, 422):
        return ValidationError
    if status in (401, 403):
        return AuthError
    if status == 404:
        return NotFoundError
    if status == 409:
        return ConflictError
    if status == 503:
        return UnavailableError
    if status >= 500:
        return ServerError
    return APIError


def error_from_response(response: httpx.Response) -> APIError:
    """The typed exception for an error answer, from its problem+json body when it has one
    (a proxy's HTML page still gives a useful message)."""
    status = response.status_code
    problem: dict[str, Any] = {}
    try:
        body = json.loads(response.content) if response.content else {}
        if isinstance(body, dict):
            problem = body
    except ValueError:
        pass
    detail = problem.get("detail")
    if not isinstance(detail, str):
        detail = response.text[:500] or response.reason_phrase
    raw_errors = problem.get("errors")
    errors = [e for e in raw_errors if isinstance(e, dict)] if isinstance(raw_errors, list) else []
    request = response.request
    return _class_for(status)(
        status=status,
        title=str(problem.get("title") or response.reason_phrase or "HTTP error"),
        detail=detail,
        type=str(problem.get("type") or "about:blank"),
        instance=problem.get("instance") if isinstance(problem.get("instance"), str) else None,
        errors=errors,
        extra={k: v for k, v in problem.items() if k not in _PROBLEM_KEYS},
        problem=problem,
        method=request.method,
        url=str(request.url),
        headers=dict(response.headers),
    )
