"""RFC 9457 problem details: every error leaves the API as ``application/problem+json``.

This module is the one place where an error becomes an HTTP answer. ``RULES`` maps each
kind of error, domain (``domain.errors``) or HTTP-edge (``adapters.http.errors``), to its
status and headers; the title and detail are the error's own. ``ProblemResponse`` is the
one builder of the answer; the FastAPI exception handlers return it and ``send_problem``
sends it from ASGI middleware (API key, body size, cluster edge), so no endpoint or
middleware builds a problem of its own.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import Send

from adapters.http.errors import (
    BodyTooLarge,
    EdgeError,
    MalformedJson,
    Unauthorized,
    UnparsableRequest,
    ValidationFailed,
)
from adapters.http.schemas.common import Problem
from domain.errors import (
    Conflict,
    DomainError,
    EmbedderFailed,
    EmbedderTimedOut,
    InvalidInput,
    NotFound,
    Unavailable,
)

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
PROBLEM_SCHEMA = "Problem"
PROBLEM_TYPE = "urn:stacksdb:problem:"

# What a client may get from any route: a malformed body (400), a missing API key (401), a
# body over the size limit (413), a body or parameter that fails validation (422), a store
# that cannot take the request right now (503).
COMMON_PROBLEMS = (400, 401, 413, 422, 503)
# What a route that may embed text adds: its library's remote embedder failed or timed out.
EMBEDDER_PROBLEMS = (502, 504)


@dataclass(frozen=True)
class Rule:
    """Errors of ``kind`` (and its subclasses) answer ``status`` with these ``headers``."""

    kind: type[DomainError] | type[EdgeError]
    status: int
    headers: Mapping[str, str] = field(default_factory=dict)


RULES: tuple[Rule, ...] = (
    # Domain errors, by family; the error class names the title ("Library not found").
    Rule(NotFound, status.HTTP_404_NOT_FOUND),
    Rule(Conflict, status.HTTP_409_CONFLICT),
    Rule(InvalidInput, status.HTTP_422_UNPROCESSABLE_CONTENT),
    # Store refusing writes, not the leader, leader unreachable, replica behind ?min_index,
    # write not acknowledged by enough followers: the same request may succeed shortly.
    Rule(Unavailable, status.HTTP_503_SERVICE_UNAVAILABLE, {"Retry-After": "1"}),
    # A remote embedder that failed or timed out; nothing was written.
    Rule(EmbedderTimedOut, status.HTTP_504_GATEWAY_TIMEOUT),
    Rule(EmbedderFailed, status.HTTP_502_BAD_GATEWAY),
    Rule(DomainError, status.HTTP_400_BAD_REQUEST),
    # Conditions of the HTTP edge.
    Rule(Unauthorized, status.HTTP_401_UNAUTHORIZED, {"WWW-Authenticate": "Bearer"}),
    Rule(BodyTooLarge, status.HTTP_413_CONTENT_TOO_LARGE),
    Rule(MalformedJson, status.HTTP_400_BAD_REQUEST),
    Rule(UnparsableRequest, status.HTTP_400_BAD_REQUEST),
    Rule(ValidationFailed, status.HTTP_422_UNPROCESSABLE_CONTENT),
)
"""The one table from error to status. The first rule whose kind the error is wins, so a
subclass's rule must come before its base's."""

# Extra fields of an error that would overwrite the problem's own members are dropped.
_RESERVED = frozenset({"type", "title", "status", "detail", "instance"})


@dataclass(frozen=True)
class ProblemDetails:
    """One RFC 9457 problem: its status, members and response headers."""

    status: int
    title: str
    detail: str
    headers: Mapping[str, str] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)

    def body(self, instance: str | None = None) -> bytes:
        """The JSON body, encoded as Starlette's ``JSONResponse`` encodes."""
        members: dict[str, Any] = {
            "type": PROBLEM_TYPE + _slug(self.title),
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance is not None:
            members["instance"] = instance
        members.update((k, v) for k, v in self.extra.items() if k not in _RESERVED)
        return json.dumps(
            members, ensure_ascii=False, allow_nan=False, separators=(",", ":")
        ).encode()


class ProblemResponse(Response):
    """The one builder of a problem answer: body, ``application/problem+json``,
    Content-Length and the problem's headers (Retry-After, WWW-Authenticate, Allow...)."""

    media_type = PROBLEM_JSON

    def __init__(self, problem: ProblemDetails, instance: str | None = None) -> None:
        super().__init__(problem.body(instance), problem.status, headers=dict(problem.headers))


def problem_of(error: BaseException) -> ProblemDetails:
    """The problem that answers ``error``: by ``RULES`` for domain and edge errors, by
    status for Starlette's own (no route 404, 405 with Allow), else a 500."""
    if isinstance(error, RequestValidationError):
        error = _validation_error(error)
    for rule in RULES:
        if isinstance(error, rule.kind):
            return ProblemDetails(rule.status, error.title, error.detail, rule.headers, error.extra)
    if isinstance(error, StarletteHTTPException):
        title = _TITLES.get(error.status_code, "HTTP error")
        detail = error.detail if isinstance(error.detail, str) else title
        return ProblemDetails(error.status_code, title, detail, dict(error.headers or {}))
    return ProblemDetails(
        status.HTTP_500_INTERNAL_SERVER_ERROR,
        "Internal server error",
        "the server failed to handle the request; it has been logged",
    )


async def send_problem(send: Send, error: BaseException, *, instance: str | None = None) -> None:
    """Answer ``error`` as a problem from ASGI middleware, below FastAPI's handlers."""
    response = ProblemResponse(problem_of(error), instance)
    await send(
        {
            "type": "http.response.start",
            "status": response.status_code,
            "headers": response.raw_headers,
        }
    )
    await send({"type": "http.response.body", "body": response.body})


def problem_response(
    status_code: int, title: str, detail: str, *, instance: str | None = None
) -> ProblemResponse:
    """A problem that is not an error raised anywhere (for example readiness: "Not ready")."""
    return ProblemResponse(ProblemDetails(status_code, title, detail), instance)


def problem_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these statuses, each an ``application/problem+json`` body.

    Declaring 422 here also replaces FastAPI's default 422 (``application/json``,
    ``HTTPValidationError``), which is not what the handlers below send.
    """
    content = {PROBLEM_JSON: {"schema": {"$ref": f"#/components/schemas/{PROBLEM_SCHEMA}"}}}
    responses: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        response: dict[str, Any] = {"description": _describe(code), "content": content}
        if code == status.HTTP_503_SERVICE_UNAVAILABLE:
            response["headers"] = {
                "Retry-After": {
                    "description": "Seconds to wait before retrying.",
                    "schema": {"type": "integer"},
                }
            }
        responses[code] = response
    return responses


def install_problem_handlers(app: FastAPI) -> None:
    """Map every error to a problem+json answer, and put the ``Problem`` schema that
    ``problem_responses`` refers to into the app's OpenAPI document."""
    _document_problem_schema(app)

    async def answer(request: Request, exc: Exception) -> Response:
        return ProblemResponse(problem_of(exc), request.url.path)

    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return await answer(request, exc)

    for kind in (DomainError, EdgeError, RequestValidationError, StarletteHTTPException):
        app.add_exception_handler(kind, answer)
    app.add_exception_handler(Exception, unexpected)


def _validation_error(exc: RequestValidationError) -> MalformedJson | ValidationFailed:
    errors = [_plain_error(e) for e in exc.errors()]
    if any(e["type"] == "json_invalid" for e in errors):
        return MalformedJson("the request body is not valid JSON", errors=errors)
    first = errors[0] if errors else {"location": "body", "message": "invalid"}
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return ValidationFailed(f"{first['location']}: {first['message']}{more}", errors=errors)


# Titles of the HTTPExceptions Starlette and FastAPI raise themselves: no route (404), a
# method the route does not take (405, with Allow), a body FastAPI cannot read (400).
_TITLES = {
    400: "Bad request",
    404: "Not found",
    405: "Method not allowed",
    415: "Unsupported media type",
}

_DESCRIPTIONS = {
    400: "Malformed JSON",
    401: "Missing or wrong API key",
    404: "Unknown library, document or chunk",
    409: "The id already exists",
    413: "The body is over the size limit",
    422: "The body or a parameter fails validation or a limit",
    503: "The store cannot serve the request now; retry after Retry-After seconds",
    502: "The library's remote embedder failed; nothing was written",
    504: "The library's remote embedder did not answer in time; nothing was written",
}


def _describe(code: int) -> str:
    return _DESCRIPTIONS.get(code) or _TITLES.get(code, "Problem")


def _schema_ref(response: dict[str, Any]) -> str:
    """The ``$ref`` of a response's application/json schema, or ""."""
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    return str(schema.get("$ref", ""))


def _document_problem_schema(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = get_openapi(
            title=app.title,
            version=app.version,
            openapi_version=app.openapi_version,
            description=app.description,
            routes=app.routes,
            tags=app.openapi_tags,
            servers=app.servers,
        )
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        schemas[PROBLEM_SCHEMA] = Problem.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
        # A route that declares no 422 gets FastAPI's default (application/json,
        # HTTPValidationError), and one declared with ``"model": Problem`` is filed under
        # application/json; what the handlers send in both cases is problem+json.
        for path_item in document.get("paths", {}).values():
            for operation in path_item.values():
                for code, response in operation.get("responses", {}).items():
                    if code == "422" and _schema_ref(response).endswith("/HTTPValidationError"):
                        operation["responses"][code] = problem_responses(422)[422]
                    elif _schema_ref(response).endswith(f"/{PROBLEM_SCHEMA}"):
                        content = response["content"]
                        content[PROBLEM_JSON] = content.pop("application/json")
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override


def _plain_error(error: Any) -> dict[str, Any]:
    """A JSON-safe summary of one Pydantic error with a dotted location."""
    loc = [str(part) for part in error.get("loc", ())]
    if loc and loc[0] in {"body", "query", "path", "header"}:
        where = loc[0] + "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in loc[1:])
    else:
        where = ".".join(loc) or "body"
    message = str(error.get("msg", "invalid"))
    return {"location": where, "message": message, "type": str(error.get("type", "invalid"))}


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
