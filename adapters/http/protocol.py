"""The HTTP/1.1 protocol the server runs: uvicorn's httptools one, with problem+json errors.

uvicorn answers a request its parser rejects itself, below the application, with a
``text/plain`` 400. With httptools that includes any request whose URL is over 65,535 bytes
(``httptools.parse_url`` cannot represent longer ones; h11 took them). Every error of this
API is an RFC 9457 problem, so this protocol answers those with one too; everything else is
uvicorn's.
"""

from __future__ import annotations

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from adapters.http.errors import UnparsableRequest
from adapters.http.problems import PROBLEM_JSON, problem_of


class ProblemHttpToolsProtocol(HttpToolsProtocol):
    """``uvicorn.run(..., http=ProblemHttpToolsProtocol)``."""

    def send_400_response(self, msg: str) -> None:
        body = problem_of(UnparsableRequest(msg)).body()
        head = [b"HTTP/1.1 400 Bad Request\r\n"]
        for name, value in self.server_state.default_headers:
            head.append(name + b": " + value + b"\r\n")
        head.append(b"content-type: " + PROBLEM_JSON.encode() + b"\r\n")
        head.append(b"content-length: " + str(len(body)).encode() + b"\r\n")
        head.append(b"connection: close\r\n\r\n")
        self.transport.write(b"".join(head) + body)
        self.transport.close()
