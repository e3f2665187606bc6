"""RAG-style retrieval: fetch the top-k chunks for a question under a metadata filter and
assemble the context block of an LLM prompt, within a character budget.

The question's embedding is a held-out WordNet definition's (no model runs here); the filter
keeps short definitions only and leaves out the question's own lemma.

    python -m examples.rag_retrieval --url http://127.0.0.1:8000 --limit 5000 --max-words 25
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from stacksdb_client import F, FilterExpr, SearchResult, StacksDB

from examples import wordnet

PROMPT = """Answer the question using only the numbered passages below; cite them as [n].

Passages:
{context}

Question: {question}
Answer:"""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", default=os.environ.get("STACKSDB_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--data", type=Path, default=wordnet.default_path())
    parser.add_argument("--limit", type=int, default=5000, help="how many synsets to ingest")
    parser.add_argument("--query", type=int, default=0, help="which held-out query (0..999)")
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--max-words", type=int, default=25, help="longest gloss to retrieve")
    parser.add_argument("--budget", type=int, default=2000, help="context size in characters")
    return parser.parse_args(argv)


def retrieval_filter(max_words: int, exclude_lemma: str) -> FilterExpr:
    return (F("gloss_words") <= max_words) & ~(F("lemma") == exclude_lemma)


def build_context(hits: Sequence[SearchResult], budget: int) -> str:
    """Numbered passages, best first, as many as fit in ``budget`` characters."""
    passages: list[str] = []
    used = 0
    for n, hit in enumerate(hits, 1):
        source = (hit.metadata or {}).get("lemma", hit.chunk_id)
        passage = f"[{n}] {hit.text} (source: {source}, score {hit.score:.2f})"
        if used + len(passage) > budget:
            break
        passages.append(passage)
        used += len(passage) + 1
    return "\n".join(passages)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    data = wordnet.load(args.data, args.limit)
    subject = wordnet.lemma(data.query_texts[args.query])
    with StacksDB(args.url) as db:
        lib = db.create_library("rag-corpus", dimension=data.vectors.shape[1])
        try:
            lib.add_chunks(data.chunks(), embeddings=data.vectors)
            answer = lib.search(
                data.queries[args.query],
                k=args.k,
                filter=retrieval_filter(args.max_words, subject),
                include=["text", "metadata"],
            )
            context = build_context(answer.results, args.budget)
            print(PROMPT.format(context=context, question=f"What is {subject}?"))
        finally:
            lib.delete()
    return 0


if __name__ == "__main__":
    sys.exit(main())
