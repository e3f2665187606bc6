"""Compile every index kernel ahead of the first request: ``python -m bootstrap.warmup``.

numba compiles a kernel on its first call and keeps the machine code in ``NUMBA_CACHE_DIR``
(beside the sources when unset). The Docker image runs this module at build time, so a
container answers its first search without a compile pause. Every registered index type is
built, written to and searched under every metric, with and without a filter, because each
combination of argument types is compiled separately. The bundled MiniLM embeds two texts,
which compiles the kernels of its forward pass.
"""

from __future__ import annotations

import time

import numpy as np

from adapters.embedders.minilm import MiniLmEmbedder
from domain.embedding import Purpose
from domain.index.registry import build_index, load_index
from domain.models import IndexSpec, IndexType, Metric

_ROWS = 300
_DIMENSION = 8


def warm_up() -> float:
    """Exercise every kernel once; returns the seconds it took."""
    started = time.perf_counter()
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(_ROWS, _DIMENSION)).astype(np.float32)
    labels = np.arange(_ROWS, dtype=np.int64)
    allowed = np.zeros(_ROWS, dtype=np.bool_)
    allowed[::2] = True
    for index_type in IndexType:
        for metric in Metric:
            index = build_index(IndexSpec.parse(index_type), _DIMENSION, metric, labels, vectors)
            index.add(labels[:10] + _ROWS, vectors[:10])
            index.remove(labels[:5])
            for exact in (False, True):
                index.search(vectors[0], 10, exact=exact)
                index.search(vectors[0], 10, allowed=allowed, exact=exact)
            load_index(index.to_state()).search(vectors[1], 10)
    embedder = MiniLmEmbedder()
    embedder.embed(["warm-up", "a second, longer text for the compiler"], Purpose.DOCUMENT)
    embedder.close()
    return time.perf_counter() - started


if __name__ == "__main__":
    print(f"index and embedder kernels compiled and cached in {warm_up():.1f} s")
