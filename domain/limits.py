"""Every bound on what one request may ask for, and the filtered-search planner's thresholds:
the one place that holds their defaults and their checks.

Each field is also a setting: ``bootstrap.settings.Settings`` takes these fields as they
are (``max_k`` is ``--max-k`` / ``STACKSDB_MAX_K``) and turns them back into one ``Limits``
value, which the services check and the HTTP schemas state in the OpenAPI document
(``adapters.http.limits.document_limits``). The defaults suit RAG workloads. Breaking a
bound is a ``LimitExceeded`` (422), never a crash.
"""

from __future__ import annotations

import json
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from domain.errors import InvalidInput, LimitExceeded
from domain.models import IndexType, Metadata

Count = Annotated[int, Field(ge=1)]
Share = Annotated[float, Field(ge=0.0, le=1.0)]


class Limits(BaseModel):
    model_config = ConfigDict(frozen=True)

    max_k: Count = Field(default=1_000, description="Most results one search returns.")
    max_batch: Count = Field(default=10_000, description="Most chunks one write carries.")
    max_dimension: Count = Field(default=4_096, description="Longest embedding of a library.")
    max_text_length: Count = Field(default=100_000, description="Longest chunk text.")
    max_embed_texts: Count = Field(
        default=2_048, description="Most texts one embed request carries."
    )
    max_metadata_keys: Count = Field(default=64, description="Most keys in one metadata object.")
    max_metadata_bytes: Annotated[int, Field(ge=64)] = Field(
        default=16_384, description="Largest metadata object, in bytes of compact JSON."
    )
    max_list_items: Count = Field(default=256, description="Longest list in a metadata value.")
    max_filter_depth: Count = Field(default=10, description="Deepest nesting of a filter tree.")
    max_page_size: Count = Field(default=1_000, description="Most items one listing page holds.")
    max_batch_searches: Count = Field(
        default=1_000, description="Most searches one batch search request carries."
    )
    max_group_candidates: Count = Field(
        default=4_096,
        description="Most chunks a grouped search ranks to fill its groups (k x group_size "
        "at most).",
    )
    max_query_length: Count = Field(
        default=10_000, description="Longest text query of a keyword or hybrid search."
    )
    max_candidates: Count = Field(
        default=10_000, description="Deepest each side of a hybrid search may go (candidates)."
    )
    # The planner: a filtered search whose matches are few scans exactly those matches
    # (exact, and cheaper than an index path on which most nodes are rejected); otherwise the
    # index searches with the mask. "Few" is at most ``*_up_to`` matches or at most
    # ``*_share`` of the library. HNSW's own crossover is higher: its walk passes through
    # the non-matching nodes, and below 15% it loses to the scan on the 81k MiniLM set
    # (10%: 48 vs 97 QPS, recall 0.999 vs 1; benchmarks/filtered.py), while IVF's masked
    # lists still win at 10%.
    exact_scan_up_to: Annotated[int, Field(ge=0)] = Field(
        default=2_000, description="Flat and IVF: scan the matches when at most this many."
    )
    exact_scan_share: Share = Field(
        default=0.02, description="Flat and IVF: scan the matches when at most this share."
    )
    hnsw_exact_scan_up_to: Annotated[int, Field(ge=0)] = Field(
        default=4_096, description="HNSW: scan the matches when at most this many."
    )
    hnsw_exact_scan_share: Share = Field(
        default=0.15, description="HNSW: scan the matches when at most this share."
    )

    def scans_matches(self, index_type: IndexType, matching: int, size: int) -> bool:
        """Whether a filtered search over an index of ``index_type`` holding ``size``
        vectors, ``matching`` of which pass the filter, should scan exactly the matches
        instead of taking the index's filtered path. The planner's one decision."""
        if index_type is IndexType.HNSW:
            return matching <= max(self.hnsw_exact_scan_up_to, self.hnsw_exact_scan_share * size)
        return matching <= max(self.exact_scan_up_to, self.exact_scan_share * size)

    def check_k(self, k: int) -> None:
        if not 1 <= k <= self.max_k:
            raise LimitExceeded(f"k must be between 1 and {self.max_k}, got {k}", location="k")

    def check_batch(self, size: int, *, location: str = "chunks") -> None:
        if size > self.max_batch:
            raise LimitExceeded(
                f"a batch holds at most {self.max_batch} items, got {size}", location=location
            )

    def check_batch_searches(self, size: int) -> None:
        if not 1 <= size <= self.max_batch_searches:
            raise LimitExceeded(
                f"a batch holds 1 to {self.max_batch_searches} searches, got {size}",
                location="searches",
            )

    def check_group_size(self, group_size: int) -> None:
        """The bound the schema states for ``group_size``, held with or without ``group_by``
        (a body the schema refuses is refused whichever path it takes)."""
        if not 1 <= group_size <= self.max_group_candidates:
            raise LimitExceeded(
                f"group_size must be between 1 and {self.max_group_candidates}, got {group_size}",
                location="group_size",
            )

    def check_group(self, k: int, group_size: int) -> None:
        """``k`` groups of ``group_size`` hits fit in the chunks a grouped search may rank."""
        if k * group_size > self.max_group_candidates:
            raise LimitExceeded(
                f"k x group_size must be at most {self.max_group_candidates}, "
                f"got {k} x {group_size}",
                location="group_size",
            )

    def check_dimension(self, dimension: int) -> None:
        if not 1 <= dimension <= self.max_dimension:
            raise LimitExceeded(
                f"dimension must be between 1 and {self.max_dimension}, got {dimension}",
                location="dimension",
            )

    def check_embed_texts(self, count: int, *, location: str = "texts") -> None:
        if not 1 <= count <= self.max_embed_texts:
            raise LimitExceeded(
                f"an embed request holds 1 to {self.max_embed_texts} texts, got {count}",
                location=location,
            )

    def check_text(self, text: str, *, location: str = "text") -> None:
        if len(text) > self.max_text_length:
            raise LimitExceeded(
                f"{location} is {len(text)} characters long; the limit is {self.max_text_length}",
                location=location,
            )

    def check_metadata(self, metadata: Metadata, *, location: str = "metadata") -> None:
        """Flat metadata only: scalars or lists of scalars, within the size limits."""
        if not metadata:
            return  # the common case; its JSON-size check alone cost ~6 us per chunk
        if len(metadata) > self.max_metadata_keys:
            raise LimitExceeded(
                f"{location} has {len(metadata)} keys; the limit is {self.max_metadata_keys}",
                location=location,
            )
        for key, value in metadata.items():
            where = f"{location}.{key}"
            if not key or "." in key:
                raise InvalidInput(
                    f"metadata keys must be non-empty and contain no '.', got {key!r}",
                    location=where,
                )
            if isinstance(value, list):
                if len(value) > self.max_list_items:
                    raise LimitExceeded(
                        f"{where} has {len(value)} items; the limit is {self.max_list_items}",
                        location=where,
                    )
                if not all(_is_scalar(item) for item in value):
                    raise InvalidInput(f"{where} must hold only scalars", location=where)
                continue
            if value is not None and not _is_scalar(value):
                raise InvalidInput(
                    f"{where} must be a string, number, boolean, null or a list of those",
                    location=where,
                )
        size = len(json.dumps(metadata, separators=(",", ":")).encode())
        if size > self.max_metadata_bytes:
            raise LimitExceeded(
                f"{location} takes {size} bytes as JSON; the limit is {self.max_metadata_bytes}",
                location=location,
            )

    def check_query(self, query: str) -> None:
        if len(query) > self.max_query_length:
            raise LimitExceeded(
                f"query is {len(query)} characters long; the limit is {self.max_query_length}",
                location="query",
            )

    def check_page_size(self, limit: int) -> None:
        if not 1 <= limit <= self.max_page_size:
            raise LimitExceeded(
                f"limit must be between 1 and {self.max_page_size}, got {limit}", location="limit"
            )


def _is_scalar(value: object) -> bool:
    if isinstance(value, float):
        return value == value and value not in (float("inf"), float("-inf"))
    return isinstance(value, str | int | bool)
