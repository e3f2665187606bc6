"""API fuzzing: schemathesis drives every operation of the server's own OpenAPI schema.

A live ``stacksdb serve`` on 127.0.0.1 answers generated requests (valid bodies from the
schema) and malformed ones (negative generation: wrong types, missing fields, broken
constraints). Whatever comes in, the server must

- never answer 5xx;
- answer every 4xx as ``application/problem+json`` with ``type``, ``title``, ``status``
  (equal to the HTTP status) and ``detail``;
- answer every 2xx with a body that conforms to the documented response schema;
- document every status it answers, with the content type it sends;
- reject (4xx) every request that breaks the schema;
- accept every request the schema allows, but for the rules no schema can state
  (``tests.support.fuzzing.DYNAMIC_RULES``: a library's dimension, a foreign cursor...).

``benchmarks/fuzz.py`` (``make fuzz``) is the long form: the schemathesis command line with
every check and every phase, stateful included, for minutes.

About half of the requests with path ids are aimed at a real library, document and chunk
(``fuzz-lib``, dimension 1) so that they reach the services, the index and the store instead
of stopping at a 404; whatever an earlier request deleted is re-created first.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.config._checks import NegativeDataRejectionConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)

from bootstrap.app import create_app
from bootstrap.settings import Settings
from tests.support.fuzzing import dynamic_rule_of, is_upstream_failure
from tests.support.server import ServerProcess, running_server

pytestmark = pytest.mark.e2e

PROBLEM_JSON = "application/problem+json"
# Dimension 1: a generated one-number embedding is then often valid and reaches the index.
FUZZ_LIBRARY = {"id": "fuzz-lib", "name": "fuzz", "dimension": 1, "metric": "l2"}
FUZZ_CHUNK = {"document_id": "fuzz-doc", "text": "t", "embedding": [0.5]}
TARGETS = {"library_id": "fuzz-lib", "document_id": "fuzz-doc", "chunk_id": "fuzz-chunk"}
# Per operation and mode: about 2.5 min on 2 shared cores (4.5 min at 30); the long run, with
# the stateful phase, is benchmarks/fuzz.py.
EXAMPLES_PER_OPERATION = 12
# A made-up remote embedder URL is tried once, briefly (its failure is a documented 502/504).
SERVER_ENV = {"STACKSDB_EMBEDDER_TIMEOUT": "2", "STACKSDB_EMBEDDER_RETRIES": "0"}


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data_dir: Path = tmp_path_factory.mktemp("fuzz") / "data"
    with running_server(data_dir, env=SERVER_ENV) as node:
        yield node


def served_openapi() -> dict[str, Any]:
    """The OpenAPI document ``stacksdb serve`` publishes at /openapi.json (the same app code;
    ``test_the_fuzzed_schema_is_the_one_the_live_server_serves`` checks they agree)."""
    return create_app(Settings(storage="memory")).openapi()


OPENAPI = served_openapi()
schema = schemathesis.openapi.from_dict(OPENAPI)
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
    max_examples=EXAMPLES_PER_OPERATION,
    deterministic=True,
)
# A malformed body must be refused with a 4xx the API documents; 413 counts (a generated
# body can be over the size limit), a 5xx never does.
schema.config.checks.negative_data_rejection = NegativeDataRejectionConfig(
    expected_statuses=[400, 401, 404, 405, 409, 413, 422]
)


def ensure_fuzz_library(url: str) -> None:
    with httpx.Client(base_url=url, timeout=30) as http:
        if http.get(f"/v1/libraries/{FUZZ_LIBRARY['id']}").status_code == 404:
            created = http.post("/v1/libraries", json=FUZZ_LIBRARY)
            assert created.status_code == 201, created.text
        chunk_url = f"/v1/libraries/{FUZZ_LIBRARY['id']}/chunks/{TARGETS['chunk_id']}"
        if http.get(chunk_url).status_code == 404:
            put = http.put(chunk_url, json=FUZZ_CHUNK)
            assert put.status_code in (200, 201), put.text


def problem_details(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every 4xx is RFC 9457 problem+json with type, title, status and detail."""
    if not 400 <= response.status_code < 500:
        return None
    content_type = response.headers.get("content-type", [""])[0]
    assert content_type.startswith(PROBLEM_JSON), (
        f"{response.status_code} answered as {content_type!r}, not {PROBLEM_JSON}"
    )
    body = response.json()
    assert isinstance(body, dict), body
    for name in ("type", "title", "detail"):
        assert isinstance(body.get(name), str) and body[name], f"problem without {name}: {body}"
    assert body.get("status") == response.status_code, body
    return True


def answer_of(response: Any) -> tuple[int, str, bytes]:
    return response.status_code, response.headers.get("content-type", [""])[0], response.content


def no_server_error(ctx: Any, response: Any, case: Any) -> bool | None:
    """No 5xx, but for the documented 502/504 of a remote embedder the request named."""
    if is_upstream_failure(*answer_of(response)):
        return True
    assert response.status_code < 500, f"{response.status_code}: {response.text[:500]}"
    return True


def schema_valid_data_accepted(ctx: Any, response: Any, case: Any) -> bool | None:
    """A request the schema allows is not refused, but by a rule no schema can state."""
    if dynamic_rule_of(*answer_of(response)) is not None:
        return True
    return positive_data_acceptance(ctx, response, case)


@schema.parametrize()
@settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_every_operation_survives_generated_and_malformed_requests(
    case: Any, fuzz_server: ServerProcess
) -> None:
    path_parameters = case.path_parameters or {}
    if "library_id" in path_parameters and zlib.crc32(repr(case.body).encode()) % 2:
        ensure_fuzz_library(fuzz_server.url)
        path_parameters.update({k: v for k, v in TARGETS.items() if k in path_parameters})
    response = case.call(base_url=fuzz_server.url, timeout=30)
    case.validate_response(
        response,
        checks=[
            no_server_error,
            problem_details,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
            negative_data_rejection,
            schema_valid_data_accepted,
        ],
    )


def test_the_fuzzed_schema_is_the_one_the_live_server_serves(fuzz_server: ServerProcess) -> None:
    served = httpx.get(f"{fuzz_server.url}/openapi.json", timeout=30)
    assert served.status_code == 200
    assert served.json() == OPENAPI
