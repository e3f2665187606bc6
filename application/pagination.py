"""Filtered listings over the store's cursor pagination."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from domain.models import Page

T = TypeVar("T")

LISTING_SCAN_BUDGET = 10_000
"""The fewest rows a filtered listing reads before it answers a short page (see
``filtered_page``); a large page may read ten times its size."""


def listing_scan_budget(limit: int) -> int:
    """How many rows a filtered listing of ``limit`` items may read per request."""
    return max(10 * limit, LISTING_SCAN_BUDGET)


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
