"""Which methods a resource takes: ``OPTIONS`` answers them, and every 405 lists them.

FastAPI makes one route per (path, method), and Starlette's 405 names only the methods of
the first route whose path matched, so ``DELETE /v1/libraries`` used to say ``Allow: GET``
though POST works too, and ``OPTIONS`` had no route at all. Here the methods are gathered
per path template once, when the app is built; a request path belongs to the most specific
template it matches (the one with fewest parameters, so ``.../chunks/count`` is not the
chunk whose id is "count"), as OpenAPI resolves concrete paths before templated ones.
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
IMPLICIT = ("OPTIONS",)
# The order methods are listed in, for answers that read the same every time.
_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


@dataclass(frozen=True)
class Resource:
    """One path template and the methods its routes take."""

    template: str
    pattern: re.Pattern[str]
    methods: frozenset[str]

    @property
    def allow(self) -> str:
        methods = self.methods | set(IMPLICIT)
        return ", ".join(m for m in _ORDER if m in methods)


def resources(routes: list[BaseRoute]) -> list[Resource]:
    """The app's resources, most specific first (fewest path parameters), from every
    route, those of included routers too."""
    methods: dict[str, set[str]] = {}
    for route in iter_route_contexts(routes):
        if route.path is not None and route.methods:
            methods.setdefault(route.path, set()).update(route.methods)
    found = [Resource(t, compile_path(t)[0], frozenset(m)) for t, m in methods.items()]
    return sorted(found, key=lambda r: r.template.count("{"))


def resource_of(table: list[Resource], path: str) -> Resource | None:
    return next((r for r in table if r.pattern.match(path)), None)


def _options_endpoint(allow: str) -> Callable[[], Awaitable[Response]]:
    async def options() -> Response:
        return Response(status_code=status.HTTP_204_NO_CONTENT, headers={"Allow": allow})

    return options


def install_allowed_methods(app: FastAPI) -> None:
    """Answer ``OPTIONS`` on every path with 204 and ``Allow``, and make every 405 carry
    the full ``Allow`` of its resource. Call after every router is included."""
    table = resources(app.routes)
    for resource in table:
        app.add_api_route(
            resource.template,
            _options_endpoint(resource.allow),
            methods=["OPTIONS"],
            include_in_schema=False,
            response_class=Response,
            name=f"options {resource.template}",
        )

    async def method_not_allowed(request: Request, exc: Exception) -> Response:
        resource = resource_of(table, request.url.path)
        detail = f"{request.method} is not allowed on {request.url.path}"
        headers = {"Allow": resource.allow} if resource else {}
        error = StarletteHTTPException(status.HTTP_405_METHOD_NOT_ALLOWED, detail, headers)
        return ProblemResponse(problem_of(error), request.url.path)

    app.add_exception_handler(status.HTTP_405_METHOD_NOT_ALLOWED, method_not_allowed)
