"""The bundled MiniLM embedder as the ``Embedder`` port promises it: one unit float32 row of
384 per text, in order, whatever the batching, the thread or the purpose; texts cut at the
model's 256 tokens as sentence-transformers cuts them.

Parity with the reference vectors is ``test_minilm_parity.py``; here each truth is another
call whose answer must agree (one text alone, another order, another thread), or float64
NumPy over the returned rows.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.embedders.minilm import (
    DIMENSION,
    MAX_ATTENTION_SCORES,
    MiniLm,
    MiniLmEmbedder,
    load_minilm,
    plan_batches,
)
from domain.embedding import Purpose

# Glosses of very different lengths, so that batches by length pad some texts a lot.
TEXTS = [
    "dog: a member of the genus Canis that has been domesticated by man since prehistoric times",
    "cat",
    "entity: that which is perceived or known or inferred to have its own distinct existence "
    "(living or nonliving)",
    "a",
    "photosynthesis: synthesis of compounds with the aid of radiant energy (especially in plants)",
    "river: a large natural stream of water (larger than a creek)",
    "x " * 40,
    "the quick brown fox jumps over the lazy dog; " * 6,
    "bank: a financial institution that accepts deposits and channels the money into lending",
    "bank: sloping land (especially the slope beside a body of water)",
]

# Stays well within float32 rounding of unit vectors after six layers.
SAME = 1e-5


@pytest.fixture(scope="module")
def embedder() -> Iterator[MiniLmEmbedder]:
    e = MiniLmEmbedder(workers=2)
    yield e
    e.close()


def assert_same_rows(a: np.ndarray, b: np.ndarray) -> None:
    np.testing.assert_allclose(a.astype(np.float64), b.astype(np.float64), rtol=0, atol=SAME)


def test_each_text_gives_one_unit_float32_row_of_384(embedder: MiniLmEmbedder) -> None:
    vectors = embedder.embed(TEXTS, Purpose.DOCUMENT)

    assert embedder.dimension == DIMENSION == 384
    assert vectors.shape == (len(TEXTS), 384)
    assert vectors.dtype == np.float32
    assert vectors.flags.c_contiguous
    assert np.all(np.isfinite(vectors))
    np.testing.assert_allclose(np.linalg.norm(vectors.astype(np.float64), axis=1), 1.0, atol=1e-6)


def test_a_batch_by_length_gives_the_vectors_of_each_text_alone(
    embedder: MiniLmEmbedder,
) -> None:
    together = embedder.embed(TEXTS, Purpose.DOCUMENT)
    alone = np.vstack([embedder.embed([text], Purpose.DOCUMENT) for text in TEXTS])

    assert_same_rows(together, alone)


def test_rows_come_back_in_the_order_of_the_texts(embedder: MiniLmEmbedder) -> None:
    forward = embedder.embed(TEXTS, Purpose.DOCUMENT)
    backward = embedder.embed(TEXTS[::-1], Purpose.DOCUMENT)

    assert_same_rows(forward, backward[::-1])
    # And the texts are told apart: no two different glosses share a vector.
    cosines = forward.astype(np.float64) @ forward.astype(np.float64).T
    assert np.max(cosines[~np.eye(len(TEXTS), dtype=bool)]) < 0.99


def test_a_query_and_a_document_embed_alike(embedder: MiniLmEmbedder) -> None:
    assert_same_rows(embedder.embed(TEXTS, Purpose.QUERY), embedder.embed(TEXTS, Purpose.DOCUMENT))


def test_no_texts_give_an_empty_matrix_of_384_columns(embedder: MiniLmEmbedder) -> None:
    vectors = embedder.embed([], Purpose.DOCUMENT)

    assert vectors.shape == (0, 384)
    assert vectors.dtype == np.float32


def test_an_empty_or_blank_text_is_the_vector_of_no_words(embedder: MiniLmEmbedder) -> None:
    # BERT's tokenizer drops whitespace, so "" and "  \n\t" are both [CLS] [SEP].
    empty, blank, word = embedder.embed(["", "  \n\t", "word"], Purpose.DOCUMENT)

    assert np.all(np.isfinite(empty))
    assert abs(float(np.linalg.norm(empty.astype(np.float64))) - 1.0) < 1e-6
    assert_same_rows(empty, blank)
    assert float(empty.astype(np.float64) @ word.astype(np.float64)) < 0.99


def test_unicode_texts_embed_and_case_and_accents_fold(embedder: MiniLmEmbedder) -> None:
    # The model is uncased, with accents stripped: these two are the same tokens.
    folded, plain, cjk, emoji, mixed = embedder.embed(
        [
            "CAFÉ CRÈME BRÛLÉE",
            "cafe creme brulee",
            "日本語の文章",
            "🙂🚀",
            "Zoë's naïve coöperation",
        ],
        Purpose.DOCUMENT,
    )

    assert_same_rows(folded, plain)
    for vector in (cjk, emoji, mixed):
        assert np.all(np.isfinite(vector))
        assert abs(float(np.linalg.norm(vector.astype(np.float64))) - 1.0) < 1e-6


def test_a_text_past_256_tokens_embeds_as_its_first_254_word_pieces(
    embedder: MiniLmEmbedder,
) -> None:
    # "dog" is one word piece: 300 of them are cut to [CLS] + 254 + [SEP], like
    # sentence-transformers' max_seq_length of 256 (the tokenizer file alone would cut at 128).
    long, cut, cut_at_128 = embedder.embed(
        ["dog " * 300, "dog " * 254, "dog " * 126], Purpose.DOCUMENT
    )

    assert len(load_minilm().tokenize(["dog " * 300])[0]) == 256
    assert_same_rows(long, cut)
    assert float(long.astype(np.float64) @ cut_at_128.astype(np.float64)) < 0.99


def test_threads_embedding_at_once_get_the_vectors_of_one_at_a_time(
    embedder: MiniLmEmbedder,
) -> None:
    texts = [f"{text} ({n})" for n in range(4) for text in TEXTS]
    serial = embedder.embed(texts, Purpose.DOCUMENT)
    results: dict[int, np.ndarray] = {}

    def embed_share(part: int) -> None:
        results[part] = embedder.embed(texts[part::4], Purpose.DOCUMENT)

    threads = [threading.Thread(target=embed_share, args=(part,)) for part in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    for part in range(4):
        assert_same_rows(results[part], serial[part::4])


def test_many_callers_never_run_more_batches_at_once_than_the_embedder_has_workers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    running, most = 0, 0
    lock = threading.Lock()
    encode = MiniLm.embed_tokens

    def counted(model: MiniLm, token_ids: list[list[int]]) -> np.ndarray:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        try:
            return encode(model, token_ids)
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(MiniLm, "embed_tokens", counted)
    embedder = MiniLmEmbedder(workers=2)
    callers = [
        threading.Thread(target=embedder.embed, args=(TEXTS * 4, Purpose.DOCUMENT))
        for _ in range(4)
    ]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join()
    embedder.close()

    assert most == 2


def test_the_model_loads_once_per_process_whichever_thread_asks() -> None:
    loaded: list[object] = []
    threads = [threading.Thread(target=lambda: loaded.append(load_minilm())) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(loaded) == 4
    assert all(model is loaded[0] for model in loaded)


def test_an_embedder_needs_at_least_one_worker() -> None:
    with pytest.raises(ValueError, match="workers"):
        MiniLmEmbedder(workers=0)


@settings(max_examples=200, deadline=None)
@given(
    lengths=st.lists(st.integers(min_value=2, max_value=256), min_size=1, max_size=300),
    max_texts=st.integers(min_value=1, max_value=64),
)
def test_batches_take_each_text_once_shortest_first_within_their_bounds(
    lengths: list[int], max_texts: int
) -> None:
    counts = np.array(lengths, dtype=np.int64)
    batches = plan_batches(counts, max_texts, heads=12)

    taken = np.concatenate(batches)
    assert sorted(taken.tolist()) == list(range(len(lengths)))
    assert np.all(np.diff(counts[taken]) >= 0)
    for batch in batches:
        assert 1 <= len(batch) <= max_texts
        longest = int(counts[batch].max())
        assert len(batch) == 1 or len(batch) * 12 * longest**2 <= MAX_ATTENTION_SCORES
