"""Failures reach the caller as typed exceptions carrying the server's problem+json fields."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from stacksdb_client import (
    APIError,
    AuthError,
    ConflictError,
    Library,
    NotFoundError,
    PayloadTooLargeError,
    RequestTimeoutError,
    RetryPolicy,
    ServerError,
    StacksDB,
    StacksDBError,
    UnreachableError,
    ValidationError,
)

from tests.sdk.conftest import DIM, vec
from tests.sdk.scripted_server import Answer, Seen, scripted_server
from tests.support.server import ServerProcess, free_port, running_server

pytestmark = pytest.mark.e2e

API_KEY = "s3cret-key"
FAST = RetryPolicy(retries=2, backoff=0.01, max_backoff=0.02)


@pytest.fixture(scope="module")
def guarded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A node that wants an API key and takes bodies of at most 4 KiB."""
    data_dir: Path = tmp_path_factory.mktemp("guarded") / "data"
    env = {"STACKSDB_API_KEY": API_KEY, "STACKSDB_MAX_BODY_BYTES": "4096"}
    with running_server(data_dir, env=env) as node:
        yield node


def test_unknown_library_document_and_chunk_raise_not_found_with_problem_fields(
    db: StacksDB, library: Library
) -> None:
    with pytest.raises(NotFoundError) as missing:
        db.get_library("no-such-library")
    error = missing.value
    assert error.status == 404
    assert error.type.startswith("urn:stacksdb:problem:")
    assert error.title and "no-such-library" in error.detail
    assert error.extra["library_id"] == "no-such-library"
    assert error.method == "GET" and error.url.endswith("/v1/libraries/no-such-library")
    assert isinstance(error, APIError) and isinstance(error, StacksDBError)

    with pytest.raises(NotFoundError):
        library.get_document("nope")
    with pytest.raises(NotFoundError) as chunk:
        library.delete_chunk("nope")
    assert chunk.value.extra["chunk_id"] == "nope"


def test_reused_id_raises_conflict(db: StacksDB, library: Library) -> None:
    with pytest.raises(ConflictError) as taken:
        db.create_library("again", DIM, id=library.id)
    assert taken.value.status == 409
    library.add_chunk("d", "x", vec(1), id="dup")
    with pytest.raises(ConflictError):
        library.add_chunks([{"id": "dup", "document_id": "d", "text": "y", "embedding": vec(2)}])


def test_wrong_dimension_raises_validation_error_with_expected_and_got(library: Library) -> None:
    with pytest.raises(ValidationError) as wrong:
        library.add_chunk("d", "short", [1.0, 2.0])
    assert wrong.value.status == 422
    assert (wrong.value.extra["expected"], wrong.value.extra["got"]) == (DIM, 2)

    with pytest.raises(ValidationError) as bad_k:
        library.search(vec(1), k=0)
    assert bad_k.value.errors and bad_k.value.errors[0]["location"].startswith("body")


def test_missing_or_wrong_api_key_raises_auth_error(guarded_server: ServerProcess) -> None:
    with StacksDB(guarded_server.url) as anonymous, pytest.raises(AuthError) as denied:
        anonymous.list_libraries()
    assert denied.value.status == 401
    assert "Bearer" in denied.value.detail

    with StacksDB(guarded_server.url, api_key="wrong") as wrong, pytest.raises(AuthError):
        wrong.create_library("x", DIM)

    with StacksDB(guarded_server.url, api_key=API_KEY) as allowed:
        lib = allowed.create_library("guarded", DIM)
        assert allowed.get_library(lib.id).name == "guarded"


def test_a_body_over_the_size_limit_raises_payload_too_large(
    guarded_server: ServerProcess,
) -> None:
    with StacksDB(guarded_server.url, api_key=API_KEY) as db:
        lib = db.create_library("small-bodies", DIM)
        rows = [{"document_id": "d", "text": "x" * 200, "embedding": vec(i)} for i in range(40)]
        with pytest.raises(PayloadTooLargeError) as too_big:
            lib.add_chunks(rows, batch_size=40)
        assert too_big.value.status == 413
        assert isinstance(too_big.value, ValidationError)
        assert len(lib.add_chunks(rows, batch_size=5)) == 40


def test_a_server_that_is_not_there_raises_unreachable_naming_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with StacksDB(url, retries=FAST) as db, pytest.raises(UnreachableError) as unreachable:
        db.list_libraries()
    message = str(unreachable.value)
    assert url in message and "cannot reach" in message
    assert unreachable.value.url.startswith(url)
    assert isinstance(unreachable.value, ConnectionError)


def test_a_server_that_answers_too_late_raises_request_timeout() -> None:
    def stall(request: Seen, count: int) -> Answer:
        time.sleep(0.5)
        return Answer(200, {"items": [], "next_cursor": None})

    with (
        scripted_server(stall) as node,
        StacksDB(node.url, timeout=0.1, retries=0) as db,
        pytest.raises(RequestTimeoutError) as late,
    ):
        db.list_libraries()
    assert node.url in str(late.value)
    assert isinstance(late.value, TimeoutError)


def test_an_error_answer_that_is_not_problem_json_still_raises_a_typed_error() -> None:
    def proxy_page(request: Seen, count: int) -> Answer:
        return Answer(502, "bad gateway from a proxy", {"Content-Type": "text/plain"})

    with (
        scripted_server(proxy_page) as node,
        StacksDB(node.url, retries=0) as db,
        pytest.raises(ServerError) as failed,
    ):
        db.get_library("x")
    assert failed.value.status == 502
    assert "bad gateway" in failed.value.detail
