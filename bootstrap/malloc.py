"""Keep glibc's malloc from holding on to the memory of finished requests.

glibc serves an allocation of at least ``M_MMAP_THRESHOLD`` bytes (128 KiB at start) with
its own ``mmap``, which ``free`` hands straight back to the system. But the threshold is
dynamic: each time such a block is freed, glibc raises the threshold to that block's size
(up to 32 MiB). A write request makes several arrays of 1-8 MB (the parsed batch, its
float32 matrix, the normalised copy, the SQLite blobs, the log entry); after the first one
is freed, all later ones come from the heap arenas of the worker threads instead, and an
arena only shrinks from its top, so those megabytes stay resident between requests. In
``benchmarks/exact.py`` (81,115 vectors of 384 floats, batches of 1,000) the server's RSS
grew by 191 MiB with the dynamic threshold and by 161 MiB with a fixed one, for 119 MiB of
vectors: 1.61x against 1.35x, the difference between missing and meeting the 1.5x target.

So ``stacksdb serve`` fixes the threshold (``mallopt`` also turns the dynamic adjustment
off). The price is an ``mmap``/``munmap`` pair and fresh page faults for every large block:
about 20 page faults per ingested vector, which on the 2-core VM of the benchmark cost
~30 us of server CPU per vector (146 against 112 us; ingest still ran at 6,500 vectors/s).
A deployment that prefers ingest CPU to resident memory can drop this call. Elsewhere than
glibc (musl, macOS) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # from glibc's <malloc.h>
DEFAULT_MMAP_THRESHOLD = 128 * 1024


def fix_mmap_threshold(threshold: int = DEFAULT_MMAP_THRESHOLD) -> bool:
    """Serve allocations of ``threshold`` bytes and more with their own mapping, for the rest
    of the process's life; whether the C library took the setting."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return False
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None:
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    done = bool(mallopt(M_MMAP_THRESHOLD, threshold))
    log.debug("malloc mmap threshold fixed at %d bytes: %s", threshold, done)
    return done
