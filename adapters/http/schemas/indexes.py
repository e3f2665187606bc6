"""A library's vector index: its type and parameters as a request takes them (a
discriminated union on ``type`` over the domain's own parameter models), and its status."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field

from adapters.http.schemas.common import RequestModel, ResponseModel
from domain.models import FlatParams, HnswParams, IndexParams, IndexStatus, IndexType, IvfParams


class _IndexIn(RequestModel):
    """An index type and its parameters; each type's model is the domain's own."""

    params: IndexParams

    def params_dict(self) -> dict[str, Any]:
        return self.params.model_dump(exclude_none=True)


class FlatIndexIn(_IndexIn):
    """The exact index: every search scans every vector."""

    type: Literal[IndexType.FLAT]
    params: FlatParams = Field(default_factory=FlatParams)


class IvfIndexIn(_IndexIn):
    """Inverted lists: nlist k-means cells (default about sqrt(N) at build), nprobe of them
    searched (default a share of nlist)."""

    type: Literal[IndexType.IVF]
    params: IvfParams = Field(default_factory=IvfParams)


class HnswIndexIn(_IndexIn):
    """A navigable small-world graph: m links per node, built with a beam of
    ef_construction and searched with ef_search."""

    type: Literal[IndexType.HNSW]
    params: HnswParams = Field(default_factory=HnswParams)


IndexIn = Annotated[FlatIndexIn | IvfIndexIn | HnswIndexIn, Field(discriminator="type")]


class IndexStatusOut(ResponseModel):
    type: IndexType
    params: dict[str, Any]
    state: Literal["building", "ready"]
    progress: float
    vector_count: int
    built_at: datetime | None
    error: str | None = None

    @classmethod
    def of(cls, status: IndexStatus) -> IndexStatusOut:
        return cls(
            type=status.spec.type,
            params=status.spec.params_dict(),
            state=status.state.value,
            progress=status.progress,
            vector_count=status.vector_count,
            built_at=status.built_at,
            error=status.error,
        )
