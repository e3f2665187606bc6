"""Filtered HNSW and IVF keep recall@10 >= 0.9 on real vectors at every selectivity.

5,000 MiniLM embeddings of WordNet glosses (``tests/data/minilm-slice.npz``) go through the
services with a metadata field ``rank`` (a random permutation of 0..n-1), so
``rank < share·n`` selects a random ``share`` of the chunks. Each of the 50 held-out queries
runs through ``SearchService`` (so what is measured is the strategy its planner picks)
against the exact filtered top 10 computed with NumPy.

On 5,000 vectors the planner's absolute thresholds (scan up to 2,000 matches; up to 4,096
for HNSW) send almost everything to an exact scan, which proves little
about the index paths. So each index is also measured with those thresholds scaled down to
this library's size, as the planner sees the full 81,115-vector set: then 50% walks the
graph, 50% and 10% probe IVF's masked lists, and the test checks that they did.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from application.dto import ChunkInput, NewLibrary, SearchQuery
from domain.limits import Limits
from tests.application.conftest import Services, build_services

SLICE = Path(__file__).parent.parent / "data" / "minilm-slice.npz"
FULL_SET = 81_115  # the base size of the set the slice comes from
SELECTIVITIES = (0.5, 0.1, 0.01, 0.001)
RECALL_TARGET = 0.9
K = 10

Floats = NDArray[np.float32]


class Slice:
    """The slice, its unit vectors for the truth, and a random rank per chunk."""

    def __init__(self) -> None:
        data = np.load(SLICE)
        self.base: Floats = data["base"].astype(np.float32)
        self.queries: Floats = data["queries"].astype(np.float32)
        self.unit = self.base / np.linalg.norm(self.base, axis=1, keepdims=True)
        self.unit_queries = self.queries / np.linalg.norm(self.queries, axis=1, keepdims=True)
        self.rank = np.random.default_rng(11).permutation(self.base.shape[0])

    @property
    def size(self) -> int:
        return int(self.base.shape[0])

    def truth(self, query: int, cutoff: int) -> set[int]:
        """The exact filtered top k: rows with rank < cutoff, by cosine."""
        sims = np.where(self.rank < cutoff, self.unit @ self.unit_queries[query], -np.inf)
        return set(np.argsort(-sims)[: min(K, cutoff)].tolist())


@pytest.fixture(scope="module")
def data() -> Slice:
    return Slice()


def library_of(data: Slice, index_type: str) -> tuple[Services, str]:
    services = build_services()
    library_id = services.libraries.create(
        NewLibrary(name=index_type, dimension=data.base.shape[1], index_type=index_type)
    ).library.id
    services.chunks.write_batch(
        library_id,
        [
            ChunkInput("doc", f"row {row}", data.base[row], {"rank": int(data.rank[row])}, str(row))
            for row in range(data.size)
        ],
    )
    assert services.live.get(library_id).index.spec.type.value == index_type
    return services, library_id


@pytest.fixture(scope="module", params=["hnsw", "ivf"])
def library(request: pytest.FixtureRequest, data: Slice) -> Iterator[tuple[Services, str]]:
    yield library_of(data, request.param)


def measure(
    services: Services, library_id: str, data: Slice, share: float
) -> tuple[float, set[str]]:
    """Mean recall@10 over the queries, and the strategies the planner ran."""
    cutoff = max(1, round(share * data.size))
    filter_ = {"field": "rank", "op": "lt", "value": cutoff}
    recalls: list[float] = []
    strategies: set[str] = set()
    for query in range(data.queries.shape[0]):
        outcome = services.search.search(
            library_id, SearchQuery(data.queries[query], K, filter_, include=frozenset())
        )
        strategies.add(outcome.strategy)
        got = [int(hit.chunk_id) for hit in outcome.hits]
        truth = data.truth(query, cutoff)
        # k results whenever k chunks match, all of them matching
        assert len(got) == len(truth)
        assert all(data.rank[row] < cutoff for row in got)
        recalls.append(len(truth & set(got)) / len(truth))
    return float(np.mean(recalls)), strategies


@pytest.mark.parametrize("share", SELECTIVITIES)
def test_filtered_recall_at_10_with_the_planner_as_configured(
    library: tuple[Services, str], data: Slice, share: float
) -> None:
    recall, strategies = measure(*library, data, share)
    assert recall >= RECALL_TARGET, (share, recall, strategies)


# What the planner picks on the full set, scaled to the slice: the masked lists at 50% and
# 10%, the graph walk at 50% (HNSW scans its matches below a 15% share), an exact scan of the
# matching chunks at 1% and 0.1%.
SCALED_STRATEGIES = {
    "hnsw": {0.5: "hnsw-filtered", 0.1: "scan", 0.01: "scan", 0.001: "scan"},
    "ivf": {0.5: "ivf-filtered", 0.1: "ivf-filtered", 0.01: "scan", 0.001: "scan"},
}


@pytest.mark.parametrize("share", SELECTIVITIES)
def test_filtered_recall_at_10_with_thresholds_scaled_as_on_the_full_set(
    library: tuple[Services, str],
    data: Slice,
    share: float,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scale = data.size / FULL_SET
    full = Limits()
    scaled = Limits(
        exact_scan_up_to=round(full.exact_scan_up_to * scale),
        hnsw_exact_scan_up_to=round(full.hnsw_exact_scan_up_to * scale),
    )
    services, library_id = library
    monkeypatch.setattr(services.search, "_limits", scaled)
    index_type = services.live.get(library_id).index.spec.type.value
    recall, strategies = measure(services, library_id, data, share)
    assert recall >= RECALL_TARGET, (share, recall, strategies)
    # the path the full set would take is the one measured here
    assert all(SCALED_STRATEGIES[index_type][share] in s for s in strategies), strategies
