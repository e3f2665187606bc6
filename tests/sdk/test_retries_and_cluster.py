"""Retries with backoff for idempotent requests, and the cluster headers, against a scripted
HTTP server on 127.0.0.1 that fails (or redirects, or stamps log indexes) on demand."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from stacksdb_client import AsyncStacksDB, RetryPolicy, StacksDB, UnavailableError
from stacksdb_client._core import Call, judge_transport, parse_none

from tests.sdk.scripted_server import Answer, Seen, problem, scripted_server

FAST = RetryPolicy(retries=3, backoff=0.001, max_backoff=0.005)
NOW = "2026-01-01T00:00:00Z"
INDEX = {"type": "flat", "params": {}, "state": "ready", "progress": 1.0, "vector_count": 0}
LIBRARY: dict[str, Any] = {
    "id": "lib",
    "name": "n",
    "description": "",
    "metadata": {},
    "dimension": 2,
    "metric": "cosine",
    "index": {**INDEX, "built_at": None},
    "document_count": 0,
    "chunk_count": 0,
    "created_at": NOW,
    "updated_at": NOW,
}
SEARCH = {"results": [], "index": "flat", "took_ms": 0.1}
BATCH: dict[str, Any] = {"items": []}
UNAVAILABLE = Answer(503, problem(503, "Store unavailable").body, {"Retry-After": "0"})


def fail_first(n: int, then: Answer) -> Any:
    def script(request: Seen, count: int) -> Answer:
        return UNAVAILABLE if count < n else then

    return script


def test_idempotent_reads_are_retried_on_503_until_they_succeed() -> None:
    with scripted_server(fail_first(2, Answer(200, LIBRARY))) as node:
        with StacksDB(node.url, retries=FAST) as db:
            assert db.get_library("lib").name == "n"
        assert [r.method for r in node.seen] == ["GET", "GET", "GET"]


def test_retries_stop_after_the_budget_and_raise_unavailable_with_the_problem() -> None:
    with scripted_server(fail_first(100, Answer(200, LIBRARY))) as node:
        with (
            StacksDB(node.url, retries=RetryPolicy(2, 0.001)) as db,
            pytest.raises(UnavailableError) as gave_up,
        ):
            db.get_library("lib")
        assert len(node.seen) == 3
    assert gave_up.value.status == 503 and gave_up.value.title == "Store unavailable"


def test_a_create_without_a_client_id_is_not_retried_but_one_with_an_id_is() -> None:
    with scripted_server(fail_first(1, Answer(201, LIBRARY))) as node:
        with StacksDB(node.url, retries=FAST) as db:
            with pytest.raises(UnavailableError):
                db.create_library("n", 2)
            assert len(node.seen) == 1
            assert db.create_library("n", 2, id="lib").id == "lib"
        assert len(node.seen) == 2


def test_search_put_delete_and_fully_identified_batches_are_retried() -> None:
    def script(request: Seen, count: int) -> Answer:
        if count % 2 == 0:
            return UNAVAILABLE
        if request.path.endswith("/search"):
            return Answer(200, SEARCH)
        if request.path.endswith("/batch"):
            return Answer(201, BATCH)
        if request.method == "DELETE":
            return Answer(204)
        return Answer(200, LIBRARY)

    with scripted_server(script) as node, StacksDB(node.url, retries=FAST) as db:
        lib = db.get_library("lib")
        assert lib.search([1.0, 0.0], k=1).results == []
        lib.delete_chunk("c")
        lib.add_chunks([{"id": "c", "document_id": "d", "text": "t", "embedding": [1.0, 0.0]}])
        paths = [r.path.split("/v1/libraries/lib")[-1] for r in node.seen]
    assert paths == ["", "", "/search", "/search", "/chunks/c", "/chunks/c", *["/chunks/batch"] * 2]


def test_a_batch_with_server_assigned_ids_is_not_retried() -> None:
    def script(request: Seen, count: int) -> Answer:
        return Answer(200, LIBRARY) if request.method == "GET" else UNAVAILABLE

    with scripted_server(script) as node, StacksDB(node.url, retries=FAST) as db:
        lib = db.get_library("lib")
        with pytest.raises(UnavailableError):
            lib.add_chunks([{"document_id": "d", "text": "t", "embedding": [1.0, 0.0]}])
        assert [r.method for r in node.seen] == ["GET", "POST"]


def test_the_async_client_retries_the_same_way() -> None:
    async def scenario(url: str) -> str:
        async with AsyncStacksDB(url, retries=FAST) as db:
            return (await db.get_library("lib")).name

    with scripted_server(fail_first(3, Answer(200, LIBRARY))) as node:
        assert asyncio.run(scenario(node.url)) == "n"
        assert len(node.seen) == 4


def test_retry_after_is_honoured_but_bounded() -> None:
    policy = RetryPolicy(retries=3, backoff=0.1, max_backoff=1.0, max_retry_after=10.0)

    def after(value: str) -> float:
        return policy.delay_after_status(0, httpx.Response(503, headers={"Retry-After": value}))

    assert after("3") == 3.0
    assert after("3600") == 10.0
    in_five_seconds = format_datetime(datetime.now(UTC) + timedelta(seconds=5), usegmt=True)
    assert 3.0 < after(in_five_seconds) <= 5.0
    assert 0.0 <= after("soon") <= 0.1


def test_backoff_is_full_jitter_under_an_exponential_cap() -> None:
    policy = RetryPolicy(retries=10, backoff=0.1, max_backoff=1.0)
    for attempt, cap in [(0, 0.1), (1, 0.2), (3, 0.8), (4, 1.0), (9, 1.0)]:
        delays = [policy.jitter(attempt) for _ in range(300)]
        assert all(0.0 <= d <= cap for d in delays)
        assert max(delays) > cap / 2  # spread over the whole range, not a fixed step


def test_connect_errors_retry_any_request_other_transport_errors_only_idempotent() -> None:
    write = Call("POST", "/v1/libraries", parse_none)
    read = Call("GET", "/v1/libraries", parse_none, idempotent=True)
    refused = httpx.ConnectError("refused")
    dropped = httpx.ReadError("connection reset")
    policy = RetryPolicy(retries=1)

    assert judge_transport(write, refused, 0, policy, "u").delay is not None
    assert judge_transport(write, dropped, 0, policy, "u").error is not None
    assert judge_transport(read, dropped, 0, policy, "u").delay is not None
    assert judge_transport(read, dropped, 1, policy, "u").error is not None


def test_the_api_key_is_sent_as_a_bearer_token() -> None:
    with scripted_server(lambda r, n: Answer(200, LIBRARY)) as node:
        with StacksDB(node.url, api_key="k-123") as db:
            db.get_library("lib")
        assert node.seen[0].headers["authorization"] == "Bearer k-123"


def stamping(indexes: list[int]) -> Any:
    """Answers every write with the next log index of ``indexes``, like a cluster leader."""
    pending = iter(indexes)

    def script(request: Seen, count: int) -> Answer:
        if request.method == "GET":
            return Answer(200, LIBRARY)
        return Answer(201, LIBRARY, {"X-StacksDB-Index": str(next(pending))})

    return script


def test_read_your_writes_sends_the_highest_index_seen_as_min_index_on_reads() -> None:
    with scripted_server(stamping([7, 5, 8])) as node:
        with StacksDB(node.url, read_your_writes=True) as db:
            db.get_library("lib")
            db.create_library("a", 2, id="a")
            db.get_library("lib")
            db.create_library("b", 2, id="b")
            lib = db.get_library("lib")
            assert db.last_index == 7
            lib.update(name="patched")
        sent = [(r.method, r.headers.get("x-stacksdb-min-index")) for r in node.seen]
    assert sent == [
        ("GET", None),
        ("POST", None),
        ("GET", "7"),
        ("POST", None),
        ("GET", "7"),
        ("PATCH", None),
    ]


def test_without_read_your_writes_the_index_is_tracked_but_not_sent() -> None:
    async def scenario(url: str) -> int | None:
        async with AsyncStacksDB(url) as db:
            await db.create_library("a", 2, id="a")
            await db.get_library("lib")
            return db.last_index

    with scripted_server(stamping([42])) as node:
        assert asyncio.run(scenario(node.url)) == 42
        assert "x-stacksdb-min-index" not in node.seen[1].headers


def test_the_async_client_sends_min_index_too() -> None:
    async def scenario(url: str) -> None:
        async with AsyncStacksDB(url, read_your_writes=True) as db:
            lib = await db.create_library("a", 2, id="a")
            await lib.search([1.0, 0.0])

    def script(request: Seen, count: int) -> Answer:
        if request.path.endswith("/search"):
            return Answer(200, SEARCH)
        return Answer(201, LIBRARY, {"X-StacksDB-Index": "9"})

    with scripted_server(script) as node:
        asyncio.run(scenario(node.url))
        assert node.seen[1].headers["x-stacksdb-min-index"] == "9"


def test_a_write_redirected_to_the_leader_is_sent_there_with_its_body() -> None:
    with scripted_server(lambda r, n: Answer(201, LIBRARY)) as leader:

        def follower(request: Seen, count: int) -> Answer:
            return Answer(307, None, {"Location": f"{leader.url}{request.path}"})

        with scripted_server(follower) as node, StacksDB(node.url) as db:
            assert db.create_library("n", 2, id="lib").id == "lib"
        assert [(r.method, r.path) for r in leader.seen] == [("POST", "/v1/libraries")]
        assert leader.seen[0].body == {"id": "lib", "name": "n", "dimension": 2}
