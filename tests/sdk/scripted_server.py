"""A tiny HTTP server on 127.0.0.1 that answers from a script, for what a real node cannot be
made to do on demand: fail with 503 a given number of times, stall, or send cluster headers.

It records every request it receives, so a test can state what the client sent.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


Script = Callable[[Seen, int], Answer]
"""Given a request and how many came before it, the answer to send."""


@dataclass
class ScriptedServer:
    url: str
    seen: list[Seen]


def problem(status: int, title: str) -> Answer:
    body = {"type": "urn:test", "title": title, "status": status, "detail": title.lower()}
    return Answer(status, body, {"Content-Type": "application/problem+json"})


def _payload(body: Any) -> bytes:
    """None is an empty body, a str is sent as it is, anything else as JSON."""
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode()
    return json.dumps(body).encode()


@contextmanager
def scripted_server(script: Script) -> Iterator[ScriptedServer]:
    seen: list[Seen] = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            request = Seen(
                self.command,
                self.path,
                {k.lower(): v for k, v in self.headers.items()},
                json.loads(raw) if raw else None,
            )
            with lock:
                count = len(seen)
                seen.append(request)
            answer = script(request, count)
            payload = _payload(answer.body)
            self.send_response(answer.status)
            headers = {"Content-Type": "application/json", **answer.headers}
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        # http.server dispatches on do_<METHOD>.
        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle  # noqa: N815

        def log_message(self, format: str, *args: Any) -> None:
            return

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield ScriptedServer(f"http://127.0.0.1:{httpd.server_address[1]}", seen)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)
