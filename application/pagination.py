"""Filtered listings over the store's cursor pagination."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from domain.models import Page

T = TypeVar("T")


def filtered_page(
    fetch: Callable[[int, str | None], Page[T]],
    keep: Callable[[T], bool],
    limit: int,
    cursor: str | None,
    scan_budget: int,
) -> Page[T]:
    """Up to ``limit`` items that ``keep`` accepts, reading the store page by page.

    Each read asks only for as many rows as are still missing, so a page never overflows
    and the store's own cursor stays exact. It stops after ``scan_budget`` rows, so a rare
    match costs bounded work per request: such a page may hold fewer than ``limit`` items
    (even none) while ``next_cursor`` is not null; clients follow the cursor until null.
    """
    items: list[T] = []
    scanned = 0
    while True:
        page = fetch(limit - len(items), cursor)
        scanned += len(page.items)
        items.extend(item for item in page.items if keep(item))
        cursor = page.next_cursor
        if cursor is None or len(items) >= limit or scanned >= scan_budget:
            return Page(items, cursor)
