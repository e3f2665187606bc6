"""What the bodies of every resource share: identifiers, metadata, texts and embeddings as
the schema states them, the strict base of requests and the base of responses, a page of a
listing, and the bodies of no one resource (a problem, a health answer)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from adapters.http.limits import bounded_by

T = TypeVar("T")


Id = Annotated[
    str,
    StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@-]*$"),
]


# Strict: lax mode would turn a string the length bound refuses into a number ("007" -> 7).
Scalar = (
    Annotated[str, Field(max_length=100_000, strict=True)]
    | Annotated[bool, Field(strict=True)]
    | Annotated[int, Field(strict=True)]
    | Annotated[float, Field(strict=True)]
)


ScalarList = Annotated[
    list[Scalar], Field(json_schema_extra=bounded_by("max_list_items", "maxItems"))
]


def _metadata_schema(schema: dict[str, Any]) -> None:
    """Pydantic states a key pattern as ``patternProperties``, which lets every other key
    through as an additional property; state it as ``propertyNames``, which refuses them."""
    ((pattern, values),) = schema.pop("patternProperties").items()
    schema["additionalProperties"] = values
    schema.setdefault("propertyNames", {})["pattern"] = pattern
    schema.update(bounded_by("max_metadata_keys", "maxProperties"))


MetadataIn = Annotated[
    dict[
        # A key is a filter field name: no '.' (document.KEY names the document's metadata).
        Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=r"^[^.]+$")],
        Scalar | ScalarList | None,
    ],
    Field(json_schema_extra=_metadata_schema),
]


Text = Annotated[str, Field(json_schema_extra=bounded_by("max_text_length", "maxLength"))]


OPTIONAL_EMBEDDING = (
    "The chunk's vector; may be left out when the library has an embedder, which then "
    "embeds text on the leader before the write commits."
)


# Strict: JSON numbers only. Lax floats would take ``true``/``false`` as 1.0/0.0, a body the
# schema (``number``) rejects.
# Vectors are stored as float32: a larger number would become infinite.
FLOAT32_MAX = 3.4028234663852886e38


# At least one number, at most the longest dimension a library may have: within those, the
# library's own dimension is the rule (a 422 that names it).
Embedding = Annotated[
    list[Annotated[float, Field(strict=True, ge=-FLOAT32_MAX, le=FLOAT32_MAX)]],
    Field(min_length=1, json_schema_extra=bounded_by("max_dimension", "maxItems")),
]


def absent(value: object) -> bool:
    """Optional output fields are left out of the JSON rather than sent as null."""
    return value is None


class RequestModel(BaseModel):
    # Strict: a value of another JSON type is refused, as the schema says, not converted
    # ("5" or 5.0 for an integer, "true" for a boolean). Enum fields take their strings.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)


class ResponseModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


def at_least_one_of(*names: str) -> Callable[[dict[str, Any]], None]:
    """``json_schema_extra`` of a model that needs one of its optional ``names`` given and
    not null: each branch repeats that field's own schema, without its null."""

    def state(schema: dict[str, Any]) -> None:
        branches = []
        for name in names:
            field = schema["properties"][name]
            given = [s for s in field.get("anyOf", [field]) if s != {"type": "null"}]
            (value,) = given
            branches.append({"required": [name], "properties": {name: value}})
        schema["anyOf"] = branches

    return state


class Listing(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        description="Pass as ?cursor= to get the next page; null on the last page."
    )


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[dict[str, Any]] | None = None


class Health(BaseModel):
    status: str
    role: str | None = Field(
        default=None, exclude_if=absent, description="leader, follower or candidate (readyz)"
    )
