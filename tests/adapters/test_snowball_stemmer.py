"""The Snowball English stemmer adapter. It is shared by every search thread, so stemming
from many threads at once must give what each word list gives stemmed alone. PyStemmer's
compiled stemmer (what ``snowballstemmer`` hands out here) holds the GIL for a whole list;
the pure-Python one it falls back to keeps its working string on itself, so a stemmer shared
between threads mixes words up (or raises IndexError) - the adapter keeps one per thread."""

from __future__ import annotations

import itertools

import pytest
import snowballstemmer
from snowballstemmer.english_stemmer import EnglishStemmer

from adapters.text.snowball import SnowballEnglish
from tests.support.threads import disagreements, from_threads

ROOTS = ["connect", "general", "run", "hope", "happy", "nation", "relate", "sensitive"]
SUFFIXES = ["", "s", "ing", "ed", "ly", "ness", "ations", "ization", "fulness", "ically"]


@pytest.fixture(params=["pystemmer", "pure python"])
def snowball(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """``snowballstemmer`` as installed, or as it is without PyStemmer."""
    if request.param == "pure python":
        monkeypatch.setattr(snowballstemmer, "stemmer", lambda _language: EnglishStemmer())


@pytest.mark.usefixtures("snowball")
def test_words_stemmed_from_many_threads_at_once_stem_as_they_do_alone() -> None:
    words = [root + suffix for root, suffix in itertools.product(ROOTS, SUFFIXES)]
    # Word lists of different lengths, so threads are mid-list at different moments.
    jobs = [tuple(words[start : start + 1 + start % 7]) for start in range(len(words))]
    alone = {job: SnowballEnglish().stem_words(job) for job in jobs}
    shared = SnowballEnglish()

    answers = from_threads(shared.stem_words, jobs, rounds=5)

    assert len(answers) == 8 * 5 * len(jobs)
    assert disagreements(answers, alone) == []


@pytest.mark.usefixtures("snowball")
def test_inflections_share_their_stem() -> None:
    # Porter's own example: the five forms of "connect" conflate.
    forms = ["connect", "connected", "connecting", "connection", "connections"]
    assert SnowballEnglish().stem_words(forms) == ["connect"] * 5
