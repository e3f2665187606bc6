"""Text analysis: a chunk's text (or a query) turned into the terms the keyword index counts.

Both languages split on Unicode word boundaries (runs of ``\\w``: letters, digits and ``_`` of
any script, so ``SKU_42`` and ``café`` stay whole) after lowercasing. ``english`` then does
what Lucene's ``EnglishAnalyzer`` does, with the Snowball English ("Porter2") stemmer in place
of Porter's: it drops the possessive ``'s``, drops Lucene's 33 English stop words and stems
what is left, so "Running dogs" and "the dog runs" share the terms ``run`` and ``dog``.
``none`` keeps every lowercased word as it is.

The same analyser must see a library's texts and its queries, so a library's ``language`` is
part of its keyword index and changing it rebuilds the index. ``snowballstemmer`` hands out
PyStemmer's compiled stemmers when ``pystemmer`` is installed (it is a dependency): the same
Snowball algorithm, about 3x faster to index with.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Literal

import snowballstemmer

Language = Literal["english", "none"]
Analyzer = Callable[[str], list[str]]

WORD = re.compile(r"\w+")
POSSESSIVE = re.compile(r"['\u2019]s\b")

# Lucene's EnglishAnalyzer.ENGLISH_STOP_WORDS_SET: short, and only words that carry no topic.
ENGLISH_STOP_WORDS = frozenset(
    {
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "if",
        "in",
        "into",
        "is",
        "it",
        "no",
        "not",
        "of",
        "on",
        "or",
        "such",
        "that",
        "the",
        "their",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "will",
        "with",
    }
)

# A stem cache per thread: a Snowball stemmer keeps its working string on itself, so sharing
# one between threads would mix words up, and a search must write nothing shared. Words repeat
# so much that the cache spares most of the stemming; it is emptied when it grows past this.
STEM_CACHE_SIZE = 200_000


class _ThreadStemmer(threading.local):
    def __init__(self) -> None:
        self.stemmer = snowballstemmer.stemmer("english")
        self.cache: dict[str, str] = {}


_stemmers = _ThreadStemmer()


def words(text: str) -> list[str]:
    """The lowercased words of ``text``, in order (the ``none`` analyser)."""
    return WORD.findall(text.lower())


def english_terms(text: str) -> list[str]:
    """The stemmed words of ``text`` other than stop words, in order (the ``english`` one)."""
    kept = [
        w for w in WORD.findall(POSSESSIVE.sub("", text.lower())) if w not in ENGLISH_STOP_WORDS
    ]
    cache = _stemmers.cache
    if len(cache) > STEM_CACHE_SIZE:
        cache.clear()
    unseen = [w for w in set(kept) if w not in cache]
    if unseen:
        cache.update(zip(unseen, _stemmers.stemmer.stemWords(unseen), strict=True))
    return [cache[w] for w in kept]


def analyzer(language: Language) -> Analyzer:
    """The function that turns a text into its terms for this ``language``."""
    if language == "english":
        return english_terms
    return words
