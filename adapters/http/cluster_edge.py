"""The cluster's HTTP edge, an ASGI middleware in front of the routes.

- A write (POST, PUT, PATCH, DELETE under ``/v1/libraries``, but not ``.../search``) on a
  node that is not a writable leader is forwarded to the leader and answered as the leader
  answers (once: a forwarded request is never forwarded again). No known leader: 503
  (``NotLeader``); the leader does not answer: 503 (``LeaderUnreachable``).
- On the leader, a write that committed carries ``X-StacksDB-Index: N``, set by its route
  from the use case's ``CommitReceipt`` (``receipts.py``). Before the answer leaves, the
  leader waits for ``min_replicas`` followers to hold entry N, and checks its
  lease again (fencing): failing either, the answer is a 503 (``WriteNotAcknowledged``)
  instead of an acknowledgement.
- A read with ``?min_index=N`` or ``X-StacksDB-Min-Index: N`` waits (bounded) until this
  node has applied entry N, else 503 (``ReplicaBehind``).

Every refusal is a domain error answered by ``adapters.http.problems.send_problem``.
"""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs

import httpx

from adapters.http.middleware import ASGIApp, Message, Receive, Scope, Send
from adapters.http.problems import send_problem
from adapters.http.receipts import INDEX_HEADER
from application.replication import LogFeed, NodeState, ReplicaTracker
from domain.errors import LeaderUnreachable, NotLeader, ReplicaBehind, WriteNotAcknowledged

_INDEX_HEADER = INDEX_HEADER.lower().encode()
MIN_INDEX_HEADER = b"x-stacksdb-min-index"
FORWARDED_HEADER = "x-stacksdb-forwarded-by"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "upgrade"}
)


# POST routes that only read: served by any node, never forwarded to the leader.
READING_POSTS = ("/search", "/search/batch", "/chunks/count", "/documents/count", "/embed")


def is_write(method: str, path: str) -> bool:
    return (
        method in WRITE_METHODS
        and path.startswith("/v1/libraries")
        and not path.endswith(READING_POSTS)
    )


def _committed_index(start: Message) -> int | None:
    """The log index a route answered in ``X-StacksDB-Index``, if its write committed."""
    for name, value in start.get("headers", []):
        if name.lower() == _INDEX_HEADER:
            return int(value)
    return None


class ClusterEdge:
    def __init__(
        self,
        app: ASGIApp,
        state: NodeState,
        feed: LogFeed,
        tracker: ReplicaTracker,
        min_replicas: int = 0,
        replica_timeout: float = 10.0,
        forward_timeout: float = 190.0,
        max_read_wait: float = 5.0,
    ) -> None:
        self.app = app
        self.state = state
        self.feed = feed
        self.tracker = tracker
        self.min_replicas = min_replicas
        self.replica_timeout = replica_timeout
        self.forward_timeout = forward_timeout
        self.max_read_wait = max_read_wait
        self._client: httpx.AsyncClient | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        path: str = scope["path"]
        if is_write(method, path):
            await self._write(scope, receive, send)
            return
        wanted = self._min_index(scope)
        if wanted is not None and not await asyncio.to_thread(
            self.feed.wait_for, wanted, self.max_read_wait
        ):
            behind = ReplicaBehind(self.feed.position.index, wanted)
            await send_problem(send, behind, instance=path)
            return
        await self.app(scope, receive, send)

    def _min_index(self, scope: Scope) -> int | None:
        # Every read passes here: scan the headers (the last one wins, as a dict of them
        # would keep) and parse a query string only when there is one.
        raw: bytes | None = None
        for name, value in scope.get("headers", []):
            if name == MIN_INDEX_HEADER:
                raw = value
        if raw is None:
            query: bytes = scope.get("query_string", b"")
            values = parse_qs(query.decode()).get("min_index") if query else None
            raw = values[0].encode() if values else None
        if raw is None or not raw.strip().isdigit():
            return None
        return int(raw)

    async def _write(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.state.is_writable():
            await self._forward(scope, receive, send)
            return
        replaced = False

        async def acknowledging_send(message: Message) -> None:
            nonlocal replaced
            if replaced:
                return
            index = _committed_index(message) if message["type"] == "http.response.start" else None
            if index is not None:
                replicated = await asyncio.to_thread(
                    self.tracker.wait_replicated, index, self.min_replicas, self.replica_timeout
                )
                if not replicated or not self.state.is_writable():
                    replaced = True
                    reason = (
                        f"entry {index} is not yet on {self.min_replicas} follower(s)"
                        if not replicated
                        else "this node lost its leader lease before acknowledging"
                    )
                    refused = WriteNotAcknowledged(reason)
                    await send_problem(send, refused, instance=scope["path"])
                    return
            await send(message)

        await self.app(scope, receive, acknowledging_send)

    async def _forward(self, scope: Scope, receive: Receive, send: Send) -> None:
        leader = self.state.leader
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        if leader is None or leader.node_id == self.state.node_id or FORWARDED_HEADER in headers:
            not_leader = NotLeader(
                f"node {self.state.node_id!r} is a {self.state.role.value} and knows no "
                "leader to forward the write to; retry shortly"
            )
            await send_problem(send, not_leader, instance=scope["path"])
            return
        body = bytearray()
        while True:
            message = await receive()
            body.extend(message.get("body", b""))
            if not message.get("more_body", False):
                break
        forwarded = {k: v for k, v in headers.items() if k.lower() not in _HOP_BY_HOP}
        forwarded[FORWARDED_HEADER] = self.state.node_id
        query = scope.get("query_string", b"").decode()
        url = f"{leader.url}{scope['path']}" + (f"?{query}" if query else "")
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.forward_timeout)
        try:
            answer = await self._client.request(
                scope["method"], url, content=bytes(body), headers=forwarded
            )
        except httpx.HTTPError as exc:
            unreachable = LeaderUnreachable(leader.url, exc)
            await send_problem(send, unreachable, instance=scope["path"])
            return
        out_headers = [
            (k.encode("latin-1"), v.encode("latin-1"))
            for k, v in answer.headers.multi_items()
            if k.lower() not in _HOP_BY_HOP and k.lower() != "content-encoding"
        ]
        out_headers.append((b"content-length", str(len(answer.content)).encode()))
        await send(
            {"type": "http.response.start", "status": answer.status_code, "headers": out_headers}
        )
        await send({"type": "http.response.body", "body": answer.content})
