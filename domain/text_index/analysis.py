"""Text analysis: a chunk's text (or a query) turned into the terms the keyword index counts.

Both languages lowercase, put the text in Unicode's composed form (NFC: "naïve" typed as ``i``
and a combining diaeresis is the same term as with the one character ``ï``) and split it into
words: runs of ``\\w`` (letters, digits and ``_`` of any script, so ``SKU_42`` and ``café``
stay whole) and combining marks, which Unicode's word boundaries (UAX #29) keep inside their
word. Without the marks ``\\w`` alone cut "हिन्दी" (Hindi: a vowel sign and a virama) into
the lone letters ह, न, द, and so Tamil, Hebrew with its points, and any decomposed accent.

``english`` then does what Lucene's ``EnglishAnalyzer`` does, with the Snowball English
("Porter2") stemmer in place of Porter's: it drops the possessive ``'s``, drops Lucene's 33
English stop words and stems what is left, so "Running dogs" and "the dog runs" share the
terms ``run`` and ``dog``. ``none`` keeps every lowercased word as it is.

The same analyser must see a library's texts and its queries, so a library's ``language`` is
part of its keyword index and changing it rebuilds the index. The stemmer itself is a port
(``Stemmer``; the Snowball one is ``adapters/text/snowball.py``), handed in through
``Analyzers``, the one value that gives out a language's analyser.
"""

from __future__ import annotations

import re
import sys
import threading
import unicodedata
from collections.abc import Callable, Sequence
from typing import Literal, Protocol

Language = Literal["english", "none"]
Analyzer = Callable[[str], list[str]]


def _combining_marks() -> str:
    """A regex class body of every combining mark (Unicode categories Mn, Mc, Me), as ranges;
    ``re`` has no ``\\p{M}``. Built once, in about 0.1 s."""
    ranges: list[list[int]] = []
    for code in range(sys.maxunicode + 1):
        if unicodedata.category(chr(code)) in ("Mn", "Mc", "Me"):
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1][1] = code
            else:
                ranges.append([code, code])
    return "".join(f"{re.escape(chr(first))}-{re.escape(chr(last))}" for first, last in ranges)


WORD = re.compile(rf"[\w{_combining_marks()}]+")
# ASCII text has no marks and nothing to compose: ``\w+`` splits it as WORD does, 3x faster.
ASCII_WORD = re.compile(r"\w+")
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


class Stemmer(Protocol):
    """Stems words (a port: the Snowball English one is ``adapters/text/snowball.py``). Safe
    to call from several threads at once, as searches run together."""

    def stem_words(self, words: Sequence[str]) -> list[str]:
        """Each word's stem, in order."""
        ...


# Words repeat so much that a cache spares most of the stemming; it is per thread, as a
# search must write nothing shared, and emptied when it grows past this.
STEM_CACHE_SIZE = 200_000


class _StemCache(threading.local):
    def __init__(self) -> None:
        self.stems: dict[str, str] = {}


class EnglishAnalyzer:
    """The ``english`` analyser over ``stemmer``."""

    def __init__(self, stemmer: Stemmer) -> None:
        self._stemmer = stemmer
        self._cache = _StemCache()

    def __call__(self, text: str) -> list[str]:
        """The stemmed words of ``text`` other than stop words, in order."""
        kept = [w for w in _split(POSSESSIVE.sub("", text.lower())) if w not in ENGLISH_STOP_WORDS]
        stems = self._cache.stems
        if len(stems) > STEM_CACHE_SIZE:
            stems.clear()
        unseen = [w for w in set(kept) if w not in stems]
        if unseen:
            stems.update(zip(unseen, self._stemmer.stem_words(unseen), strict=True))
        return [stems[w] for w in kept]


def words(text: str) -> list[str]:
    """The lowercased words of ``text``, in order (the ``none`` analyser)."""
    return _split(text)


def _split(text: str) -> list[str]:
    """The words of ``text`` lowercased, then in NFC (lowercasing may leave a letter and a
    mark apart, as "İ" becomes "i" and a dot above)."""
    lowered = text.lower()
    if lowered.isascii():
        return ASCII_WORD.findall(lowered)
    return WORD.findall(unicodedata.normalize("NFC", lowered))


class Analyzers:
    """Gives out each language's analyser; built once, with the stemmers, at the composition
    root (``bootstrap/container.py``)."""

    def __init__(self, english: Stemmer) -> None:
        self._english = EnglishAnalyzer(english)

    def __call__(self, language: Language) -> Analyzer:
        """The function that turns a text into its terms for this ``language``."""
        if language == "english":
            return self._english
        return words
