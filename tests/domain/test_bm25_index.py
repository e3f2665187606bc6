"""The keyword index against BM25 computed independently: a brute-force float64 evaluation of
Lucene's formula over the same tokens (hypothesis corpora, after writes, deletes and
compaction), and bm25s's Lucene method on the real WordNet glosses."""

from __future__ import annotations

import math
import unicodedata
from collections import Counter
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import TypeVar

import bm25s
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.models import Bm25Params
from domain.text_index.analysis import Language
from domain.text_index.bm25 import Bm25Index
from tests.support.text import ANALYZERS

Key = TypeVar("Key", bound=Hashable)

WORDNET = Path(__file__).resolve().parents[3] / "shared" / "data" / "wordnet-nouns-minilm.npz"


def brute_force_scores(
    texts: Mapping[Key, str], query: str, params: Bm25Params
) -> dict[Key, float]:
    """Lucene's BM25 of every text holding a query term, straight from its definition."""
    analyse = ANALYZERS(params.language)
    documents = {label: Counter(analyse(text)) for label, text in texts.items()}
    n = len(documents)
    if n == 0:
        return {}
    average_length = sum(sum(tf.values()) for tf in documents.values()) / n
    scores: dict[Key, float] = {}
    for term in analyse(query):  # a repeated query term counts once per repeat
        df = sum(1 for tf in documents.values() if term in tf)
        if df == 0:
            continue
        idf = math.log(1.0 + (n - df + 0.5) / (df + 0.5))
        for label, tf in documents.items():
            if term in tf:
                length = sum(tf.values())
                norm = params.k1 * (1 - params.b + params.b * length / average_length)
                scores[label] = scores.get(label, 0.0) + idf * tf[term] / (tf[term] + norm)
    return scores


def assert_ranks_like(index: Bm25Index, texts: dict[int, str], query: str, k: int) -> None:
    """The index's top k are the brute-force top k (ties by label), scores equal to float32."""
    truth = brute_force_scores(texts, query, index.params)
    expected = sorted(truth, key=lambda label: (-truth[label], label))[:k]
    hits = index.search(query, k)
    got = hits.labels.tolist()
    # Scores within float64 rounding of each other may swap; compare scores, then the sets
    # of labels clear of such near-ties.
    np.testing.assert_allclose(
        hits.scores, np.array([truth[label] for label in expected], np.float32), rtol=1e-6
    )
    np.testing.assert_allclose(
        hits.scores, np.array([truth[label] for label in got], np.float32), rtol=1e-6
    )
    assert len(got) == len(expected)


# -- analysis ----------------------------------------------------------------------------------


def test_english_analyser_lowercases_drops_stop_words_and_possessives_and_stems() -> None:
    assert ANALYZERS("english")("The Running dogs' owner's CATS are in the gardens") == [
        "run",
        "dog",
        "owner",
        "cat",
        "garden",
    ]


def test_plain_analyser_keeps_every_lowercased_word_on_unicode_boundaries() -> None:
    assert ANALYZERS("none")("The Café—SKU_42, naïve Straße 5") == [
        "the",
        "café",
        "sku_42",
        "naïve",
        "straße",
        "5",
    ]


def test_a_word_keeps_its_combining_marks() -> None:
    # Vowel signs, viramas and points are marks, not letters: ``\w`` alone cut these words
    # into lone letters (Hindi "हिन्दी" into ह, न, द), so any word sharing one matched.
    assert ANALYZERS("none")("हिन्दी भाषा, தமிழ் and עִברִית") == [
        "हिन्दी",
        "भाषा",
        "தமிழ்",
        "and",
        "עִברִית",
    ]


TEXT_WITH_MARKS = st.text(
    st.characters(categories=["Lu", "Ll", "Lo", "Mn", "Mc", "Nd", "Zs", "Po"], codec="utf-8"),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(text=TEXT_WITH_MARKS, language=st.sampled_from(["english", "none"]))
def test_composed_and_decomposed_forms_of_a_text_give_the_same_terms(
    text: str, language: Language
) -> None:
    analyse = ANALYZERS(language)
    assert analyse(unicodedata.normalize("NFD", text)) == analyse(
        unicodedata.normalize("NFC", text)
    )


def test_a_decomposed_text_is_found_by_its_composed_query_and_scores_the_same() -> None:
    composed = "Le café naïf de Zoë"
    index = Bm25Index(Bm25Params(language="none"), ANALYZERS)
    index.add(np.array([1, 2]), [composed, unicodedata.normalize("NFD", composed)])

    hits = index.search("naïf", 10)

    assert hits.labels.tolist() == [1, 2]
    assert hits.scores[0] == hits.scores[1] > 0


# -- scoring against the formula ---------------------------------------------------------------

WORDS = ["apple", "banana", "cherry", "date", "elder", "fig", "grape", "the", "run", "runs"]
texts_strategy = st.lists(st.sampled_from(WORDS), max_size=12).map(" ".join)
params_strategy = st.builds(
    Bm25Params,
    k1=st.floats(0.0, 3.0),
    b=st.floats(0.0, 1.0),
    language=st.sampled_from(["english", "none"]),
)


@settings(max_examples=60, deadline=None)
@given(
    params=params_strategy,
    corpus=st.dictionaries(st.integers(0, 40), texts_strategy, max_size=30),
    writes=st.lists(st.tuples(st.booleans(), st.integers(0, 40), texts_strategy), max_size=30),
    queries=st.lists(texts_strategy.filter(bool), min_size=1, max_size=4),
    k=st.integers(1, 12),
)
def test_scores_equal_the_formula_after_writes_deletes_and_compaction(
    params: Bm25Params,
    corpus: dict[int, str],
    writes: list[tuple[bool, int, str]],
    queries: list[str],
    k: int,
) -> None:
    index = Bm25Index(params, ANALYZERS)
    index.add(np.fromiter(corpus, np.int64), list(corpus.values()))
    texts = dict(corpus)
    for is_delete, label, text in writes:
        if is_delete:
            index.remove(np.array([label]))
            texts.pop(label, None)
        else:
            index.add(np.array([label]), [text])
            texts[label] = text
        if index.needs_compaction:
            index.compact()
        for query in queries:
            assert_ranks_like(index, texts, query, k)
    assert len(index) == len(texts)


def test_search_keeps_only_labels_the_mask_allows() -> None:
    rng = np.random.default_rng(7)
    texts = {label: " ".join(rng.choice(WORDS, 6)) for label in range(200)}
    index = Bm25Index(Bm25Params(), ANALYZERS)
    index.add(np.fromiter(texts, np.int64), list(texts.values()))
    mask = rng.random(150) < 0.3  # shorter than the labels: those past its end are excluded
    truth = brute_force_scores(texts, "cherry fig", index.params)
    allowed = sorted(
        (label for label in truth if label < mask.shape[0] and mask[label]),
        key=lambda label: (-truth[label], label),
    )
    hits = index.search("cherry fig", 200, mask)
    assert set(hits.labels.tolist()) == set(allowed)
    np.testing.assert_allclose(hits.scores, [truth[label] for label in allowed], rtol=1e-6)


def test_a_freed_label_reused_for_another_text_scores_only_its_new_text() -> None:
    index = Bm25Index(Bm25Params(language="none"), ANALYZERS)
    index.add(np.array([0, 1]), ["zebra stripes", "plain horse"])
    index.remove(np.array([0]))
    index.add(np.array([0]), ["striped horse"])
    assert index.search("zebra", 5).labels.tolist() == []
    assert sorted(index.search("horse", 5).labels.tolist()) == [0, 1]


def test_ties_break_by_the_smaller_label_at_the_cut() -> None:
    index = Bm25Index(Bm25Params(language="none"), ANALYZERS)
    index.add(np.arange(10, dtype=np.int64)[::-1].copy(), ["same words"] * 10)
    assert index.search("words", 3).labels.tolist() == [0, 1, 2]


def test_compaction_frees_dead_documents_and_terms() -> None:
    index = Bm25Index(Bm25Params(language="none"), ANALYZERS)
    labels = np.arange(1000, dtype=np.int64)
    index.add(labels, [f"common unique{label}" for label in labels.tolist()])
    before = index.memory_bytes()
    index.remove(labels[:900])
    assert index.needs_compaction
    index.compact()
    assert not index.needs_compaction
    assert index.vocabulary_size == 101
    assert index.memory_bytes() < before / 2
    assert index.search("unique5", 3).labels.tolist() == []
    assert index.search("unique950", 3).labels.tolist() == [950]


# -- a real corpus against bm25s ---------------------------------------------------------------


@pytest.fixture(scope="module")
def wordnet_glosses() -> list[str]:
    if not WORDNET.exists():
        pytest.skip(f"the shared WordNet texts are not at {WORDNET}")
    with np.load(WORDNET) as data:
        texts = data["base_text"]
    rows = np.random.default_rng(11).choice(texts.shape[0], 6000, replace=False)
    return [str(text) for text in texts[rows]]


def bm25s_scores(token_lists: list[list[str]], query: list[str], params: Bm25Params) -> np.ndarray:
    reference = bm25s.BM25(k1=params.k1, b=params.b, method="lucene", dtype="float64")
    reference.index(token_lists, show_progress=False)
    known = [term for term in query if term in reference.vocab_dict]
    return np.asarray(reference.get_scores(known), np.float64)


@pytest.mark.parametrize("language", ["english", "none"])
def test_scores_equal_bm25s_lucene_on_wordnet_glosses_after_deletes(
    wordnet_glosses: list[str], language: Language
) -> None:
    params = Bm25Params(k1=1.2, b=0.75, language=language)
    analyse = ANALYZERS(params.language)
    index = Bm25Index(params, ANALYZERS)
    index.add(np.arange(5000, dtype=np.int64), wordnet_glosses[:5000])
    index.remove(np.arange(0, 5000, 3, dtype=np.int64))  # a third gone, then more written
    index.add(np.arange(5000, 6000, dtype=np.int64), wordnet_glosses[5000:])
    live = [label for label in range(6000) if label % 3 != 0 or label >= 5000]
    token_lists = [analyse(wordnet_glosses[label]) for label in live]
    for query in [*wordnet_glosses[5990:6000], "tree bark of tropical shrubs", "small bird"]:
        reference = bm25s_scores(token_lists, analyse(query), params)
        expected = np.flatnonzero(reference > 0)
        hits = index.search(query, expected.shape[0] + 10)
        got = dict(zip(hits.labels.tolist(), hits.scores.tolist(), strict=True))
        assert sorted(got) == sorted(live[i] for i in expected.tolist())
        np.testing.assert_allclose(
            [got[live[i]] for i in expected.tolist()], reference[expected], rtol=1e-6
        )
