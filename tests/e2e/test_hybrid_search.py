"""Keyword and hybrid search on a real server: each mode with filters, both sides' scores on
hybrid hits, the keyword side following writes and deletes, and the refusals. Expected
rankings are computed here (cosine in float64 NumPy, BM25 from Lucene's formula over the
same terms, reciprocal rank fusion by hand), never through the server's code."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from domain.models import Bm25Params
from tests.domain.test_bm25_index import brute_force_scores
from tests.support.fake_embedders import FakeEmbeddingServer, text_vector
from tests.support.server import ServerProcess

pytestmark = pytest.mark.e2e

DIM = 8
WORDS = ["ruby", "opal", "amber", "jade", "onyx", "quartz", "topaz", "beryl", "garnet", "pearl"]
QUERY = "quartz topaz beryl"


class TextLibrary:
    """A library of texts and vectors the test keeps, to compute its own answers."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        answer = client.post("/v1/libraries", json={"name": "gems", "dimension": DIM})
        assert answer.status_code == 201, answer.text
        self.id: str = answer.json()["id"]
        rng = np.random.default_rng(11)
        weights = 1.0 / np.arange(1, len(WORDS) + 1)
        self.chunks: dict[str, dict[str, Any]] = {}
        for i in range(80):
            words = rng.choice(WORDS, size=2 + i % 37, p=weights / weights.sum())
            self.chunks[f"c{i}"] = {
                "id": f"c{i}",
                "document_id": f"d{i % 9}",
                "text": " ".join(words),
                "embedding": rng.standard_normal(DIM).tolist(),
                "metadata": {"shelf": i % 4},
            }
        body = {"chunks": list(self.chunks.values())}
        answer = client.post(self.url("/chunks/batch"), json=body)
        assert answer.status_code == 201, answer.text

    def url(self, tail: str) -> str:
        return f"/v1/libraries/{self.id}{tail}"

    def search(self, **body: Any) -> httpx.Response:
        return self.client.post(self.url("/search"), json=body)

    def passes(self, chunk_id: str, shelves: set[int] | None) -> bool:
        return shelves is None or self.chunks[chunk_id]["metadata"]["shelf"] in shelves

    def vector_ranking(self, query: list[float], shelves: set[int] | None) -> list[str]:
        q = np.asarray(query, np.float64)
        sims = {
            c: float(np.asarray(chunk["embedding"]) @ q / np.linalg.norm(chunk["embedding"]))
            for c, chunk in self.chunks.items()
            if self.passes(c, shelves)
        }
        return sorted(sims, key=lambda c: -sims[c])

    def keyword_ranking(self, query: str, shelves: set[int] | None) -> dict[str, float]:
        """BM25 over the whole library (a filter masks, it does not change statistics)."""
        ids = list(self.chunks)
        texts = {i: self.chunks[c]["text"] for i, c in enumerate(ids)}
        scores = brute_force_scores(texts, query, Bm25Params())
        return {ids[i]: s for i, s in scores.items() if s > 0 and self.passes(ids[i], shelves)}


@pytest.fixture(scope="module")
def library(server: ServerProcess) -> Iterator[TextLibrary]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield TextLibrary(client)


SHELVES = {"field": "shelf", "op": "in", "value": [1, 2]}


@pytest.mark.parametrize("shelves", [None, {1, 2}])
def test_keyword_mode_answers_bm25_scores_under_the_filter(
    library: TextLibrary, shelves: set[int] | None
) -> None:
    answer = library.search(query=QUERY, k=10, filter=SHELVES if shelves else None)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["mode"] == "keyword"
    truth = library.keyword_ranking(QUERY, shelves)
    expected = sorted(truth.values(), reverse=True)[:10]
    np.testing.assert_allclose([h["score"] for h in body["results"]], expected, rtol=1e-6)
    for hit in body["results"]:
        assert hit["score"] == pytest.approx(truth[hit["chunk_id"]], rel=1e-6)
        assert "vector_score" not in hit


def test_vector_mode_with_a_filter_ignores_the_query_text(library: TextLibrary) -> None:
    query = np.random.default_rng(1).standard_normal(DIM).tolist()
    answer = library.search(vector=query, query=QUERY, mode="vector", k=5, filter=SHELVES)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["mode"] == "vector"
    assert [h["chunk_id"] for h in body["results"]] == library.vector_ranking(query, {1, 2})[:5]


@pytest.mark.parametrize("shelves", [None, {1, 2}])
def test_hybrid_mode_fuses_both_sides_under_the_filter_and_shows_each_sides_score(
    library: TextLibrary, shelves: set[int] | None
) -> None:
    query = np.random.default_rng(2).standard_normal(DIM).tolist()
    depth, rrf_k = 15, 10
    answer = library.search(
        vector=query,
        query=QUERY,
        k=10,
        hybrid={"rrf_k": rrf_k, "candidates": depth},
        filter=SHELVES if shelves else None,
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["mode"] == "hybrid"
    assert body["strategy"] == "rrf"
    keyword = library.keyword_ranking(QUERY, shelves)
    keyword_order = sorted(keyword, key=lambda c: -keyword[c])[:depth]
    vector_order = library.vector_ranking(query, shelves)[:depth]
    fused: dict[str, float] = {}
    for side in (vector_order, keyword_order):
        for rank, chunk_id in enumerate(side, start=1):
            fused[chunk_id] = fused.get(chunk_id, 0.0) + 1 / (rrf_k + rank)
    expected = sorted(fused.values(), reverse=True)[:10]
    hits = body["results"]
    np.testing.assert_allclose([h["score"] for h in hits], expected, rtol=1e-6)
    for hit in hits:
        chunk_id = hit["chunk_id"]
        assert library.passes(chunk_id, shelves)
        assert hit["score"] == pytest.approx(fused[chunk_id], rel=1e-6)
        assert ("vector_score" in hit) and ("keyword_score" in hit)
        if chunk_id in keyword_order:
            assert hit["keyword_score"] == pytest.approx(keyword[chunk_id], rel=1e-6)
        else:
            assert hit["keyword_score"] is None
        assert (hit["vector_score"] is None) == (chunk_id not in vector_order)


def test_hybrid_weighted_fusion_scores_lie_between_zero_and_one(library: TextLibrary) -> None:
    query = np.random.default_rng(3).standard_normal(DIM).tolist()
    answer = library.search(
        vector=query, query=QUERY, k=10, hybrid={"fusion": "weighted", "alpha": 0.25}
    )
    assert answer.status_code == 200, answer.text
    scores = [h["score"] for h in answer.json()["results"]]
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert answer.json()["strategy"] == "weighted"


def test_the_keyword_side_follows_writes_edits_and_deletes(library: TextLibrary) -> None:
    new = {"id": "fresh", "document_id": "dx", "text": "a lone zircon", "embedding": [0.5] * DIM}
    assert library.client.post(library.url("/chunks"), json=new).status_code == 201

    def found(word: str) -> list[str]:
        answer = library.search(query=word, k=5)
        assert answer.status_code == 200, answer.text
        return [h["chunk_id"] for h in answer.json()["results"]]

    assert found("zircon") == ["fresh"]
    edit = library.client.patch(library.url("/chunks/fresh"), json={"text": "a lone tanzanite"})
    assert edit.status_code == 200, edit.text
    assert found("zircon") == []
    assert found("tanzanite") == ["fresh"]
    assert library.client.delete(library.url("/chunks/fresh")).status_code == 204
    assert found("tanzanite") == []


@pytest.mark.parametrize(
    ("body", "location"),
    [
        ({"k": 3}, "vector"),
        ({"query": QUERY, "mode": "vector"}, "vector"),
        ({"query": QUERY, "mode": "hybrid"}, "vector"),
        ({"vector": [0.0] * DIM, "mode": "keyword"}, "query"),
        (
            {"query": QUERY, "vector": [0.0] * DIM, "k": 20, "hybrid": {"candidates": 5}},
            "hybrid.candidates",
        ),
    ],
)
def test_searches_the_library_cannot_run_are_422_problems_naming_the_field(
    library: TextLibrary, body: dict[str, Any], location: str
) -> None:
    answer = library.search(**body)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert location in answer.text


@pytest.mark.parametrize(
    "body",
    [
        {"query": ""},
        {"query": QUERY, "mode": "fuzzy"},
        {"query": QUERY, "hybrid": {"fusion": "max"}},
        {"query": QUERY, "hybrid": {"alpha": 1.5}},
        {"query": QUERY, "hybrid": {"rrf_k": -1}},
    ],
)
def test_malformed_text_search_fields_are_422(library: TextLibrary, body: dict[str, Any]) -> None:
    answer = library.search(**body)
    assert answer.status_code == 422, answer.text


def test_keyword_search_on_a_library_without_a_keyword_index_is_422(
    library: TextLibrary,
) -> None:
    created = library.client.post(
        "/v1/libraries",
        json={"name": "no-text", "dimension": DIM, "text_index": {"type": "none"}},
    )
    assert created.status_code == 201, created.text
    answer = library.client.post(
        f"/v1/libraries/{created.json()['id']}/search", json={"query": QUERY}
    )
    assert answer.status_code == 422, answer.text
    assert "text_index" in answer.json()["detail"]


def test_batch_and_grouped_searches_run_in_keyword_and_hybrid_modes(library: TextLibrary) -> None:
    query = np.random.default_rng(4).standard_normal(DIM).tolist()
    searches = [{"query": QUERY, "k": 4}, {"query": QUERY, "vector": query, "k": 4}]
    batch = library.client.post(library.url("/search/batch"), json={"searches": searches})
    assert batch.status_code == 200, batch.text
    for alone, answer in zip(searches, batch.json()["results"], strict=True):
        single = library.search(**alone).json()
        assert answer["mode"] == single["mode"]
        assert answer["results"] == single["results"]
    grouped = library.search(query=QUERY, vector=query, k=3, group_by="document_id")
    assert grouped.status_code == 200, grouped.text
    groups = grouped.json()["groups"]
    assert len(groups) == 3
    assert len({g["key"] for g in groups}) == 3


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeEmbeddingServer]:
    fake = FakeEmbeddingServer(dimension=DIM).start()
    yield fake
    fake.stop()


def test_a_query_alone_on_a_library_with_an_embedder_searches_both_sides(
    library: TextLibrary, provider: FakeEmbeddingServer
) -> None:
    client = library.client
    embedder = {"provider": "openai", "url": f"{provider.url}/v1", "model": "fake-embed"}
    created = client.post("/v1/libraries", json={"name": "embedded", "embedder": embedder})
    assert created.status_code == 201, created.text
    url = f"/v1/libraries/{created.json()['id']}"
    texts = {f"e{i}": chunk["text"] for i, chunk in enumerate(list(library.chunks.values())[:12])}
    chunks = [{"id": c, "document_id": "d", "text": t} for c, t in texts.items()]
    written = client.post(f"{url}/chunks/batch", json={"chunks": chunks})
    assert written.status_code == 201, written.text

    answer = client.post(f"{url}/search", json={"query": QUERY, "k": 5})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["mode"] == "hybrid"
    assert provider.requests[-1].body["input"] == [QUERY]  # the query, embedded by the server
    q = text_vector(QUERY, DIM)
    sims = {
        c: float(text_vector(t, DIM) @ q / np.linalg.norm(text_vector(t, DIM)))
        for c, t in texts.items()
    }
    vector_order = sorted(sims, key=lambda c: -sims[c])[:10]  # depth max(10, k)
    ids = list(texts)
    bm25 = brute_force_scores(dict(enumerate(texts.values())), QUERY, Bm25Params())
    keyword = {ids[i]: s for i, s in bm25.items() if s > 0}
    keyword_order = sorted(keyword, key=lambda c: -keyword[c])[:10]
    fused: dict[str, float] = {}
    for side in (vector_order, keyword_order):
        for rank, chunk_id in enumerate(side, start=1):
            fused[chunk_id] = fused.get(chunk_id, 0.0) + 1 / (60 + rank)
    expected = sorted(fused.values(), reverse=True)[:5]
    np.testing.assert_allclose([h["score"] for h in body["results"]], expected, rtol=1e-6)

    vector_mode = client.post(f"{url}/search", json={"query": QUERY, "k": 3, "mode": "vector"})
    assert vector_mode.status_code == 200, vector_mode.text
    assert [h["chunk_id"] for h in vector_mode.json()["results"]] == vector_order[:3]


def _schema_bound(client: httpx.Client, model: str, field: str) -> int:
    """The maximum the server's own OpenAPI document states for ``model.field``."""
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    bound: int = schemas[model]["properties"][field]["maximum"]
    return bound


@pytest.mark.parametrize("grouped", [False, True], ids=["ungrouped", "grouped"])
@pytest.mark.parametrize("mode", ["vector", "keyword", "hybrid"])
def test_group_size_holds_the_schemas_bound_in_every_mode_alone_and_in_a_batch(
    library: TextLibrary, mode: str, grouped: bool
) -> None:
    """A group_size past the maximum the schema states is a 422 naming it, whether or not
    the search groups and whichever mode runs; the maximum itself is accepted."""
    largest = _schema_bound(library.client, "SearchIn", "group_size")
    body: dict[str, Any] = {"mode": mode, "k": 1}
    if mode != "keyword":
        body["vector"] = np.random.default_rng(6).standard_normal(DIM).tolist()
    if mode != "vector":
        body["query"] = QUERY
    if grouped:
        body["group_by"] = "document_id"
    batch_url = library.url("/search/batch")
    for size, status in ((largest, 200), (largest + 1, 422)):
        alone = library.search(**body, group_size=size)
        assert alone.status_code == status, alone.text
        in_batch = library.client.post(
            batch_url, json={"searches": [body, {**body, "group_size": size}]}
        )
        assert in_batch.status_code == status, in_batch.text
        if status == 422:
            for answer, where in ((alone, "group_size"), (in_batch, "searches[1].group_size")):
                assert answer.headers["content-type"].startswith("application/problem+json")
                assert where in answer.text
