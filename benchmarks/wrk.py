"""wrk, the C load generator, driven from the benchmarks: POST bodies cycled by a Lua script.

wrk costs the client no Python, so on a two-core machine the server gets the cores the
requests need. The script prepares every request once (``wrk.format``) and hands them out in
turn, so each connection sends a different query each time; its ``done`` hook prints the
summary and latency percentiles as one JSON line that ``run`` reads back.

Debian's ``wrk`` package provides the binary (``make bench-concurrency`` installs it).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

_MARK = "WRK_JSON "

_DONE = """
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%s{"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, '
    .. '"status": %d, "timeout": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, '
    .. '"max_us": %d, "mean_us": %.1f}\\n',
    "MARK", summary.requests, summary.duration, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
""".replace("MARK", _MARK)


@dataclass(frozen=True, slots=True)
class WrkResult:
    """One wrk run: requests/s over the whole run, latency percentiles in ms, errors (any
    non-2xx/3xx status, socket error or timeout)."""

    connections: int
    seconds: float
    requests: int
    requests_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    errors: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def write_script(
    path: Path, bodies: Sequence[bytes], content_type: str = "application/json"
) -> Path:
    """A Lua script that POSTs ``bodies`` in turn, to the path of the URL wrk is given."""
    lines = ["local bodies = {"]
    for body in bodies:
        text = body.decode()
        level = "=" * _bracket_level(text)
        lines.append(f"[{level}[{text}]{level}],")
    lines.append("}")
    lines.append(
        f"""
local prepared = {{}}
local turn = 0
function init(args)
  for n, body in ipairs(bodies) do
    prepared[n] = wrk.format("POST", nil, {{["Content-Type"] = "{content_type}"}}, body)
  end
end
function request()
  turn = turn % #prepared + 1
  return prepared[turn]
end
"""
    )
    lines.append(_DONE)
    path.write_text("\n".join(lines))
    return path


def _bracket_level(text: str) -> int:
    """The smallest n such that ``]====]`` (n signs) does not occur in ``text``: a Lua long
    string with that level holds ``text`` verbatim."""
    level = 0
    while f"]{'=' * level}]" in text:
        level += 1
    return level


def run(url: str, script: Path, connections: int, seconds: float, threads: int = 1) -> WrkResult:
    """``wrk`` with ``connections`` open connections for ``seconds`` against ``url``."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed (apt-get install wrk, or make bench-concurrency)")
    command = [
        wrk,
        f"--threads={min(threads, connections)}",
        f"--connections={connections}",
        f"--duration={max(1, round(seconds))}s",
        "--timeout=30s",
        f"--script={script}",
        url,
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    line = next((x for x in done.stdout.splitlines() if x.startswith(_MARK)), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary: {done.stdout}\n{done.stderr}")
    raw = json.loads(line[len(_MARK) :])
    seconds_run = raw["duration_us"] / 1e6
    errors = sum(raw[key] for key in ("connect", "read", "write", "status", "timeout"))
    return WrkResult(
        connections=connections,
        seconds=round(seconds_run, 2),
        requests=raw["requests"],
        requests_per_s=round(raw["requests"] / seconds_run, 1),
        p50_ms=raw["p50_us"] / 1000,
        p90_ms=raw["p90_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
        mean_ms=round(raw["mean_us"] / 1000, 3),
        errors=errors,
    )
