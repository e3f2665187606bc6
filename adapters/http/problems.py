"""RFC 9457 problem details: every error leaves the API as ``application/problem+json``.

Domain exceptions are mapped to HTTP statuses here, once, so no endpoint catches them.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from adapters.http.schemas import Problem
from domain.errors import (
    Conflict,
    DomainError,
    InvalidInput,
    NotFound,
    NotLeader,
    StoreUnavailable,
)

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
PROBLEM_SCHEMA = "Problem"

# What a client may get from any route: a malformed body (400), a missing API key (401), a
# body over the size limit (413), a body or parameter that fails validation (422), a store
# that cannot take the request right now (503).
COMMON_PROBLEMS = (400, 401, 413, 422, 503)

_STATUS_BY_ERROR: list[tuple[type[DomainError], int]] = [
    (NotFound, status.HTTP_404_NOT_FOUND),
    (Conflict, status.HTTP_409_CONFLICT),
    (InvalidInput, status.HTTP_422_UNPROCESSABLE_CONTENT),
    (StoreUnavailable, status.HTTP_503_SERVICE_UNAVAILABLE),
    (NotLeader, status.HTTP_503_SERVICE_UNAVAILABLE),
]


def problem_response(
    status_code: int,
    title: str,
    detail: str,
    *,
    slug: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    slug = slug or _slug(title)
    body: dict[str, Any] = {
        "type": f"urn:stacksdb:problem:{slug}",
        "title": title,
        "status": status_code,
        "detail": detail,
        **extra,
    }
    return JSONResponse(body, status_code=status_code, media_type=PROBLEM_JSON, headers=headers)


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


def status_of(error: DomainError) -> int:
    for kind, code in _STATUS_BY_ERROR:
        if isinstance(error, kind):
            return code
    return status.HTTP_400_BAD_REQUEST


def install_problem_handlers(app: FastAPI) -> None:
    """Map every error to a problem+json answer, and put the ``Problem`` schema that
    ``problem_responses`` refers to into the app's OpenAPI document."""
    _document_problem_schema(app)

    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> JSONResponse:
        code = status_of(exc)
        headers = {"Retry-After": "1"} if code == status.HTTP_503_SERVICE_UNAVAILABLE else None
        extra = {k: v for k, v in exc.extra.items() if k not in {"type", "title", "status"}}
        return problem_response(
            code, exc.title, exc.detail, headers=headers, instance=request.url.path, **extra
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [_plain_error(e) for e in exc.errors()]
        if any(e["type"] == "json_invalid" for e in errors):
            return problem_response(
                status.HTTP_400_BAD_REQUEST,
                "Malformed JSON",
                "the request body is not valid JSON",
                instance=request.url.path,
                errors=errors,
            )
        first = errors[0] if errors else {"location": "body", "message": "invalid"}
        return problem_response(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "Validation failed",
            f"{first['location']}: {first['message']}"
            + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""),
            instance=request.url.path,
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = _TITLES.get(exc.status_code, "HTTP error")
        detail = exc.detail if isinstance(exc.detail, str) else title
        return problem_response(
            exc.status_code,
            title,
            detail,
            headers=dict(exc.headers) if exc.headers else None,
            instance=request.url.path,
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(
            status.HTTP_500_INTERNAL_SERVER_ERROR,
            "Internal server error",
            "the server failed to handle the request; it has been logged",
            instance=request.url.path,
        )


_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    404: "Not found",
    405: "Method not allowed",
    413: "Content too large",
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


def problem_bytes(status_code: int, title: str, detail: str) -> bytes:
    """A problem body for code that answers below FastAPI (ASGI middleware)."""
    return json.dumps(
        {
            "type": f"urn:stacksdb:problem:{_slug(title)}",
            "title": title,
            "status": status_code,
            "detail": detail,
        }
    ).encode()
