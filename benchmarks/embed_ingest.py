"""HTTP ingest of text-only chunks: the server embedding them with the bundled MiniLM.

One real node (``stacksdb serve``, SQLite, ``STACKSDB_EMBED_WORKERS=2`` on 2 cores) takes
WordNet glosses (``base_text`` of the shared set, a random sample) through ``POST
.../chunks/batch`` in requests of 32 and 256 chunks, three ways, in the same run:

    text only   chunks without ``embedding``: the leader embeds each request's texts (one
                call to MiniLM), then commits them, all or nothing
    vectors     the same chunks carrying their vectors (made beforehand by ``POST
                .../embed``): what ingest costs when the client brings the vectors
    model       ``MiniLmEmbedder(workers=2)`` in this process on the same texts in calls of
                the same size: the model alone, the ceiling of the first row

Each figure is chunks (texts) per second, the median of ``--repeats`` rounds, each round the
three ways one after the other into fresh flat libraries, so that load from elsewhere falls
on all three. The ratio ``text only / model`` is the share of the model's throughput the
HTTP path keeps (parsing, validation, the SQLite commit and the index update come on top of
embedding). Results go to stdout as a table and to ``benchmarks/results/embed_ingest.json``.

    python benchmarks/embed_ingest.py                  # the full run
    python benchmarks/embed_ingest.py --texts 256 --repeats 1   # a quick one
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adapters.embedders.minilm import MiniLmEmbedder  # noqa: E402
from benchmarks.exact import machine, markdown_table  # noqa: E402
from bootstrap.blas import limit_blas_threads  # noqa: E402
from domain.embedding import Purpose  # noqa: E402
from tests.support.server import ServerProcess  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "wordnet-nouns-minilm.npz"
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "embed_ingest.json"
CORES = 2
REQUEST_SIZES = (32, 256)


def load_glosses(path: Path, count: int) -> list[str]:
    """``count`` base texts picked at random (seed 1)."""
    with zipfile.ZipFile(path) as archive, archive.open("base_text.npy") as f:
        texts = np.lib.format.read_array(f)
    rows = np.random.default_rng(1).choice(len(texts), count, replace=False)
    return [str(t) for t in texts[rows]]


def new_library(client: httpx.Client, embedder: bool) -> str:
    body: dict[str, Any] = {"name": "ingest", "index": {"type": "flat"}}
    body |= {"embedder": {"provider": "minilm"}} if embedder else {"dimension": 384}
    answer = client.post("/v1/libraries", json=body)
    answer.raise_for_status()
    library_id: str = answer.json()["id"]
    return library_id


def ingest(client: httpx.Client, library_id: str, chunks: list[dict[str, Any]], size: int) -> float:
    """Chunks per second of writing ``chunks`` in batches of ``size``, one after the other."""
    started = time.perf_counter()
    for start in range(0, len(chunks), size):
        answer = client.post(
            f"/v1/libraries/{library_id}/chunks/batch",
            json={"chunks": chunks[start : start + size]},
        )
        answer.raise_for_status()
    return len(chunks) / (time.perf_counter() - started)


def model_rate(model: MiniLmEmbedder, texts: list[str], size: int) -> float:
    started = time.perf_counter()
    for start in range(0, len(texts), size):
        model.embed(texts[start : start + size], Purpose.DOCUMENT)
    return len(texts) / (time.perf_counter() - started)


def measure(server: ServerProcess, texts: list[str], repeats: int) -> list[dict[str, Any]]:
    model = MiniLmEmbedder(workers=CORES)
    rows = []
    with httpx.Client(base_url=server.url, timeout=600) as client:
        # Load the model in both processes and take the vectors the second way sends.
        warm = new_library(client, embedder=True)
        embedded = client.post(f"/v1/libraries/{warm}/embed", json={"texts": texts[:2048]})
        vectors = embedded.json()["embeddings"]
        for start in range(2048, len(texts), 2048):
            part = texts[start : start + 2048]
            more = client.post(f"/v1/libraries/{warm}/embed", json={"texts": part})
            vectors += more.json()["embeddings"]
        model.embed(texts[:8], Purpose.DOCUMENT)
        text_only = [
            {"id": str(i), "document_id": f"d{i // 100}", "text": t} for i, t in enumerate(texts)
        ]
        given = [{**chunk, "embedding": v} for chunk, v in zip(text_only, vectors, strict=True)]
        for size in REQUEST_SIZES:
            rounds: dict[str, list[float]] = {"text_only": [], "vectors": [], "model": []}
            for _ in range(repeats):
                with_embedder = new_library(client, embedder=True)
                rounds["text_only"].append(ingest(client, with_embedder, text_only, size))
                plain = new_library(client, embedder=False)
                rounds["vectors"].append(ingest(client, plain, given, size))
                rounds["model"].append(model_rate(model, texts, size))
                for library_id in (with_embedder, plain):
                    client.delete(f"/v1/libraries/{library_id}").raise_for_status()
            median = {way: statistics.median(rates) for way, rates in rounds.items()}
            rows.append(
                {
                    "chunks_per_request": size,
                    "text_only_chunks_per_s": round(median["text_only"], 1),
                    "vectors_chunks_per_s": round(median["vectors"], 1),
                    "model_texts_per_s": round(median["model"], 1),
                    "text_only_over_model": round(median["text_only"] / median["model"], 3),
                    "rounds": {way: [round(r, 1) for r in rates] for way, rates in rounds.items()},
                }
            )
    model.close()
    return rows


def measure_http_ingest(texts: list[str], repeats: int) -> list[dict[str, Any]]:
    """The three ways of the module docstring on ``texts``, against a node of its own (also
    run by ``benchmarks/embed.py``)."""
    with tempfile.TemporaryDirectory() as scratch:
        server = ServerProcess(
            Path(scratch) / "data", env={"STACKSDB_EMBED_WORKERS": str(CORES)}
        ).start()
        try:
            return measure(server, texts, repeats)
        finally:
            server.stop()


def table(rows: list[dict[str, Any]]) -> str:
    header = (
        "chunks / request",
        "text only (chunks/s)",
        "vectors given (chunks/s)",
        "MiniLM in process (texts/s)",
        "text only / model",
    )
    body = [
        (
            str(r["chunks_per_request"]),
            f"{r['text_only_chunks_per_s']:.0f}",
            f"{r['vectors_chunks_per_s']:.0f}",
            f"{r['model_texts_per_s']:.0f}",
            f"{r['text_only_over_model']:.2f}x",
        )
        for r in rows
    ]
    return markdown_table([header, *body])


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--texts", type=int, default=1024, help="glosses per measurement")
    parser.add_argument("--repeats", type=int, default=3, help="rounds per request size")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    limit_blas_threads(1)  # as the server does (bootstrap/blas.py)
    rows = measure_http_ingest(load_glosses(args.data, args.texts), args.repeats)
    print(table(rows))
    result = {
        "benchmark": "embed_ingest",
        "texts": args.texts,
        "repeats": args.repeats,
        "server": {"embed_workers": CORES, "storage": "sqlite", "index": "flat"},
        "machine": machine(),
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
