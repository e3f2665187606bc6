"""The bundled MiniLM, end to end: a library with ``{"provider": "minilm"}`` takes WordNet
glosses as text-only chunks, stores the vectors sentence-transformers made for them
(``../shared/data``, cosine >= 0.9999), finds with ``POST .../embed`` query vectors what
an exact search over those reference vectors finds, and keeps it all across a SIGKILL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from numpy.typing import NDArray

from tests.support.server import ServerProcess, running_server

WORDNET = Path(__file__).resolve().parents[3] / "shared" / "data" / "wordnet-nouns-minilm.npz"
BASE_ROWS = 60
QUERY_ROWS = 8
K = 3

pytestmark = pytest.mark.skipif(not WORDNET.exists(), reason="needs ../shared/data")


def unit(rows: NDArray[Any]) -> NDArray[np.float64]:
    matrix = rows.astype(np.float64)
    normed: NDArray[np.float64] = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
    return normed


@pytest.fixture(scope="module")
def wordnet() -> dict[str, NDArray[Any]]:
    """A spread of base rows (every 1,000th, so glosses of many lengths) and queries."""
    data = np.load(WORDNET)
    rows = np.arange(BASE_ROWS) * 1_000
    return {
        "base_text": data["base_text"][rows],
        "base": unit(data["base"][rows]),
        "query_text": data["query_text"][:QUERY_ROWS],
        "queries": unit(data["queries"][:QUERY_ROWS]),
    }


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("minilm") / "data") as server:
        yield server


def vectors_of(client: httpx.Client, library_id: str) -> NDArray[np.float64]:
    answer = client.get(
        f"/v1/libraries/{library_id}/chunks", params={"limit": 1000, "include_embedding": True}
    )
    assert answer.status_code == 200, answer.text
    items = sorted(answer.json()["items"], key=lambda item: int(item["id"]))
    return np.array([item["embedding"] for item in items], dtype=np.float64)


def top_k(client: httpx.Client, library_id: str, queries: NDArray[Any]) -> list[list[str]]:
    found = []
    for vector in queries:
        answer = client.post(
            f"/v1/libraries/{library_id}/search", json={"vector": vector.tolist(), "k": K}
        )
        assert answer.status_code == 200, answer.text
        found.append([hit["chunk_id"] for hit in answer.json()["results"]])
    return found


def test_text_only_chunks_get_the_reference_vectors_and_survive_a_kill(
    node: ServerProcess, wordnet: dict[str, NDArray[Any]]
) -> None:
    with httpx.Client(base_url=node.url, timeout=120) as client:
        library = client.post(
            "/v1/libraries", json={"name": "glosses", "embedder": {"provider": "minilm"}}
        ).json()
        assert (library["dimension"], library["embedder"]) == (384, {"provider": "minilm"})
        library_id = library["id"]
        chunks = [
            {"id": str(i), "document_id": f"d{i % 4}", "text": str(text)}
            for i, text in enumerate(wordnet["base_text"])
        ]
        written = client.post(f"/v1/libraries/{library_id}/chunks/batch", json={"chunks": chunks})
        assert written.status_code == 201, written.text

        stored = vectors_of(client, library_id)
        cosines = np.sum(unit(stored) * wordnet["base"], axis=1)
        assert cosines.min() >= 0.9999

        texts = [str(t) for t in wordnet["query_text"]]
        embedded = client.post(
            f"/v1/libraries/{library_id}/embed", json={"texts": texts, "purpose": "query"}
        )
        assert embedded.status_code == 200
        queries = np.array(embedded.json()["embeddings"], dtype=np.float64)
        assert np.sum(unit(queries) * wordnet["queries"], axis=1).min() >= 0.9999

        # The truth: an exact search of the reference queries over the reference base.
        scores = wordnet["queries"] @ wordnet["base"].T
        expected = [[str(i) for i in np.argsort(-row, kind="stable")[:K]] for row in scores]
        assert top_k(client, library_id, queries) == expected

    node.kill()
    node.start()
    with httpx.Client(base_url=node.url, timeout=120) as client:
        assert np.array_equal(vectors_of(client, library_id), stored)
        assert top_k(client, library_id, queries) == expected
        again = client.post(f"/v1/libraries/{library_id}/embed", json={"texts": texts})
        assert np.array_equal(np.array(again.json()["embeddings"], dtype=np.float64), queries)
