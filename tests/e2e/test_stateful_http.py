"""The stateful model test of tests/application/test_stateful.py, over HTTP against a live
server on its SQLite store: the same machine and model, fewer steps. Each run works in
libraries of its own (ids prefixed per run), so runs share one server without meeting."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from tests.support.server import ServerProcess, running_server
from tests.support.stateful import (
    CONFLICT,
    INVALID,
    NOT_FOUND,
    ChunkRow,
    ChunkSpec,
    LibraryView,
    Metadata,
    Refused,
    StacksMachine,
    Vector,
)

pytestmark = pytest.mark.e2e

REFUSALS = {404: NOT_FOUND, 409: CONFLICT, 422: INVALID}
PAGE = 1000
_runs = itertools.count()


class HttpDriver:
    """The model's operations as REST calls; implements ``tests.support.stateful.Driver``."""

    def __init__(self, http: httpx.Client, prefix: str) -> None:
        self.http = http
        self.prefix = prefix

    def _url(self, library_id: str, rest: str = "") -> str:
        return f"/v1/libraries/{self.prefix}{library_id}{rest}"

    def _send(self, method: str, url: str, **kwargs: Any) -> Any:
        response = self.http.request(method, url, **kwargs)
        if response.status_code in REFUSALS:
            assert response.headers["content-type"].startswith("application/problem+json")
            raise Refused(REFUSALS[response.status_code], response.json()["detail"])
        assert response.is_success, f"{method} {url}: {response.status_code} {response.text}"
        return response.json() if response.content else None

    @staticmethod
    def _chunk(spec: ChunkSpec, *, with_id: bool = True) -> dict[str, Any]:
        body: dict[str, Any] = {
            "document_id": spec.document_id,
            "text": spec.text,
            "embedding": list(spec.vector),
            "metadata": spec.metadata,
        }
        if with_id:
            body["id"] = spec.id
        return body

    def library_ids(self) -> set[str]:
        page = self._send("GET", "/v1/libraries", params={"limit": PAGE})
        assert page["next_cursor"] is None
        ids = (item["id"] for item in page["items"])
        return {i.removeprefix(self.prefix) for i in ids if i.startswith(self.prefix)}

    def create_library(
        self, library_id: str, name: str, dimension: int, metric: str, metadata: Metadata
    ) -> None:
        body = {
            "id": self.prefix + library_id,
            "name": name,
            "dimension": dimension,
            "metric": metric,
            "metadata": metadata,
        }
        self._send("POST", "/v1/libraries", json=body)

    def patch_library(self, library_id: str, name: str | None, metadata: Metadata | None) -> None:
        body = {k: v for k, v in {"name": name, "metadata": metadata}.items() if v is not None}
        self._send("PATCH", self._url(library_id), json=body)

    def delete_library(self, library_id: str) -> None:
        self._send("DELETE", self._url(library_id))

    def library(self, library_id: str) -> LibraryView:
        lib = self._send("GET", self._url(library_id))
        return LibraryView(
            lib["name"],
            lib["dimension"],
            lib["metric"],
            lib["metadata"],
            lib["document_count"],
            lib["chunk_count"],
        )

    def create_document(
        self, library_id: str, document_id: str, metadata: Metadata, chunks: list[ChunkSpec]
    ) -> None:
        body = {
            "id": document_id,
            "metadata": metadata,
            "chunks": [
                {k: v for k, v in self._chunk(c).items() if k != "document_id"} for c in chunks
            ],
        }
        self._send("POST", self._url(library_id, "/documents"), json=body)

    def patch_document(self, library_id: str, document_id: str, metadata: Metadata) -> None:
        url = self._url(library_id, f"/documents/{document_id}")
        self._send("PATCH", url, json={"metadata": metadata})

    def delete_document(self, library_id: str, document_id: str) -> None:
        self._send("DELETE", self._url(library_id, f"/documents/{document_id}"))

    def documents(self, library_id: str) -> dict[str, tuple[Metadata, int]]:
        page = self._send("GET", self._url(library_id, "/documents"), params={"limit": PAGE})
        assert page["next_cursor"] is None
        return {d["id"]: (d["metadata"], d["chunk_count"]) for d in page["items"]}

    def write_batch(self, library_id: str, chunks: list[ChunkSpec], mode: str) -> None:
        body = {"chunks": [self._chunk(c) for c in chunks], "mode": mode}
        written = self._send("POST", self._url(library_id, "/chunks/batch"), json=body)
        assert [c["id"] for c in written["items"]] == [c.id for c in chunks]

    def put_chunk(self, library_id: str, chunk: ChunkSpec) -> bool:
        response = self.http.put(
            self._url(library_id, f"/chunks/{chunk.id}"), json=self._chunk(chunk, with_id=False)
        )
        if response.status_code in REFUSALS:
            raise Refused(REFUSALS[response.status_code], response.text)
        assert response.status_code in (200, 201), response.text
        return response.status_code == 201

    def patch_chunk(
        self,
        library_id: str,
        chunk_id: str,
        text: str | None,
        vector: Vector | None,
        metadata: Metadata | None,
    ) -> None:
        fields = {"text": text, "embedding": None if vector is None else list(vector)}
        body = {k: v for k, v in {**fields, "metadata": metadata}.items() if v is not None}
        self._send("PATCH", self._url(library_id, f"/chunks/{chunk_id}"), json=body)

    def delete_chunk(self, library_id: str, chunk_id: str) -> None:
        self._send("DELETE", self._url(library_id, f"/chunks/{chunk_id}"))

    def chunks(self, library_id: str) -> dict[str, ChunkRow]:
        params = {"limit": PAGE, "include_embedding": True}
        page = self._send("GET", self._url(library_id, "/chunks"), params=params)
        assert page["next_cursor"] is None
        return {
            c["id"]: ChunkRow(
                c["document_id"], c["text"], tuple(float(x) for x in c["embedding"]), c["metadata"]
            )
            for c in page["items"]
        }

    def rebuild_index(self, library_id: str, index_type: str) -> None:
        self._send("PUT", self._url(library_id, "/index"), json={"type": index_type})
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status = self._send("GET", self._url(library_id, "/index"))
            if status["state"] == "ready" and status["type"] == index_type:
                return
            assert status.get("error") is None, status
            time.sleep(0.01)
        raise AssertionError(f"the {index_type} index of {library_id} never became ready")

    def search(
        self, library_id: str, vector: Vector, k: int, exact: bool, tag: str | None
    ) -> list[tuple[str, float]]:
        body: dict[str, Any] = {"vector": list(vector), "k": k, "exact": exact, "include": []}
        if tag is not None:
            body["filter"] = {"field": "tag", "op": "eq", "value": tag}
        answer = self._send("POST", self._url(library_id, "/search"), json=body)
        return [(hit["chunk_id"], hit["score"]) for hit in answer["results"]]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("stateful") / "data") as node:
        yield node


def test_a_live_server_agrees_with_the_model_after_every_step(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as http:

        class HttpMachine(StacksMachine):
            driver_factory = staticmethod(lambda: HttpDriver(http, f"run{next(_runs)}-"))

        run_state_machine_as_test(
            HttpMachine,
            settings=settings(
                max_examples=15,
                stateful_step_count=20,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            ),
        )
