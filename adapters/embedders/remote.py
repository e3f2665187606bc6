"""What every remote embedder shares: one HTTP discipline and one way to read vectors back.

A provider is a ``WireFormat``: how many texts one request may carry, the JSON body for a
batch, and how to find the vectors in the answer. ``RemoteEmbedder`` does the rest the same
way for each (implements ``domain.embedding.Embedder``):

- Batching: texts go out in slices of the provider's limit (OpenAI 2,048 inputs, Cohere 96
  texts), one request after another, and the rows come back in the order of the texts.
- Retries: 429, 5xx, timeouts and connection errors are retried up to ``policy.retries``
  times, waiting ``backoff * 2**attempt`` seconds, or what ``Retry-After`` asks, never more
  than ``max_wait``. Another 4xx is the caller's configuration (unknown model, bad key) and
  fails at once. Out of attempts: ``EmbedderTimedOut`` if the last one timed out, else
  ``EmbedderFailed``.
- Keys: ``api_key_env`` names an environment variable of the server, read at every request
  and sent only in the ``Authorization`` header. The key is never kept, logged or put into
  an error: a provider's error body is quoted only with the key cut out, and never for 401
  and 403, the answers that may echo part of a key.
- Dimension: a remote model's width is not in its spec, so it is learned from the first
  answer (``dimension`` embeds a probe text if nothing was embedded yet) and every later
  answer must have it. A body that is not the documented shape, rows of unequal or wrong
  length, or values that are not finite numbers are ``EmbedderFailed``.
"""

from __future__ import annotations

import email.utils
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import numpy as np
from numpy.typing import NDArray

from domain.embedding import Purpose
from domain.errors import EmbedderFailed, EmbedderTimedOut

log = logging.getLogger(__name__)

# What ``dimension`` embeds when no answer has told the width yet.
PROBE_TEXT = "dimension probe"
# How much of a provider's error body an error quotes.
_QUOTED = 300


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How long one request may take and how failures are retried (settings
    ``STACKSDB_EMBEDDER_TIMEOUT``, ``..._RETRIES``, ``..._MAX_WAIT``)."""

    timeout: float = 30.0
    retries: int = 3
    backoff: float = 0.5
    max_wait: float = 10.0

    def wait(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to sleep before retry number ``attempt`` (0-based)."""
        wanted = self.backoff * 2**attempt if retry_after is None else retry_after
        return max(0.0, min(wanted, self.max_wait))


class MalformedAnswer(ValueError):
    """A provider's answer is not the shape its API documents."""


class WireFormat(Protocol):
    """One provider's request and answer shapes."""

    @property
    def batch_limit(self) -> int:
        """Most texts one request may carry."""

    def body(self, texts: Sequence[str], purpose: Purpose) -> dict[str, Any]:
        """The JSON request for ``texts``."""

    def rows(self, answer: Any, count: int) -> list[Any]:
        """The ``count`` vectors in ``answer`` (parsed JSON), in the order of the texts;
        raises ``MalformedAnswer`` if they are not where the API documents them."""


def endpoint(url: str, path: str) -> str:
    """``url`` as given when it already ends in ``path``, else ``path`` appended to it: a
    base URL (``https://api.openai.com/v1``) or the full endpoint both work."""
    trimmed = url.rstrip("/")
    if trimmed.endswith(path):
        return trimmed
    return trimmed + path


class RemoteEmbedder:
    """An ``Embedder`` behind an HTTP endpoint; see the module docstring for its discipline.
    Safe to share between threads (httpx's client is; the learned dimension is locked)."""

    def __init__(
        self,
        name: str,
        url: str,
        wire: WireFormat,
        api_key_env: str | None,
        policy: RetryPolicy,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._name = name
        self._url = url
        self._wire = wire
        self._api_key_env = api_key_env
        self._policy = policy
        self._sleep = sleep
        self._client = httpx.Client(timeout=policy.timeout)
        self._dimension: int | None = None
        self._dimension_lock = threading.Lock()

    @property
    def name(self) -> str:
        return self._name

    @property
    def policy(self) -> RetryPolicy:
        return self._policy

    @property
    def dimension(self) -> int:
        """The model's width, learned from its first answer (a probe if there was none)."""
        if self._dimension is None:
            self.embed([PROBE_TEXT], Purpose.DOCUMENT)
        assert self._dimension is not None
        return self._dimension

    def embed(self, texts: Sequence[str], purpose: Purpose) -> NDArray[np.float32]:
        if not texts:
            return np.empty((0, self.dimension), dtype=np.float32)
        limit = self._wire.batch_limit
        parts = [
            self._embed_batch(texts[start : start + limit], purpose)
            for start in range(0, len(texts), limit)
        ]
        return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)

    def close(self) -> None:
        self._client.close()

    def _embed_batch(self, texts: Sequence[str], purpose: Purpose) -> NDArray[np.float32]:
        answer = self._post(self._wire.body(texts, purpose))
        try:
            rows = self._wire.rows(answer, len(texts))
        except MalformedAnswer as exc:
            raise self._failed(f"answered in an unexpected shape: {exc}") from None
        return self._matrix(rows)

    def _matrix(self, rows: list[Any]) -> NDArray[np.float32]:
        # Without a dtype NumPy says what the rows hold: numbers give a 2-d int or float
        # array; strings, nulls or ragged rows give another kind or shape.
        try:
            values = np.array(rows)
        except ValueError:
            values = np.empty(0, dtype=object)
        if values.ndim != 2 or values.dtype.kind not in "iuf" or values.shape[1] == 0:
            raise self._failed("answered with vectors that are not rows of numbers of one length")
        matrix = values.astype(np.float32)
        if not np.isfinite(matrix).all():
            raise self._failed("answered with NaN or infinite values")
        width = int(matrix.shape[1])
        with self._dimension_lock:
            if self._dimension is None:
                self._dimension = width
        if width != self._dimension:
            raise self._failed(
                f"answered with {width}-dimensional vectors; it made {self._dimension} before"
            )
        return matrix

    def _post(self, body: dict[str, Any]) -> Any:
        policy = self._policy
        for attempt in range(policy.retries + 1):
            last = attempt == policy.retries
            try:
                response = self._client.post(self._url, json=body, headers=self._headers())
            except (httpx.InvalidURL, UnicodeError) as exc:
                # The spec's pattern admits it, httpx or the resolver does not (an IDNA host,
                # an empty label, a port past 65535): as unreachable as a host that is silent.
                raise self._failed(f"has a URL that cannot be used ({exc})") from None
            except httpx.TimeoutException:
                if last:
                    raise EmbedderTimedOut(
                        f"embedder {self._name} did not answer within {policy.timeout:g} s "
                        f"({attempt + 1} attempts)"
                    ) from None
                self._retry(attempt, "timed out", None)
                continue
            except httpx.TransportError as exc:
                if last:
                    raise self._failed(
                        f"could not be reached at {self._url} ({type(exc).__name__}, "
                        f"{attempt + 1} attempts)"
                    ) from None
                self._retry(attempt, type(exc).__name__, None)
                continue
            status = response.status_code
            if status == 429 or status >= 500:
                if last:
                    raise self._failed(f"answered {status} ({attempt + 1} attempts)")
                self._retry(attempt, str(status), _retry_after(response))
                continue
            if status >= 400:
                raise self._failed(f"refused the request: {status}{self._quote(response)}")
            try:
                return response.json()
            except ValueError:
                raise self._failed("answered with a body that is not JSON") from None
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _headers(self) -> dict[str, str]:
        if self._api_key_env is None:
            return {}
        key = os.environ.get(self._api_key_env)
        if not key:
            raise self._failed(
                f"needs the server's environment variable {self._api_key_env}, which is not set"
            )
        return {"Authorization": f"Bearer {key}"}

    def _retry(self, attempt: int, reason: str, retry_after: float | None) -> None:
        wait = self._policy.wait(attempt, retry_after)
        log.warning("embedder %s: %s, retrying in %.2f s", self._name, reason, wait)
        self._sleep(wait)

    def _quote(self, response: httpx.Response) -> str:
        """A provider's error body for an error message, without the key (none for 401/403)."""
        if response.status_code in (401, 403):
            return ""
        text = response.text[:_QUOTED].strip()
        key = os.environ.get(self._api_key_env) if self._api_key_env else None
        if key:
            text = text.replace(key, "[key]")
        return f": {text}" if text else ""

    def _failed(self, what: str) -> EmbedderFailed:
        return EmbedderFailed(f"embedder {self._name} {what}", embedder=self._name)


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP date), if any."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when.timestamp() - time.time()
