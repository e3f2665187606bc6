"""A library's keyword index: Okapi BM25 over its chunks' texts, with posting lists in NumPy.

Scoring is Lucene's ``BM25Similarity`` (Lucene 8 on), computed exactly in float64:

    score(D, Q) = Σ_{t ∈ Q}  idf(t) · tf(t, D) / (tf(t, D) + k1 · (1 - b + b · |D| / avgdl))
    idf(t)      = ln(1 + (N - n(t) + 0.5) / (n(t) + 0.5))

with N the number of documents, n(t) the number holding t, |D| a document's number of terms
and avgdl their mean. This idf is never negative (Robertson's original goes negative for terms
in over half the documents), and Lucene leaves out the constant (k1 + 1) factor, which changes
no ranking. A term repeated in the query counts once per repeat, as in a Lucene boolean query
of term clauses. Unlike Lucene, document lengths are exact rather than squeezed into a byte.

Layout. Every added text gets a *slot*, a row of the document table (its label, length and
its distinct terms: a forward index). Posting lists hold slots, not labels, so a removed
document is one flag cleared (its slot is *dead*; document frequencies and the total length
drop at once, so scores are always exact) and a label freed and handed to another chunk
starts on a fresh slot. ``compact()`` drops dead slots and terms no live document holds once
dead slots are a quarter of all.

Costs, for T tokens added, P postings of a query's terms (dead ones included) and m matches:
``add`` O(T log T); ``remove`` O(distinct terms of the removed texts); ``search`` O(P log P)
(merging the postings by sorting, which unlike a bincount over every slot does not grow with
the library) plus O(m) for the top k; ``compact`` O(all postings). Space: 8 bytes per posting
(slot and term frequency, int32), 4 per forward-index entry, about 40 per document and about
200 per distinct term (its block's header and the vocabulary's string).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from domain.index.scoring import Hits, Labels, Mask
from domain.models import Bm25Params
from domain.text_index.analysis import Analyzers
from domain.text_index.postings import Column, PostingLists

# Compact once dead slots are this fraction of all slots: search skips them meanwhile.
COMPACT_AT = 0.25
# A dict entry's share of the vocabulary's memory: key, value and hash, plus the int object.
_VOCABULARY_ENTRY_BYTES = 3 * 8 + 32


class Bm25Index:
    """BM25 over texts labelled by chunk label. Not thread-safe for writes; a search writes
    nothing, so searches may run together under the library's read lock."""

    def __init__(self, params: Bm25Params, analyzers: Analyzers) -> None:
        self.params = params
        self._analyze = analyzers(params.language)
        self._term_id: dict[str, int] = {}
        self._vocabulary_bytes = 0
        self._postings = PostingLists()
        self._df = Column(np.int64)  # live documents holding each term
        # The document table, one row per slot.
        self._slot_label = Column(np.int64)
        self._slot_length = Column(np.int64)
        self._slot_alive = Column(np.bool_)
        self._slot_terms_start = Column(np.int64)  # where a slot's terms start in the forward index
        self._forward = Column(np.int32)  # each slot's distinct term ids, slot after slot
        # Each label's slot, -1 for none: an array, as chunk labels are dense (``LabelMap``).
        self._slot_of_label = Column(np.int64)
        self._documents = 0
        self._total_length = 0

    def __len__(self) -> int:
        return self._documents

    def __contains__(self, label: int) -> bool:
        return 0 <= label < self._slot_of_label.size and self._slot_of_label.values[label] >= 0

    @property
    def vocabulary_size(self) -> int:
        return len(self._term_id)

    @property
    def needs_compaction(self) -> bool:
        dead = self._slot_label.size - len(self)
        return dead > 0 and dead >= COMPACT_AT * self._slot_label.size

    def memory_bytes(self) -> int:
        """Bytes held: every array (with spare capacity) and an estimate of the vocabulary."""
        columns = (
            self._df,
            self._slot_label,
            self._slot_length,
            self._slot_alive,
            self._slot_terms_start,
            self._forward,
        )
        return (
            self._postings.nbytes
            + sum(column.nbytes for column in columns)
            + self._vocabulary_bytes
            + self._slot_of_label.nbytes
            + sys.getsizeof(self._term_id)
        )

    # -- writes --------------------------------------------------------------------------------

    def add(self, labels: Labels, texts: Sequence[str]) -> None:
        """Index ``texts[i]`` under ``labels[i]``, replacing what a present label had (a label
        given twice keeps its last text). O(T log T) for the T tokens of the texts."""
        if labels.shape[0] != len(texts):
            raise ValueError(f"{labels.shape[0]} labels for {len(texts)} texts")
        latest = dict(zip(labels.tolist(), texts, strict=True))
        if not latest:
            return
        batch_labels = np.fromiter(latest, np.int64, len(latest))
        self.remove(batch_labels)
        term_lists = [self._analyze(text) for text in latest.values()]
        lengths = np.fromiter(map(len, term_lists), np.int64, len(term_lists))
        token_terms = np.fromiter(
            (self._term(term) for terms in term_lists for term in terms),
            np.int64,
            int(lengths.sum()),
        )
        n_docs = len(term_lists)
        token_docs = np.repeat(np.arange(n_docs, dtype=np.int64), lengths)
        # One (term, document) pair per distinct term of each document, sorted by term.
        pairs, tfs = np.unique(token_terms * n_docs + token_docs, return_counts=True)
        terms, docs = np.divmod(pairs, n_docs)
        first_slot = self._slot_label.size
        self._append_documents(batch_labels, lengths, terms, docs)
        self._df.values[:] += np.bincount(terms, minlength=self._df.size)
        if terms.shape[0] == 0:
            return
        slots = (first_slot + docs).astype(np.int32)
        tfs = tfs.astype(np.int32)
        run_starts = np.flatnonzero(np.r_[True, terms[1:] != terms[:-1]])
        run_ends = np.r_[run_starts[1:], terms.shape[0]]
        for term, start, end in zip(
            terms[run_starts].tolist(), run_starts.tolist(), run_ends.tolist(), strict=True
        ):
            self._postings.extend(term, slots[start:end], tfs[start:end])

    def remove(self, labels: Labels) -> None:
        """Drop these labels' texts (absent labels are skipped). O(their distinct terms)."""
        known = np.unique(labels[(labels >= 0) & (labels < self._slot_of_label.size)])
        dead = self._slot_of_label.values[known]
        dead = dead[dead >= 0]
        if dead.shape[0] == 0:
            return
        self._slot_of_label.values[self._slot_label.values[dead]] = -1
        self._slot_alive.values[dead] = False
        self._documents -= int(dead.shape[0])
        self._total_length -= int(self._slot_length.values[dead].sum())
        terms = np.concatenate([self._terms_of(slot) for slot in dead.tolist()])
        self._df.values[:] -= np.bincount(terms, minlength=self._df.size)

    def compact(self) -> None:
        """Drop dead slots and the terms no live document holds. O(all postings)."""
        alive = self._slot_alive.values
        new_slot = np.cumsum(alive, dtype=np.int64) - 1
        new_slot[~alive] = -1
        kept_terms = np.flatnonzero(self._df.values > 0)
        new_term = np.full(self._df.size, -1, np.int64)
        new_term[kept_terms] = np.arange(kept_terms.shape[0])
        term_counts = self._term_counts()
        forward_alive = np.repeat(alive, term_counts)
        counts = term_counts[alive]

        self._postings = self._postings.compacted(kept_terms, new_slot)
        self._df = Column(np.int64, self._df.values[kept_terms])
        vocabulary = list(self._term_id)
        self._term_id = {vocabulary[old]: new for new, old in enumerate(kept_terms.tolist())}
        self._vocabulary_bytes = sum(map(term_bytes, self._term_id))
        self._forward = Column(np.int32, new_term[self._forward.values[forward_alive]])
        self._slot_terms_start = Column(np.int64, np.cumsum(counts) - counts)
        self._slot_label = Column(np.int64, self._slot_label.values[alive])
        self._slot_length = Column(np.int64, self._slot_length.values[alive])
        self._slot_alive = Column(np.bool_, np.ones(len(self), np.bool_))
        self._slot_of_label.values[self._slot_label.values] = np.arange(self._slot_label.size)

    # -- search --------------------------------------------------------------------------------

    def search(self, query: str, k: int, mask: Mask | None = None) -> Hits:
        """The ``k`` best-scoring labels for ``query`` among those ``mask`` allows (all if None),
        best first, ties broken by the smaller label; only labels that hold a query term."""
        terms, repeats = self._query_terms(query)
        if k <= 0 or terms.shape[0] == 0:
            return Hits.empty("bm25")
        slots, contributions = self._contributions(terms, repeats)
        candidates, at = np.unique(slots, return_inverse=True)
        scores = np.bincount(at, weights=contributions, minlength=candidates.shape[0])
        labels = self._slot_label.values[candidates]
        kept = self._slot_alive.values[candidates]
        if mask is not None:
            inside = labels < mask.shape[0]
            kept &= inside
            kept[inside] &= mask[labels[inside]]
        return _top_k(labels[kept], scores[kept], k)

    def _query_terms(self, query: str) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """The query's known terms that some live document holds, and how often each occurs."""
        ids = [self._term_id[term] for term in self._analyze(query) if term in self._term_id]
        terms, repeats = np.unique(np.asarray(ids, np.int64), return_counts=True)
        held = self._df.values[terms] > 0
        return terms[held], repeats[held]

    def _contributions(
        self, terms: NDArray[np.int64], repeats: NDArray[np.int64]
    ) -> tuple[NDArray[np.int32], NDArray[np.float64]]:
        """Each posting of the query's terms as (slot, its share of that slot's score)."""
        k1, b = self.params.k1, self.params.b
        n = len(self)
        average_length = self._total_length / n
        all_slots, all_shares = [], []
        for term, repeat in zip(terms.tolist(), repeats.tolist(), strict=True):
            slots, tfs = self._postings.get(term)
            df = int(self._df.values[term])
            idf = math.log(1.0 + (n - df + 0.5) / (df + 0.5))
            tf = tfs.astype(np.float64)
            norm = k1 * (1.0 - b + b * self._slot_length.values[slots] / average_length)
            all_slots.append(slots)
            all_shares.append((repeat * idf) * tf / (tf + norm))
        return np.concatenate(all_slots), np.concatenate(all_shares)

    # -- helpers -------------------------------------------------------------------------------

    def _term(self, term: str) -> int:
        term_id = self._term_id.get(term)
        if term_id is None:
            term_id = self._term_id[term] = self._postings.add_term()
            self._df.extend(np.zeros(1, np.int64))
            self._vocabulary_bytes += term_bytes(term)
        return term_id

    def _append_documents(
        self,
        labels: Labels,
        lengths: NDArray[np.int64],
        terms: NDArray[np.int64],
        docs: NDArray[np.int64],
    ) -> None:
        """New slots for a batch's documents: their labels, lengths and distinct terms."""
        first_slot = self._slot_label.size
        distinct = np.bincount(docs, minlength=labels.shape[0])
        self._slot_terms_start.extend(self._forward.size + np.cumsum(distinct) - distinct)
        self._forward.extend(terms[np.argsort(docs, kind="stable")].astype(np.int32))
        self._slot_label.extend(labels)
        self._slot_length.extend(lengths)
        self._slot_alive.extend(np.ones(labels.shape[0], np.bool_))
        needed = int(labels.max()) + 1 - self._slot_of_label.size
        if needed > 0:
            self._slot_of_label.extend(np.full(needed, -1, np.int64))
        self._slot_of_label.values[labels] = np.arange(first_slot, first_slot + labels.shape[0])
        self._documents += int(labels.shape[0])
        self._total_length += int(lengths.sum())

    def _term_counts(self) -> NDArray[np.int64]:
        """How many distinct terms each slot has."""
        starts = self._slot_terms_start.values
        return np.diff(np.append(starts, self._forward.size)).astype(np.int64)

    def _terms_of(self, slot: int) -> NDArray[np.int32]:
        start = int(self._slot_terms_start.values[slot])
        end = (
            int(self._slot_terms_start.values[slot + 1])
            if slot + 1 < self._slot_terms_start.size
            else self._forward.size
        )
        return self._forward.values[start:end]


def term_bytes(term: str) -> int:
    """What one vocabulary entry holds: its string and its dict entry."""
    return sys.getsizeof(term) + _VOCABULARY_ENTRY_BYTES


def _top_k(labels: Labels, scores: NDArray[np.float64], k: int) -> Hits:
    """The best ``k`` by score, ties by the smaller label: every match scoring at least the
    k-th best score is sorted, so ties at the boundary are decided by label too. O(m + k log k)."""
    if scores.shape[0] > k:
        threshold = np.partition(scores, scores.shape[0] - k)[scores.shape[0] - k]
        contenders = scores >= threshold
        labels, scores = labels[contenders], scores[contenders]
    order = np.lexsort((labels, -scores))[:k]
    return Hits(labels[order], scores[order].astype(np.float32), "bm25")
