"""Metadata filters end to end on a real server: search, listings, created_at ranges, errors.

One library is written over HTTP in two batches with a pause between them, so that
``created_at`` splits the chunks at an instant known only from the server's own answers.
What each filter must select is computed on the client from what the server returned
(chunks with their embeddings, documents, timestamps) with the reference predicate
``domain.filters.matches``; search results are checked against NumPy brute force over the
same embeddings.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import numpy as np
import pytest

from domain.filters import ChunkFields, matches, parse_filter

DIM = 8
PROBLEM = "application/problem+json"
KINDS = {"d0": "paper", "d1": "book", "d2": "note"}
TAGS = ["ml", "ir", "db", "mlops"]


def vector(seed: int) -> list[float]:
    return [float(x) for x in np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)]


def metadata_of(i: int) -> dict[str, Any]:
    """Typed metadata with gaps: every key is missing from some chunks."""
    meta: dict[str, Any] = {"year": 2015 + i % 10, "title": f"chunk {i} about {TAGS[i % 4]}"}
    if i % 3:
        meta["tag"] = TAGS[i % 4]
    if i % 4 != 1:
        meta["tags"] = [TAGS[(i + j) % 4] for j in range(i % 3)]
    if i % 5:
        meta["score"] = round(0.1 * (i % 7), 2)
    if i % 2:
        meta["draft"] = i % 4 == 1
    return meta


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass
class Corpus:
    """The library as the server holds it, read back over HTTP."""

    library_id: str
    chunks: dict[str, dict[str, Any]]
    documents: dict[str, dict[str, Any]]
    between: datetime  # after every first-batch created_at, before every second-batch one

    def fields(self, chunk: dict[str, Any]) -> ChunkFields:
        return ChunkFields(
            chunk["id"],
            chunk["document_id"],
            parse_time(chunk["created_at"]),
            parse_time(chunk["updated_at"]),
            chunk["metadata"],
            self.documents[chunk["document_id"]]["metadata"],
        )

    def matching(self, filter_: dict[str, Any]) -> set[str]:
        parsed = parse_filter(filter_)
        return {cid for cid, chunk in self.chunks.items() if matches(parsed, self.fields(chunk))}

    def matching_documents(self, filter_: dict[str, Any]) -> set[str]:
        """A document is filtered as its own metadata under plain and document. keys."""
        parsed = parse_filter(filter_)
        out = set()
        for did, doc in self.documents.items():
            fields = ChunkFields(
                did,
                did,
                parse_time(doc["created_at"]),
                parse_time(doc["updated_at"]),
                doc["metadata"],
                doc["metadata"],
            )
            if matches(parsed, fields):
                out.add(did)
        return out

    def cosine(self, chunk_id: str, query: list[float]) -> float:
        x = np.asarray(self.chunks[chunk_id]["embedding"], dtype=np.float64)
        q = np.asarray(query, dtype=np.float64)
        return float(x @ q / (np.linalg.norm(x) * np.linalg.norm(q)))


def read_all(client: httpx.Client, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Every item of a listing, following next_cursor until it is null."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query = dict(params) | ({"cursor": cursor} if cursor is not None else {})
        response = client.get(path, params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items


@pytest.fixture(scope="module")
def corpus(server: Any) -> Corpus:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        response = client.post(
            "/v1/libraries",
            json={"name": "filtered", "dimension": DIM, "index": {"type": "hnsw"}},
        )
        assert response.status_code == 201, response.text
        lid = response.json()["id"]
        for did, kind in KINDS.items():
            body = {"id": did, "metadata": {"kind": kind, "rank": int(did[1:])}}
            assert client.post(f"/v1/libraries/{lid}/documents", json=body).status_code == 201

        def batch(first: int, last: int) -> list[dict[str, Any]]:
            chunks = [
                {
                    "id": f"c{i:02d}",
                    "document_id": f"d{i % 3}",
                    "text": f"text {i}",
                    "embedding": vector(i),
                    "metadata": metadata_of(i),
                }
                for i in range(first, last)
            ]
            response = client.post(f"/v1/libraries/{lid}/chunks/batch", json={"chunks": chunks})
            assert response.status_code == 201, response.text
            items: list[dict[str, Any]] = response.json()["items"]
            return items

        early = batch(0, 24)
        time.sleep(0.05)
        late = batch(24, 40)
        last_early = max(parse_time(c["created_at"]) for c in early)
        first_late = min(parse_time(c["created_at"]) for c in late)
        assert last_early < first_late
        chunks = read_all(
            client, f"/v1/libraries/{lid}/chunks", {"limit": 1000, "include_embedding": "true"}
        )
        documents = read_all(client, f"/v1/libraries/{lid}/documents", {"limit": 1000})
    return Corpus(
        lid,
        {c["id"]: c for c in chunks},
        {d["id"]: d for d in documents},
        last_early + (first_late - last_early) / 2,
    )


def rfc3339(instant: datetime, offset_hours: int = 0) -> str:
    return instant.astimezone(timezone(timedelta(hours=offset_hours))).isoformat()


def search_filters(corpus: Corpus) -> list[dict[str, Any]]:
    between = corpus.between
    return [
        {"field": "year", "op": "gte", "value": 2020},
        {"field": "score", "op": "lt", "value": 0.35},
        {"field": "tag", "op": "eq", "value": "ml"},
        {"field": "tag", "op": "ne", "value": "ml"},
        {"field": "tag", "op": "in", "value": ["ir", "db"]},
        {"field": "tag", "op": "nin", "value": ["ir", "db"]},
        {"field": "title", "op": "contains", "value": "about ml"},
        {"field": "tags", "op": "contains", "value": "mlops"},
        {"field": "draft", "op": "exists", "value": True},
        {"field": "draft", "op": "exists", "value": False},
        {"field": "draft", "op": "eq", "value": False},
        {"field": "document.kind", "op": "eq", "value": "book"},
        {"field": "document.rank", "op": "gt", "value": 0},
        {"field": "document_id", "op": "in", "value": ["d0", "d2"]},
        {"field": "created_at", "op": "gte", "value": rfc3339(between)},
        {"field": "created_at", "op": "lt", "value": rfc3339(between, 2)},
        {"field": "created_at", "op": "lt", "value": rfc3339(between, -5)},
        {
            "and": [
                {"field": "created_at", "op": "gte", "value": rfc3339(between - timedelta(1))},
                {"field": "created_at", "op": "lte", "value": rfc3339(between)},
            ]
        },
        {
            "or": [
                {"field": "tag", "op": "eq", "value": "ir"},
                {
                    "and": [
                        {"field": "year", "op": "lt", "value": 2018},
                        {"not": {"field": "tag", "op": "exists", "value": True}},
                    ]
                },
            ]
        },
        {
            "not": {
                "or": [
                    {"field": "document.kind", "op": "eq", "value": "paper"},
                    {"field": "score", "op": "gte", "value": 0.5},
                ]
            }
        },
        {
            "and": [
                {"field": "tags", "op": "contains", "value": "ir"},
                {"field": "created_at", "op": "gt", "value": rfc3339(between)},
            ]
        },
        {"field": "year", "op": "gt", "value": 3000},  # matches nothing
    ]


@pytest.fixture(scope="module")
def filters(corpus: Corpus) -> list[dict[str, Any]]:
    found = search_filters(corpus)
    sizes = [len(corpus.matching(f)) for f in found]
    # the filters cut the corpus in many ways: none, some, most
    assert 0 in sizes and any(0 < s < len(corpus.chunks) // 2 for s in sizes)
    assert any(len(corpus.chunks) // 2 <= s < len(corpus.chunks) for s in sizes)
    return found


def test_created_at_ranges_split_the_two_batches(corpus: Corpus, client: httpx.Client) -> None:
    late = {cid for cid in corpus.chunks if int(cid[1:]) >= 24}
    for spelling in (
        rfc3339(corpus.between),
        rfc3339(corpus.between, 2),
        rfc3339(corpus.between, -7),
    ):
        after = {"field": "created_at", "op": "gte", "value": spelling}
        before = {"field": "created_at", "op": "lt", "value": spelling}
        for filter_, want in ((after, late), (before, set(corpus.chunks) - late)):
            body = {"vector": vector(99), "k": 100, "filter": filter_}
            response = client.post(f"/v1/libraries/{corpus.library_id}/search", json=body)
            assert response.status_code == 200, response.text
            assert {hit["chunk_id"] for hit in response.json()["results"]} == want
            listed = read_all(
                client,
                f"/v1/libraries/{corpus.library_id}/chunks",
                {"limit": 5, "filter": json.dumps(filter_)},
            )
            assert {c["id"] for c in listed} == want


@pytest.mark.parametrize("exact", [False, True])
def test_filtered_search_returns_the_nearest_matching_chunks(
    corpus: Corpus, filters: list[dict[str, Any]], client: httpx.Client, exact: bool
) -> None:
    for i, filter_ in enumerate(filters):
        query = vector(1000 + i)
        k = 7
        body = {"vector": query, "k": k, "filter": filter_, "include": ["metadata"], "exact": exact}
        response = client.post(f"/v1/libraries/{corpus.library_id}/search", json=body)
        assert response.status_code == 200, response.text
        answer = response.json()
        allowed = corpus.matching(filter_)
        want = sorted((corpus.cosine(c, query) for c in allowed), reverse=True)[:k]
        got = answer["results"]
        assert len(got) == len(want), filter_
        for hit in got:
            assert hit["chunk_id"] in allowed, (filter_, hit["chunk_id"])
            assert hit["metadata"] == corpus.chunks[hit["chunk_id"]]["metadata"]
            assert hit["score"] == pytest.approx(corpus.cosine(hit["chunk_id"], query), abs=1e-4)
        assert [h["score"] for h in got] == pytest.approx(want, abs=1e-4)
        assert answer["index"] == "hnsw"
        assert isinstance(answer["strategy"], str) and answer["strategy"]
        if not allowed:
            assert answer["strategy"] == "filtered-none"
        else:
            # a small library's matching chunks are scanned exactly
            assert "scan" in answer["strategy"], answer["strategy"]


def test_search_without_a_filter_names_the_graph_strategy(
    corpus: Corpus, client: httpx.Client
) -> None:
    body = {"vector": vector(5), "k": 3}
    answer = client.post(f"/v1/libraries/{corpus.library_id}/search", json=body).json()
    assert answer["strategy"] in {"hnsw", "scan"} and len(answer["results"]) == 3


@pytest.mark.parametrize("limit", [1, 4, 1000])
def test_listings_with_a_filter_yield_exactly_the_matching_items(
    corpus: Corpus, filters: list[dict[str, Any]], client: httpx.Client, limit: int
) -> None:
    lid = corpus.library_id
    for filter_ in filters:
        encoded = json.dumps(filter_)
        chunks = read_all(
            client, f"/v1/libraries/{lid}/chunks", {"limit": limit, "filter": encoded}
        )
        ids = [c["id"] for c in chunks]
        assert len(ids) == len(set(ids)), filter_
        assert set(ids) == corpus.matching(filter_), filter_
        assert all(c["metadata"] == corpus.chunks[c["id"]]["metadata"] for c in chunks)
    document_filters: list[dict[str, Any]] = [
        {"field": "kind", "op": "in", "value": ["paper", "note"]},
        {"field": "document.rank", "op": "gte", "value": 1},
        {"not": {"field": "kind", "op": "eq", "value": "book"}},
        {"field": "created_at", "op": "gte", "value": rfc3339(corpus.between)},
        {"field": "missing", "op": "exists", "value": False},
    ]
    for filter_ in document_filters:
        docs = read_all(
            client,
            f"/v1/libraries/{lid}/documents",
            {"limit": limit, "filter": json.dumps(filter_)},
        )
        ids = [d["id"] for d in docs]
        assert len(ids) == len(set(ids))
        assert set(ids) == corpus.matching_documents(filter_), filter_


def test_listing_by_document_and_filter_combines_both(corpus: Corpus, client: httpx.Client) -> None:
    filter_ = {"field": "year", "op": "gte", "value": 2020}
    chunks = read_all(
        client,
        f"/v1/libraries/{corpus.library_id}/chunks",
        {"limit": 2, "document_id": "d1", "filter": json.dumps(filter_)},
    )
    want = {c for c in corpus.matching(filter_) if corpus.chunks[c]["document_id"] == "d1"}
    assert {c["id"] for c in chunks} == want and want


def test_document_metadata_changes_reach_document_filters_at_once(
    server: Any, client: httpx.Client
) -> None:
    lid = client.post("/v1/libraries", json={"name": "docs", "dimension": DIM}).json()["id"]
    body = {
        "id": "dx",
        "metadata": {"status": "draft"},
        "chunks": [{"id": "x1", "text": "t", "embedding": vector(1)}],
    }
    assert client.post(f"/v1/libraries/{lid}/documents", json=body).status_code == 201
    filter_ = {"field": "document.status", "op": "eq", "value": "final"}
    search = {"vector": vector(2), "k": 5, "filter": filter_}
    assert client.post(f"/v1/libraries/{lid}/search", json=search).json()["results"] == []
    patched = client.patch(
        f"/v1/libraries/{lid}/documents/dx", json={"metadata": {"status": "final"}}
    )
    assert patched.status_code == 200, patched.text
    hits = client.post(f"/v1/libraries/{lid}/search", json=search).json()["results"]
    assert [h["chunk_id"] for h in hits] == ["x1"]


deep: Any = {"field": "year", "op": "eq", "value": 1}
for _ in range(12):
    deep = {"not": deep}

# (filter, where the problem must point)
MALFORMED: list[tuple[Any, str]] = [
    ({"field": "year", "op": "like", "value": 1}, "filter.op"),
    (
        {
            "and": [
                {"field": "year", "op": "eq", "value": 1},
                {"field": "tag", "op": "regex", "value": "m"},
            ]
        },
        "filter.and[1].op",
    ),
    ({"field": "year", "op": "gt", "value": "recent"}, "filter.value"),
    ({"field": "year", "op": "gte", "value": True}, "filter.value"),
    ({"field": "tag", "op": "in", "value": "ml"}, "filter.value"),
    ({"field": "tag", "op": "in", "value": []}, "filter.value"),
    ({"field": "tag", "op": "nin", "value": ["ml", {"x": 1}]}, "filter.value[1]"),
    ({"field": "tag", "op": "exists", "value": "yes"}, "filter.value"),
    ({"field": "tag", "op": "eq", "value": None}, "filter.value"),
    ({"field": "tag", "op": "contains", "value": ["ml"]}, "filter.value"),
    ({"field": 7, "op": "eq", "value": 1}, "filter.field"),
    ({"field": "document.", "op": "eq", "value": 1}, "filter.field"),
    ({"field": "year", "op": "eq"}, "filter"),
    ({"field": "year", "op": "eq", "value": 1, "boost": 2}, "filter.boost"),
    ({"and": []}, "filter.and"),
    ({"or": {"field": "year", "op": "eq", "value": 1}}, "filter.or"),
    ({"not": [{"field": "year", "op": "eq", "value": 1}]}, "filter.not"),
    ({"or": [{"not": {"field": "year", "op": "between", "value": [1, 2]}}]}, "filter.or[0].not.op"),
    (deep, "filter" + ".not" * 10),
    ({"field": "created_at", "op": "gte", "value": "2024-05-01"}, "filter.value"),
    ({"field": "created_at", "op": "gte", "value": "2024-05-01 12:00:00Z"}, "filter.value"),
    ({"field": "created_at", "op": "lt", "value": "2024-05-01T12:00:00"}, "filter.value"),
    ({"field": "created_at", "op": "lt", "value": "yesterday"}, "filter.value"),
    ({"field": "updated_at", "op": "gt", "value": 1714564800}, "filter.value"),
    ({"field": "created_at", "op": "in", "value": ["2024-02-30T00:00:00Z"]}, "filter.value[0]"),
    ({"field": "created_at", "op": "contains", "value": "2024"}, "filter.value"),
    ({"field": "document_id", "op": "eq", "value": 3}, "filter.value"),
]


def assert_filter_problem(response: httpx.Response, location: str) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == 422 and body["type"].startswith("urn:stacksdb:problem:")
    assert body["title"]
    assert body["detail"].startswith(location), (body, location)
    return body


def state(client: httpx.Client, lid: str) -> tuple[Any, ...]:
    library = client.get(f"/v1/libraries/{lid}").json()
    chunks = read_all(client, f"/v1/libraries/{lid}/chunks", {"limit": 1000})
    documents = read_all(client, f"/v1/libraries/{lid}/documents", {"limit": 1000})
    return (
        library["chunk_count"],
        library["document_count"],
        library["updated_at"],
        sorted((c["id"], c["updated_at"], json.dumps(c["metadata"])) for c in chunks),
        sorted((d["id"], d["updated_at"], json.dumps(d["metadata"])) for d in documents),
    )


def test_every_malformed_filter_is_a_422_pointing_at_its_node_and_changes_nothing(
    corpus: Corpus, client: httpx.Client
) -> None:
    lid = corpus.library_id
    before = state(client, lid)
    for filter_, location in MALFORMED:
        body = {"vector": vector(3), "k": 5, "filter": filter_}
        for exact in (False, True):
            problem = assert_filter_problem(
                client.post(f"/v1/libraries/{lid}/search", json=body | {"exact": exact}), location
            )
            assert problem["location"] == location or problem["location"].startswith(location)
        for path in ("chunks", "documents"):
            response = client.get(
                f"/v1/libraries/{lid}/{path}", params={"filter": json.dumps(filter_)}
            )
            problem = assert_filter_problem(response, location)
            assert problem["location"].startswith(location)
    assert state(client, lid) == before


@pytest.mark.parametrize("text", ["{not json", "", "[1,", "{'field': 'year'}", "null x"])
def test_a_listing_filter_that_is_not_json_is_a_422(
    corpus: Corpus, client: httpx.Client, text: str
) -> None:
    for path in ("chunks", "documents"):
        response = client.get(f"/v1/libraries/{corpus.library_id}/{path}", params={"filter": text})
        problem = assert_filter_problem(response, "filter")
        assert "JSON" in problem["detail"]


@pytest.mark.parametrize(
    "filter_", ["year >= 2020", 7, [{"field": "year", "op": "eq", "value": 1}]]
)
def test_a_search_filter_that_is_not_an_object_is_a_422(
    corpus: Corpus, client: httpx.Client, filter_: Any
) -> None:
    body = {"vector": vector(3), "k": 5, "filter": filter_}
    response = client.post(f"/v1/libraries/{corpus.library_id}/search", json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert "filter" in response.json()["detail"]
