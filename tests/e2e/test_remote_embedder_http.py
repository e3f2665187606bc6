"""A library with a remote embedder, end to end: a real server embeds text-only chunks
through a local OpenAI-compatible (or Cohere) server before the commit, answers a failing
provider with 502/504 problem+json and writes nothing, and never shows the key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.support.fake_embedders import FakeEmbeddingServer, Reply, text_vector
from tests.support.server import ServerProcess, running_server

KEY_ENV = "STACKSDB_E2E_EMBED_KEY"
KEY = "sk-e2e-s3cret-value-9f7a"
DIM = 8
# Fast failures: one request may take 1 s, two retries, waits of at most 0.2 s.
EMBEDDER_ENV = {
    KEY_ENV: KEY,
    "STACKSDB_EMBEDDER_TIMEOUT": "1",
    "STACKSDB_EMBEDDER_RETRIES": "2",
    "STACKSDB_EMBEDDER_MAX_WAIT": "0.2",
}


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeEmbeddingServer]:
    fake = FakeEmbeddingServer(dimension=DIM).start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data_dir: Path = tmp_path_factory.mktemp("embed") / "data"
    with running_server(data_dir, env=EMBEDDER_ENV) as server:
        yield server


class Recorder(httpx.Client):
    """A client that keeps every answer body, to check that none shows the key."""

    def __init__(self, base_url: str) -> None:
        super().__init__(base_url=base_url, timeout=30, event_hooks={"response": [self._keep]})
        self.bodies: list[bytes] = []

    def _keep(self, response: httpx.Response) -> None:
        response.read()
        self.bodies.append(response.content + str(response.headers).encode())


@pytest.fixture
def client(node: ServerProcess) -> Iterator[Recorder]:
    with Recorder(node.url) as http:
        yield http
        for body in http.bodies:
            assert KEY.encode() not in body


def openai_spec(provider: FakeEmbeddingServer) -> dict[str, Any]:
    return {
        "provider": "openai",
        "url": f"{provider.url}/v1",
        "model": "fake-embed",
        "api_key_env": KEY_ENV,
    }


def new_library(client: httpx.Client, embedder: dict[str, Any], **extra: Any) -> dict[str, Any]:
    answer = client.post("/v1/libraries", json={"name": "texts", "embedder": embedder, **extra})
    assert answer.status_code == 201, answer.text
    library: dict[str, Any] = answer.json()
    return library


def stored(client: httpx.Client, library_id: str, chunk_id: str) -> np.ndarray:
    answer = client.get(f"/v1/libraries/{library_id}/chunks/{chunk_id}")
    assert answer.status_code == 200, answer.text
    return np.array(answer.json()["embedding"], dtype=np.float32)


def truth(text: str, input_type: str = "") -> np.ndarray:
    return text_vector(text, DIM, input_type).astype(np.float32)


def chunk_count(client: httpx.Client, library_id: str) -> int:
    count: int = client.get(f"/v1/libraries/{library_id}").json()["chunk_count"]
    return count


def test_a_library_takes_its_dimension_from_the_embedder_and_shows_the_spec(
    client: Recorder, provider: FakeEmbeddingServer
) -> None:
    library = new_library(client, openai_spec(provider))
    assert library["dimension"] == DIM
    assert library["embedder"] == openai_spec(provider)
    clash = client.post(
        "/v1/libraries", json={"name": "x", "dimension": DIM + 1, "embedder": openai_spec(provider)}
    )
    assert clash.status_code == 422
    assert clash.json()["location"] == "dimension"
    no_dimension = client.post("/v1/libraries", json={"name": "plain"})
    assert no_dimension.status_code == 422


def test_every_write_without_an_embedding_is_embedded_on_the_way_in(
    client: Recorder, provider: FakeEmbeddingServer
) -> None:
    library_id = new_library(client, openai_spec(provider))["id"]
    base = f"/v1/libraries/{library_id}"
    assert (
        client.post(
            f"{base}/chunks", json={"id": "one", "document_id": "d", "text": "single"}
        ).status_code
        == 201
    )
    batch = [{"id": f"b{i}", "document_id": "d", "text": f"batch text {i}"} for i in range(5)]
    assert client.post(f"{base}/chunks/batch", json={"chunks": batch}).status_code == 201
    assert (
        client.put(f"{base}/chunks/put", json={"document_id": "d", "text": "put text"}).status_code
        == 201
    )
    document = {"id": "doc2", "chunks": [{"id": "inside", "text": "in a document"}]}
    assert client.post(f"{base}/documents", json=document).status_code == 201
    given = [float(i) for i in range(DIM)]
    mixed = {"id": "given", "document_id": "d", "text": "has its own", "embedding": given}
    assert client.post(f"{base}/chunks", json=mixed).status_code == 201

    assert np.array_equal(stored(client, library_id, "one"), truth("single"))
    for i in range(5):
        assert np.array_equal(stored(client, library_id, f"b{i}"), truth(f"batch text {i}"))
    assert np.array_equal(stored(client, library_id, "put"), truth("put text"))
    assert np.array_equal(stored(client, library_id, "inside"), truth("in a document"))
    assert np.array_equal(stored(client, library_id, "given"), np.array(given, dtype=np.float32))

    patched = client.patch(f"{base}/chunks/one", json={"text": "single, rewritten"})
    assert patched.status_code == 200
    assert np.array_equal(stored(client, library_id, "one"), truth("single, rewritten"))
    client.patch(f"{base}/chunks/one", json={"metadata": {"k": 1}})
    assert np.array_equal(stored(client, library_id, "one"), truth("single, rewritten"))


def test_embed_answers_the_vectors_the_server_would_store(
    client: Recorder, provider: FakeEmbeddingServer
) -> None:
    library_id = new_library(client, openai_spec(provider))["id"]
    answer = client.post(f"/v1/libraries/{library_id}/embed", json={"texts": ["a", "b c"]})
    assert answer.status_code == 200
    vectors = np.array(answer.json()["embeddings"], dtype=np.float32)
    assert np.array_equal(vectors, np.stack([truth("a"), truth("b c")]))


def test_cohere_embeds_chunks_as_documents_and_embed_queries_as_queries(
    client: Recorder, provider: FakeEmbeddingServer
) -> None:
    spec = {"provider": "cohere", "model": "embed-v3", "url": provider.url, "api_key_env": KEY_ENV}
    library_id = new_library(client, spec)["id"]
    base = f"/v1/libraries/{library_id}"
    client.post(f"{base}/chunks", json={"id": "c", "document_id": "d", "text": "passage"})
    assert np.array_equal(stored(client, library_id, "c"), truth("passage", "search_document"))
    query = client.post(f"{base}/embed", json={"texts": ["passage"], "purpose": "query"})
    assert np.array_equal(
        np.array(query.json()["embeddings"][0], dtype=np.float32), truth("passage", "search_query")
    )


FAILURES = [
    ([Reply(500)] * 3, 502, "Embedder failed"),
    ([Reply(body=b'{"data": 7}')], 502, "Embedder failed"),
    ([Reply(dimension=DIM + 2)], 502, "Embedder failed"),
    ([Reply(delay=2.5)] * 3, 504, "Embedder timed out"),
]


@pytest.mark.parametrize(("replies", "status", "title"), FAILURES)
def test_a_failing_provider_is_a_problem_and_nothing_is_written(
    client: Recorder,
    provider: FakeEmbeddingServer,
    replies: list[Reply],
    status: int,
    title: str,
) -> None:
    library_id = new_library(client, openai_spec(provider))["id"]
    base = f"/v1/libraries/{library_id}"
    client.post(f"{base}/chunks", json={"id": "before", "document_id": "d", "text": "kept"})
    provider.fail_next(*replies)
    batch = [{"id": f"x{i}", "document_id": "new-doc", "text": f"lost {i}"} for i in range(3)]
    answer = client.post(f"{base}/chunks/batch", json={"chunks": batch})
    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["title"] == title
    assert chunk_count(client, library_id) == 1
    assert client.get(f"{base}/documents/new-doc").status_code == 404
    assert client.get(f"{base}/chunks/x0").status_code == 404


def test_429_with_retry_after_is_waited_out(
    client: Recorder, provider: FakeEmbeddingServer
) -> None:
    library_id = new_library(client, openai_spec(provider))["id"]
    provider.fail_next(Reply(429, {"Retry-After": "0.1"}))
    answer = client.post(
        f"/v1/libraries/{library_id}/chunks", json={"id": "c", "document_id": "d", "text": "late"}
    )
    assert answer.status_code == 201
    assert np.array_equal(stored(client, library_id, "c"), truth("late"))


def test_without_an_embedder_text_alone_is_a_422(client: Recorder) -> None:
    library = client.post("/v1/libraries", json={"name": "vectors", "dimension": DIM}).json()
    base = f"/v1/libraries/{library['id']}"
    assert library["embedder"] is None
    answer = client.post(f"{base}/chunks", json={"document_id": "d", "text": "no vector"})
    assert answer.status_code == 422
    assert answer.json()["location"] == "chunk[0].embedding"
    assert client.post(f"{base}/embed", json={"texts": ["x"]}).status_code == 422


def test_the_key_never_reaches_an_answer_or_the_log(
    client: Recorder, provider: FakeEmbeddingServer, node: ServerProcess
) -> None:
    library_id = new_library(client, openai_spec(provider))["id"]
    echo = f'{{"error": {{"message": "bad key {KEY}"}}}}'.encode()
    provider.fail_next(Reply(401, body=echo), Reply(400, body=echo))
    for _ in range(2):
        answer = client.post(f"/v1/libraries/{library_id}/embed", json={"texts": ["x"]})
        assert answer.status_code == 502
    assert provider.requests[-1].headers["Authorization"] == f"Bearer {KEY}"
    assert node.log_path is not None
    assert KEY not in node.log_path.read_text(errors="replace")


def test_a_library_is_not_created_when_its_embedder_cannot_answer(
    client: Recorder, provider: FakeEmbeddingServer
) -> None:
    before = client.get("/v1/libraries", params={"limit": 1000}).json()["items"]
    provider.fail_next(*[Reply(503)] * 3)
    down = client.post(
        "/v1/libraries",
        json={"name": "down", "embedder": {**openai_spec(provider), "model": "new"}},
    )
    assert down.status_code == 502
    assert down.headers["content-type"] == "application/problem+json"
    unset = {**openai_spec(provider), "model": "other", "api_key_env": "STACKSDB_E2E_UNSET_KEY"}
    missing = client.post("/v1/libraries", json={"name": "no key", "embedder": unset})
    assert missing.status_code == 502
    assert "STACKSDB_E2E_UNSET_KEY" in missing.json()["detail"]
    after = client.get("/v1/libraries", params={"limit": 1000}).json()["items"]
    assert len(after) == len(before)


@pytest.mark.parametrize(("replies", "status", "title"), FAILURES)
def test_a_query_the_provider_cannot_embed_is_a_documented_problem(
    client: Recorder,
    provider: FakeEmbeddingServer,
    replies: list[Reply],
    status: int,
    title: str,
) -> None:
    # The search routes used to leave 502 and 504 out of the OpenAPI document, so a client
    # (or schemathesis) saw an undocumented status when the query could not be embedded.
    library_id = new_library(client, openai_spec(provider))["id"]
    base = f"/v1/libraries/{library_id}"
    operations = client.get("/openapi.json").json()["paths"]
    for path, body in [
        ("/search", {"query": "lost"}),
        ("/search/batch", {"searches": [{"query": "lost", "mode": "vector"}]}),
    ]:
        provider.fail_next(*replies)
        answer = client.post(f"{base}{path}", json=body)
        assert answer.status_code == status, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["title"] == title
        documented = operations[f"/v1/libraries/{{library_id}}{path}"]["post"]["responses"]
        assert "application/problem+json" in documented[str(status)]["content"]
