"""The keyword index on a real server: ``text_index`` on create and PATCH (a background
rebuild, ``none`` turning it off), its memory in /metrics, and a keyword index that comes
back after kill -9 exactly as the stored texts say. Expected BM25 scores come from Lucene's
formula evaluated here over the same terms (``brute_force_scores``), never from the server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from domain.models import Bm25Params
from tests.domain.test_bm25_index import brute_force_scores
from tests.support.server import ServerProcess, running_server

pytestmark = pytest.mark.e2e

DIM = 4
# English morphology on purpose: "flows", "flowing" and "flowed" are one term under english.
WORDS = ["river", "rivers", "bank", "banking", "money", "loan", "loans", "the", "of", "stream"]
WORDS += ["flows", "flowing", "flowed", "water", "delta", "Delta", "mouth", "sea", "salt"]
QUERIES = ["river banks", "flowing water", "loan of money to the bank", "Delta salt sea"]


def texts_for(ids: range, seed: int) -> dict[str, str]:
    """Texts of 2 to 30 words, Zipf-weighted so some terms are common and some rare."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, len(WORDS) + 1)
    return {
        f"c{i}": " ".join(rng.choice(WORDS, int(rng.integers(2, 31)), p=weights / weights.sum()))
        for i in ids
    }


def write(client: httpx.Client, library_id: str, texts: dict[str, str]) -> None:
    rng = np.random.default_rng(len(texts))
    chunks = [
        {"id": i, "document_id": "doc", "text": t, "embedding": rng.standard_normal(DIM).tolist()}
        for i, t in texts.items()
    ]
    answer = client.post(
        f"/v1/libraries/{library_id}/chunks/batch", json={"chunks": chunks, "mode": "upsert"}
    )
    assert answer.status_code == 201, answer.text


def delete(client: httpx.Client, library_id: str, chunk_ids: list[str]) -> None:
    for chunk_id in chunk_ids:
        answer = client.delete(f"/v1/libraries/{library_id}/chunks/{chunk_id}")
        assert answer.status_code == 204, answer.text


def keyword_search(client: httpx.Client, library_id: str, query: str, k: int) -> httpx.Response:
    return client.post(
        f"/v1/libraries/{library_id}/search", json={"query": query, "mode": "keyword", "k": k}
    )


def assert_ranks_by_bm25(
    client: httpx.Client, library_id: str, texts: dict[str, str], params: Bm25Params
) -> None:
    """Every query's keyword hits are exactly the texts holding a query term, with their
    BM25 scores, best first."""
    for query in QUERIES:
        truth = brute_force_scores(texts, query, params)
        answer = keyword_search(client, library_id, query, len(texts))
        assert answer.status_code == 200, answer.text
        hits = answer.json()["results"]
        assert {h["chunk_id"] for h in hits} == set(truth), query
        scores = [h["score"] for h in hits]
        assert scores == sorted(scores, reverse=True)
        for hit in hits:
            assert hit["score"] == pytest.approx(truth[hit["chunk_id"]], rel=1e-5)


def keyword_index_bytes(client: httpx.Client, library_id: str) -> float:
    prefix = f'stacksdb_keyword_index_bytes{{library_id="{library_id}"}} '
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(prefix):
            return float(line.removeprefix(prefix))
    raise AssertionError(f"no keyword index gauge for {library_id}")


def eventually(check: Any, timeout: float = 30.0) -> None:
    """Retry ``check`` (which asserts) until it passes or ``timeout`` runs out."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            check()
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("node") / "data") as node:
        yield node


@pytest.fixture
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        yield http


def create(client: httpx.Client, **body: Any) -> dict[str, Any]:
    answer = client.post("/v1/libraries", json={"name": "texts", "dimension": DIM, **body})
    assert answer.status_code == 201, answer.text
    library: dict[str, Any] = answer.json()
    return library


def test_a_library_shows_its_text_index_bm25_english_by_default(client: httpx.Client) -> None:
    library = create(client)
    default = {"type": "bm25", "params": {"k1": 1.2, "b": 0.75, "language": "english"}}
    assert library["text_index"] == default
    assert client.get(f"/v1/libraries/{library['id']}").json()["text_index"] == default

    chosen = {"type": "bm25", "params": {"k1": 0.9, "b": 0.4, "language": "none"}}
    assert create(client, text_index=chosen)["text_index"] == chosen


@pytest.mark.parametrize(
    "text_index",
    [
        {"type": "bm25", "params": {"k1": -1}},
        {"type": "bm25", "params": {"b": 1.5}},
        {"type": "bm25", "params": {"language": "klingon"}},
        {"type": "tfidf"},
        {"type": "bm25", "params": {"k3": 1}},
    ],
)
def test_a_bad_text_index_is_a_422_on_create_and_patch(
    client: httpx.Client, text_index: dict[str, Any]
) -> None:
    answer = client.post(
        "/v1/libraries", json={"name": "bad", "dimension": DIM, "text_index": text_index}
    )
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    library = create(client)
    patched = client.patch(f"/v1/libraries/{library['id']}", json={"text_index": text_index})
    assert patched.status_code == 422, patched.text
    assert (
        client.get(f"/v1/libraries/{library['id']}").json()["text_index"] == library["text_index"]
    )


def test_keyword_index_follows_writes_rewrites_and_deletes(client: httpx.Client) -> None:
    library_id = create(client)["id"]
    texts = texts_for(range(120), seed=1)
    write(client, library_id, texts)
    rewritten = texts_for(range(0, 120, 7), seed=2)
    write(client, library_id, rewritten)
    texts |= rewritten
    gone = [f"c{i}" for i in range(3, 120, 5)]
    delete(client, library_id, gone)
    for chunk_id in gone:
        texts.pop(chunk_id)

    assert_ranks_by_bm25(client, library_id, texts, Bm25Params())


def test_patching_text_index_rebuilds_it_and_none_turns_it_off(client: httpx.Client) -> None:
    library_id = create(client)["id"]
    texts = texts_for(range(200), seed=3)
    write(client, library_id, texts)
    english_bytes = keyword_index_bytes(client, library_id)
    assert english_bytes > 0

    plain = {"type": "bm25", "params": {"k1": 2.0, "b": 0.2, "language": "none"}}
    patched = client.patch(f"/v1/libraries/{library_id}", json={"text_index": plain})
    assert patched.status_code == 200, patched.text
    assert patched.json()["text_index"] == plain
    params = Bm25Params(k1=2.0, b=0.2, language="none")
    eventually(lambda: assert_ranks_by_bm25(client, library_id, texts, params))

    off = client.patch(f"/v1/libraries/{library_id}", json={"text_index": {"type": "none"}})
    assert off.json()["text_index"]["type"] == "none"
    assert keyword_index_bytes(client, library_id) == 0
    refused = keyword_search(client, library_id, "river", 5)
    assert refused.status_code == 422, refused.text

    client.patch(f"/v1/libraries/{library_id}", json={"text_index": {"type": "bm25"}})
    eventually(lambda: assert_ranks_by_bm25(client, library_id, texts, Bm25Params()))


def test_keyword_index_comes_back_after_kill_9_as_the_stored_texts_say(tmp_path: Path) -> None:
    with running_server(tmp_path / "data") as node, httpx.Client(base_url=node.url) as client:
        english = create(client)["id"]
        plain_params = {"k1": 1.5, "b": 1.0, "language": "none"}
        plain = create(client, text_index={"type": "bm25", "params": plain_params})["id"]
        texts = texts_for(range(300), seed=4)
        for library_id in (english, plain):
            write(client, library_id, texts)
            delete(client, library_id, [f"c{i}" for i in range(0, 300, 4)])
        node.kill()
        node.start()
        survivors = {c: t for c, t in texts.items() if int(c[1:]) % 4 != 0}
        assert_ranks_by_bm25(client, english, survivors, Bm25Params())
        assert_ranks_by_bm25(client, plain, survivors, Bm25Params.model_validate(plain_params))
