"""Without --cluster a node is a standalone leader: its writes are logged and say where."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.support.server import running_server


def test_a_standalone_node_leads_and_numbers_its_writes(tmp_path: Path) -> None:
    with running_server(tmp_path / "data") as node, httpx.Client(base_url=node.url) as http:
        created = http.post("/v1/libraries", json={"id": "s", "name": "s", "dimension": 2})
        chunk = http.put(
            "/v1/libraries/s/chunks/c", json={"document_id": "d", "text": "t", "embedding": [1, 0]}
        )
        failed = http.post("/v1/libraries", json={"id": "s", "name": "again", "dimension": 2})
        status = http.get("/v1/cluster").json()
        node.kill()
        node.start()
        after_restart = http.delete("/v1/libraries/s/chunks/c")
    assert created.headers["x-stacksdb-index"] == "1"
    assert chunk.headers["x-stacksdb-index"] == "2"
    assert failed.status_code == 409 and "x-stacksdb-index" not in failed.headers
    assert after_restart.headers["x-stacksdb-index"] == "3"  # the log survives a crash
    assert status["role"] == "leader" and status["applied_index"] == 2
    assert status["leader"]["node_id"] == status["node_id"]
    assert [n["node_id"] for n in status["nodes"]] == [status["node_id"]]


def test_every_write_route_answers_the_index_it_committed_at(tmp_path: Path) -> None:
    lib = "/v1/libraries/w"
    text = {"text": "t", "embedding": [1.0, 0.0]}
    chunk = {"document_id": "d", **text}
    writes = [
        ("POST", "/v1/libraries", {"id": "w", "name": "w", "dimension": 2}),
        ("PATCH", lib, {"description": "changed"}),
        ("POST", f"{lib}/documents", {"id": "d", "chunks": [{**text, "id": "a"}]}),
        ("PATCH", f"{lib}/documents/d", {"metadata": {"k": 1}}),
        ("POST", f"{lib}/chunks", {**chunk, "id": "b"}),
        ("POST", f"{lib}/chunks/batch", {"chunks": [{**chunk, "id": "c"}]}),
        ("PUT", f"{lib}/chunks/e", chunk),
        ("PATCH", f"{lib}/chunks/e", {"text": "u"}),
        ("DELETE", f"{lib}/chunks/e", None),
        ("DELETE", f"{lib}/documents/d", None),
        ("DELETE", lib, None),
    ]
    with running_server(tmp_path / "data") as node, httpx.Client(base_url=node.url) as http:
        answers = [http.request(method, path, json=body) for method, path, body in writes]
        refused = http.patch("/v1/libraries/gone", json={"description": "x"})
    assert [a.status_code < 300 for a in answers] == [True] * len(writes), [a.text for a in answers]
    assert [int(a.headers["x-stacksdb-index"]) for a in answers] == list(range(1, len(writes) + 1))
    assert refused.status_code == 404 and "x-stacksdb-index" not in refused.headers
