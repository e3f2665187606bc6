"""Metadata values as comparable numbers: doubles for numbers, microseconds for datetimes.

One conversion for each kind, shared by the parser (operands), the reference evaluator and
the columnar index (stored values), so that both evaluators compare exactly the same
numbers: RFC 3339 ``date-time`` strings and ``datetime`` objects become microseconds since
the Unix epoch (UTC), ints and floats become IEEE-754 doubles.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta
from functools import lru_cache

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)
_EPOCH = datetime(1970, 1, 1)
_MICROSECOND = timedelta(microseconds=1)


@lru_cache(maxsize=65_536)
def rfc3339_micros(text: str) -> int | None:
    """Microseconds since the epoch of an RFC 3339 ``date-time`` string, else None.

    Strict: ``T`` (or ``t``) between date and time, an offset (``Z`` or ``±hh:mm``) is
    required, fractions beyond microseconds are truncated, leap seconds are refused.
    O(len(text)); cached because metadata repeats its values.
    """
    if not text[:1].isdigit():
        return None
    found = _RFC3339.fullmatch(text)
    if found is None:
        return None
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = found.groups()
    micros = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        naive = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micros
        )
    except ValueError:
        return None
    offset = 0
    if not zulu:
        if int(off_h) > 23 or int(off_m) > 59:
            return None
        offset = (int(off_h) * 60 + int(off_m)) * (1 if sign == "+" else -1)
    return (naive - _EPOCH) // _MICROSECOND - offset * 60_000_000


def datetime_micros(value: datetime) -> int:
    """Microseconds since the epoch; a naive datetime is taken to be UTC."""
    offset = value.utcoffset() or timedelta(0)
    return (value.replace(tzinfo=None) - _EPOCH) // _MICROSECOND - offset // _MICROSECOND


def as_number(value: int | float) -> float:
    """A metadata number as a double; integers too large for one become +-inf."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf
