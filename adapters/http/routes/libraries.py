"""/v1/libraries"""

from dependency_injector.wiring import inject
from fastapi import APIRouter, Response, status

from adapters.http.deps import Cursor, Libraries, PageSize
from adapters.http.problems import COMMON_PROBLEMS, EMBEDDER_PROBLEMS, problem_responses
from adapters.http.receipts import answer_index
from adapters.http.schemas.common import Listing
from adapters.http.schemas.libraries import LibraryCreate, LibraryOut, LibraryUpdate
from application.dto import CommitReceipt, LibraryPatch, NewLibrary

router = APIRouter(
    prefix="/v1/libraries", tags=["libraries"], responses=problem_responses(*COMMON_PROBLEMS)
)
NOT_FOUND = problem_responses(404)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=LibraryOut,
    responses=problem_responses(409, *EMBEDDER_PROBLEMS),
)
@inject
def create_library(body: LibraryCreate, response: Response, libraries: Libraries) -> LibraryOut:
    index = body.index
    receipt = CommitReceipt()
    info = libraries.create(
        NewLibrary(
            name=body.name,
            dimension=body.dimension,
            metric=body.metric.value,
            description=body.description,
            metadata=body.metadata,
            index_type=index.type.value if index else "flat",
            index_params=index.params_dict() if index else None,
            id=body.id,
            embedder=body.embedder,
            text_index=body.text_index,
        ),
        receipt,
    )
    answer_index(response, receipt)
    return LibraryOut.of(info)


@router.get("", response_model=Listing[LibraryOut])
@inject
def list_libraries(
    libraries: Libraries, limit: PageSize = 100, cursor: Cursor = None
) -> Listing[LibraryOut]:
    page = libraries.list(limit, cursor)
    return Listing(items=[LibraryOut.of(i) for i in page.items], next_cursor=page.next_cursor)


@router.get("/{library_id}", response_model=LibraryOut, responses=NOT_FOUND)
@inject
def get_library(library_id: str, libraries: Libraries) -> LibraryOut:
    return LibraryOut.of(libraries.get(library_id))


@router.patch("/{library_id}", response_model=LibraryOut, responses=NOT_FOUND)
@inject
def update_library(
    library_id: str, body: LibraryUpdate, response: Response, libraries: Libraries
) -> LibraryOut:
    patch = LibraryPatch(
        name=body.name,
        description=body.description,
        metadata=body.metadata,
        text_index=body.text_index,
    )
    receipt = CommitReceipt()
    info = libraries.update(library_id, patch, receipt)
    answer_index(response, receipt)
    return LibraryOut.of(info)


@router.delete(
    "/{library_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=NOT_FOUND,
)
@inject
def delete_library(library_id: str, libraries: Libraries) -> Response:
    receipt = CommitReceipt()
    libraries.delete(library_id, receipt)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    answer_index(response, receipt)
    return response
