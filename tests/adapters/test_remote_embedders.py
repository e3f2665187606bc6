"""The OpenAI-compatible and Cohere embedders against local servers that speak each API's
documented shapes: rows in order, batching at the provider's limit, purposes, keys from the
environment, retries on 429 (Retry-After) and 5xx, timeouts, and malformed answers."""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.embedders.cohere import COHERE_BATCH, cohere_embedder
from adapters.embedders.openai import OPENAI_BATCH, OpenAiWire, openai_embedder
from adapters.embedders.remote import PROBE_TEXT, RemoteEmbedder, RetryPolicy
from domain.embedding import CohereSpec, OpenAiSpec, Purpose
from domain.errors import EmbedderFailed, EmbedderTimedOut
from tests.support.fake_embedders import (
    COHERE_PATH,
    OPENAI_PATH,
    FakeEmbeddingServer,
    Reply,
    fake_embedding_server,
    text_vector,
)

KEY_ENV = "STACKSDB_TEST_EMBED_KEY"
KEY = "sk-test-5ecret-k3y-never-echoed"
FAST = RetryPolicy(timeout=2.0, retries=2, backoff=0.01, max_wait=0.05)


@pytest.fixture
def server() -> Iterator[FakeEmbeddingServer]:
    with fake_embedding_server(dimension=8) as fake:
        yield fake


@pytest.fixture(autouse=True)
def key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)


def openai(server: FakeEmbeddingServer, policy: RetryPolicy = FAST) -> RemoteEmbedder:
    spec = OpenAiSpec(url=f"{server.url}/v1", model="text-embedding-3-small", api_key_env=KEY_ENV)
    return openai_embedder(spec, policy)


def cohere(server: FakeEmbeddingServer, policy: RetryPolicy = FAST) -> RemoteEmbedder:
    spec = CohereSpec(url=server.url, model="embed-english-v3.0", api_key_env=KEY_ENV)
    return cohere_embedder(spec, policy)


def expected(texts: list[str], dimension: int = 8, input_type: str = "") -> np.ndarray:
    return np.array([text_vector(t, dimension, input_type) for t in texts], dtype=np.float32)


def test_openai_rows_come_back_in_text_order_though_sent_reversed(
    server: FakeEmbeddingServer,
) -> None:
    texts = [f"text number {i}" for i in range(5)]
    matrix = openai(server).embed(texts, Purpose.DOCUMENT)
    assert matrix.dtype == np.float32 and matrix.flags.c_contiguous
    assert np.array_equal(matrix, expected(texts))
    (request,) = server.requests
    assert request.path == OPENAI_PATH
    assert request.body == {"model": "text-embedding-3-small", "input": texts}
    assert request.headers["Authorization"] == f"Bearer {KEY}"


def test_openai_batches_at_2048_inputs(server: FakeEmbeddingServer) -> None:
    texts = [f"t{i}" for i in range(OPENAI_BATCH + 3)]
    matrix = openai(server).embed(texts, Purpose.DOCUMENT)
    assert [len(r.body["input"]) for r in server.requests] == [OPENAI_BATCH, 3]
    assert np.array_equal(matrix, expected(texts))


def test_cohere_sends_input_type_by_purpose_and_batches_at_96(
    server: FakeEmbeddingServer,
) -> None:
    embedder = cohere(server)
    texts = [f"passage {i}" for i in range(COHERE_BATCH + 1)]
    documents = embedder.embed(texts, Purpose.DOCUMENT)
    query = embedder.embed(["what is a passage"], Purpose.QUERY)
    assert np.array_equal(documents, expected(texts, input_type="search_document"))
    assert np.array_equal(query, expected(["what is a passage"], input_type="search_query"))
    bodies = [r.body for r in server.requests]
    assert [r.path for r in server.requests] == [COHERE_PATH] * 3
    assert [len(b["texts"]) for b in bodies] == [COHERE_BATCH, 1, 1]
    assert [b["input_type"] for b in bodies] == ["search_document"] * 2 + ["search_query"]
    assert all(
        b["embedding_types"] == ["float"] and b["model"] == "embed-english-v3.0" for b in bodies
    )


def test_dimension_is_learned_from_a_probe_once(server: FakeEmbeddingServer) -> None:
    embedder = openai(server)
    assert embedder.dimension == 8
    assert embedder.dimension == 8
    assert [r.body["input"] for r in server.requests] == [[PROBE_TEXT]]


def test_a_later_answer_of_another_dimension_fails(server: FakeEmbeddingServer) -> None:
    embedder = openai(server)
    embedder.embed(["a"], Purpose.DOCUMENT)
    server.fail_next(Reply(dimension=5))
    with pytest.raises(EmbedderFailed, match="5-dimensional"):
        embedder.embed(["b"], Purpose.DOCUMENT)


def recording_waits(
    server: FakeEmbeddingServer, policy: RetryPolicy
) -> tuple[RemoteEmbedder, list[float]]:
    """An OpenAI embedder whose waits between attempts are recorded instead of slept."""
    waits: list[float] = []
    url = f"{server.url}{OPENAI_PATH}"
    embedder = RemoteEmbedder("openai:m", url, OpenAiWire("m"), KEY_ENV, policy, sleep=waits.append)
    return embedder, waits


def test_429_waits_what_retry_after_asks_within_the_bound(server: FakeEmbeddingServer) -> None:
    policy = RetryPolicy(timeout=2.0, retries=3, backoff=0.01, max_wait=5.0)
    embedder, waits = recording_waits(server, policy)
    server.fail_next(
        Reply(429, {"Retry-After": "2"}), Reply(429, {"Retry-After": "60"}), Reply(503)
    )
    matrix = embedder.embed(["x"], Purpose.DOCUMENT)
    assert np.array_equal(matrix, expected(["x"]))
    # 2 s as asked; 60 s cut to max_wait; the 503 has no Retry-After: backoff * 2**2.
    assert waits == [2.0, 5.0, 0.04]
    assert len(server.requests) == 4


def test_5xx_until_the_retries_run_out_fails_with_the_status(server: FakeEmbeddingServer) -> None:
    embedder, waits = recording_waits(server, FAST)
    server.fail_next(Reply(500), Reply(502), Reply(503))
    with pytest.raises(EmbedderFailed) as failed:
        embedder.embed(["x"], Purpose.DOCUMENT)
    assert not isinstance(failed.value, EmbedderTimedOut)
    assert "503 (3 attempts)" in failed.value.detail
    assert len(server.requests) == 3 and len(waits) == 2


def test_a_4xx_other_than_429_is_not_retried_and_never_quotes_the_key(
    server: FakeEmbeddingServer,
) -> None:
    embedder = openai(server)
    echo = json.dumps({"error": {"message": f"model not found for key {KEY}"}}).encode()
    server.fail_next(Reply(404, body=echo))
    with pytest.raises(EmbedderFailed) as failed:
        embedder.embed(["x"], Purpose.DOCUMENT)
    assert "model not found" in failed.value.detail
    assert KEY not in failed.value.detail and KEY not in str(failed.value.extra)
    server.fail_next(Reply(401, body=echo))
    with pytest.raises(EmbedderFailed) as refused:
        embedder.embed(["x"], Purpose.DOCUMENT)
    assert "401" in refused.value.detail and "model not found" not in refused.value.detail
    assert len(server.requests) == 2


def test_a_slow_provider_times_out_after_every_attempt(server: FakeEmbeddingServer) -> None:
    policy = RetryPolicy(timeout=0.2, retries=1, backoff=0.0, max_wait=0.0)
    server.fail_next(Reply(delay=0.6), Reply(delay=0.6))
    with pytest.raises(EmbedderTimedOut, match=r"did not answer within 0\.2 s"):
        openai(server, policy).embed(["x"], Purpose.DOCUMENT)
    assert len(server.requests) == 2


def test_one_timeout_then_an_answer_succeeds(server: FakeEmbeddingServer) -> None:
    policy = RetryPolicy(timeout=0.2, retries=1, backoff=0.0, max_wait=0.0)
    server.fail_next(Reply(delay=0.6))
    matrix = openai(server, policy).embed(["late"], Purpose.DOCUMENT)
    assert np.array_equal(matrix, expected(["late"]))


def test_an_unreachable_provider_fails_after_the_retries() -> None:
    with fake_embedding_server() as gone:
        url = gone.url
    spec = OpenAiSpec(url=url, model="m")
    with pytest.raises(EmbedderFailed, match="could not be reached"):
        openai_embedder(spec, FAST).embed(["x"], Purpose.DOCUMENT)


MALFORMED = [
    b"not json at all",
    b'{"data": "no list"}',
    b'{"object": "list"}',
    b'{"data": [{"embedding": [1.0, 2.0], "index": 0}]}',  # one item for two inputs
    b'{"data": [{"embedding": [1.0], "index": 0}, {"embedding": [2.0], "index": 0}]}',
    b'{"data": [{"embedding": [1.0], "index": 0}, {"embedding": [2.0, 3.0], "index": 1}]}',
    b'{"data": [{"embedding": ["1"], "index": 0}, {"embedding": ["2"], "index": 1}]}',
    b'{"data": [{"embedding": [NaN], "index": 0}, {"embedding": [1.0], "index": 1}]}',
    b'{"data": [{"embedding": [], "index": 0}, {"embedding": [], "index": 1}]}',
    b'{"data": [{"embedding": null, "index": 0}, {"embedding": [1.0], "index": 1}]}',
]


@pytest.mark.parametrize("body", MALFORMED)
def test_a_malformed_openai_answer_fails(server: FakeEmbeddingServer, body: bytes) -> None:
    server.fail_next(Reply(body=body))
    with pytest.raises(EmbedderFailed):
        openai(server).embed(["a", "b"], Purpose.DOCUMENT)


@pytest.mark.parametrize(
    "body",
    [
        b'{"embeddings": [[1.0]]}',
        b'{"embeddings": {"int8": [[1]]}}',
        b'{"embeddings": {"float": [[1.0]]}}',
    ],
)
def test_a_malformed_cohere_answer_fails(server: FakeEmbeddingServer, body: bytes) -> None:
    server.fail_next(Reply(body=body))
    with pytest.raises(EmbedderFailed):
        cohere(server).embed(["a", "b"], Purpose.DOCUMENT)


def test_the_key_is_read_at_each_call_and_a_missing_one_is_named_not_guessed(
    server: FakeEmbeddingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    embedder = openai(server)
    embedder.embed(["a"], Purpose.DOCUMENT)
    monkeypatch.setenv(KEY_ENV, "sk-rotated")
    embedder.embed(["b"], Purpose.DOCUMENT)
    assert [r.headers["Authorization"] for r in server.requests] == [
        f"Bearer {KEY}",
        "Bearer sk-rotated",
    ]
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(EmbedderFailed, match=f"environment variable {KEY_ENV}, which is not set"):
        embedder.embed(["c"], Purpose.DOCUMENT)
    assert len(server.requests) == 2


def test_without_api_key_env_no_authorization_is_sent(server: FakeEmbeddingServer) -> None:
    openai_embedder(OpenAiSpec(url=f"{server.url}/v1", model="m"), FAST).embed(["a"], Purpose.QUERY)
    assert "Authorization" not in server.requests[0].headers


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(st.lists(st.floats(-1e6, 1e6), min_size=3, max_size=3), min_size=1, max_size=30),
    seed=st.integers(0, 2**32 - 1),
)
def test_openai_items_in_any_order_come_back_by_index(rows: list[list[float]], seed: int) -> None:
    order = np.random.default_rng(seed).permutation(len(rows))
    answer = {"data": [{"embedding": rows[i], "index": int(i)} for i in order]}
    assert OpenAiWire("m").rows(answer, len(rows)) == rows


@given(
    attempt=st.integers(0, 30),
    retry_after=st.none() | st.floats(-1e9, 1e9),
    backoff=st.floats(0, 100),
    max_wait=st.floats(0, 100),
)
def test_no_wait_is_negative_or_past_the_bound(
    attempt: int, retry_after: float | None, backoff: float, max_wait: float
) -> None:
    wait = RetryPolicy(backoff=backoff, max_wait=max_wait).wait(attempt, retry_after)
    assert 0.0 <= wait <= max_wait
