"""Our NumPy MiniLM gives the vectors sentence-transformers gave: the shared WordNet vectors
(``../shared/data/README.md``: all-MiniLM-L6-v2 on torch, stored as float16) from their texts.

The truth is the stored vectors, made by the reference implementation; nothing of ours
computes it. 2,000 rows: the 100 longest glosses by characters (the longest in tokens among
them, 144, is past the 128 tokens at which the tokenizer file itself would cut) and 1,900
others at random.
"""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from adapters.embedders.minilm import MiniLmEmbedder, load_minilm
from domain.embedding import Purpose
from examples import wordnet

DATA = wordnet.default_path()
LONGEST = 100
ROWS = 2_000
MIN_COSINE = 0.9999

pytestmark = pytest.mark.skipif(not DATA.exists(), reason="WordNet embeddings not present")


def shared_rows() -> tuple[list[str], np.ndarray]:
    """The chosen base texts and their stored vectors, as float64."""
    with zipfile.ZipFile(DATA) as archive:
        with archive.open("base_text.npy") as f:
            texts = np.lib.format.read_array(f)
        with archive.open("base.npy") as f:
            vectors = np.lib.format.read_array(f)
    by_length = np.argsort(-np.char.str_len(texts), kind="stable")
    others = np.random.default_rng(13).permutation(by_length[LONGEST:])[: ROWS - LONGEST]
    rows = np.concatenate([by_length[:LONGEST], others])
    return [str(t) for t in texts[rows]], vectors[rows].astype(np.float64)


@pytest.mark.slow
def test_our_minilm_reproduces_the_reference_vectors_of_2000_wordnet_glosses() -> None:
    texts, reference = shared_rows()
    assert len(texts) == ROWS
    assert max(len(ids) for ids in load_minilm().tokenize(texts)) > 128

    embedder = MiniLmEmbedder(workers=2)
    try:
        ours = embedder.embed(texts, Purpose.DOCUMENT).astype(np.float64)
    finally:
        embedder.close()

    reference /= np.linalg.norm(reference, axis=1, keepdims=True)
    cosines = np.einsum("ij,ij->i", ours / np.linalg.norm(ours, axis=1, keepdims=True), reference)
    worst = int(np.argmin(cosines))
    assert cosines[worst] >= MIN_COSINE, (texts[worst], cosines[worst])
    assert cosines[:LONGEST].min() >= MIN_COSINE
