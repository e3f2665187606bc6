"""`make fuzz`: an independent schemathesis run against a real server, all checks, all phases.

Starts ``stacksdb serve`` on 127.0.0.1 with a fresh data dir, then runs the schemathesis
command line against the OpenAPI document it serves: every check (``--checks all``), every
phase (examples, coverage, fuzzing and stateful, whose scenarios follow the links between
operations: create a library, then write, list, search and delete in it), until the time
budget is spent. The one failure dropped is a schema-valid request refused by a rule no
schema can state (tests/support/fuzzing.py, ``DYNAMIC_RULES``); those are counted by rule.
Prints a table and writes benchmarks/results/fuzz.json; the exit status is schemathesis's.

    python benchmarks/fuzz.py [--minutes 5] [--workers 2] [--seed N]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.exact import markdown_table
from tests.support.fuzz_hooks import DYNAMIC_LOG
from tests.support.server import running_server

RESULTS = Path(__file__).resolve().parent / "results" / "fuzz.json"
ST = Path(sys.executable).parent / "st"
# The cluster log long-polls up to 30 s (``?wait=``): a request may take that long by design.
REQUEST_TIMEOUT = 40
MAX_RESPONSE_TIME = 35
# A made-up remote embedder URL is tried once, briefly (its failure is a documented 502/504).
SERVER_ENV = {"STACKSDB_EMBEDDER_TIMEOUT": "2", "STACKSDB_EMBEDDER_RETRIES": "0"}
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def schemathesis_command(url: str, args: argparse.Namespace, report_dir: Path) -> list[str]:
    command = [
        str(ST),
        "run",
        f"{url}/openapi.json",
        "--checks",
        "all",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-time",
        str(int(args.minutes * 60)),
        "--workers",
        str(args.workers),
        "--request-timeout",
        str(REQUEST_TIMEOUT),
        "--max-response-time",
        str(MAX_RESPONSE_TIME),
        "--report",
        "ndjson",
        "--report-dir",
        str(report_dir),
        "--no-color",
        # Keep no example database in the working tree: every run starts afresh.
        "--generation-database",
        ":memory:",
    ]
    if args.seed is not None:
        command += ["--seed", str(args.seed)]
    return command


def summary_of(output: str) -> dict[str, Any]:
    """The figures of schemathesis's closing summary."""
    text = _ANSI.sub("", output)

    def number(pattern: str) -> int:
        found = re.search(pattern, text)
        return int(found.group(1)) if found else 0

    failures = dict(re.findall(r"❌ (ST\d+ [^:\n]+): (\d+)", text))
    links = re.search(r"API Links:\s+([^\n]+)", text)
    return {
        "cases": number(r"(\d+) generated"),
        "unique_failures": number(r"(\d+) unique failures?"),
        "errors": number(r"(\d+) errored"),
        "dropped_as_dynamic": number(r"Filtered: (\d+)"),
        "failures_by_check": {name: int(count) for name, count in failures.items()},
        "stateful_scenarios": number(r"Scenarios:\s+(\d+)"),
        "links_covered": links.group(1).strip() if links else "",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="time budget of the run")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="stacksdb-fuzz-") as scratch_dir:
        scratch = Path(scratch_dir)
        dynamic_log = scratch / "dynamic.log"
        env = {
            **os.environ,
            "SCHEMATHESIS_HOOKS": "tests.support.fuzz_hooks",
            DYNAMIC_LOG: str(dynamic_log),
            "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
        }
        with running_server(scratch / "data", env=SERVER_ENV) as server:
            command = schemathesis_command(server.url, args, scratch / "report")
            print(" ".join(command), flush=True)
            started = time.monotonic()
            # In the scratch folder: schemathesis keeps a cache in its working directory.
            run = subprocess.run(command, env=env, cwd=scratch, capture_output=True, text=True)
            elapsed = time.monotonic() - started
            if run.returncode:
                print("server log (tail):", server.log(), sep="\n")
        print(run.stdout, run.stderr, sep="\n")
        dynamic = collections.Counter(
            dynamic_log.read_text().splitlines() if dynamic_log.exists() else []
        )

    summary: dict[str, Any] = {
        "command": " ".join(["python", "benchmarks/fuzz.py", *(argv or sys.argv[1:])]),
        "schemathesis": " ".join(command[1:2] + command[3:]),
        "seconds": round(elapsed, 1),
        **summary_of(run.stdout),
        "dynamic_422s_by_rule": dict(dynamic.most_common()),
        "exit_status": run.returncode,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    rows: list[tuple[str, ...]] = [("figure", "value")]
    for key in ("seconds", "cases", "unique_failures", "errors", "stateful_scenarios"):
        rows.append((key, str(summary[key])))
    rows.append(("links covered", str(summary["links_covered"])))
    rows += [(f"failure: {name}", str(n)) for name, n in summary["failures_by_check"].items()]
    rows += [(f"dynamic 422: {rule}", str(count)) for rule, count in dynamic.most_common()]
    print(markdown_table(rows))
    print(f"\nwritten to {RESULTS}")
    return run.returncode


if __name__ == "__main__":
    sys.exit(main())
