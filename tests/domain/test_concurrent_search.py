"""``search`` on Flat, IVF and HNSW from 8 threads at once returns exactly what the same
search returns alone: the same labels in the same order, the same scores, no label twice.

The ``VectorIndex`` rule: any number of searches run together under the shared read lock,
so a search writes nothing another search can see. 2,000 real MiniLM vectors and the 50
held-out queries of ``tests/data/minilm-slice.npz``, unfiltered and with a mask admitting
half of the labels; HNSW's filtered walk is forced (at this size it would scan the allowed
nodes instead). HNSW as first written failed this: its searches shared one visited array.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pytest
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits

import domain.index.hnsw.planner as hnsw_planner
from domain.index.flat import FlatIndex
from domain.index.hnsw import HnswIndex
from domain.index.ivf import IvfIndex
from domain.limits import Limits
from domain.models import HnswParams, IvfParams, Metric
from domain.ports import VectorIndex
from tests.domain.index_checks import SLICE
from tests.support.threads import disagreements, from_threads

ROWS = 2_000
K = 10

Job = tuple[int, bool]  # (query row, masked)
Answer = tuple[tuple[int, float], ...]


def flat(labels: NDArray[np.int64], vectors: NDArray[np.float32]) -> VectorIndex:
    index = FlatIndex(vectors.shape[1], Metric.COSINE)
    index.add(labels, vectors)
    return index


def ivf(labels: NDArray[np.int64], vectors: NDArray[np.float32]) -> VectorIndex:
    params = IvfParams(nprobe=4)
    return IvfIndex.build(vectors.shape[1], Metric.COSINE, params, labels, vectors)


def hnsw(labels: NDArray[np.int64], vectors: NDArray[np.float32]) -> VectorIndex:
    params = HnswParams(m=12)
    return HnswIndex.build(vectors.shape[1], Metric.COSINE, params, labels, vectors)


BUILDERS: dict[str, Callable[[NDArray[np.int64], NDArray[np.float32]], VectorIndex]] = {
    "flat": flat,
    "ivf": ivf,
    "hnsw": hnsw,
}
UNMASKED = {"flat": "scan", "ivf": "ivf", "hnsw": "hnsw"}
MASKED = {"flat": "masked-scan", "ivf": "ivf-filtered", "hnsw": "hnsw-filtered"}


class Data:
    def __init__(self) -> None:
        data = np.load(SLICE)
        self.base: NDArray[np.float32] = data["base"][:ROWS].astype(np.float32)
        self.labels = np.arange(ROWS, dtype=np.int64)
        self.queries: NDArray[np.float32] = data["queries"].astype(np.float32)
        self.allowed = np.random.default_rng(7).permutation(ROWS) < ROWS // 2
        self.jobs: list[Job] = [
            (query, masked) for query in range(self.queries.shape[0]) for masked in (False, True)
        ]


@pytest.fixture(scope="module")
def data() -> Data:
    return Data()


@pytest.fixture(scope="module", autouse=True)
def one_blas_thread() -> Iterator[None]:
    """One BLAS thread per product, as the server runs (``bootstrap/blas.py``)."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


@pytest.fixture(autouse=True)
def masked_hnsw_searches_walk_the_graph(monkeypatch: pytest.MonkeyPatch) -> None:
    walk = Limits(hnsw_exact_scan_up_to=0)  # half the rows match: over the share, so walk
    monkeypatch.setattr(hnsw_planner, "_DEFAULT_PLAN", walk)


@pytest.fixture(scope="module", params=list(BUILDERS))
def index(request: pytest.FixtureRequest, data: Data) -> tuple[str, VectorIndex]:
    return request.param, BUILDERS[request.param](data.labels, data.base)


def test_searches_from_8_threads_return_what_each_search_returns_alone(
    index: tuple[str, VectorIndex], data: Data
) -> None:
    index_type, vector_index = index

    def search(job: Job) -> Answer:
        query, masked = job
        hits = vector_index.search(data.queries[query], K, allowed=data.allowed if masked else None)
        return tuple(zip(hits.labels.tolist(), hits.scores.tolist(), strict=True))

    alone = {job: search(job) for job in data.jobs}
    query = data.queries[0]
    assert vector_index.search(query, K).strategy == UNMASKED[index_type]
    assert vector_index.search(query, K, allowed=data.allowed).strategy == MASKED[index_type]
    assert all(len(answer) == K for answer in alone.values())
    assert all(data.allowed[label] for (_, masked), a in alone.items() if masked for label, _ in a)

    answers = from_threads(search, data.jobs, rounds=2)

    wrong = disagreements(answers, alone)
    repeated = [job for job, answer in answers if len({label for label, _ in answer}) < K]
    assert not (wrong or repeated), (
        f"{len(wrong)} of {len(answers)} answers differ from the same search alone, "
        f"{len(repeated)} name a label twice; first: {wrong[:2]}"
    )
