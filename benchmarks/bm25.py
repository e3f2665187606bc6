"""The keyword index beside bm25s, in one process, on the WordNet noun glosses.

Both index the shared base texts (81,115 glosses) with the same analyser (ours: lowercase,
Unicode words, Lucene's English stop words, Snowball stemmer) and Lucene's BM25 (k1 1.2,
b 0.75; bm25s ``method="lucene"``), then answer the 1,000 held-out glosses as keyword queries
one at a time (k 10). Reported beside bm25s from the same run: index build time (analysis
included for both), query latency, memory, and how often the two top-10s agree. Ours also
takes writes, which bm25s (a static index) cannot: adding the corpus in batches of 100, and
deleting a tenth then compacting. Results: stdout and ``benchmarks/results/bm25.json``.

    python benchmarks/bm25.py               # the full run
    python benchmarks/bm25.py --limit 20000 # a quick one
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import bm25s
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.exact import machine, markdown_table  # noqa: E402
from domain.models import Bm25Params  # noqa: E402
from domain.text_index.bm25 import Bm25Index, term_bytes  # noqa: E402
from tests.support.text import ANALYZERS  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "wordnet-nouns-minilm.npz"
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "bm25.json"
K = 10
WRITE_BATCH = 100


def load(path: Path, limit: int | None) -> tuple[list[str], list[str]]:
    with np.load(path) as z:
        base = [str(t) for t in z["base_text"]]
        queries = [str(t) for t in z["query_text"]]
    return (base if limit is None else base[:limit]), queries


def timed(run: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    result = run()
    return result, time.perf_counter() - started


def build_ours(texts: list[str]) -> Bm25Index:
    index = Bm25Index(Bm25Params(), ANALYZERS)
    index.add(np.arange(len(texts), dtype=np.int64), texts)
    return index


def build_bm25s(texts: list[str]) -> bm25s.BM25:
    analyse = ANALYZERS("english")
    reference = bm25s.BM25(k1=1.2, b=0.75, method="lucene")
    reference.index([analyse(t) for t in texts], show_progress=False)
    return reference


def bm25s_memory(reference: bm25s.BM25) -> int:
    """Its sparse score matrix, and its vocabulary counted as ours is (``vocabulary_bytes``)."""
    arrays = (reference.scores[name] for name in ("data", "indices", "indptr"))
    vocabulary = reference.vocab_dict
    return int(sum(a.nbytes for a in arrays)) + vocabulary_bytes(vocabulary)


def vocabulary_bytes(vocabulary: dict[str, int]) -> int:
    return sys.getsizeof(vocabulary) + sum(map(term_bytes, vocabulary))


def latencies_ms(search: Any, queries: list[str]) -> tuple[np.ndarray, list[Any]]:
    times, answers = [], []
    for query in queries:
        answer, seconds = timed(lambda q=query: search(q))
        times.append(seconds * 1e3)
        answers.append(answer)
    return np.asarray(times), answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    texts, queries = load(args.data, args.limit)
    analyse = ANALYZERS("english")

    ours, ours_build = timed(lambda: build_ours(texts))
    reference, reference_build = timed(lambda: build_bm25s(texts))

    ours_ms, ours_hits = latencies_ms(lambda q: ours.search(q, K), queries)
    vocabulary = reference.vocab_dict

    def reference_search(query: str) -> tuple[np.ndarray, np.ndarray]:
        tokens = [t for t in analyse(query) if t in vocabulary]
        docs, scores = reference.retrieve([tokens], k=K, show_progress=False, n_threads=1)
        return docs[0], scores[0]

    reference_ms, reference_hits = latencies_ms(reference_search, queries)
    agree = np.mean(
        [
            np.allclose(np.sort(h.scores)[::-1], np.sort(s[s > 0])[::-1][: len(h)], rtol=1e-4)
            for h, (_, s) in zip(ours_hits, reference_hits, strict=True)
        ]
    )

    incremental = Bm25Index(Bm25Params(), ANALYZERS)
    labels = np.arange(len(texts), dtype=np.int64)

    def add_in_writes() -> None:
        for i in range(0, len(texts), WRITE_BATCH):
            incremental.add(labels[i : i + WRITE_BATCH], texts[i : i + WRITE_BATCH])

    _, incremental_build = timed(add_in_writes)
    _, delete_seconds = timed(lambda: incremental.remove(labels[::10]))
    _, compact_seconds = timed(incremental.compact)

    ours_memory, reference_memory = ours.memory_bytes(), bm25s_memory(reference)
    rows = [
        ("measure", "ours", "bm25s (lucene)", "ours / bm25s"),
        (
            "build, s",
            f"{ours_build:.2f}",
            f"{reference_build:.2f}",
            f"{ours_build / reference_build:.2f}",
        ),
        (
            "query p50, ms",
            f"{np.median(ours_ms):.3f}",
            f"{np.median(reference_ms):.3f}",
            f"{np.median(ours_ms) / np.median(reference_ms):.2f}",
        ),
        (
            "query p99, ms",
            f"{np.percentile(ours_ms, 99):.3f}",
            f"{np.percentile(reference_ms, 99):.3f}",
            f"{np.percentile(ours_ms, 99) / np.percentile(reference_ms, 99):.2f}",
        ),
        (
            "memory, MB",
            f"{ours_memory / 1e6:.1f}",
            f"{reference_memory / 1e6:.1f}",
            f"{ours_memory / reference_memory:.2f}",
        ),
        (f"build in writes of {WRITE_BATCH}, s", f"{incremental_build:.2f}", "(static)", ""),
        (
            "delete a tenth, then compact, s",
            f"{delete_seconds:.3f} + {compact_seconds:.3f}",
            "(static)",
            "",
        ),
    ]
    print(
        f"{len(texts)} texts, {len(queries)} queries, k {K}; top-10 scores agree on "
        f"{agree:.1%} of queries\n"
    )
    print(markdown_table(rows))
    results = {
        "texts": len(texts),
        "queries": len(queries),
        "k": K,
        "top10_scores_agree": float(agree),
        "ours": {
            "build_s": ours_build,
            "query_ms_p50": float(np.median(ours_ms)),
            "query_ms_p99": float(np.percentile(ours_ms, 99)),
            "memory_bytes": ours_memory,
            "incremental_build_s": incremental_build,
            "delete_tenth_s": delete_seconds,
            "compact_s": compact_seconds,
            "vocabulary": ours.vocabulary_size,
        },
        "bm25s": {
            "build_s": reference_build,
            "query_ms_p50": float(np.median(reference_ms)),
            "query_ms_p99": float(np.percentile(reference_ms, 99)),
            "memory_bytes": reference_memory,
        },
        "machine": machine(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
