"""Search for real applications on a real server: score thresholds, grouping, batch search,
counting and deleting by filter, each with filters. Every expected answer is computed here in
float64 NumPy from the vectors the test sent, never through the server's code."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from tests.support.server import ServerProcess

pytestmark = pytest.mark.e2e

DIM = 8
DOCS = 12


class Library:
    """A library of chunks whose vectors and metadata the test keeps, for its own answers."""

    def __init__(self, client: httpx.Client, metric: str, index: dict[str, Any], seed: int):
        self.client = client
        self.metric = metric
        answer = client.post(
            "/v1/libraries",
            json={"name": f"features-{metric}", "dimension": DIM, "metric": metric, "index": index},
        )
        assert answer.status_code == 201, answer.text
        self.id: str = answer.json()["id"]
        rng = np.random.default_rng(seed)
        # Document d0 holds many chunks right around the first query: the best chunks crowd
        # into one document, so grouping must search past them to fill its groups.
        crowd = np.float32(1.0) + rng.normal(0, 0.01, (40, DIM)).astype(np.float32)
        rest = rng.normal(0, 1, (160, DIM)).astype(np.float32)
        self.vectors = np.concatenate([crowd, rest]).astype(np.float32)
        self.chunks: list[dict[str, Any]] = []
        for i, vector in enumerate(self.vectors):
            document = "d0" if i < 40 else f"d{1 + i % (DOCS - 1)}"
            metadata: dict[str, Any] = {"n": i, "parity": ["even", "odd"][i % 2]}
            if i % 3:
                metadata["topic"] = ["a", "b", "c"][i % 3] if i % 5 else ["a", "b"]
            self.chunks.append(
                {
                    "id": f"c{i}",
                    "document_id": document,
                    "text": f"chunk {i}",
                    "embedding": [float(x) for x in vector],
                    "metadata": metadata,
                }
            )
        answer = client.post(f"/v1/libraries/{self.id}/chunks/batch", json={"chunks": self.chunks})
        assert answer.status_code == 201, answer.text

    def url(self, tail: str) -> str:
        return f"/v1/libraries/{self.id}{tail}"

    def scores(self, query: np.ndarray) -> Any:
        """Every chunk's score in float64, as the contract defines it."""
        x, q = self.vectors.astype(np.float64), query.astype(np.float64)
        if self.metric == "l2":
            return np.sqrt(((x - q) ** 2).sum(axis=1))
        if self.metric == "cosine":
            x = x / np.linalg.norm(x, axis=1, keepdims=True)
            q = q / np.linalg.norm(q)
        return x @ q

    def ranked(self, query: np.ndarray, keep: list[int] | None = None) -> list[int]:
        """Chunk positions best first (ties by position), among ``keep`` when given."""
        scores = self.scores(query)
        order = sorted(range(len(scores)), key=lambda i: (_best_first(self.metric, scores[i]), i))
        return [i for i in order if keep is None or i in set(keep)]


def _best_first(metric: str, score: Any) -> float:
    return float(score) if metric == "l2" else -float(score)


def _ids(hits: list[dict[str, Any]]) -> list[str]:
    return [hit["chunk_id"] for hit in hits]


@pytest.fixture(scope="module")
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60) as client:
        yield client


INDEXES: dict[str, dict[str, Any]] = {
    "flat": {"type": "flat"},
    "ivf": {"type": "ivf", "params": {"nlist": 4, "nprobe": 4}},
    "hnsw": {"type": "hnsw", "params": {"m": 8, "ef_construction": 100, "ef_search": 200}},
}


@pytest.fixture(scope="module", params=[(m, i) for m in ("cosine", "dot", "l2") for i in INDEXES])
def library(request: pytest.FixtureRequest, http: httpx.Client) -> Library:
    metric, index = request.param
    return Library(http, metric, INDEXES[index], seed=len(metric) * 7 + len(index))


def queries(library: Library) -> list[np.ndarray]:
    rng = np.random.default_rng(5)
    return [np.ones(DIM, np.float32)] + [rng.normal(0, 1, DIM).astype(np.float32) for _ in range(4)]


def test_score_threshold_keeps_hits_in_the_metrics_own_direction(library: Library) -> None:
    query = queries(library)[1]
    scores = library.scores(query)
    order = library.ranked(query)
    # Halfway between the 8th and 9th best: 8 pass, whatever the float32 rounding.
    threshold = float(scores[order[7]] + scores[order[8]]) / 2
    answer = library.client.post(
        library.url("/search"),
        json={"vector": query.tolist(), "k": 20, "score_threshold": threshold},
    )
    assert answer.status_code == 200, answer.text
    hits = answer.json()["results"]
    assert _ids(hits) == [f"c{i}" for i in order[:8]]
    # With a filter: only odd chunks, the same threshold.
    odd = [i for i in range(len(scores)) if i % 2]
    answer = library.client.post(
        library.url("/search"),
        json={
            "vector": query.tolist(),
            "k": 20,
            "score_threshold": threshold,
            "filter": {"field": "parity", "op": "eq", "value": "odd"},
        },
    )
    expected = [i for i in library.ranked(query, odd) if i in order[:8]]
    assert _ids(answer.json()["results"]) == [f"c{i}" for i in expected]


def test_grouping_by_document_fills_k_groups_past_a_crowded_document(library: Library) -> None:
    query = queries(library)[0]  # d0's 40 chunks are its 40 best
    k, size = 4, 2
    answer = library.client.post(
        library.url("/search"),
        json={"vector": query.tolist(), "k": k, "group_by": "document_id", "group_size": size},
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert "results" not in body
    expected: dict[str, list[int]] = {}
    for i in library.ranked(query):
        document = library.chunks[i]["document_id"]
        if document not in expected and len(expected) == k:
            continue
        if len(expected.setdefault(document, [])) < size:
            expected[document].append(i)
    assert [g["key"] for g in body["groups"]] == list(expected)[:k]
    for group in body["groups"]:
        assert _ids(group["hits"]) == [f"c{i}" for i in expected[group["key"]]]


def test_grouping_by_a_metadata_key_with_a_filter(library: Library) -> None:
    query = queries(library)[2]
    answer = library.client.post(
        library.url("/search"),
        json={
            "vector": query.tolist(),
            "k": 3,
            "group_by": "topic",
            "group_size": 3,
            "filter": {"field": "parity", "op": "eq", "value": "even"},
        },
    )
    assert answer.status_code == 200, answer.text
    even = [i for i in range(len(library.chunks)) if i % 2 == 0]
    expected: dict[str, list[int]] = {}
    for i in library.ranked(query, even):
        topic = library.chunks[i]["metadata"].get("topic")  # none: in no group
        for key in [] if topic is None else topic if isinstance(topic, list) else [topic]:
            if len(expected.setdefault(key, [])) < 3:
                expected[key].append(i)
    groups = answer.json()["groups"]
    assert {g["key"]: _ids(g["hits"]) for g in groups} == {
        key: [f"c{i}" for i in hits] for key, hits in expected.items()
    }


def test_a_batch_answers_each_search_as_it_is_answered_alone(library: Library) -> None:
    searches: list[dict[str, Any]] = []
    for n, query in enumerate(queries(library)):
        searches.append({"vector": query.tolist(), "k": 5 + n})
        searches.append(
            {
                "vector": query.tolist(),
                "k": 7,
                "filter": {"field": "n", "op": "gte", "value": 30 + 10 * n},
                "include": ["text", "metadata"],
            }
        )
    searches.append({"vector": queries(library)[0].tolist(), "k": 2, "group_by": "document_id"})
    answer = library.client.post(library.url("/search/batch"), json={"searches": searches})
    assert answer.status_code == 200, answer.text
    together = answer.json()["results"]
    assert len(together) == len(searches)
    for search, batched in zip(searches, together, strict=True):
        alone = library.client.post(library.url("/search"), json=search).json()
        for field in ("results", "groups", "index", "strategy"):
            assert batched.get(field) == alone.get(field)
    # The exact truth for the flat-answered, unfiltered searches.
    if together[0]["index"] == "flat":
        for n, query in enumerate(queries(library)):
            expected = [f"c{i}" for i in library.ranked(query)[: 5 + n]]
            assert _ids(together[2 * n]["results"]) == expected


def test_a_batch_with_one_bad_search_is_a_422_naming_it(library: Library) -> None:
    good: dict[str, Any] = {"vector": queries(library)[0].tolist(), "k": 3}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"vector": [1.0, 2.0], "k": 3}, "searches[1].vector"),
        ({"vector": good["vector"], "k": 3, "filter": {"field": "n", "op": "near"}}, "searches[1]"),
        ({"vector": good["vector"], "k": 100000}, "searches[1].k"),
    ]
    for bad, where in cases:
        answer = library.client.post(
            library.url("/search/batch"), json={"searches": [good, bad, good]}
        )
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert where in answer.text
    empty = library.client.post(library.url("/search/batch"), json={"searches": []})
    assert empty.status_code == 422


def test_counting_chunks_and_documents_with_and_without_filters(library: Library) -> None:
    post = library.client.post
    assert post(library.url("/chunks/count"), json={}).json() == {"count": len(library.chunks)}
    topic_a = sum(
        1
        for c in library.chunks
        if (t := c["metadata"].get("topic")) == "a" or (isinstance(t, list) and "a" in t)
    )
    answer = post(
        library.url("/chunks/count"),
        json={"filter": {"field": "topic", "op": "contains", "value": "a"}},
    )
    assert answer.json() == {"count": topic_a}, answer.text
    assert post(library.url("/documents/count"), json={}).json() == {"count": DOCS}
    answer = post(
        library.url("/documents/count"),
        json={"filter": {"field": "id", "op": "in", "value": ["d0", "d3", "nope"]}},
    )
    assert answer.json() == {"count": 2}, answer.text


def test_delete_by_filter_is_one_write_that_searches_see_whole_or_not_at_all(
    http: httpx.Client,
) -> None:
    library = Library(http, "cosine", INDEXES["flat"], seed=99)
    doomed = {f"c{i}" for i, c in enumerate(library.chunks) if c["metadata"]["parity"] == "odd"}
    stop = threading.Event()
    seen: list[int] = []
    errors: list[str] = []

    def search_until_stopped() -> None:
        with httpx.Client(base_url=str(http.base_url), timeout=60) as client:
            while not stop.is_set():
                answer = client.post(library.url("/search"), json={"vector": [1.0] * DIM, "k": 200})
                if answer.status_code != 200:
                    errors.append(answer.text)
                    return
                seen.append(len(doomed & set(_ids(answer.json()["results"]))))

    threads = [threading.Thread(target=search_until_stopped) for _ in range(3)]
    for thread in threads:
        thread.start()

    def searched(at_least: int) -> None:
        deadline = time.monotonic() + 60
        while len(seen) < at_least and not errors and time.monotonic() < deadline:
            time.sleep(0.001)

    searched(6)  # the searches are running before the delete is sent
    before = len(seen)
    answer = http.post(
        library.url("/chunks/delete"),
        json={"filter": {"field": "parity", "op": "eq", "value": "odd"}},
    )
    searched(len(seen) + 6)  # and go on after it answered
    stop.set()
    for thread in threads:
        thread.join()
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"deleted": len(doomed)}
    assert int(answer.headers["X-StacksDB-Index"]) > 0
    assert not errors
    # Before the delete every search saw the odd chunks; of the last six, which all ended
    # after its answer, at most one per thread began before it.
    assert seen[:before] == [len(doomed)] * before and 0 in seen[-6:]
    # 200 results of 200 chunks: each search saw every odd chunk or none of them.
    assert set(seen) <= {0, len(doomed)}
    assert http.post(library.url("/chunks/count"), json={}).json()["count"] == 100
    refusals: list[dict[str, Any]] = [{}, {"filter": {}}]
    for bad in refusals:
        refused = http.post(library.url("/chunks/delete"), json=bad)
        assert refused.status_code == 422, refused.text
    assert http.post(library.url("/chunks/count"), json={}).json()["count"] == 100
