"""How many threads the BLAS library may use for one matrix product.

The exact index answers a search with one float32 matrix-vector product over every stored
vector. That product is bound by memory bandwidth, not arithmetic, so a second BLAS thread
buys little, while it costs a lot whenever the cores are busy: OpenBLAS hands half of the
product to a worker thread and waits for it, and on a loaded machine that thread may wait a
scheduler tick (4 ms here) before it runs. In ``benchmarks/exact.py`` on 2 busy cores, one
thread per product took a search through HTTP over 81,115 vectors from 23 ms (p50, the
default two threads) to 7 ms. A server also runs many requests at once, one per worker
thread: each brings its own core, and BLAS threads on top would only oversubscribe them.

So the server defaults to one BLAS thread (``STACKSDB_BLAS_THREADS``). Index builds
(k-means, matrix-matrix products) are the work that would gain from more; raise it for a
machine that mostly builds.
"""

from __future__ import annotations

import logging

from threadpoolctl import threadpool_limits

log = logging.getLogger(__name__)


def limit_blas_threads(threads: int) -> None:
    """Cap every BLAS library loaded in this process (NumPy's OpenBLAS) at ``threads``,
    for the rest of the process's life."""
    threadpool_limits(limits=threads, user_api="blas")
    log.debug("BLAS limited to %d thread(s)", threads)
