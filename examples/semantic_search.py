"""Semantic search over WordNet: ingest the first N noun definitions with their MiniLM
embeddings, then ask for the definitions nearest to a held-out one.

    python -m examples.semantic_search --url http://127.0.0.1:8000 --limit 5000 --query 3
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from stacksdb_client import StacksDB

from examples import wordnet


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", default=os.environ.get("STACKSDB_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--data", type=Path, default=wordnet.default_path())
    parser.add_argument("--limit", type=int, default=5000, help="how many synsets to ingest")
    parser.add_argument("--query", type=int, default=0, help="which held-out query (0..999)")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--index", choices=["flat", "ivf", "hnsw"], default="flat")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--keep", action="store_true", help="keep the library afterwards")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    data = wordnet.load(args.data, args.limit)
    with StacksDB(args.url) as db:
        lib = db.create_library(
            "wordnet-nouns",
            dimension=data.vectors.shape[1],
            metric="cosine",
            index=args.index,
            description="WordNet 3.0 noun glosses, all-MiniLM-L6-v2",
        )
        try:
            lib.add_chunks(
                data.chunks(),
                embeddings=data.vectors,
                batch_size=args.batch_size,
                on_progress=lambda done, total: print(
                    f"\ringested {done}/{total}", end="", file=sys.stderr
                ),
            )
            print(file=sys.stderr)
            lib.wait_for_index()
            print(f"query: {data.query_texts[args.query]}")
            answer = lib.search(data.queries[args.query], k=args.k, include=["text"])
            for rank, hit in enumerate(answer.results, 1):
                print(f"{rank:2}. {hit.score:.3f}  {hit.text}")
            print(f"({answer.index} index, {answer.took_ms:.1f} ms)")
        finally:
            if not args.keep:
                lib.delete()
    return 0


if __name__ == "__main__":
    sys.exit(main())
