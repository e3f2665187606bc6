"""The REST contract of ../shared/API.md, route by route, against a real uvicorn server."""

from __future__ import annotations

import json
from typing import Any

import httpx
import numpy as np
import pytest

pytestmark = pytest.mark.e2e

DIM = 8
PROBLEM = "application/problem+json"


def vec(seed: int) -> list[float]:
    return [float(x) for x in np.random.default_rng(seed).standard_normal(DIM)]


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"].startswith("urn:stacksdb:problem:")
    assert body["title"] and body["detail"]
    return body


@pytest.fixture
def library(client: httpx.Client) -> dict[str, Any]:
    response = client.post("/v1/libraries", json={"name": "papers", "dimension": DIM})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def test_create_library_answers_the_library_with_defaults(client: httpx.Client) -> None:
    response = client.post(
        "/v1/libraries",
        json={"name": "docs", "dimension": 4, "metadata": {"team": "ir"}, "description": "d"},
    )
    assert response.status_code == 201
    lib = response.json()
    assert lib["metric"] == "cosine"
    assert lib["index"]["type"] == "flat"
    assert lib["index"]["state"] == "ready"
    assert lib["document_count"] == 0 and lib["chunk_count"] == 0
    assert lib["metadata"] == {"team": "ir"}
    assert lib["created_at"].endswith("Z") or lib["created_at"].endswith("+00:00")


def test_client_supplied_library_id_is_idempotent_and_conflicts_on_reuse(
    client: httpx.Client,
) -> None:
    first = client.post("/v1/libraries", json={"id": "my-lib", "name": "a", "dimension": 3})
    assert first.status_code == 201
    assert first.json()["id"] == "my-lib"
    again = client.post("/v1/libraries", json={"id": "my-lib", "name": "b", "dimension": 3})
    assert_problem(again, 409)
    assert client.get("/v1/libraries/my-lib").json()["name"] == "a"


def test_list_libraries_pages_with_an_opaque_cursor(client: httpx.Client) -> None:
    created = {
        client.post("/v1/libraries", json={"name": f"p{i}", "dimension": 2}).json()["id"]
        for i in range(5)
    }
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/v1/libraries", params=params).json()
        assert len(page["items"]) <= 2
        seen.extend(item["id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert created <= set(seen)
    assert len(seen) == len(set(seen))


def test_bad_cursor_and_bad_limit_are_422(client: httpx.Client) -> None:
    assert_problem(client.get("/v1/libraries", params={"cursor": "garbage!"}), 422)
    assert_problem(client.get("/v1/libraries", params={"limit": 0}), 422)
    assert_problem(client.get("/v1/libraries", params={"limit": 100000}), 422)


def test_patch_library_changes_only_given_fields(
    client: httpx.Client, library: dict[str, Any]
) -> None:
    response = client.patch(f"/v1/libraries/{library['id']}", json={"description": "new"})
    assert response.status_code == 200
    body = response.json()
    assert body["description"] == "new"
    assert body["name"] == library["name"]
    assert body["updated_at"] >= library["updated_at"]


def test_delete_library_takes_its_documents_and_chunks(
    client: httpx.Client, library: dict[str, Any]
) -> None:
    lid = library["id"]
    client.post(
        f"/v1/libraries/{lid}/chunks", json={"document_id": "d", "text": "t", "embedding": vec(1)}
    )
    assert client.delete(f"/v1/libraries/{lid}").status_code == 204
    assert_problem(client.get(f"/v1/libraries/{lid}"), 404)
    assert_problem(client.get(f"/v1/libraries/{lid}/documents/d"), 404)
    assert_problem(client.delete(f"/v1/libraries/{lid}"), 404)


def test_documents_crud_with_inline_chunks(client: httpx.Client, library: dict[str, Any]) -> None:
    lid = library["id"]
    response = client.post(
        f"/v1/libraries/{lid}/documents",
        json={
            "id": "doc-1",
            "metadata": {"source": "arxiv"},
            "chunks": [
                {"id": "c1", "text": "one", "embedding": vec(1)},
                {"text": "two", "embedding": vec(2), "metadata": {"page": 2}},
            ],
        },
    )
    assert response.status_code == 201, response.text
    doc = response.json()
    assert doc["id"] == "doc-1" and doc["chunk_count"] == 2
    assert client.get(f"/v1/libraries/{lid}/documents/doc-1").json()["metadata"] == {
        "source": "arxiv"
    }
    patched = client.patch(f"/v1/libraries/{lid}/documents/doc-1", json={"metadata": {"v": 2}})
    assert patched.json()["metadata"] == {"v": 2}
    listing = client.get(f"/v1/libraries/{lid}/documents").json()
    assert [d["id"] for d in listing["items"]] == ["doc-1"]
    assert listing["next_cursor"] is None
    lib = client.get(f"/v1/libraries/{lid}").json()
    assert lib["document_count"] == 1 and lib["chunk_count"] == 2
    assert_problem(client.post(f"/v1/libraries/{lid}/documents", json={"id": "doc-1"}), 409)
    assert client.delete(f"/v1/libraries/{lid}/documents/doc-1").status_code == 204
    assert_problem(client.get(f"/v1/libraries/{lid}/chunks/c1"), 404)
    assert client.get(f"/v1/libraries/{lid}").json()["chunk_count"] == 0


def test_a_chunk_naming_a_new_document_creates_it(
    client: httpx.Client, library: dict[str, Any]
) -> None:
    lid = library["id"]
    response = client.post(
        f"/v1/libraries/{lid}/chunks",
        json={"id": "c", "document_id": "fresh", "text": "hello", "embedding": vec(3)},
    )
    assert response.status_code == 201
    chunk = response.json()
    assert chunk["document_id"] == "fresh"
    assert chunk["embedding"] == pytest.approx(vec(3), rel=1e-6)
    assert client.get(f"/v1/libraries/{lid}/documents/fresh").json()["chunk_count"] == 1


def test_chunk_crud_patch_put_and_delete(client: httpx.Client, library: dict[str, Any]) -> None:
    lid = library["id"]
    base = f"/v1/libraries/{lid}/chunks"
    client.post(base, json={"id": "c", "document_id": "d", "text": "a", "embedding": vec(1)})
    patched = client.patch(f"{base}/c", json={"metadata": {"k": "v"}, "text": "b"})
    assert patched.status_code == 200
    assert patched.json()["text"] == "b" and patched.json()["metadata"] == {"k": "v"}
    replaced = client.put(f"{base}/c", json={"document_id": "d", "text": "c", "embedding": vec(2)})
    assert replaced.status_code == 200
    assert replaced.json()["created_at"] == patched.json()["created_at"]
    created = client.put(f"{base}/new", json={"document_id": "d", "text": "n", "embedding": vec(4)})
    assert created.status_code == 201
    assert client.delete(f"{base}/c").status_code == 204
    assert_problem(client.delete(f"{base}/c"), 404)
    assert_problem(client.patch(f"{base}/c", json={"text": "x"}), 404)


def test_batch_is_all_or_nothing(client: httpx.Client, library: dict[str, Any]) -> None:
    lid = library["id"]
    good = [
        {"id": f"b{i}", "document_id": "d", "text": str(i), "embedding": vec(i)} for i in range(5)
    ]
    response = client.post(f"/v1/libraries/{lid}/chunks/batch", json={"chunks": good})
    assert response.status_code == 201
    assert len(response.json()["items"]) == 5
    bad = [
        {"id": "n1", "document_id": "d2", "text": "x", "embedding": vec(9)},
        {"id": "n2", "document_id": "d2", "text": "y", "embedding": vec(9)[:3]},
    ]
    body = assert_problem(
        client.post(f"/v1/libraries/{lid}/chunks/batch", json={"chunks": bad}), 422
    )
    assert "chunks[1].embedding" in body["detail"]
    clash = [
        {"id": "n3", "document_id": "d3", "text": "x", "embedding": vec(9)},
        {"id": "b0", "document_id": "d3", "text": "y", "embedding": vec(9)},
    ]
    assert_problem(client.post(f"/v1/libraries/{lid}/chunks/batch", json={"chunks": clash}), 409)
    for missing in ("n1", "n3"):
        assert_problem(client.get(f"/v1/libraries/{lid}/chunks/{missing}"), 404)
    assert_problem(client.get(f"/v1/libraries/{lid}/documents/d3"), 404)
    upsert = client.post(
        f"/v1/libraries/{lid}/chunks/batch", json={"chunks": clash, "mode": "upsert"}
    )
    assert upsert.status_code == 201
    assert client.get(f"/v1/libraries/{lid}").json()["chunk_count"] == 6


def test_list_chunks_by_document_with_and_without_embeddings(
    client: httpx.Client, library: dict[str, Any]
) -> None:
    lid = library["id"]
    chunks = [
        {
            "id": f"c{i}",
            "document_id": "even" if i % 2 == 0 else "odd",
            "text": str(i),
            "embedding": vec(i),
        }
        for i in range(7)
    ]
    client.post(f"/v1/libraries/{lid}/chunks/batch", json={"chunks": chunks})
    page = client.get(
        f"/v1/libraries/{lid}/chunks", params={"document_id": "even", "limit": 3}
    ).json()
    assert [c["id"] for c in page["items"]] == ["c0", "c2", "c4"]
    assert "embedding" not in page["items"][0]
    rest = client.get(
        f"/v1/libraries/{lid}/chunks",
        params={
            "document_id": "even",
            "limit": 3,
            "cursor": page["next_cursor"],
            "include_embedding": True,
        },
    ).json()
    assert [c["id"] for c in rest["items"]] == ["c6"]
    assert rest["next_cursor"] is None
    assert len(rest["items"][0]["embedding"]) == DIM


def test_search_returns_nearest_first_with_requested_fields(
    client: httpx.Client, library: dict[str, Any]
) -> None:
    lid = library["id"]
    chunks = [
        {
            "id": f"c{i}",
            "document_id": "d",
            "text": f"text {i}",
            "embedding": vec(i),
            "metadata": {"i": i},
        }
        for i in range(20)
    ]
    client.post(f"/v1/libraries/{lid}/chunks/batch", json={"chunks": chunks})
    response = client.post(
        f"/v1/libraries/{lid}/search",
        json={"vector": vec(7), "k": 3, "include": ["text", "metadata", "embedding"]},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["index"] == "flat"
    top = body["results"][0]
    assert top["chunk_id"] == "c7" and top["score"] == pytest.approx(1.0, abs=1e-5)
    assert top["text"] == "text 7" and top["metadata"] == {"i": 7}
    assert len(top["embedding"]) == DIM
    scores = [r["score"] for r in body["results"]]
    assert scores == sorted(scores, reverse=True)
    plain = client.post(f"/v1/libraries/{lid}/search", json={"vector": vec(7), "k": 2}).json()
    assert "text" not in plain["results"][0] and "metadata" in plain["results"][0]


def test_l2_scores_are_distances_lowest_first(client: httpx.Client) -> None:
    lib = client.post("/v1/libraries", json={"name": "l2", "dimension": 2, "metric": "l2"}).json()
    points = {"a": [0.0, 0.0], "b": [3.0, 4.0], "c": [1.0, 0.0]}
    client.post(
        f"/v1/libraries/{lib['id']}/chunks/batch",
        json={
            "chunks": [
                {"id": k, "document_id": "d", "text": k, "embedding": v} for k, v in points.items()
            ]
        },
    )
    results = client.post(
        f"/v1/libraries/{lib['id']}/search", json={"vector": [0.0, 0.0], "k": 3}
    ).json()["results"]
    assert [r["chunk_id"] for r in results] == ["a", "c", "b"]
    assert [r["score"] for r in results] == pytest.approx([0.0, 1.0, 5.0])


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"vector": [1.0, 2.0], "k": 3}, "vector"),
        ({"vector": [0.0] * DIM, "k": 0}, "k"),
        ({"vector": [0.0] * DIM, "k": 100_000}, "k"),
        ({"vector": [0.0] * DIM, "unknown": 1}, "unknown"),
        ({"vector": [0.0] * DIM, "include": ["nope"]}, "include"),
        ({"vector": "not a list"}, "vector"),
    ],
)
def test_search_rejects_bad_bodies_with_422(
    client: httpx.Client, library: dict[str, Any], body: dict[str, Any], where: str
) -> None:
    problem = assert_problem(client.post(f"/v1/libraries/{library['id']}/search", json=body), 422)
    assert where in json.dumps(problem)


def test_nan_and_infinity_in_an_embedding_are_422(
    client: httpx.Client, library: dict[str, Any]
) -> None:
    lid = library["id"]
    for token in ("NaN", "Infinity", "-Infinity"):
        raw = '{"document_id": "d", "text": "x", "embedding": [' + token + ", 1, 1, 1, 1, 1, 1, 1]}"
        response = client.post(
            f"/v1/libraries/{lid}/chunks", content=raw, headers={"content-type": "application/json"}
        )
        assert_problem(response, 422)
    assert client.get(f"/v1/libraries/{lid}").json()["chunk_count"] == 0


def test_malformed_json_is_a_400_problem(client: httpx.Client, library: dict[str, Any]) -> None:
    response = client.post(
        f"/v1/libraries/{library['id']}/chunks",
        content=b'{"document_id": ',
        headers={"content-type": "application/json"},
    )
    assert_problem(response, 400)


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "dimension": 0},
        {"name": "x", "dimension": 8, "metric": "manhattan"},
        {"name": "x", "dimension": 8, "index": {"type": "annoy"}},
        {"name": "x", "dimension": 8, "index": {"type": "hnsw", "params": {"m": 1}}},
        {"name": "x", "dimension": 8, "index": {"type": "flat", "params": {"nlist": 3}}},
        {"name": "", "dimension": 8},
        {"name": "x", "dimension": 8, "metadata": {"nested": {"a": 1}}},
        {"name": "x", "dimension": 8, "id": "bad id with spaces"},
        {"dimension": 8},
    ],
)
def test_create_library_rejects_invalid_bodies(client: httpx.Client, body: dict[str, Any]) -> None:
    before = client.get("/v1/libraries", params={"limit": 1000}).json()["items"]
    assert_problem(client.post("/v1/libraries", json=body), 422)
    after = client.get("/v1/libraries", params={"limit": 1000}).json()["items"]
    assert len(after) == len(before)


def test_unknown_ids_are_404_problems(client: httpx.Client, library: dict[str, Any]) -> None:
    lid = library["id"]
    for path in (
        "/v1/libraries/nope",
        "/v1/libraries/nope/index",
        f"/v1/libraries/{lid}/documents/nope",
        f"/v1/libraries/{lid}/chunks/nope",
        "/v1/nothing-here",
    ):
        assert_problem(client.get(path), 404)
    assert_problem(client.post("/v1/libraries/nope/search", json={"vector": [0.0] * DIM}), 404)


def test_wrong_method_is_a_405_problem(client: httpx.Client) -> None:
    assert_problem(client.put("/v1/libraries"), 405)


def test_index_can_be_read_and_rebuilt(client: httpx.Client, library: dict[str, Any]) -> None:
    lid = library["id"]
    client.post(
        f"/v1/libraries/{lid}/chunks/batch",
        json={
            "chunks": [{"document_id": "d", "text": "t", "embedding": vec(i)} for i in range(10)]
        },
    )
    status = client.get(f"/v1/libraries/{lid}/index").json()
    assert status["type"] == "flat" and status["vector_count"] == 10
    accepted = client.put(f"/v1/libraries/{lid}/index", json={"type": "flat"})
    assert accepted.status_code == 202
    assert accepted.json()["type"] == "flat"
    assert_problem(
        client.put(f"/v1/libraries/{lid}/index", json={"type": "ivf", "params": {"bogus": 1}}), 422
    )


def test_operations_endpoints(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "alive"}
    assert client.get("/readyz").json() == {"status": "ready"}
    client.get("/v1/libraries")
    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    assert (
        'stacksdb_http_requests_total{method="GET",route="/v1/libraries",status="200"}'
        in metrics.text
    )
    assert "stacksdb_http_request_duration_seconds_bucket" in metrics.text
    assert "stacksdb_library_vectors" in metrics.text


def test_openapi_schema_lists_every_route(client: httpx.Client) -> None:
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    for path in (
        "/v1/libraries",
        "/v1/libraries/{library_id}",
        "/v1/libraries/{library_id}/documents",
        "/v1/libraries/{library_id}/documents/{document_id}",
        "/v1/libraries/{library_id}/chunks",
        "/v1/libraries/{library_id}/chunks/batch",
        "/v1/libraries/{library_id}/chunks/{chunk_id}",
        "/v1/libraries/{library_id}/index",
        "/v1/libraries/{library_id}/search",
    ):
        assert path in paths
