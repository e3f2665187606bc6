"""Shared oracles for the index tests: a brute-force model and random operation scripts."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from hypothesis import strategies as st
from numpy.typing import NDArray

from domain.index.scoring import Hits, SearchParams
from domain.models import Metric
from domain.ports import VectorIndex

DIMENSION = 6
LABELS = 40
SLICE = Path(__file__).parent.parent / "data" / "minilm-slice.npz"


@dataclass
class Model:
    """What an index should hold: label -> raw vector."""

    metric: Metric
    vectors: dict[int, NDArray[np.float32]] = field(default_factory=dict)

    def add(self, labels: list[int], vectors: NDArray[np.float32]) -> None:
        for label, vector in zip(labels, vectors, strict=True):
            self.vectors[label] = vector

    def remove(self, labels: list[int]) -> None:
        for label in labels:
            self.vectors.pop(label, None)

    def score(self, label: int, query: NDArray[np.float32]) -> float:
        x = self.vectors[label].astype(np.float64)
        q = query.astype(np.float64)
        if self.metric is Metric.COSINE:
            norms = max(float(np.linalg.norm(x)), 1e-12) * max(float(np.linalg.norm(q)), 1e-12)
            return float(x @ q) / norms
        if self.metric is Metric.DOT:
            return float(x @ q)
        return float(np.linalg.norm(x - q))

    def top(
        self, query: NDArray[np.float32], k: int, allowed: set[int] | None = None
    ) -> list[float]:
        """The best ``k`` scores among the (allowed) live labels, best first."""
        scores = [
            self.score(label, query)
            for label in self.vectors
            if allowed is None or label in allowed
        ]
        scores.sort(reverse=self.metric is not Metric.L2)
        return scores[:k]


# A script: a list of ("add", labels) / ("remove", labels) steps; vectors come from a seed.
steps = st.lists(
    st.tuples(
        st.sampled_from(["add", "add", "remove"]),
        st.lists(st.integers(0, LABELS - 1), min_size=1, max_size=12),
    ),
    min_size=1,
    max_size=8,
)


def run_script(
    index: VectorIndex, model: Model, script: list[tuple[str, list[int]]], seed: int
) -> set[int]:
    """Apply the script to both; returns every label removed at some point and not re-added."""
    rng = np.random.default_rng(seed)
    gone: set[int] = set()
    for op, labels in script:
        if op == "add":
            vectors = rng.normal(size=(len(labels), DIMENSION)).astype(np.float32)
            index.add(np.asarray(labels, dtype=np.int64), vectors)
            model.add(labels, vectors)
            gone -= set(labels)
            continue
        index.remove(np.asarray(labels, dtype=np.int64))
        model.remove(labels)
        gone |= set(labels)
    return gone


def assert_agrees_with_model(
    index: VectorIndex,
    model: Model,
    query: NDArray[np.float32],
    k: int,
    *,
    allowed: set[int] | None = None,
    params: SearchParams | None = None,
    exact: bool = False,
) -> Hits:
    """The index returns exactly the brute-force top k: the same scores in the same order,
    each label live (and allowed) with the score it truly has."""
    mask = None
    if allowed is not None:
        mask = np.zeros(LABELS, dtype=np.bool_)
        mask[list(allowed)] = True
    hits = index.search(query, k, allowed=mask, params=params, exact=exact)
    expected = model.top(query, k, allowed)
    labels = hits.labels.tolist()
    assert len(labels) == len(set(labels))
    assert all(label in model.vectors for label in labels), "a deleted label came back"
    if allowed is not None:
        assert set(labels) <= allowed
    np.testing.assert_allclose(hits.scores, expected, rtol=1e-4, atol=1e-4)
    true_scores = [model.score(label, query) for label in labels]
    np.testing.assert_allclose(hits.scores, true_scores, rtol=1e-4, atol=1e-4)
    return hits


def load_slice() -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.int64]]:
    """The 5,000 x 384 base, 50 queries and their exact cosine top 10 (row numbers)."""
    data = np.load(SLICE)
    base = data["base"].astype(np.float32)
    queries = data["queries"].astype(np.float32)
    unit = base / np.linalg.norm(base, axis=1, keepdims=True)
    truth = np.argsort(-(queries @ unit.T), axis=1)[:, :10]
    return base, queries, truth.astype(np.int64)


def recall_at_10(
    index: VectorIndex, queries: NDArray[np.float32], truth: NDArray[np.int64]
) -> float:
    found = 0
    for query, expected in zip(queries, truth, strict=True):
        found += len(set(index.search(query, 10).labels.tolist()) & set(expected.tolist()))
    return found / truth.size
