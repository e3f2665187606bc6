"""/v1/libraries/{library_id}/documents"""

from dependency_injector.wiring import inject
from fastapi import APIRouter, Response, status

from adapters.http.deps import Cursor, Documents, ListingFilter, PageSize
from adapters.http.json_route import FastJsonRoute
from adapters.http.problems import COMMON_PROBLEMS, EMBEDDER_PROBLEMS, problem_responses
from adapters.http.receipts import answer_index
from adapters.http.schemas.by_filter import CountIn, CountOut
from adapters.http.schemas.common import Listing
from adapters.http.schemas.documents import DocumentCreate, DocumentOut, DocumentUpdate
from application.dto import ChunkInput, CommitReceipt

router = APIRouter(
    prefix="/v1/libraries/{library_id}/documents",
    tags=["documents"],
    responses=problem_responses(*COMMON_PROBLEMS, 404, *EMBEDDER_PROBLEMS),
    route_class=FastJsonRoute,  # bodies of vectors: parse them fast
)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=DocumentOut,
    responses=problem_responses(409),
)
@inject
def create_document(
    library_id: str, body: DocumentCreate, response: Response, documents: Documents
) -> DocumentOut:
    chunks = [ChunkInput("", c.text, c.embedding, c.metadata, c.id) for c in body.chunks]
    receipt = CommitReceipt()
    info = documents.create(
        library_id, metadata=body.metadata, chunks=chunks, document_id=body.id, receipt=receipt
    )
    answer_index(response, receipt)
    return DocumentOut.of(info)


@router.post("/count", response_model=CountOut)
@inject
def count_documents(library_id: str, body: CountIn, documents: Documents) -> CountOut:
    return CountOut(count=documents.count(library_id, body.filter))


@router.get("", response_model=Listing[DocumentOut])
@inject
def list_documents(
    library_id: str,
    documents: Documents,
    filter_: ListingFilter,
    limit: PageSize = 100,
    cursor: Cursor = None,
) -> Listing[DocumentOut]:
    page = documents.list(library_id, limit, cursor, filter_)
    return Listing(items=[DocumentOut.of(i) for i in page.items], next_cursor=page.next_cursor)


@router.get("/{document_id}", response_model=DocumentOut)
@inject
def get_document(library_id: str, document_id: str, documents: Documents) -> DocumentOut:
    return DocumentOut.of(documents.get(library_id, document_id))


@router.patch("/{document_id}", response_model=DocumentOut)
@inject
def update_document(
    library_id: str,
    document_id: str,
    body: DocumentUpdate,
    response: Response,
    documents: Documents,
) -> DocumentOut:
    receipt = CommitReceipt()
    info = documents.update(library_id, document_id, body.metadata, receipt)
    answer_index(response, receipt)
    return DocumentOut.of(info)


@router.delete("/{document_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
@inject
def delete_document(library_id: str, document_id: str, documents: Documents) -> Response:
    receipt = CommitReceipt()
    documents.delete(library_id, document_id, receipt)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    answer_index(response, receipt)
    return response
