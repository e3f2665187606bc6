"""The queries of the hybrid retrieval evaluation (``benchmarks/hybrid.py``), built from the
shared WordNet texts and WordNet 3.0's own ``data.noun`` (Debian's ``wordnet-base``).

Each query has exactly one relevant chunk, its synset's text ``"<first lemma>: <gloss>"``:

    keyword   three of the rarest words of the synset's gloss (lowercase alphabetic words of
              three letters or more, fewest corpus documents first)
    synonym   another lemma of the synset none of whose words occurs in its text

Rows are drawn in one seeded random order, so a run is repeatable.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEFAULT_WORDNET = Path("/usr/share/wordnet/data.noun")
KINDS = ("keyword", "synonym")
WORD = re.compile(r"[^\W\d_]+")  # alphabetic words of any script


@dataclass(frozen=True, slots=True)
class Query:
    kind: str
    text: str
    target: int  # the relevant chunk's row in the corpus


def alphabetic_words(text: str) -> list[str]:
    return WORD.findall(text.lower())


def synset_lemmas(data_noun: Path) -> dict[str, list[str]]:
    """Each noun synset's lemmas (``n`` + offset -> lemmas, underscores as spaces), from
    WordNet's ``data.noun``: ``offset lex_filenum ss_type w_cnt (word lex_id){w_cnt} ...``
    with ``w_cnt`` in hexadecimal; license lines start with two spaces."""
    lemmas: dict[str, list[str]] = {}
    with data_noun.open(encoding="utf-8") as lines:
        for line in lines:
            if line.startswith("  "):
                continue
            fields = line.split()
            count = int(fields[3], 16)
            words = fields[4 : 4 + 2 * count : 2]
            lemmas[f"n{fields[0]}"] = [w.replace("_", " ") for w in words]
    return lemmas


def keyword_queries(texts: Sequence[str], rows: Sequence[int]) -> list[Query]:
    """For each row, three of the rarest words of its gloss (the text after the lemma)."""
    document_frequency = Counter(w for text in texts for w in set(alphabetic_words(text)))
    queries = []
    for row in rows:
        gloss = texts[row].split(": ", 1)[1]
        words = sorted(
            {w for w in alphabetic_words(gloss) if len(w) >= 3},
            key=lambda w: (document_frequency[w], w),
        )
        if len(words) >= 3:
            queries.append(Query("keyword", " ".join(words[:3]), row))
    return queries


def synonym_queries(
    texts: Sequence[str], ids: Sequence[str], lemmas: dict[str, list[str]], rows: Sequence[int]
) -> list[Query]:
    """For each row whose synset has another lemma none of whose words is in its text, the
    first such lemma."""
    queries = []
    for row in rows:
        in_text = set(alphabetic_words(texts[row]))
        for lemma in lemmas[ids[row]][1:]:
            words = alphabetic_words(lemma)
            if words and not in_text.intersection(words):
                queries.append(Query("synonym", lemma, row))
                break
    return queries


def pick_queries(
    texts: Sequence[str], ids: Sequence[str], lemmas: dict[str, list[str]], per_kind: int
) -> list[Query]:
    order = np.random.default_rng(0).permutation(len(texts)).tolist()
    # Walk the rows in a random order until each kind has its queries.
    keyword = keyword_queries(texts, order[: per_kind * 2])[:per_kind]
    synonym: list[Query] = []
    for start in range(0, len(order), 4 * per_kind):
        synonym += synonym_queries(texts, ids, lemmas, order[start : start + 4 * per_kind])
        if len(synonym) >= per_kind:
            break
    return keyword + synonym[:per_kind]
