"""Keyword and hybrid search through the search service, against rankings computed without it:
the vector side by cosine in float64 NumPy, the keyword side by Lucene's BM25 formula over the
same terms (``brute_force_scores``), and the fusion by hand in plain Python."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest
from numpy.typing import NDArray

from application.dto import ChunkInput, NewLibrary, SearchOutcome, SearchQuery
from application.hybrid_search import HybridOptions, Mode, default_candidates
from domain.embedding import MiniLmSpec, Purpose
from domain.errors import InvalidInput, LimitExceeded
from domain.limits import Limits
from domain.models import Bm25Params, Metadata, TextIndexSpec, TextIndexType
from tests.application.conftest import Services, build_services
from tests.domain.test_bm25_index import brute_force_scores

DIM = 8
VOCABULARY = [
    "apple",
    "banana",
    "cherry",
    "delta",
    "echo",
    "falcon",
    "granite",
    "harbor",
    "island",
    "jungle",
]
CHUNKS = 60
QUERY = "granite harbor falcon"


def corpus() -> dict[str, tuple[str, NDArray[np.float32], Metadata]]:
    """Chunk id -> (text, vector, metadata). Every text has its own length, so BM25 scores
    rarely tie; a third of the chunks are tagged "red"."""
    rng = np.random.default_rng(7)
    chunks: dict[str, tuple[str, NDArray[np.float32], Metadata]] = {}
    for i in range(CHUNKS):
        words = rng.choice(VOCABULARY, size=3 + i % 40, p=_zipf(len(VOCABULARY)))
        vector = rng.standard_normal(DIM).astype(np.float32)
        chunks[f"c{i}"] = (" ".join(words), vector, {"tag": "red" if i % 3 == 0 else "blue"})
    return chunks


def _zipf(n: int) -> NDArray[np.float64]:
    weights: NDArray[np.float64] = 1.0 / np.arange(1, n + 1)
    total = float(weights.sum())
    return weights / total


class QueryEmbedder:
    """An embedder (the ``Embedder`` port) whose vectors are seeded by the text, recording
    what it was asked to embed and for which purpose."""

    name = "seeded"
    dimension = DIM

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], Purpose]] = []

    def embed(self, texts: Sequence[str], purpose: Purpose) -> NDArray[np.float32]:
        self.calls.append((list(texts), purpose))
        return np.stack([seeded(text) for text in texts])


def seeded(text: str) -> NDArray[np.float32]:
    return np.random.default_rng(sum(text.encode())).standard_normal(DIM).astype(np.float32)


@pytest.fixture
def embedder() -> QueryEmbedder:
    return QueryEmbedder()


@pytest.fixture
def services(embedder: QueryEmbedder) -> Services:
    return build_services(embedders=lambda spec: embedder)


def make_library(services: Services, **options: object) -> str:
    request = NewLibrary(name="texts", dimension=DIM, **options)  # type: ignore[arg-type]
    library_id = services.libraries.create(request).library.id
    services.chunks.write_batch(
        library_id,
        [
            ChunkInput(f"d{i % 7}", text, vector, metadata, chunk_id)
            for i, (chunk_id, (text, vector, metadata)) in enumerate(corpus().items())
        ],
    )
    return library_id


@pytest.fixture
def library_id(services: Services) -> str:
    return make_library(services)


# The truth, computed without the service


def vector_truth(query: NDArray[np.float32], tag: str | None = None) -> list[tuple[str, float]]:
    """Chunks by cosine similarity to ``query``, best first, in float64."""
    q = query.astype(np.float64)
    scored = []
    for chunk_id, (_, vector, metadata) in corpus().items():
        if tag is not None and metadata["tag"] != tag:
            continue
        v = vector.astype(np.float64)
        scored.append((chunk_id, float(v @ q / (np.linalg.norm(v) * np.linalg.norm(q)))))
    return sorted(scored, key=lambda item: -item[1])


def keyword_truth(query: str, tag: str | None = None) -> list[tuple[str, float]]:
    """Chunks by BM25 (k1 1.2, b 0.75, English) over the whole library, best first;
    ``tag`` keeps the matching ones (the filter masks, it does not change the statistics)."""
    chunks = corpus()
    ids = list(chunks)
    scores = brute_force_scores({i: chunks[c][0] for i, c in enumerate(ids)}, query, Bm25Params())
    ranked = sorted(((ids[i], s) for i, s in scores.items() if s > 0), key=lambda x: -x[1])
    return [(c, s) for c, s in ranked if tag is None or chunks[c][2]["tag"] == tag]


def rrf_truth(
    sides: Sequence[list[tuple[str, float]]], rrf_k: int, depth: int, k: int
) -> list[tuple[str, float]]:
    fused: dict[str, float] = {}
    for side in sides:
        for rank, (chunk_id, _) in enumerate(side[:depth], start=1):
            fused[chunk_id] = fused.get(chunk_id, 0.0) + 1.0 / (rrf_k + rank)
    return sorted(fused.items(), key=lambda item: -item[1])[:k]


def assert_no_ties(ranking: list[tuple[str, float]]) -> None:
    """A precondition: the truth orders every chunk, so the comparison is exact."""
    scores = [round(s, 9) for _, s in ranking]
    assert len(set(scores)) == len(scores)


def ids_and_scores(outcome: SearchOutcome) -> tuple[list[str], list[float]]:
    return [h.chunk_id for h in outcome.hits], [h.score for h in outcome.hits]


def search(services: Services, library_id: str, **fields: object) -> SearchOutcome:
    return services.search.search(library_id, SearchQuery(**fields))  # type: ignore[arg-type]


RED = {"field": "tag", "op": "eq", "value": "red"}


# Modes


@pytest.mark.parametrize("tag", [None, "red"])
def test_keyword_mode_ranks_by_bm25_under_the_filter(
    services: Services, library_id: str, tag: str | None
) -> None:
    truth = keyword_truth(QUERY, tag)[:10]
    assert_no_ties(truth)
    got = search(services, library_id, text=QUERY, k=10, filter=RED if tag else None)
    assert got.mode == "keyword"
    ids, scores = ids_and_scores(got)
    assert ids == [c for c, _ in truth]
    np.testing.assert_allclose(scores, [s for _, s in truth], rtol=1e-6)


@pytest.mark.parametrize("tag", [None, "red"])
def test_hybrid_rrf_fuses_both_sides_each_candidates_deep_under_the_filter(
    services: Services, library_id: str, tag: str | None
) -> None:
    query_vector = seeded("probe")
    sides = [vector_truth(query_vector, tag), keyword_truth(QUERY, tag)]
    for side in sides:
        assert_no_ties(side[:12])
    options = HybridOptions("rrf", rrf_k=5, candidates=12)
    truth = rrf_truth(sides, rrf_k=5, depth=12, k=8)
    got = search(
        services,
        library_id,
        vector=query_vector,
        text=QUERY,
        k=8,
        hybrid=options,
        filter=RED if tag else None,
    )
    assert got.mode == "hybrid"
    ids, scores = ids_and_scores(got)
    # Equal fused scores (same pair of ranks) may come in either order: compare the scores,
    # and the chunks as sets per score.
    np.testing.assert_allclose(scores, [s for _, s in truth], rtol=1e-6)
    assert sorted(zip(np.round(scores, 6), ids, strict=True)) == sorted(
        (round(s, 6), c) for c, s in truth
    )


def test_hybrid_hits_carry_each_sides_own_score_or_none(
    services: Services, library_id: str
) -> None:
    query_vector = seeded("probe")
    vector_side = dict(vector_truth(query_vector)[:10])
    keyword_side = dict(keyword_truth(QUERY)[:10])
    got = search(
        services,
        library_id,
        vector=query_vector,
        text=QUERY,
        k=10,
        hybrid=HybridOptions(candidates=10),
    )
    assert len(got.hits) == 10
    missing_one_side = 0
    for hit in got.hits:
        for own, side in ((hit.vector_score, vector_side), (hit.keyword_score, keyword_side)):
            if hit.chunk_id in side:
                assert own == pytest.approx(side[hit.chunk_id], rel=1e-5)
            else:
                assert own is None
                missing_one_side += 1
    assert missing_one_side > 0  # the data makes the sides disagree


def test_hybrid_weighted_fuses_min_max_normalised_scores(
    services: Services, library_id: str
) -> None:
    query_vector = seeded("probe")
    depth, alpha = 10, 0.3
    vector_side = dict(vector_truth(query_vector)[:depth])
    keyword_side = dict(keyword_truth(QUERY)[:depth])

    def normalised(side: dict[str, float]) -> dict[str, float]:
        low, high = min(side.values()), max(side.values())
        return {c: (s - low) / (high - low) for c, s in side.items()}

    v, kw = normalised(vector_side), normalised(keyword_side)
    fused = {c: alpha * v.get(c, 0.0) + (1 - alpha) * kw.get(c, 0.0) for c in v.keys() | kw.keys()}
    truth = sorted(fused.items(), key=lambda item: -item[1])[:5]
    assert_no_ties(truth)
    got = search(
        services,
        library_id,
        vector=query_vector,
        text=QUERY,
        k=5,
        hybrid=HybridOptions("weighted", alpha=alpha, candidates=depth),
    )
    ids, scores = ids_and_scores(got)
    assert ids == [c for c, _ in truth]
    np.testing.assert_allclose(scores, [s for _, s in truth], rtol=1e-5, atol=1e-6)
    assert got.strategy == "weighted"


def test_weighted_fusion_on_an_l2_library_ranks_the_nearest_first(services: Services) -> None:
    library_id = make_library(services, metric="l2")
    probe = seeded("probe")
    distances = {
        c: float(np.linalg.norm(v.astype(np.float64) - probe)) for c, (_, v, _) in corpus().items()
    }
    nearest = sorted(distances, key=lambda c: distances[c])[:10]
    # alpha 1: only the vector side counts, the nearest (normalised 1) first
    got = search(
        services,
        library_id,
        vector=probe,
        text=QUERY,
        k=5,
        hybrid=HybridOptions("weighted", alpha=1.0, candidates=10),
    )
    assert [h.chunk_id for h in got.hits] == nearest[:5]
    assert got.hits[0].score == pytest.approx(1.0)
    for hit in got.hits:
        assert hit.vector_score == pytest.approx(distances[hit.chunk_id], rel=1e-5)
    # the nearest normalises to 1 on the vector side, whatever its distance
    half = search(
        services,
        library_id,
        vector=probe,
        text=QUERY,
        k=10,
        hybrid=HybridOptions("weighted", alpha=0.5, candidates=10),
    )
    keyword = dict(keyword_truth(QUERY)[:10])
    low, high = min(keyword.values()), max(keyword.values())
    keyword_part = (keyword[nearest[0]] - low) / (high - low) if nearest[0] in keyword else 0.0
    by_id = {h.chunk_id: h.score for h in half.hits}
    assert by_id[nearest[0]] == pytest.approx(0.5 * 1.0 + 0.5 * keyword_part, rel=1e-5)


def test_a_query_alone_on_a_library_with_an_embedder_runs_hybrid_on_the_embedded_query(
    services: Services, embedder: QueryEmbedder
) -> None:
    library_id = make_library(services, embedder=MiniLmSpec())
    embedder.calls.clear()
    got = search(services, library_id, text=QUERY, k=6)
    assert got.mode == "hybrid"
    assert embedder.calls == [([QUERY], Purpose.QUERY)]
    k = 6
    truth = rrf_truth(
        [vector_truth(seeded(QUERY)), keyword_truth(QUERY)], 60, default_candidates(k), k
    )
    np.testing.assert_allclose([h.score for h in got.hits], [s for _, s in truth], rtol=1e-6)


def test_vector_mode_with_a_query_embeds_it(services: Services, embedder: QueryEmbedder) -> None:
    library_id = make_library(services, embedder=MiniLmSpec())
    got = search(services, library_id, text=QUERY, k=5, mode="vector")
    truth = vector_truth(seeded(QUERY))[:5]
    assert got.mode == "vector"
    assert [h.chunk_id for h in got.hits] == [c for c, _ in truth]


@pytest.mark.parametrize(
    ("has_vector", "has_text", "has_embedder", "expected"),
    [
        (True, False, False, "vector"),
        (True, False, True, "vector"),
        (False, True, False, "keyword"),
        (False, True, True, "hybrid"),
        (True, True, False, "hybrid"),
        (True, True, True, "hybrid"),
    ],
)
def test_the_default_mode_follows_the_contract(
    services: Services, has_vector: bool, has_text: bool, has_embedder: bool, expected: Mode
) -> None:
    options = {"embedder": MiniLmSpec()} if has_embedder else {}
    library_id = make_library(services, **options)
    got = search(
        services,
        library_id,
        vector=seeded("v") if has_vector else None,
        text=QUERY if has_text else None,
    )
    assert got.mode == expected


@pytest.mark.parametrize(
    ("has_vector", "has_embedder"), [(True, False), (False, True), (True, True)]
)
def test_without_a_keyword_index_a_query_searches_the_vectors(
    services: Services, embedder: QueryEmbedder, has_vector: bool, has_embedder: bool
) -> None:
    options = {"embedder": MiniLmSpec()} if has_embedder else {}
    library_id = make_library(
        services, text_index=TextIndexSpec(type=TextIndexType.NONE), **options
    )
    vector = seeded("v") if has_vector else None
    got = search(services, library_id, vector=vector, text=QUERY, k=5)
    truth = vector_truth(vector if vector is not None else seeded(QUERY))[:5]
    assert got.mode == "vector"
    assert [h.chunk_id for h in got.hits] == [c for c, _ in truth]


# Refusals


@pytest.mark.parametrize(
    ("fields", "location"),
    [
        ({}, "vector"),
        ({"mode": "keyword", "vector": [0.0] * DIM}, "query"),
        ({"mode": "hybrid", "vector": [0.0] * DIM}, "query"),
        ({"mode": "vector", "text": QUERY}, "vector"),
        ({"mode": "hybrid", "text": QUERY}, "vector"),
        (
            {"text": QUERY, "vector": [0.0] * DIM, "k": 20, "hybrid": HybridOptions(candidates=10)},
            "hybrid.candidates",
        ),
    ],
)
def test_a_search_the_library_cannot_run_is_refused_naming_the_field(
    services: Services, library_id: str, fields: dict[str, object], location: str
) -> None:
    with pytest.raises(InvalidInput) as raised:
        search(services, library_id, **fields)
    assert raised.value.extra["location"] == location


@pytest.mark.parametrize("mode", ["keyword", "hybrid"])
def test_keyword_and_hybrid_modes_need_a_keyword_index(services: Services, mode: str) -> None:
    library_id = make_library(services, text_index=TextIndexSpec(type=TextIndexType.NONE))
    with pytest.raises(InvalidInput, match="text_index") as raised:
        search(services, library_id, text=QUERY, vector=seeded("v"), mode=mode)
    assert raised.value.extra["location"] == "mode"


def test_bounds_on_the_query_and_the_candidates_are_limits() -> None:
    services = build_services(limits=Limits(max_query_length=10, max_candidates=30))
    library_id = make_library(services)
    with pytest.raises(LimitExceeded) as raised:
        search(services, library_id, text="x" * 11)
    assert raised.value.extra["location"] == "query"
    with pytest.raises(LimitExceeded) as raised:
        search(services, library_id, text="jade", vector=seeded("v"), k=31)  # depth 31 > 30
    assert raised.value.extra["location"] == "hybrid.candidates"


# Writes, thresholds, groups and batches in every mode


def test_the_keyword_side_follows_writes_and_deletes(services: Services, library_id: str) -> None:
    fresh = ChunkInput("d9", "a quokka on the harbor", seeded("q"), {}, "quokka")
    services.chunks.write_batch(library_id, [fresh])
    assert [h.chunk_id for h in search(services, library_id, text="quokka").hits] == ["quokka"]
    services.chunks.delete(library_id, "quokka")
    assert search(services, library_id, text="quokka").hits == []


@pytest.mark.parametrize("mode", ["keyword", "hybrid"])
def test_score_threshold_keeps_hits_scoring_at_least_it(
    services: Services, library_id: str, mode: str
) -> None:
    fields = {"text": QUERY, "vector": seeded("v"), "mode": mode, "k": 20}
    everything = search(services, library_id, **fields)
    cut = everything.hits[len(everything.hits) // 2].score
    kept = search(services, library_id, **fields, score_threshold=cut)
    assert [h.chunk_id for h in kept.hits] == [
        h.chunk_id for h in everything.hits if h.score >= cut
    ]


@pytest.mark.parametrize("mode", ["keyword", "hybrid"])
def test_grouping_by_document_works_in_every_mode(
    services: Services, library_id: str, mode: str
) -> None:
    # Every side CHUNKS deep, so each round of the grouped search ranks as the ungrouped one.
    fields = {
        "text": QUERY,
        "vector": seeded("v"),
        "mode": mode,
        "hybrid": HybridOptions(candidates=CHUNKS),
    }
    ranked = search(services, library_id, **fields, k=CHUNKS).hits
    grouped = search(services, library_id, **fields, k=3, group_by="document_id", group_size=2)
    assert grouped.groups is not None and len(grouped.groups) == 3
    best_documents: list[str] = []
    for hit in ranked:
        if hit.document_id not in best_documents:
            best_documents.append(hit.document_id)
    assert [g.key for g in grouped.groups] == best_documents[:3]
    for group in grouped.groups:
        # the same hits, scores and (in hybrid mode) each side's score included
        assert group.hits == [h for h in ranked if h.document_id == group.key][:2]
        if mode == "hybrid":
            assert all(
                h.vector_score is not None or h.keyword_score is not None for h in group.hits
            )


def test_a_batch_answers_each_mode_as_the_single_search_does(
    services: Services, library_id: str
) -> None:
    queries = [
        SearchQuery(text=QUERY, k=5),
        SearchQuery(vector=seeded("v"), k=5),
        SearchQuery(vector=seeded("v"), text=QUERY, k=5, filter=RED),
        SearchQuery(vector=seeded("w"), text="apple", k=5, hybrid=HybridOptions("weighted")),
    ]
    batch = services.search.search_batch(library_id, queries)
    for query, answer in zip(queries, batch, strict=True):
        alone = services.search.search(library_id, query)
        assert answer.mode == alone.mode
        assert answer.hits == alone.hits


def test_rrf_score_of_a_chunk_first_on_both_sides_is_two_over_rrf_k_plus_one(
    services: Services, library_id: str
) -> None:
    top_keyword = keyword_truth(QUERY)[0][0]
    vector = corpus()[top_keyword][1]  # its own vector: first on the vector side too
    got = search(services, library_id, vector=vector, text=QUERY, k=1)
    assert got.hits[0].chunk_id == top_keyword
    assert got.hits[0].score == pytest.approx(2 / 61)
    assert not math.isnan(got.hits[0].vector_score or math.nan)
