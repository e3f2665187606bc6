"""The one way an index kernel is compiled: numba in nopython mode, GIL released, cached.

A kernel is a plain Python function over NumPy arrays and scalars that reads like the
paper it comes from; ``@kernel`` compiles it on first call (or loads the compiled code that
``cache=True`` kept on disk, under ``NUMBA_CACHE_DIR`` when set). ``nogil=True`` is what lets
two searches use two cores: the compiled body runs without the GIL from entry to return.

Floating-point: reassociation and contraction are allowed (so reductions vectorise), but not
the no-NaN/no-infinity assumptions: kernels use infinities as heap sentinels.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba

F = TypeVar("F", bound=Callable[..., Any])

_FASTMATH = frozenset({"reassoc", "contract", "nsz", "arcp"})


def kernel(fn: F) -> F:
    """``fn`` compiled with ``numba.njit(nogil=True, cache=True)``, typed as itself."""
    return cast(F, numba.njit(nogil=True, cache=True, fastmath=set(_FASTMATH))(fn))
