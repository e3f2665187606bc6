"""JSON responses encoded with orjson, for routes on the search hot path.

A route that returns a Pydantic model (``response_model=SearchOut``) has FastAPI validate
that model again and then dump it; for a sync route the validation runs in the thread pool,
a second hand-over between the event loop and a worker thread on every request, beside the
one that runs the endpoint. A route that returns a ``Response`` skips both: FastAPI sends it
as it is and still documents ``response_model`` in the OpenAPI schema. The body is built as
plain dicts and lists of the shape the model declares and encoded by orjson.

orjson writes integers only up to 64 bits; chunk metadata may hold larger ones, and then the
body goes through the declared model, which Pydantic writes like any other.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Response, status
from pydantic import BaseModel

JSON = "application/json"


def json_response(
    content: Any, model: type[BaseModel], status_code: int = status.HTTP_200_OK
) -> Response:
    """``content`` (dicts, lists, str, int, float, bool, None) as an ``application/json``
    response; it must be what ``model`` would serialise to, which is only checked when
    orjson cannot encode it."""
    try:
        body = orjson.dumps(content)
    except orjson.JSONEncodeError:
        body = model.model_validate(content).model_dump_json().encode()
    return Response(body, status_code=status_code, media_type=JSON)
