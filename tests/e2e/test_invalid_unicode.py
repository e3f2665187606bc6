"""A JSON string may escape a lone UTF-16 surrogate ("\\ud800"), which is no Unicode text: a
route that reads texts refuses it as malformed JSON (400 problem+json) before any tokenizer or
store sees it, and writes nothing. A surrogate *pair* is one valid character and is accepted.
(``POST .../embed`` used to hand the lone surrogate to the MiniLM tokenizer and answer 500.)"""

from __future__ import annotations

import httpx
import pytest

from tests.support.server import ServerProcess

LONE_SURROGATE = r"lone \ud800 surrogate"
# U+1F600 written as its escaped surrogate pair: valid JSON for a valid character.
SURROGATE_PAIR = r"smile \ud83d\ude00"


@pytest.fixture(scope="module")
def library_id(server: ServerProcess) -> str:
    with httpx.Client(base_url=server.url, timeout=120) as client:
        answer = client.post(
            "/v1/libraries", json={"name": "texts", "embedder": {"provider": "minilm"}}
        )
        assert answer.status_code == 201, answer.text
        library: dict[str, str] = answer.json()
        return library["id"]


def raw_post(client: httpx.Client, path: str, body: str) -> httpx.Response:
    """POST ``body`` exactly as written: httpx's ``json=`` would not send an escaped surrogate."""
    return client.post(path, content=body.encode(), headers={"content-type": "application/json"})


ROUTES = {
    "embed": ("embed", '{"texts": ["%s"]}'),
    "search query": ("search", '{"query": "%s"}'),
    "chunk text": ("chunks", '{"document_id": "d", "text": "%s"}'),
    "batch text": ("chunks/batch", '{"chunks": [{"document_id": "d", "text": "%s"}]}'),
}


@pytest.mark.parametrize("route", ROUTES.values(), ids=list(ROUTES))
def test_a_lone_surrogate_is_malformed_json_and_writes_nothing(
    client: httpx.Client, library_id: str, route: tuple[str, str]
) -> None:
    path, template = route

    answer = raw_post(client, f"/v1/libraries/{library_id}/{path}", template % LONE_SURROGATE)

    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["type"] == "urn:stacksdb:problem:malformed-json"
    count = client.post(f"/v1/libraries/{library_id}/chunks/count", json={})
    assert count.json() == {"count": 0}


def test_a_surrogate_pair_is_one_character_and_is_embedded(
    client: httpx.Client, library_id: str
) -> None:
    path, template = ROUTES["embed"]

    answer = raw_post(client, f"/v1/libraries/{library_id}/{path}", template % SURROGATE_PAIR)

    assert answer.status_code == 200, answer.text
    (vector,) = answer.json()["embeddings"]
    assert len(vector) == 384
