"""The call on a library's ``/embed``: its embedder's vectors for some texts."""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from stacksdb_client._calls.chunk_bodies import require_texts
from stacksdb_client._calls.common import library_path
from stacksdb_client._core import Call


def embed(library_id: str, texts: Sequence[str], purpose: str) -> Call[list[list[float]]]:
    """The library's embedder on ``texts``; it writes nothing, so it is always retryable."""

    def parse(response: httpx.Response) -> list[list[float]]:
        embeddings: list[list[float]] = response.json()["embeddings"]
        return embeddings

    require_texts(texts)
    body = {"texts": list(texts), "purpose": purpose}
    path = library_path(library_id, "embed")
    return Call("POST", path, parse, json=body, idempotent=True)
