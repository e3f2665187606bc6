"""`make soak`: the crash loop, long form (Qdrant-crasher style).

A client writes batches, single chunks, upserts, patches and deletes, and triggers index
rebuilds, while the server is killed with SIGKILL at random moments and restarted on the
same data dir, ``--kills`` times; after each restart every acknowledged write is checked
(see tests/support/crasher.py). Prints a summary table and writes
benchmarks/results/crasher.json.

    python benchmarks/crasher.py --kills 200 [--seed 1] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.crasher import Crasher

RESULTS = Path(__file__).resolve().parent / "results" / "crasher.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--min-run", type=float, default=0.05, help="seconds before a kill, min")
    parser.add_argument("--max-run", type=float, default=1.0, help="seconds before a kill, max")
    parser.add_argument("--data-dir", type=Path, help="default: a fresh temporary folder")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="stacksdb-crasher-") as scratch:
        data_dir = args.data_dir or Path(scratch) / "data"
        crasher = Crasher(data_dir, seed=args.seed, min_run=args.min_run, max_run=args.max_run)
        started = time.monotonic()
        stats = crasher.run(args.kills, progress=not args.quiet)
        elapsed = time.monotonic() - started

    summary = {
        "command": " ".join(["python", "benchmarks/crasher.py", *(argv or sys.argv[1:])]),
        "seed": args.seed,
        "seconds": round(elapsed, 1),
        **stats.summary(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2) + "\n")
    rows = [(k, v) for k, v in summary.items() if k not in {"operations", "command"}]
    rows += [(f"  {name}", count) for name, count in summary["operations"].items()]
    width = max(len(str(k)) for k, _ in rows)
    print(f"\n{'crash loop':<{width}}  result")
    print(f"{'-' * width}  ------")
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    print(f"\nwritten to {RESULTS}")
    return 0 if stats.server_errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
