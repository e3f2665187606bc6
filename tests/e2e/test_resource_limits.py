"""Every configurable bound on a request, on a real server started with small limits.

Each limit is set through its STACKSDB_* variable. A request just at the limit is served;
one past it is a 422 problem that names the limit, and changes nothing: the library's
counts, listings and search answers are what they were. (The body size limit, a 413, is
covered in test_security_limits.py.)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.server import ServerProcess, running_server

pytestmark = pytest.mark.e2e

PROBLEM_JSON = "application/problem+json"
MAX_K = 5
MAX_BATCH = 3
MAX_DIMENSION = 16
MAX_TEXT = 100
MAX_METADATA_BYTES = 128
MAX_FILTER_DEPTH = 3
DIM = 4

LIMITS_ENV = {
    "STACKSDB_MAX_K": str(MAX_K),
    "STACKSDB_MAX_BATCH": str(MAX_BATCH),
    "STACKSDB_MAX_DIMENSION": str(MAX_DIMENSION),
    "STACKSDB_MAX_TEXT_LENGTH": str(MAX_TEXT),
    "STACKSDB_MAX_METADATA_BYTES": str(MAX_METADATA_BYTES),
    "STACKSDB_MAX_FILTER_DEPTH": str(MAX_FILTER_DEPTH),
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data_dir = tmp_path_factory.mktemp("limits") / "data"
    with running_server(data_dir, env=LIMITS_ENV) as node:
        yield node


@pytest.fixture
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


@pytest.fixture
def library(http: httpx.Client) -> str:
    """A library holding one chunk, so that "changes nothing" has something to keep."""
    created = http.post("/v1/libraries", json={"name": "limits", "dimension": DIM})
    assert created.status_code == 201, created.text
    library_id: str = created.json()["id"]
    first = chunk("c0")
    assert http.post(f"/v1/libraries/{library_id}/chunks", json=first).status_code == 201
    return library_id


def chunk(chunk_id: str, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": chunk_id,
        "document_id": "doc",
        "text": f"text of {chunk_id}",
        "embedding": [1.0, 0.0, 0.0, 0.0],
    }
    body.update(fields)
    return body


def snapshot(http: httpx.Client, library_id: str) -> dict[str, Any]:
    """What a client can see of a library: counts, metadata, chunks and a search."""
    library = http.get(f"/v1/libraries/{library_id}").json()
    chunks = http.get(
        f"/v1/libraries/{library_id}/chunks", params={"include_embedding": True}
    ).json()
    hits = http.post(
        f"/v1/libraries/{library_id}/search", json={"vector": [1.0, 0.0, 0.0, 0.0], "k": MAX_K}
    ).json()
    return {
        "counts": (library["document_count"], library["chunk_count"]),
        "library": {k: library[k] for k in ("name", "metadata", "updated_at")},
        "chunks": [(c["id"], c["text"], c["embedding"], c["metadata"]) for c in chunks["items"]],
        "hits": [h["chunk_id"] for h in hits["results"]],
    }


def assert_limit_problem(response: httpx.Response, *, names: str) -> None:
    """A 422 problem+json whose detail quotes the configured limit."""
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body = response.json()
    assert body["status"] == 422 and body["type"] and body["title"]
    assert names in body["detail"], body


def test_k_over_the_limit_is_422_and_k_at_the_limit_is_served(
    http: httpx.Client, library: str
) -> None:
    url = f"/v1/libraries/{library}/search"
    at_limit = http.post(url, json={"vector": [1.0, 0.0, 0.0, 0.0], "k": MAX_K})
    assert at_limit.status_code == 200, at_limit.text

    over = http.post(url, json={"vector": [1.0, 0.0, 0.0, 0.0], "k": MAX_K + 1})

    assert_limit_problem(over, names=str(MAX_K))


def test_a_batch_over_the_limit_is_422_and_writes_none_of_its_chunks(
    http: httpx.Client, library: str
) -> None:
    before = snapshot(http, library)
    url = f"/v1/libraries/{library}/chunks/batch"

    over = http.post(url, json={"chunks": [chunk(f"b{i}") for i in range(MAX_BATCH + 1)]})

    assert_limit_problem(over, names=str(MAX_BATCH))
    assert snapshot(http, library) == before
    at_limit = http.post(url, json={"chunks": [chunk(f"b{i}") for i in range(MAX_BATCH)]})
    assert at_limit.status_code == 201, at_limit.text


def test_a_document_created_with_more_chunks_than_a_batch_holds_is_422_and_not_created(
    http: httpx.Client, library: str
) -> None:
    before = snapshot(http, library)
    chunks = [{k: v for k, v in chunk(f"d{i}").items() if k != "document_id"} for i in range(4)]

    over = http.post(f"/v1/libraries/{library}/documents", json={"id": "big", "chunks": chunks})

    assert_limit_problem(over, names=str(MAX_BATCH))
    assert http.get(f"/v1/libraries/{library}/documents/big").status_code == 404
    assert snapshot(http, library) == before


def test_a_library_over_the_dimension_limit_is_422_and_not_created(http: httpx.Client) -> None:
    count = len(http.get("/v1/libraries", params={"limit": 1000}).json()["items"])

    over = http.post(
        "/v1/libraries", json={"id": "too-wide", "name": "w", "dimension": MAX_DIMENSION + 1}
    )

    assert_limit_problem(over, names=str(MAX_DIMENSION))
    assert http.get("/v1/libraries/too-wide").status_code == 404
    assert len(http.get("/v1/libraries", params={"limit": 1000}).json()["items"]) == count
    at_limit = http.post("/v1/libraries", json={"name": "w", "dimension": MAX_DIMENSION})
    assert at_limit.status_code == 201, at_limit.text


@pytest.mark.parametrize("route", ["create", "put", "patch", "batch"])
def test_text_over_the_limit_is_422_on_every_write_route_and_changes_nothing(
    http: httpx.Client, library: str, route: str
) -> None:
    before = snapshot(http, library)
    long_text = "x" * (MAX_TEXT + 1)

    over = write_chunk(http, library, route, text=long_text)

    assert_limit_problem(over, names=str(MAX_TEXT))
    assert snapshot(http, library) == before
    assert write_chunk(http, library, route, text="x" * MAX_TEXT).status_code in (200, 201)


@pytest.mark.parametrize("route", ["create", "put", "patch", "batch"])
def test_metadata_over_the_byte_limit_is_422_on_every_write_route_and_changes_nothing(
    http: httpx.Client, library: str, route: str
) -> None:
    before = snapshot(http, library)

    over = write_chunk(http, library, route, metadata={"note": "y" * MAX_METADATA_BYTES})

    assert_limit_problem(over, names=str(MAX_METADATA_BYTES))
    assert snapshot(http, library) == before


def test_library_and_document_metadata_over_the_byte_limit_are_422_and_change_nothing(
    http: httpx.Client, library: str
) -> None:
    before = snapshot(http, library)
    big = {"note": "z" * MAX_METADATA_BYTES}

    patched_library = http.patch(f"/v1/libraries/{library}", json={"metadata": big})
    patched_document = http.patch(f"/v1/libraries/{library}/documents/doc", json={"metadata": big})
    created_document = http.post(
        f"/v1/libraries/{library}/documents", json={"id": "meta", "metadata": big}
    )

    for response in (patched_library, patched_document, created_document):
        assert_limit_problem(response, names=str(MAX_METADATA_BYTES))
    assert snapshot(http, library) == before
    assert http.get(f"/v1/libraries/{library}/documents/doc").json()["metadata"] == {}
    assert http.get(f"/v1/libraries/{library}/documents/meta").status_code == 404


@pytest.mark.parametrize(
    "metadata",
    [{"nested": {"a": 1}}, {"list": [[1, 2]]}, {"list": [{"a": 1}]}],
    ids=["object", "list-of-lists", "list-of-objects"],
)
def test_nested_metadata_is_422_and_changes_nothing(
    http: httpx.Client, library: str, metadata: dict[str, Any]
) -> None:
    before = snapshot(http, library)

    response = http.post(f"/v1/libraries/{library}/chunks", json=chunk("nested", metadata=metadata))

    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert snapshot(http, library) == before


def nested_filter(depth: int) -> dict[str, Any]:
    """A filter ``depth`` levels deep: nots around one leaf."""
    node: dict[str, Any] = {"field": "document_id", "op": "eq", "value": "doc"}
    for _ in range(depth - 1):
        node = {"not": node}
    return node


def test_a_filter_over_the_depth_limit_is_422_and_one_at_the_limit_is_served(
    http: httpx.Client, library: str
) -> None:
    url = f"/v1/libraries/{library}/search"
    query: dict[str, Any] = {"vector": [1.0, 0.0, 0.0, 0.0], "k": 1}

    at_limit = http.post(url, json={**query, "filter": nested_filter(MAX_FILTER_DEPTH)})
    over = http.post(url, json={**query, "filter": nested_filter(MAX_FILTER_DEPTH + 1)})

    assert at_limit.status_code == 200, at_limit.text
    assert_limit_problem(over, names=str(MAX_FILTER_DEPTH))


def write_chunk(http: httpx.Client, library: str, route: str, **fields: Any) -> httpx.Response:
    """Write chunk ``w`` through one of the four chunk write routes. ``patch`` targets the
    existing chunk ``c0`` and sends only ``fields``."""
    base = f"/v1/libraries/{library}/chunks"
    if route == "create":
        return http.post(base, json=chunk("w", **fields))
    if route == "put":
        body = {k: v for k, v in chunk("w", **fields).items() if k != "id"}
        return http.put(f"{base}/w", json=body)
    if route == "patch":
        return http.patch(f"{base}/c0", json=fields)
    return http.post(f"{base}/batch", json={"chunks": [chunk("w", **fields)], "mode": "upsert"})
