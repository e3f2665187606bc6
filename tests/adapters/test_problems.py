"""Every error becomes its problem+json answer in one place: the same error answers the
same status, members and headers whether a route raises it or ASGI middleware sends it."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from adapters.http.errors import BodyTooLarge, EdgeError, Unauthorized, UnparsableRequest
from adapters.http.middleware import ApiKeyAuth, BodySizeLimit, Receive, Scope, Send
from adapters.http.problems import (
    PROBLEM_JSON,
    RULES,
    install_problem_handlers,
    problem_of,
    send_problem,
)
from domain.errors import (
    AlreadyExists,
    DomainError,
    InvalidFilter,
    LeaderUnreachable,
    LibraryNotFound,
    NotLeader,
    ReplicaBehind,
    StoreUnavailable,
    WriteNotAcknowledged,
)

UNAVAILABLE: list[DomainError] = [
    StoreUnavailable("the disk is full"),
    NotLeader("node 'b' is a follower and knows no leader"),
    LeaderUnreachable("http://a:8000", "connection refused"),
    ReplicaBehind(3, 7),
    WriteNotAcknowledged("entry 7 is not yet on 1 follower(s)"),
]
ERRORS: list[DomainError | EdgeError] = [
    *UNAVAILABLE,
    LibraryNotFound("lib"),
    AlreadyExists("library", "lib"),
    InvalidFilter("filter: unknown operator"),
    Unauthorized(),
    BodyTooLarge(2048),
]


def app_raising(error: Exception) -> FastAPI:
    """An app whose one route raises ``error``, answered by the problem handlers."""
    app = FastAPI()
    install_problem_handlers(app)

    @app.post("/raise")
    def raise_it() -> None:
        raise error

    return app


def sending(error: Exception) -> Any:
    """A bare ASGI app that answers every request with ``send_problem``."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send_problem(send, error, instance=scope["path"])

    return app


def served(app: Any) -> TestClient:
    return TestClient(app, raise_server_exceptions=False)


@pytest.mark.parametrize("error", UNAVAILABLE, ids=lambda e: type(e).__name__)
def test_every_unavailable_error_is_a_503_problem_that_says_when_to_retry(
    error: DomainError,
) -> None:
    response = served(app_raising(error)).post("/raise")
    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.headers["retry-after"] == "1"
    body = response.json()
    assert body["title"] == error.title and body["detail"] == error.detail
    assert body["type"] == "urn:stacksdb:problem:" + error.title.lower().replace(" ", "-")


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: type(e).__name__)
def test_a_raised_error_and_a_sent_one_are_the_same_answer(error: Exception) -> None:
    raised = served(app_raising(error)).post("/raise")
    sent = served(sending(error)).post("/raise")
    assert (raised.status_code, raised.content) == (sent.status_code, sent.content)
    assert raised.headers == sent.headers
    assert raised.json()["instance"] == "/raise"


def test_not_the_leader_is_one_problem_wherever_it_is_said() -> None:
    from_the_write_path = problem_of(NotLeader("node 'a' is a follower, not the leader"))
    from_the_edge = problem_of(NotLeader("node 'a' knows no leader to forward the write to"))
    assert from_the_write_path.title == from_the_edge.title == "Not the leader"
    assert from_the_write_path.status == from_the_edge.status == 503
    assert from_the_write_path.headers == from_the_edge.headers == {"Retry-After": "1"}


def test_no_rule_is_shadowed_by_an_earlier_rule_for_its_base() -> None:
    for at, rule in enumerate(RULES):
        earlier = [r.kind for r in RULES[:at]]
        assert not any(issubclass(rule.kind, kind) for kind in earlier), rule


def test_an_error_cannot_overwrite_the_problem_members_with_its_extra_fields() -> None:
    error = InvalidFilter("filter: bad", status=200, title="fine", location="filter")
    body = served(app_raising(error)).post("/raise").json()
    assert (body["status"], body["title"], body["location"]) == (422, "Invalid filter", "filter")


def test_a_request_without_the_api_key_is_a_401_that_names_the_scheme() -> None:
    app = ApiKeyAuth(app_raising(LibraryNotFound("never reached")), api_key="k")
    response = served(app).post("/raise")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["title"] == "Unauthorized"
    assert served(app).post("/raise", headers={"Authorization": "Bearer k"}).status_code == 404


def test_a_body_over_the_limit_is_413_by_its_length_and_as_it_streams() -> None:
    app = FastAPI()
    install_problem_handlers(app)

    @app.post("/echo")
    def echo(body: dict[str, Any]) -> dict[str, Any]:
        return body

    client = served(BodySizeLimit(app, max_bytes=64))
    big = {"text": "x" * 100}
    declared = client.post("/echo", json=big)
    streamed = client.post(
        "/echo",
        content=iter([b'{"text": "', b"x" * 100, b'"}']),
        headers={"content-type": "application/json"},
    )
    for response in (declared, streamed):
        assert response.status_code == 413
        assert response.headers["content-type"] == PROBLEM_JSON
        assert response.json()["title"] == "Content too large"
    assert client.post("/echo", json={"text": "x"}).json() == {"text": "x"}


def test_a_method_the_route_does_not_take_is_a_405_that_lists_the_allowed_ones() -> None:
    response = served(app_raising(LibraryNotFound("x"))).get("/raise")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.json()["title"] == "Method not allowed"


def test_an_unexpected_error_is_a_500_problem_that_tells_nothing_of_it() -> None:
    response = served(app_raising(RuntimeError("secret"))).post("/raise")
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM_JSON
    assert "secret" not in response.text


def test_a_request_the_parser_rejects_is_a_400_problem() -> None:
    problem = problem_of(UnparsableRequest("URL too long"))
    assert (problem.status, problem.title) == (400, "Bad request")
    assert b"URL too long" in problem.body()
