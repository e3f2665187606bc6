"""Which methods a path takes: ``OPTIONS`` answers them, and every 405 lists them.

FastAPI makes one route per (path, method), and Starlette's 405 names only the methods of
the first route whose path matched, so ``DELETE /v1/libraries`` used to say ``Allow: GET``
though POST works too, and ``OPTIONS`` had no route at all. Here the methods are gathered
per path template once, when the app is built. A concrete path may match several
templates, and the router serves each method by any of them: ``.../chunks/count`` takes
POST (count) and GET, PUT, PATCH and DELETE (the chunk whose id is "count", which must stay
reachable). So ``Allow`` is the union of the methods of every template the path matches.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import FastAPI, Request, status
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import BaseRoute, compile_path

from adapters.http.problems import ProblemResponse, problem_of

# Answered for every path by the routes this module adds.
IMPLICIT = frozenset({"OPTIONS"})
# The order methods are listed in, for answers that read the same every time.
_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


@dataclass(frozen=True)
class Resource:
    """One path template and the methods its routes take."""

    template: str
    pattern: re.Pattern[str]
    methods: frozenset[str]


def resources(routes: list[BaseRoute]) -> list[Resource]:
    """The app's resources, from every route, those of included routers too."""
    methods: dict[str, set[str]] = {}
    for route in iter_route_contexts(routes):
        if route.path is not None and route.methods:
            methods.setdefault(route.path, set()).update(route.methods)
    return [Resource(t, compile_path(t)[0], frozenset(m)) for t, m in methods.items()]


def allow_of(table: list[Resource], path: str) -> str:
    """The ``Allow`` value of ``path``: the methods of every template it matches. (Only
    a path some route matched reaches ``OPTIONS`` or a 405, so there is at least one.)"""
    methods = IMPLICIT.union(*(r.methods for r in table if r.pattern.match(path)))
    return ", ".join(m for m in _ORDER if m in methods)


def _options_endpoint(table: list[Resource]) -> Callable[[Request], Awaitable[Response]]:
    async def options(request: Request) -> Response:
        allow = allow_of(table, request.url.path)
        return Response(status_code=status.HTTP_204_NO_CONTENT, headers={"Allow": allow})

    return options


def install_allowed_methods(app: FastAPI) -> None:
    """Answer ``OPTIONS`` on every path with 204 and ``Allow``, and make every 405 carry
    the full ``Allow`` of its path. Call after every router is included."""
    table = resources(app.routes)
    options = _options_endpoint(table)
    for resource in table:
        app.add_api_route(
            resource.template,
            options,
            methods=["OPTIONS"],
            include_in_schema=False,
            response_class=Response,
            name=f"options {resource.template}",
        )

    async def method_not_allowed(request: Request, exc: Exception) -> Response:
        detail = f"{request.method} is not allowed on {request.url.path}"
        headers = {"Allow": allow_of(table, request.url.path)}
        error = StarletteHTTPException(status.HTTP_405_METHOD_NOT_ALLOWED, detail, headers)
        return ProblemResponse(problem_of(error), request.url.path)

    app.add_exception_handler(status.HTTP_405_METHOD_NOT_ALLOWED, method_not_allowed)
