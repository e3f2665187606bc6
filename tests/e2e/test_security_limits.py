"""The optional API key and the body size limit, on real servers started with them set."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.server import ServerProcess, running_server

pytestmark = pytest.mark.e2e

API_KEY = "correct horse battery staple"
MAX_BODY = 2048
PROBLEM = "application/problem+json"
DIM = 4


def assert_problem(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"]


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data_dir = tmp_path_factory.mktemp("keyed") / "data"
    with running_server(data_dir, env={"STACKSDB_API_KEY": API_KEY}) as node:
        yield node


@pytest.fixture(scope="module")
def limited_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data_dir = tmp_path_factory.mktemp("limited") / "data"
    with running_server(data_dir, env={"STACKSDB_MAX_BODY_BYTES": str(MAX_BODY)}) as node:
        yield node


def every_route(server: ServerProcess) -> list[tuple[str, str]]:
    """(method, concrete path) for every operation in the OpenAPI schema, plus the
    operational routes and the schema itself."""
    schema = httpx.get(
        f"{server.url}/openapi.json", headers={"Authorization": f"Bearer {API_KEY}"}
    ).json()
    routes = [("GET", "/openapi.json"), ("GET", "/docs"), ("GET", "/no/such/route")]
    for path, operations in schema["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "x", path)
        routes.extend((method.upper(), concrete) for method in operations)
    return routes


def test_every_route_but_healthz_answers_401_without_the_right_key(
    keyed_server: ServerProcess,
) -> None:
    routes = every_route(keyed_server)
    assert ("POST", "/v1/libraries/x/search") in routes and ("GET", "/readyz") in routes
    wrong = [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": API_KEY},  # the key without the Bearer scheme
        {"Authorization": f"Bearer {API_KEY}x"},
        {"X-API-Key": API_KEY},
    ]
    with httpx.Client(base_url=keyed_server.url, timeout=30) as client:
        for method, path in routes:
            if path == "/healthz":
                continue
            for headers in wrong:
                response = client.request(method, path, headers=headers, json={})
                assert_problem(response, 401)
                assert response.headers["www-authenticate"] == "Bearer"
        assert client.get("/healthz").status_code == 200
        assert (
            client.get("/v1/libraries", headers={"Authorization": "Bearer wrong"}).json()["status"]
            == 401
        )


def test_with_the_key_every_kind_of_request_works(keyed_server: ServerProcess) -> None:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with httpx.Client(base_url=keyed_server.url, timeout=30, headers=headers) as client:
        created = client.post("/v1/libraries", json={"name": "private", "dimension": DIM})
        assert created.status_code == 201, created.text
        lid = created.json()["id"]
        chunk = {"id": "c", "document_id": "d", "text": "t", "embedding": [1.0, 0, 0, 0]}
        assert client.post(f"/v1/libraries/{lid}/chunks", json=chunk).status_code == 201
        hits = client.post(f"/v1/libraries/{lid}/search", json={"vector": [1.0, 0, 0, 0]})
        assert [h["chunk_id"] for h in hits.json()["results"]] == ["c"]
        assert client.get("/readyz").status_code == 200
        assert client.get("/metrics").status_code == 200
        assert client.get("/openapi.json").status_code == 200
        assert client.delete(f"/v1/libraries/{lid}").status_code == 204
        # A refused request changed nothing: without the key, a delete is a 401, not a 204.
        again = client.post("/v1/libraries", json={"id": "kept", "name": "k", "dimension": 2})
        assert again.status_code == 201
        assert httpx.delete(f"{keyed_server.url}/v1/libraries/kept").status_code == 401
        assert client.get("/v1/libraries/kept").status_code == 200


def big_batch(count: int) -> dict[str, Any]:
    return {
        "chunks": [
            {"id": f"c{i}", "document_id": "d", "text": "x" * 40, "embedding": [0.5] * DIM}
            for i in range(count)
        ]
    }


@pytest.fixture
def limited_library(limited_server: ServerProcess) -> Iterator[tuple[httpx.Client, str]]:
    with httpx.Client(base_url=limited_server.url, timeout=30) as client:
        created = client.post("/v1/libraries", json={"name": "small", "dimension": DIM})
        assert created.status_code == 201, created.text
        yield client, created.json()["id"]


def test_a_body_over_the_limit_is_413_and_changes_nothing(
    limited_library: tuple[httpx.Client, str],
) -> None:
    client, lid = limited_library
    body = big_batch(40)
    response = client.post(f"/v1/libraries/{lid}/chunks/batch", json=body)
    assert int(response.request.headers["content-length"]) > MAX_BODY
    assert_problem(response, 413)
    assert_problem(client.post("/v1/libraries", json={"name": "n" * MAX_BODY, "dimension": 2}), 413)
    library = client.get(f"/v1/libraries/{lid}").json()
    assert (library["chunk_count"], library["document_count"]) == (0, 0)
    assert [lib["id"] for lib in client.get("/v1/libraries").json()["items"]].count(lid) == 1


def test_a_streamed_body_without_a_length_is_cut_off_at_the_limit_with_413(
    limited_library: tuple[httpx.Client, str],
) -> None:
    client, lid = limited_library
    payload = httpx.Request("POST", "/", json=big_batch(40)).content

    def chunked() -> Iterator[bytes]:
        for start in range(0, len(payload), 512):
            yield payload[start : start + 512]

    response = client.post(
        f"/v1/libraries/{lid}/chunks/batch",
        content=chunked(),
        headers={"Content-Type": "application/json"},
    )
    assert "content-length" not in response.request.headers
    assert_problem(response, 413)
    assert client.get(f"/v1/libraries/{lid}").json()["chunk_count"] == 0


def test_a_body_under_the_limit_is_served(limited_library: tuple[httpx.Client, str]) -> None:
    client, lid = limited_library
    response = client.post(f"/v1/libraries/{lid}/chunks/batch", json=big_batch(5))
    assert response.status_code == 201, response.text
    assert client.get(f"/v1/libraries/{lid}").json()["chunk_count"] == 5


def test_a_request_the_http_parser_rejects_is_a_400_problem(
    limited_server: ServerProcess,
) -> None:
    # httptools cannot parse a URL over 65,535 bytes, so the answer comes from below the
    # app; httpx refuses to send such a URL, hence the raw socket.
    target = "/v1/libraries?filter=" + "x" * 70_000
    with socket.create_connection(("127.0.0.1", limited_server.port), timeout=30) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        raw = b""
        while chunk := sock.recv(65_536):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    assert lines[0] == "HTTP/1.1 400 Bad Request"
    assert headers["content-type"] == PROBLEM and headers["connection"] == "close"
    assert int(headers["content-length"]) == len(body)
    problem = json.loads(body)
    assert problem["status"] == 400 and problem["title"] and problem["detail"]
    assert httpx.get(f"{limited_server.url}/healthz").status_code == 200
