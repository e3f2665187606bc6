"""/v1/libraries/{library_id}/embed"""

from dependency_injector.wiring import inject
from fastapi import APIRouter, Response

from adapters.http.deps import Embeddings
from adapters.http.json_response import json_response
from adapters.http.json_route import FastJsonRoute
from adapters.http.problems import COMMON_PROBLEMS, EMBEDDER_PROBLEMS, problem_responses
from adapters.http.schemas.embeddings import EmbedIn, EmbedOut

router = APIRouter(
    prefix="/v1/libraries/{library_id}",
    tags=["embeddings"],
    responses=problem_responses(*COMMON_PROBLEMS, 404, *EMBEDDER_PROBLEMS),
    # Parsed as every other body of texts is: pydantic-core refuses a lone surrogate
    # ("\ud800", not Unicode) as malformed JSON, which the tokenizer would fail on with a 500.
    route_class=FastJsonRoute,
)


@router.post("/embed", response_model=EmbedOut)
@inject
def embed(library_id: str, body: EmbedIn, embeddings: Embeddings) -> Response:
    # The library's embedder, as writes use it: clients that want the vectors (to search
    # with, or to keep) get exactly what the server would store. It writes nothing, so a
    # follower answers it itself. Rendered with orjson: a 2,048 x 384 answer is 800k floats.
    matrix = embeddings.embed(library_id, body.texts, body.purpose)
    return json_response({"embeddings": matrix.tolist()}, EmbedOut)
