"""Local HTTP servers that speak the embedding APIs the remote embedders call, for tests.

``FakeEmbeddingServer`` answers OpenAI's ``POST /v1/embeddings`` (``{model, input}`` ->
``{object: "list", data: [{object: "embedding", embedding, index}], model, usage}``, items
sent in reverse order so a client must place them by ``index``) and Cohere's ``POST
/v2/embed`` (``{model, texts, input_type, embedding_types}`` -> ``{id, embeddings: {float:
[...]}, texts, meta, response_type: "embeddings_by_type"}``), as the two providers document
them. A text's vector is ``text_vector(text, dimension, input_type)``: seeded by the text,
so a test computes the truth without the server.

A test scripts failures with ``fail_next``: each scripted ``Reply`` answers one request, in
order (a status with headers and body, a delay, a malformed body, vectors of another
dimension); once they are used up the server answers normally. Every request is recorded
(path, headers, JSON body) in ``requests``.
"""

from __future__ import annotations

import json
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
from numpy.typing import NDArray

OPENAI_PATH = "/v1/embeddings"
COHERE_PATH = "/v2/embed"


def text_vector(text: str, dimension: int, input_type: str = "") -> NDArray[np.float64]:
    """The vector the fake server gives ``text`` (Cohere's query and document differ)."""
    seed = zlib.crc32(f"{input_type}|{text}".encode())
    return np.random.default_rng(seed).standard_normal(dimension)


@dataclass(frozen=True)
class Reply:
    """One scripted answer: ``status`` with ``headers`` and a raw ``body`` (else the normal
    answer), after ``delay`` seconds; ``dimension`` overrides the vectors' width."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    delay: float = 0.0
    dimension: int | None = None


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: Any
    answered: bool = False


class FakeEmbeddingServer:
    def __init__(self, dimension: int = 8) -> None:
        self.dimension = dimension
        self.requests: list[Recorded] = []
        self._script: list[Reply] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def fail_next(self, *replies: Reply) -> None:
        with self._lock:
            self._script.extend(replies)

    def texts_embedded(self) -> int:
        """How many texts the server has embedded (answered 200 for), over all requests."""
        return sum(
            len(r.body.get("input") or r.body.get("texts") or [])
            for r in self.requests
            if r.answered
        )

    def start(self) -> FakeEmbeddingServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _next_reply(self) -> Reply:
        with self._lock:
            return self._script.pop(0) if self._script else Reply()

    def _answer(self, path: str, body: Any, dimension: int) -> dict[str, Any]:
        if path == OPENAI_PATH:
            texts = body["input"]
            items = [
                {"object": "embedding", "embedding": text_vector(t, dimension).tolist(), "index": i}
                for i, t in enumerate(texts)
            ]
            return {
                "object": "list",
                "data": items[::-1],
                "model": body["model"],
                "usage": {"prompt_tokens": len(texts), "total_tokens": len(texts)},
            }
        texts = body["texts"]
        kind = body["input_type"]
        return {
            "id": "fake",
            "embeddings": {"float": [text_vector(t, dimension, kind).tolist() for t in texts]},
            "texts": texts,
            "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": 1}},
            "response_type": "embeddings_by_type",
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw.decode(errors="replace")
                recorded = Recorded(self.path, dict(self.headers.items()), body)
                with fake._lock:
                    fake.requests.append(recorded)
                reply = fake._next_reply()
                if reply.delay:
                    time.sleep(reply.delay)
                if self.path not in (OPENAI_PATH, COHERE_PATH):
                    self._send(404, {}, b'{"error": "no such path"}')
                    return
                if reply.body is not None or reply.status != 200:
                    self._send(reply.status, reply.headers, reply.body or b"{}")
                    return
                answer = fake._answer(self.path, body, reply.dimension or fake.dimension)
                recorded.answered = True
                self._send(200, reply.headers, json.dumps(answer).encode())

            def _send(self, status: int, headers: dict[str, str], payload: bytes) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    return  # the client gave up (a timeout test)

        return Handler


@contextmanager
def fake_embedding_server(dimension: int = 8) -> Iterator[FakeEmbeddingServer]:
    server = FakeEmbeddingServer(dimension).start()
    try:
        yield server
    finally:
        server.stop()
