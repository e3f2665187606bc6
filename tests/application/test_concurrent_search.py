"""Searches through ``SearchService`` from 8 threads at once give exactly the answers the same
searches give alone, on every index type, with and without a metadata filter, and while a
background build (PUT index through ``IndexService``) replaces the index under them.

Real vectors (2,000 MiniLM rows of ``tests/data/minilm-slice.npz``, its 50 held-out
queries) with a ``rank`` field: the filter ``rank < 1000`` admits half of the chunks. At
this size the planner would answer every filtered search with an exact scan of the
matching chunks, so its count thresholds are lowered to send filtered searches down the
index's own filtered path (the graph walk, the masked lists), and the test checks they went
there.

An answer is the list of (chunk id, score): the same labels, in the same order, with the
same float scores, and no chunk twice. HNSW as first written failed this (each search wrote
a visited array shared by the whole index): hundreds of the 1,600 searches per run differed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits

from application.dto import ChunkInput, NewLibrary, SearchQuery
from application.index_service import thread_launcher
from domain.limits import Limits
from domain.models import IndexState
from tests.application.conftest import Services, build_services
from tests.domain.index_checks import SLICE
from tests.support.threads import disagreements, from_threads

ROWS = 2_000
K = 10
FILTER = {"field": "rank", "op": "lt", "value": ROWS // 2}
# Not the defaults: IVF trains on ~45 lists, HNSW probes enough to find each true top 10.
PARAMS: dict[str, dict[str, Any]] = {"flat": {}, "ivf": {"nprobe": 4}, "hnsw": {"m": 12}}
UNFILTERED = {"flat": "scan", "ivf": "ivf", "hnsw": "hnsw"}
FILTERED = {"flat": "masked-scan", "ivf": "ivf-filtered", "hnsw": "hnsw-filtered"}

Job = tuple[int, bool]  # (query row, filtered)
Answer = tuple[tuple[str, float], ...]


class Data:
    def __init__(self) -> None:
        data = np.load(SLICE)
        self.base: NDArray[np.float32] = data["base"][:ROWS].astype(np.float32)
        self.queries: NDArray[np.float32] = data["queries"].astype(np.float32)
        self.rank = np.random.default_rng(5).permutation(ROWS)
        self.jobs: list[Job] = [
            (query, filtered)
            for query in range(self.queries.shape[0])
            for filtered in (False, True)
        ]


@pytest.fixture(scope="module")
def data() -> Data:
    return Data()


@pytest.fixture(scope="module", autouse=True)
def one_blas_thread() -> Iterator[None]:
    """One BLAS thread per product, as the server runs (``bootstrap/blas.py``): 8 searching
    threads that each fan a product out to BLAS workers spinning on 2 cores take seconds."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


# Send filtered searches down the index's filtered path instead of an exact scan of the
# matching chunks, as on a library large enough for the index to pay.
INDEX_PATHS = Limits(exact_scan_up_to=0, hnsw_exact_scan_up_to=0)


def wait_until_ready(services: Services, library_id: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while services.indexes.status(library_id).state is not IndexState.READY:
        assert time.monotonic() < deadline, "the index build did not finish"
        time.sleep(0.01)


def library_of(data: Data, index_type: str) -> tuple[Services, str]:
    """A library of the rows whose index was built by a PUT index in a background thread."""
    services = build_services(launcher=thread_launcher, limits=INDEX_PATHS)
    library_id = services.libraries.create(
        NewLibrary(name=index_type, dimension=data.base.shape[1])
    ).library.id
    services.chunks.write_batch(
        library_id,
        [
            ChunkInput("doc", f"row {row}", data.base[row], {"rank": int(data.rank[row])}, str(row))
            for row in range(ROWS)
        ],
    )
    services.indexes.rebuild(library_id, index_type, PARAMS[index_type])
    wait_until_ready(services, library_id)
    assert services.live.get(library_id).index.spec.type.value == index_type
    return services, library_id


@pytest.fixture(scope="module", params=["flat", "ivf", "hnsw"])
def library(request: pytest.FixtureRequest, data: Data) -> Iterator[tuple[Services, str, str]]:
    services, library_id = library_of(data, request.param)
    yield services, library_id, request.param


def searcher(services: Services, library_id: str, data: Data) -> Callable[[Job], Answer]:
    def search(job: Job) -> Answer:
        query, filtered = job
        outcome = services.search.search(
            library_id,
            SearchQuery(data.queries[query], K, FILTER if filtered else None, include=frozenset()),
        )
        return tuple((hit.chunk_id, hit.score) for hit in outcome.hits)

    return search


def alone(services: Services, library_id: str, data: Data) -> dict[Job, Answer]:
    search = searcher(services, library_id, data)
    return {job: search(job) for job in data.jobs}


def assert_as_alone(
    answers: list[tuple[Job, Answer]], alone: dict[Job, Answer] | list[dict[Job, Answer]]
) -> None:
    wrong = disagreements(answers, alone)
    repeated = [job for job, answer in answers if len({c for c, _ in answer}) < len(answer)]
    assert not (wrong or repeated), (
        f"{len(wrong)} of {len(answers)} answers differ from the same search alone, "
        f"{len(repeated)} name a chunk twice; first: {wrong[:2]}"
    )


def test_searches_from_8_threads_answer_as_each_search_does_alone(
    library: tuple[Services, str, str], data: Data
) -> None:
    services, library_id, index_type = library
    expected = alone(services, library_id, data)
    strategies = {
        filtered: services.search.search(
            library_id, SearchQuery(data.queries[0], K, FILTER if filtered else None)
        ).strategy
        for filtered in (False, True)
    }
    assert strategies == {False: UNFILTERED[index_type], True: FILTERED[index_type]}
    assert all(len(answer) == K for answer in expected.values())

    answers = from_threads(searcher(services, library_id, data), data.jobs, rounds=2)

    assert len(answers) == 8 * 2 * len(data.jobs)
    assert_as_alone(answers, expected)


@pytest.mark.parametrize("index_type", ["flat", "ivf", "hnsw"])
def test_searches_during_a_background_build_answer_as_the_old_or_the_new_index_alone(
    data: Data, index_type: str
) -> None:
    services, library_id = library_of(data, index_type)
    before = alone(services, library_id, data)
    old_index = services.live.get(library_id).index

    services.indexes.rebuild(library_id, index_type, PARAMS[index_type])

    def built() -> bool:
        return services.indexes.status(library_id).state is IndexState.READY

    answers = from_threads(searcher(services, library_id, data), data.jobs, until=built)
    wait_until_ready(services, library_id)
    assert services.live.get(library_id).index is not old_index
    after = alone(services, library_id, data)

    assert_as_alone(answers, [before, after])
