"""The embedder factory (``domain.embedding.EmbedderFactory``): one embedder per spec.

Libraries that name the same spec share one embedder: one MiniLM (its weights loaded once
per process, its worker pool bounding the cores embedding takes) and one HTTP client per
remote endpoint and model (its connections reused). Embedders are built on first use, so a
node that never embeds never loads the model, and a follower, which receives vectors
through the log, builds one only to answer ``POST .../embed``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial
from typing import Protocol

from adapters.embedders.cohere import cohere_embedder
from adapters.embedders.openai import openai_embedder
from adapters.embedders.remote import RetryPolicy
from bootstrap.settings import Settings
from domain.embedding import CohereSpec, Embedder, EmbedderSpec, MiniLmSpec, OpenAiSpec


class ClosableEmbedder(Embedder, Protocol):
    def close(self) -> None:
        """Release the embedder's threads or connections."""


class Embedders:
    """Builds each spec's embedder once and shares it; ``close`` releases them all."""

    def __init__(self, policy: RetryPolicy, minilm: Callable[[], ClosableEmbedder]) -> None:
        self._policy = policy
        self._minilm = minilm
        self._built: dict[EmbedderSpec, ClosableEmbedder] = {}
        self._lock = threading.Lock()

    def __call__(self, spec: EmbedderSpec) -> Embedder:
        with self._lock:
            embedder = self._built.get(spec)
            if embedder is None:
                embedder = self._build(spec)
                self._built[spec] = embedder
            return embedder

    def close(self) -> None:
        with self._lock:
            built = list(self._built.values())
            self._built.clear()
        for embedder in built:
            embedder.close()

    def _build(self, spec: EmbedderSpec) -> ClosableEmbedder:
        match spec:
            case MiniLmSpec():
                return self._minilm()
            case OpenAiSpec():
                return openai_embedder(spec, self._policy)
            case CohereSpec():
                return cohere_embedder(spec, self._policy)


def embedders_of(settings: Settings) -> Embedders:
    """The factory configured by ``STACKSDB_EMBEDDER_*`` and ``STACKSDB_EMBED_WORKERS``."""
    policy = RetryPolicy(
        timeout=settings.embedder_timeout,
        retries=settings.embedder_retries,
        max_wait=settings.embedder_max_wait,
    )
    return Embedders(policy, partial(bundled_minilm, settings.embed_workers))


def bundled_minilm(workers: int) -> ClosableEmbedder:
    """The bundled MiniLM on ``workers`` threads. Imported here, on first use, so that a node
    whose libraries never name it does not import the tokenizer and model packages."""
    from adapters.embedders.minilm import MiniLmEmbedder

    return MiniLmEmbedder(workers=workers)
