"""/v1/libraries/{library_id}/search and /index"""

import anyio
from dependency_injector.wiring import inject
from fastapi import APIRouter, Request, Response, status

from adapters.http.deps import Indexes, Searches
from adapters.http.json_response import json_response
from adapters.http.json_route import FastJsonRoute
from adapters.http.problems import COMMON_PROBLEMS, EMBEDDER_PROBLEMS, problem_responses
from adapters.http.schemas.indexes import IndexIn, IndexStatusOut
from adapters.http.schemas.search import SearchBatchIn, SearchBatchOut, SearchIn, SearchOut
from application.dto import SearchQuery
from domain.index.scoring import SearchParams

router = APIRouter(
    prefix="/v1/libraries/{library_id}",
    tags=["search"],
    responses=problem_responses(*COMMON_PROBLEMS, 404),
    route_class=FastJsonRoute,  # bodies of vectors: parse them fast
)


# A query on a library with an embedder is embedded first: a remote one may fail (502, 504).
EMBEDS_QUERY = problem_responses(*EMBEDDER_PROBLEMS)


@router.post("/search", response_model=SearchOut, responses=EMBEDS_QUERY)
@inject
async def search(library_id: str, body: SearchIn, searches: Searches, request: Request) -> Response:
    # A search runs in a worker thread through its own limiter (STACKSDB_SEARCH_THREADS,
    # default cores + 1): only the index kernels and BLAS run without the GIL, so more
    # searches in flight than that only queue for the GIL and stretch every request's tail
    # (8 wrk connections on 2 cores: p99 ~9x p50 with the default pool of 40, ~2x with 3).
    # Rendered with orjson rather than returned as a SearchOut, which FastAPI would validate
    # again on every search (see json_response). A docstring would become the OpenAPI text.
    query = search_query(body)
    outcome = await anyio.to_thread.run_sync(
        searches.search, library_id, query, limiter=request.app.state.search_limiter
    )
    return json_response(SearchOut.content(outcome), SearchOut)


@router.post("/search/batch", response_model=SearchBatchOut, responses=EMBEDS_QUERY)
@inject
async def search_batch(
    library_id: str, body: SearchBatchIn, searches: Searches, request: Request
) -> Response:
    # One worker thread, through the same limiter as a single search; the batch's HNSW
    # walks and IVF probes run on the service's own threads (one per core).
    queries = [search_query(search) for search in body.searches]
    outcomes = await anyio.to_thread.run_sync(
        searches.search_batch, library_id, queries, limiter=request.app.state.search_limiter
    )
    return json_response(SearchBatchOut.content(outcomes), SearchBatchOut)


def search_query(body: SearchIn) -> SearchQuery:
    """The use case's query for a search body (alone or in a batch)."""
    return SearchQuery(
        vector=body.vector,
        k=body.k,
        filter=body.filter,
        include=frozenset(body.include),
        params=SearchParams(ef=body.params.ef, nprobe=body.params.nprobe),
        exact=body.exact,
        score_threshold=body.score_threshold,
        group_by=body.group_by,
        group_size=body.group_size,
        text=body.query,
        mode=body.mode,
        hybrid=body.hybrid.options(),
    )


@router.get("/index", response_model=IndexStatusOut, tags=["index"])
@inject
def get_index(library_id: str, indexes: Indexes) -> IndexStatusOut:
    return IndexStatusOut.of(indexes.status(library_id))


@router.put(
    "/index", status_code=status.HTTP_202_ACCEPTED, response_model=IndexStatusOut, tags=["index"]
)
@inject
def rebuild_index(library_id: str, body: IndexIn, indexes: Indexes) -> IndexStatusOut:
    return IndexStatusOut.of(indexes.rebuild(library_id, body.type.value, body.params_dict()))
