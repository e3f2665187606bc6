"""The edges of HTTP on a real server: OPTIONS and Allow, requests the HTTP parser refuses,
cursors of the wrong listing, and what the served schema states about them.

The methods each path takes are read from the served OpenAPI document, the contract a
generated client is built from; the server must advertise exactly those of every template
the path matches (the router serves each method by any of them).
"""

from __future__ import annotations

import socket
from typing import Any

import httpx
import pytest

from tests.support.documented_methods import documented_methods
from tests.support.server import ServerProcess

pytestmark = pytest.mark.e2e

PROBLEM_JSON = "application/problem+json"


def allow_of(response: httpx.Response) -> set[str]:
    return {m.strip() for m in response.headers["allow"].split(",")}


def concrete(template: str) -> str:
    """A URL of the template, each path parameter an id no resource has."""
    path = template
    while "{" in path:
        start, end = path.index("{"), path.index("}")
        path = path[:start] + "no-such-id" + path[end + 1 :]
    return path


def test_options_on_every_path_answers_its_documented_methods(client: httpx.Client) -> None:
    document: dict[str, Any] = client.get("/openapi.json").json()
    assert document["paths"]
    for template in document["paths"]:
        path = concrete(template)
        response = client.options(path)
        assert response.status_code == 204, (template, response.text)
        assert allow_of(response) == documented_methods(document["paths"], path) | {"OPTIONS"}, (
            template
        )


def test_a_method_the_resource_does_not_take_is_a_405_naming_every_method_it_does(
    client: httpx.Client,
) -> None:
    cases = {
        ("DELETE", "/v1/libraries"): {"GET", "POST", "OPTIONS"},
        ("POST", "/v1/libraries/no-such-id"): {"GET", "PATCH", "DELETE", "OPTIONS"},
        ("PATCH", "/v1/libraries/no-such-id/index"): {"GET", "PUT", "OPTIONS"},
        ("PUT", "/v1/libraries/no-such-id/chunks"): {"GET", "POST", "OPTIONS"},
    }
    for (method, path), allowed in cases.items():
        response = client.request(method, path)
        assert response.status_code == 405, (method, path)
        assert response.headers["content-type"] == PROBLEM_JSON
        assert response.json()["status"] == 405
        assert allow_of(response) == allowed, (method, path)


@pytest.mark.parametrize(
    "tail", ["chunks/count", "chunks/delete", "chunks/batch", "documents/count"]
)
def test_a_static_path_that_is_also_an_item_id_allows_the_methods_of_both(
    client: httpx.Client, tail: str
) -> None:
    """``.../chunks/count`` is the count (POST) and the chunk whose id is "count" (the
    rest): Allow names both, every method in it is served, and the 405 names both too."""
    library = client.post("/v1/libraries", json={"name": "shadowed", "dimension": 2})
    assert library.status_code == 201, library.text
    path = f"/v1/libraries/{library.json()['id']}/{tail}"
    collection = tail.split("/")[0]
    expected = {
        "chunks": {"GET", "PUT", "PATCH", "DELETE", "OPTIONS"},
        "documents": {"GET", "PATCH", "DELETE", "OPTIONS"},
    }[collection] | {"POST"}
    allowed = allow_of(client.options(path))
    assert allowed == expected
    # The item named like the static path stays reachable: its route answers (a 404 for
    # the missing item, or a 422 for a body it validates before looking), never a 405.
    for method in sorted(allowed - {"POST", "OPTIONS"}):
        response = client.request(method, path, json={"metadata": {}})
        assert response.status_code in (404, 422), (method, response.text)
    refused = {"GET", "POST", "PUT", "PATCH", "DELETE"} - allowed
    for method in refused:
        response = client.request(method, path)
        assert response.status_code == 405, method
        assert response.headers["content-type"] == PROBLEM_JSON
        assert allow_of(response) == allowed


def raw_exchange(server: ServerProcess, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``request`` as bytes and read the whole answer (the server closes after a 400)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.endswith(b"}"):
            chunk = sock.recv(65_536)
            if not chunk:
                break
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines)}
    return int(status_line.split()[1]), headers, body


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GARBAGE\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
        b"GET /heal th HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /v1/libraries HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\n\r\n",
        b"POST /v1/libraries HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ],
    ids=[
        "no-request-line",
        "header-without-colon",
        "nul-in-header",
        "space-in-path",
        "bad-length",
        "bad-chunk",
    ],
)
def test_a_request_the_http_parser_refuses_is_answered_as_a_problem(
    server: ServerProcess, request_bytes: bytes
) -> None:
    status, headers, body = raw_exchange(server, request_bytes)
    assert status == 400
    assert headers["content-type"] == PROBLEM_JSON
    assert b'"status":400' in body


def test_a_websocket_upgrade_is_served_as_plain_http(server: ServerProcess) -> None:
    upgrade = (
        b"GET /v1/libraries/no-such-id HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
        b"Upgrade: websocket\r\n\r\n"
    )
    status, headers, body = raw_exchange(server, upgrade)
    assert b'"status":404' in body
    assert status == 404
    assert headers["content-type"] == PROBLEM_JSON


def test_a_cursor_of_another_listing_is_a_422_and_a_malformed_one_too(
    client: httpx.Client,
) -> None:
    for name in ("cursor-a", "cursor-b"):
        body = {"id": name, "name": name, "dimension": 2}
        assert client.post("/v1/libraries", json=body).status_code in (201, 409)
        for i in range(2):
            chunk = {"document_id": f"d{i}", "text": "t", "embedding": [1.0, float(i)]}
            assert client.post(f"/v1/libraries/{name}/chunks", json=chunk).status_code == 201
    page = client.get("/v1/libraries/cursor-a/chunks", params={"limit": 1}).json()
    cursor = page["next_cursor"]
    assert cursor is not None
    own = client.get("/v1/libraries/cursor-a/chunks", params={"limit": 1, "cursor": cursor})
    assert own.status_code == 200
    foreign = client.get("/v1/libraries/cursor-b/chunks", params={"cursor": cursor})
    assert foreign.status_code == 422
    assert foreign.json()["title"] == "Invalid cursor"
    for malformed in ("not/base64", "=" * 4, "x" * 257):
        answer = client.get("/v1/libraries/cursor-a/chunks", params={"cursor": malformed})
        assert answer.status_code == 422, malformed
        assert answer.headers["content-type"] == PROBLEM_JSON


def test_the_schema_states_filters_index_params_and_bounds(client: httpx.Client) -> None:
    document = client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    listing = document["paths"]["/v1/libraries/{library_id}/chunks"]["get"]["parameters"]
    (filter_query,) = [p for p in listing if p["name"] == "filter"]
    assert filter_query["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Filter"
    }
    search = schemas["SearchIn"]["properties"]
    assert {"$ref": "#/components/schemas/Filter"} in search["filter"]["anyOf"]
    put_index = document["paths"]["/v1/libraries/{library_id}/index"]["put"]
    union = put_index["requestBody"]["content"]["application/json"]["schema"]
    assert union["discriminator"]["propertyName"] == "type"
    assert set(union["discriminator"]["mapping"]) == {"flat", "ivf", "hnsw"}
    assert schemas["HnswParams"]["properties"]["m"]["maximum"] == 128
    assert schemas["HnswParams"]["additionalProperties"] is False
    assert search["params"]["$ref"].endswith("/SearchParamsIn")
    assert schemas["SearchParamsIn"]["properties"]["ef"]["anyOf"][0]["maximum"] == 4096
    embedding = schemas["ChunkUpdate"]["properties"]["embedding"]["anyOf"][0]
    assert embedding["minItems"] == 1
    assert embedding["maxItems"] == 4096  # the default max_dimension
    metadata = schemas["ChunkUpdate"]["properties"]["metadata"]["anyOf"][0]
    assert metadata["propertyNames"]["pattern"] == "^[^.]+$"


def test_a_null_filter_in_a_query_is_refused_not_read_as_no_filter(client: httpx.Client) -> None:
    assert client.post("/v1/libraries", json={"id": "null-filter", "name": "n", "dimension": 1})
    answer = client.get("/v1/libraries/null-filter/chunks", params={"filter": "null"})
    assert answer.status_code == 422
    assert answer.json()["title"] == "Invalid filter"
