"""Bulk ingest with the asyncio client: several batches in flight at once, with progress.

python -m examples.async_bulk_ingest --url http://127.0.0.1:8000 --limit 20000 --concurrency 4
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from stacksdb_client import AsyncStacksDB

from examples import wordnet


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", default=os.environ.get("STACKSDB_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--data", type=Path, default=wordnet.default_path())
    parser.add_argument("--limit", type=int, default=20_000, help="how many synsets to ingest")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=4, help="batches in flight")
    parser.add_argument("--keep", action="store_true", help="keep the library afterwards")
    return parser.parse_args(argv)


def show_progress(done: int, total: int | None) -> None:
    share = f" ({done / total:.0%})" if total else ""
    print(f"ingested {done}/{total}{share}", file=sys.stderr)


async def ingest(args: argparse.Namespace) -> None:
    data = wordnet.load(args.data, args.limit)
    async with AsyncStacksDB(args.url) as db:
        lib = await db.create_library("wordnet-bulk", dimension=data.vectors.shape[1])
        try:
            started = time.perf_counter()
            written = await lib.add_chunks(
                data.chunks(),
                embeddings=data.vectors,
                batch_size=args.batch_size,
                concurrency=args.concurrency,
                on_progress=show_progress,
            )
            seconds = time.perf_counter() - started
            await lib.refresh()
            print(
                f"wrote {len(written)} chunks in {seconds:.2f} s "
                f"({len(written) / seconds:.0f} chunks/s); the library holds {lib.chunk_count}"
            )
        finally:
            if not args.keep:
                await lib.delete()


def main(argv: Sequence[str] | None = None) -> int:
    asyncio.run(ingest(parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
