"""Bounds on what one request may ask for, so no input can exhaust the node.

Each bound is configurable (``bootstrap.settings``); the defaults suit RAG workloads.
Breaking one is a ``LimitExceeded`` (422), never a crash.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from domain.errors import InvalidInput, LimitExceeded
from domain.models import Metadata


@dataclass(frozen=True, slots=True)
class Limits:
    max_k: int = 1_000
    max_batch: int = 10_000
    max_dimension: int = 4_096
    max_text_length: int = 100_000
    max_metadata_keys: int = 64
    max_metadata_bytes: int = 16_384
    max_list_items: int = 256
    max_filter_depth: int = 10
    max_page_size: int = 1_000

    def check_k(self, k: int) -> None:
        if not 1 <= k <= self.max_k:
            raise LimitExceeded(f"k must be between 1 and {self.max_k}, got {k}", location="k")

    def check_batch(self, size: int, *, location: str = "chunks") -> None:
        if size > self.max_batch:
            raise LimitExceeded(
                f"a batch holds at most {self.max_batch} items, got {size}", location=location
            )

    def check_dimension(self, dimension: int) -> None:
        if not 1 <= dimension <= self.max_dimension:
            raise LimitExceeded(
                f"dimension must be between 1 and {self.max_dimension}, got {dimension}",
                location="dimension",
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

    def check_page_size(self, limit: int) -> None:
        if not 1 <= limit <= self.max_page_size:
            raise LimitExceeded(
                f"limit must be between 1 and {self.max_page_size}, got {limit}", location="limit"
            )


def _is_scalar(value: object) -> bool:
    if isinstance(value, float):
        return value == value and value not in (float("inf"), float("-inf"))
    return isinstance(value, str | int | bool)
