"""The configured ``Limits`` stated in the OpenAPI document.

FastAPI binds a route's request models and parameters when its module is imported, before
any settings are read, so a schema cannot carry ``le=limits.max_k`` without building every
router (and re-wiring its dependencies) per app. Instead a bounded field names the limit
(``bounded_by("max_k", "maximum")``); the services enforce it (``Limits.check_*``, a 422
problem), and ``document_limits`` writes the configured value into the document through
FastAPI's documented ``app.openapi`` override. Validation and schema read the same value.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from domain.limits import Limits

_MARK = "x-stacksdb-limit"


def bounded_by(limit: str, keyword: str) -> dict[str, Any]:
    """``json_schema_extra`` for a value bounded by ``Limits.<limit>``, stated as the JSON
    Schema ``keyword`` (maximum, maxItems, maxLength, maxProperties)."""
    if limit not in Limits.model_fields:
        raise ValueError(f"Limits has no field {limit!r}")
    return {_MARK: {keyword: limit}}


def state_limits(document: Any, limits: Limits) -> None:
    """Replace, in place, every ``bounded_by`` mark in ``document`` with the bound it names."""
    if isinstance(document, list):
        for item in document:
            state_limits(item, limits)
        return
    if not isinstance(document, dict):
        return
    marks = document.pop(_MARK, {})
    for keyword, limit in marks.items():
        document[keyword] = getattr(limits, limit)
    for value in document.values():
        state_limits(value, limits)


def document_limits(app: FastAPI, limits: Limits) -> None:
    """Make ``app``'s OpenAPI document state ``limits`` (wraps whatever ``app.openapi`` is;
    install it after the other overrides)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        document = build()
        state_limits(document, limits)
        return document

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override
