"""What every call is made of: the path it names, a body without its absent fields, and the
parser that reads its answer into a model."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from stacksdb_client.models import Page, _Listing

M = TypeVar("M", bound=BaseModel)

LIBRARIES = "/v1/libraries"


def segment(value: str) -> str:
    """An id as one escaped path segment; an empty one would name the collection instead."""
    if not value:
        raise ValueError("an id must not be empty")
    return quote(value, safe="")


def library_path(library_id: str, *below: str) -> str:
    """The path of a library, or of what lies below it: ``library_path(lib, "chunks", id)``.
    Every part is one escaped segment, so an id may hold any character, ``/`` too."""
    return "/".join([LIBRARIES, *(segment(part) for part in (library_id, *below))])


def parse_model(cls: type[M]) -> Callable[[httpx.Response], M]:
    def parse(response: httpx.Response) -> M:
        return cls.model_validate_json(response.content)

    return parse


def parse_page(cls: type[M]) -> Callable[[httpx.Response], Page[M]]:
    def parse(response: httpx.Response) -> Page[M]:
        # Pydantic parametrises a generic model with a runtime class; mypy cannot follow a
        # type variable used as a type argument at runtime.
        listing = _Listing[cls].model_validate_json(response.content)  # type: ignore[valid-type]
        return Page(items=list(listing.items), next_cursor=listing.next_cursor)

    return parse


def without_none(**fields: Any) -> dict[str, Any]:
    """A body of the fields given: None means "not sent", so the server's default applies."""
    return {k: v for k, v in fields.items() if v is not None}


def as_dict(mapping: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A mapping as a JSON object (any ``Mapping``, not only a dict, may be passed in)."""
    return dict(mapping) if mapping is not None else None
