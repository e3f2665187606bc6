"""The calls on a library's ``/index``: its build status, and a background (re)build."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stacksdb_client._calls.common import library_path, parse_model
from stacksdb_client._core import Call
from stacksdb_client.models import IndexStatus


def index_status(library_id: str) -> Call[IndexStatus]:
    path = library_path(library_id, "index")
    return Call("GET", path, parse_model(IndexStatus), idempotent=True, read=True)


def build_index(library_id: str, type: str, params: Mapping[str, Any]) -> Call[IndexStatus]:
    path = library_path(library_id, "index")
    body = {"type": type, "params": dict(params)}
    return Call("PUT", path, parse_model(IndexStatus), json=body, idempotent=True)
