"""/v1/libraries/{library_id}/chunks"""

from typing import Annotated

from dependency_injector.wiring import inject
from fastapi import APIRouter, Query, Response, status

from adapters.http.deps import Chunks, Cursor, ListingFilter, PageSize
from adapters.http.json_route import FastJsonRoute
from adapters.http.problems import COMMON_PROBLEMS, EMBEDDER_PROBLEMS, problem_responses
from adapters.http.receipts import answer_index
from adapters.http.schemas.by_filter import CountIn, CountOut, DeletedOut, DeleteWhereIn
from adapters.http.schemas.chunks import (
    ChunkBatchIn,
    ChunkBatchOut,
    ChunkBody,
    ChunkIn,
    ChunkOut,
    ChunkUpdate,
)
from adapters.http.schemas.common import Listing
from application.dto import ChunkInput, ChunkPatch, CommitReceipt

router = APIRouter(
    prefix="/v1/libraries/{library_id}/chunks",
    tags=["chunks"],
    responses=problem_responses(*COMMON_PROBLEMS, 404, *EMBEDDER_PROBLEMS),
    route_class=FastJsonRoute,  # bodies of vectors: parse them fast
)

CONFLICT = problem_responses(409)


def _input(body: ChunkIn) -> ChunkInput:
    return ChunkInput(body.document_id, body.text, body.embedding, body.metadata, body.id)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ChunkOut, responses=CONFLICT)
@inject
def create_chunk(library_id: str, body: ChunkIn, response: Response, chunks: Chunks) -> ChunkOut:
    receipt = CommitReceipt()
    chunk = chunks.create(library_id, _input(body), receipt)
    answer_index(response, receipt)
    return ChunkOut.of(chunk)


@router.post(
    "/batch",
    status_code=status.HTTP_201_CREATED,
    response_model=ChunkBatchOut,
    responses=CONFLICT,
)
@inject
def write_chunk_batch(
    library_id: str, body: ChunkBatchIn, response: Response, chunks: Chunks
) -> ChunkBatchOut:
    receipt = CommitReceipt()
    written = chunks.write_batch(library_id, [_input(c) for c in body.chunks], body.mode, receipt)
    answer_index(response, receipt)
    return ChunkBatchOut(items=[ChunkOut.of(c, with_embedding=False) for c in written])


@router.post("/count", response_model=CountOut)
@inject
def count_chunks(library_id: str, body: CountIn, chunks: Chunks) -> CountOut:
    return CountOut(count=chunks.count(library_id, body.filter))


@router.post("/delete", response_model=DeletedOut)
@inject
def delete_chunks_where(
    library_id: str, body: DeleteWhereIn, response: Response, chunks: Chunks
) -> DeletedOut:
    receipt = CommitReceipt()
    deleted = chunks.delete_where(library_id, body.filter, receipt)
    answer_index(response, receipt)
    return DeletedOut(deleted=deleted)


@router.get("", response_model=Listing[ChunkOut])
@inject
def list_chunks(
    library_id: str,
    chunks: Chunks,
    filter_: ListingFilter,
    document_id: Annotated[str | None, Query(max_length=128)] = None,
    limit: PageSize = 100,
    cursor: Cursor = None,
    include_embedding: bool = False,
) -> Listing[ChunkOut]:
    page = chunks.list(library_id, limit, cursor, document_id, filter_)
    return Listing(
        items=[ChunkOut.of(c, with_embedding=include_embedding) for c in page.items],
        next_cursor=page.next_cursor,
    )


@router.get("/{chunk_id}", response_model=ChunkOut)
@inject
def get_chunk(library_id: str, chunk_id: str, chunks: Chunks) -> ChunkOut:
    return ChunkOut.of(chunks.get(library_id, chunk_id))


@router.patch("/{chunk_id}", response_model=ChunkOut)
@inject
def update_chunk(
    library_id: str, chunk_id: str, body: ChunkUpdate, response: Response, chunks: Chunks
) -> ChunkOut:
    patch = ChunkPatch(text=body.text, embedding=body.embedding, metadata=body.metadata)
    receipt = CommitReceipt()
    chunk = chunks.patch(library_id, chunk_id, patch, receipt)
    answer_index(response, receipt)
    return ChunkOut.of(chunk)


@router.put(
    "/{chunk_id}",
    response_model=ChunkOut,
    responses={201: {"model": ChunkOut, "description": "Created"}},
)
@inject
def put_chunk(
    library_id: str, chunk_id: str, body: ChunkBody, response: Response, chunks: Chunks
) -> ChunkOut:
    item = ChunkInput(body.document_id, body.text, body.embedding, body.metadata, chunk_id)
    receipt = CommitReceipt()
    chunk, created = chunks.put(library_id, chunk_id, item, receipt)
    answer_index(response, receipt)
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return ChunkOut.of(chunk)


@router.delete("/{chunk_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
@inject
def delete_chunk(library_id: str, chunk_id: str, chunks: Chunks) -> Response:
    receipt = CommitReceipt()
    chunks.delete(library_id, chunk_id, receipt)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    answer_index(response, receipt)
    return response
