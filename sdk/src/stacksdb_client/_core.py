"""What the sync and async clients share: requests described as data, the retry policy, the
cluster read-your-writes state, and turning answers into models or typed errors.

Sans-I/O, as h11 is: a request and its retries are a *plan*, a generator that yields the
effects it needs (``Send`` a request, ``Sleep`` a while) and is sent back what came of them.
Every decision (is it retryable, how long to wait, which headers to send, which error to
raise) is made here once; a client only performs the effects, with httpx.Client and
time.sleep or httpx.AsyncClient and asyncio.sleep.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Generic, Protocol, TypeAlias, TypedDict, TypeVar, runtime_checkable

import httpx

from stacksdb_client._version import USER_AGENT
from stacksdb_client.errors import (
    IndexBuildError,
    RequestTimeoutError,
    StacksDBError,
    UnreachableError,
    error_from_response,
)
from stacksdb_client.models import IndexStatus

T = TypeVar("T")

INDEX_HEADER = "X-StacksDB-Index"
MIN_INDEX_HEADER = "X-StacksDB-Min-Index"
RETRYABLE_STATUSES = frozenset({503})


@runtime_checkable
class ArrayLike(Protocol):
    """Anything with ``tolist()``: a NumPy array, without importing NumPy."""

    def tolist(self) -> Any: ...


Vector: TypeAlias = Sequence[float] | ArrayLike
"""An embedding: a list of floats or a 1-D NumPy array."""

Vectors: TypeAlias = Sequence[Vector] | ArrayLike
"""Many embeddings: a list of vectors or a 2-D NumPy array."""


def vector_json(vector: Vector) -> list[float]:
    """A JSON-ready list of floats (a NumPy array of any float dtype becomes one)."""
    if isinstance(vector, ArrayLike):
        values = vector.tolist()
        if not isinstance(values, list) or (values and isinstance(values[0], list)):
            raise ValueError("an embedding must be one-dimensional")
        return [float(v) for v in values]
    return [float(v) for v in vector]


def vectors_json(vectors: Vectors) -> list[list[float]]:
    """Rows of a 2-D array (one ``tolist`` for the whole block) or of a list of vectors."""
    if isinstance(vectors, ArrayLike):
        rows = vectors.tolist()
        if not isinstance(rows, list) or (rows and not isinstance(rows[0], list)):
            raise ValueError("embeddings must be two-dimensional: one row per chunk")
        return rows
    return [vector_json(v) for v in vectors]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter (sleep a uniform time in
    ``[0, min(max_backoff, backoff * 2**attempt)]``), for ``retries`` attempts after the first.

    Retried: idempotent requests (GET, PUT, DELETE, search, and creates that carry their own
    id) on a transport error or a 503; any request on a connect error (it never reached the
    server). A 503's ``Retry-After`` is honoured up to ``max_retry_after`` seconds.
    """

    retries: int = 3
    backoff: float = 0.1
    max_backoff: float = 5.0
    max_retry_after: float = 30.0

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise ValueError("retries must be >= 0")

    def jitter(self, attempt: int) -> float:
        return random.uniform(0.0, min(self.max_backoff, self.backoff * 2**attempt))

    def delay_after_status(self, attempt: int, response: httpx.Response) -> float:
        retry_after = _retry_after_seconds(response.headers.get("Retry-After"))
        if retry_after is None:
            return self.jitter(attempt)
        return min(retry_after, self.max_retry_after)


def _retry_after_seconds(value: str | None) -> float | None:
    """Retry-After is either delay-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


@dataclass(slots=True)
class ClusterState:
    """The highest log index seen in an ``X-StacksDB-Index`` answer header.

    With ``read_your_writes``, reads send it as ``X-StacksDB-Min-Index`` so a follower
    answers only once it has applied this client's writes (else 503, which is retried).
    """

    read_your_writes: bool = False
    last_index: int | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def observe(self, response: httpx.Response) -> None:
        raw = response.headers.get(INDEX_HEADER)
        if raw is None or not raw.strip().isdigit():
            return
        seen = int(raw)
        with self._lock:
            if self.last_index is None or seen > self.last_index:
                self.last_index = seen

    def read_headers(self) -> dict[str, str]:
        if not self.read_your_writes or self.last_index is None:
            return {}
        return {MIN_INDEX_HEADER: str(self.last_index)}


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One API request and how to read its answer."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    params: Mapping[str, Any] | None = None
    json: Any = None
    idempotent: bool = False
    read: bool = False

    def request(
        self, client: httpx.Client | httpx.AsyncClient, cluster: ClusterState
    ) -> httpx.Request:
        headers = cluster.read_headers() if self.read else {}
        params = {k: v for k, v in (self.params or {}).items() if v is not None}
        return client.build_request(
            self.method, self.path, params=params, json=self.json, headers=headers
        )


def call_is_idempotent(method: str) -> bool:
    return method in ("GET", "HEAD", "PUT", "DELETE")


@dataclass(frozen=True, slots=True)
class Outcome:
    """What an attempt's answer means: done, retry after ``delay`` seconds, or fail."""

    delay: float | None
    error: StacksDBError | None = None


def judge_status(
    call: Call[Any], response: httpx.Response, attempt: int, policy: RetryPolicy
) -> Outcome:
    """Judge an HTTP answer: success (delay None, no error), a retry, or the typed error."""
    if response.is_success:
        return Outcome(None)
    if response.status_code in RETRYABLE_STATUSES and call.idempotent and attempt < policy.retries:
        return Outcome(policy.delay_after_status(attempt, response))
    return Outcome(None, error_from_response(response))


def judge_transport(
    call: Call[Any], error: httpx.TransportError, attempt: int, policy: RetryPolicy, url: str
) -> Outcome:
    """A request that got no answer. A connect error never reached the server, so any request
    may be retried; after a later failure only an idempotent one may be."""
    never_sent = isinstance(error, httpx.ConnectError | httpx.ConnectTimeout)
    if (call.idempotent or never_sent) and attempt < policy.retries:
        return Outcome(policy.jitter(attempt))
    if isinstance(error, httpx.TimeoutException):
        return Outcome(None, RequestTimeoutError(url, error))
    return Outcome(None, UnreachableError(url, error))


@dataclass(frozen=True, slots=True)
class Send:
    """Effect: send ``request``; the plan is sent back the response or the transport error."""

    request: httpx.Request


@dataclass(frozen=True, slots=True)
class Sleep:
    """Effect: sleep ``seconds``; the plan is sent back None."""

    seconds: float


Effect: TypeAlias = Send | Sleep
Reply: TypeAlias = httpx.Response | httpx.TransportError | None
Plan: TypeAlias = Generator[Effect, Reply, T]
"""A computation that does no I/O itself: it yields effects and returns a ``T``."""


@dataclass(frozen=True, slots=True)
class Done(Generic[T]):
    """A plan that has finished with ``value``."""

    value: T


def step(plan: Plan[T], reply: Reply) -> Effect | Done[T]:
    """Resume ``plan`` with ``reply``: its next effect, or its result. Errors it raises
    (the typed ``StacksDBError`` of a failed call) propagate to the caller."""
    try:
        return plan.send(reply)
    except StopIteration as finished:
        return Done(finished.value)


@dataclass(frozen=True, slots=True)
class Session:
    """What a plan needs to build and judge requests: httpx only builds them here (no I/O)."""

    http: httpx.Client | httpx.AsyncClient
    policy: RetryPolicy
    cluster: ClusterState


def send(session: Session, call: Call[T]) -> Plan[T]:
    """One call, retried as the policy allows: the parsed answer or a typed error."""
    attempt = 0
    while True:
        request = call.request(session.http, session.cluster)
        reply = yield Send(request)
        if isinstance(reply, httpx.Response):
            session.cluster.observe(reply)
            outcome = judge_status(call, reply, attempt, session.policy)
            if outcome.delay is None and outcome.error is None:
                return call.parse(reply)
        else:
            assert reply is not None, "a Send is answered with a response or an error"
            outcome = judge_transport(call, reply, attempt, session.policy, str(request.url))
        if outcome.error is not None:
            raise outcome.error
        assert outcome.delay is not None
        yield Sleep(outcome.delay)
        attempt += 1


def ready_or_raise(status: IndexStatus) -> IndexStatus:
    """A ready index, or ``IndexBuildError`` when its last build failed."""
    if status.error:
        raise IndexBuildError(status)
    return status


def parse_none(response: httpx.Response) -> None:
    return None


class HttpOptions(TypedDict):
    """The arguments both clients give httpx.Client / httpx.AsyncClient."""

    base_url: str
    headers: dict[str, str]
    timeout: httpx.Timeout
    follow_redirects: bool


def http_options(
    base_url: str, api_key: str | None, timeout: float | httpx.Timeout | None
) -> HttpOptions:
    return HttpOptions(
        base_url=base_url,
        headers=make_headers(api_key, USER_AGENT),
        timeout=as_timeout(timeout),
        # A follower may answer a write with 307/308 to the leader; the method and body are
        # kept on those.
        follow_redirects=True,
    )


def make_headers(api_key: str | None, user_agent: str) -> dict[str, str]:
    headers = {"User-Agent": user_agent, "Accept": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


def as_policy(retries: int | RetryPolicy) -> RetryPolicy:
    return retries if isinstance(retries, RetryPolicy) else RetryPolicy(retries=retries)


def as_timeout(timeout: float | httpx.Timeout | None) -> httpx.Timeout:
    if isinstance(timeout, httpx.Timeout):
        return timeout
    return httpx.Timeout(timeout)
