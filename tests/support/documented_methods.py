"""Which methods an OpenAPI document gives a concrete path.

A path may be a URL of several templates (``.../chunks/count`` is the count and the chunk
whose id is "count"), and the server serves each method by any of them, so its methods are
those of every template it matches. Used by the end-to-end test of ``Allow`` and by the
fuzzer's hooks, which judge ``Allow`` by this union rather than by one template.
"""

from __future__ import annotations

from typing import Any

HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


def matches(template: str, path: str) -> bool:
    """Whether ``path`` is a URL of ``template`` (a parameter is any one segment)."""
    want, have = template.split("/"), path.split("/")
    return len(want) == len(have) and all(
        w == h or (w.startswith("{") and h != "") for w, h in zip(want, have, strict=True)
    )


def documented_methods(paths: dict[str, Any], path: str) -> set[str]:
    """The methods, upper case, of every template in ``paths`` (an OpenAPI document's
    ``paths``) that ``path`` matches."""
    return {
        method.upper()
        for template, item in paths.items()
        if matches(template, path)
        for method in item
        if method in HTTP_METHODS
    }
