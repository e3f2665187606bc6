"""/v1/libraries/{library_id}/search and /index"""

from dependency_injector.wiring import inject
from fastapi import APIRouter, status

from adapters.http.deps import Indexes, Searches
from adapters.http.json_route import FastJsonRoute
from adapters.http.problems import COMMON_PROBLEMS, problem_responses
from adapters.http.schemas import IndexIn, IndexStatusOut, SearchIn, SearchOut, SearchResultOut
from application.dto import SearchQuery
from domain.index.scoring import SearchParams

router = APIRouter(
    prefix="/v1/libraries/{library_id}",
    tags=["search"],
    responses=problem_responses(*COMMON_PROBLEMS, 404),
    route_class=FastJsonRoute,  # bodies of vectors: parse them fast
)


@router.post("/search", response_model=SearchOut)
@inject
def search(library_id: str, body: SearchIn, searches: Searches) -> SearchOut:
    include = frozenset(body.include)
    outcome = searches.search(
        library_id,
        SearchQuery(
            vector=body.vector,
            k=body.k,
            filter=body.filter,
            include=include,
            params=SearchParams(ef=body.params.ef, nprobe=body.params.nprobe),
            exact=body.exact,
        ),
    )
    return SearchOut(
        results=[SearchResultOut.of(hit, include) for hit in outcome.hits],
        index=outcome.index_type,
        strategy=outcome.strategy,
        took_ms=round(outcome.took_ms, 3),
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
    return IndexStatusOut.of(indexes.rebuild(library_id, body.type.value, body.params))
