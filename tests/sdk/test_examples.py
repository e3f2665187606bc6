"""The examples run end to end against a real node, on small slices of the WordNet data."""

from __future__ import annotations

import re

import numpy as np
import pytest

from examples import async_bulk_ingest, rag_retrieval, semantic_search, wordnet
from tests.support.server import ServerProcess

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not wordnet.default_path().exists(), reason="WordNet embeddings not present"
    ),
]

LIMIT = 400


def test_semantic_search_prints_the_nearest_definitions_numpy_finds(
    server: ServerProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    data = wordnet.load(wordnet.default_path(), LIMIT)
    base = data.vectors / np.linalg.norm(data.vectors, axis=1, keepdims=True)
    expected = [data.texts[i] for i in np.argsort(-(base @ data.queries[7]))[:3]]

    argv = ["--url", server.url, "--limit", str(LIMIT), "--query", "7", "--k", "3"]
    assert semantic_search.main(argv) == 0

    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"query: {data.query_texts[7]}"
    printed = [re.sub(r"^\s*\d+\. -?\d\.\d{3}  ", "", line) for line in out[1:4]]
    assert printed == expected
    assert out[4].startswith("(flat index")


def test_rag_retrieval_builds_a_numbered_context_within_its_budget(
    server: ServerProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    data = wordnet.load(wordnet.default_path(), LIMIT)
    argv = ["--url", server.url, "--limit", str(LIMIT), "--query", "2", "--k", "4"]

    assert rag_retrieval.main([*argv, "--budget", "600"]) == 0

    prompt = capsys.readouterr().out
    subject = wordnet.lemma(data.query_texts[2])
    assert f"Question: What is {subject}?" in prompt
    context = prompt.split("Passages:\n", 1)[1].split("\n\nQuestion:", 1)[0]
    passages = context.splitlines()
    assert 1 <= len(passages) <= 4 and len(context) <= 600
    for n, passage in enumerate(passages, 1):
        text = re.match(rf"\[{n}\] (.*) \(source: .*, score -?\d\.\d\d\)$", passage)
        assert text is not None and text.group(1) in data.texts


def test_rag_filter_is_short_glosses_without_the_question_lemma() -> None:
    assert rag_retrieval.retrieval_filter(20, "dog").to_dict() == {
        "and": [
            {"field": "gloss_words", "op": "lte", "value": 20},
            {"not": {"field": "lemma", "op": "eq", "value": "dog"}},
        ]
    }


def test_async_bulk_ingest_writes_every_chunk_with_progress(
    server: ServerProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--url", server.url, "--limit", str(LIMIT), "--batch-size", "100"]

    assert async_bulk_ingest.main([*argv, "--concurrency", "3"]) == 0

    captured = capsys.readouterr()
    assert captured.err.splitlines()[-1] == f"ingested {LIMIT}/{LIMIT} (100%)"
    assert len(captured.err.splitlines()) == LIMIT // 100
    assert f"wrote {LIMIT} chunks" in captured.out
    assert captured.out.rstrip().endswith(f"the library holds {LIMIT}")
