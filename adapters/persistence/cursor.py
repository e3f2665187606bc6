"""Opaque page cursors shared by every persistence adapter.

A cursor names the last item a page handed out by its ``seq`` (the store's insertion
counter) and carries a short fingerprint of the listing it came from, so that a cursor of
one listing (say, the chunks of library A) is refused by another (the chunks of library B)
instead of silently paging through the wrong collection. The token is urlsafe base64 of a
small JSON object without padding, so it can travel in a query string unescaped.

Both the in-memory and the SQLite adapter use these functions, which is what makes their
cursors behave identically: the same listing and position give the same token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from typing import TypeVar

from domain.errors import InvalidCursor
from domain.models import Page

T = TypeVar("T")

# A cursor is a few dozen bytes; anything much longer is not one of ours and is refused
# before it is decoded, so a hostile query string costs nothing.
_MAX_TOKEN_LENGTH = 256


def listing_key(*parts: str) -> str:
    """A short fingerprint of a listing's identity, e.g. ``listing_key("chunks", lib_id)``.

    Parts are joined with a separator that cannot occur in a UTF-8 id, so that
    ("a", "bc") and ("ab", "c") differ.
    """
    digest = hashlib.blake2b("\x00".join(parts).encode(), digest_size=6).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii")


def encode_cursor(listing: str, seq: int) -> str:
    """The cursor that resumes ``listing`` after the item whose sequence number is ``seq``."""
    payload = json.dumps({"l": listing, "s": seq}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(payload).decode("ascii").rstrip("=")


def decode_cursor(cursor: str | None, listing: str) -> int:
    """The ``seq`` after which the next page of ``listing`` starts; 0 when ``cursor`` is None.

    Raises ``InvalidCursor`` when the token is not a cursor this module made for ``listing``.
    """
    if cursor is None:
        return 0
    if not cursor or len(cursor) > _MAX_TOKEN_LENGTH:
        raise InvalidCursor()
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json.loads(raw)
    except (binascii.Error, ValueError):
        # ValueError also covers UnicodeDecodeError and json.JSONDecodeError.
        raise InvalidCursor() from None
    if not isinstance(payload, dict) or payload.get("l") != listing:
        raise InvalidCursor()
    seq = payload.get("s")
    # bool is a subclass of int; a JSON ``true`` is not a position.
    if type(seq) is not int or seq < 0:
        raise InvalidCursor()
    return seq


def check_page_size(limit: int) -> None:
    """Guard for ``list(limit=...)``: a page holds at least one item.

    The upper bound is an API policy enforced by the application; the store only refuses
    a size that cannot make progress.
    """
    if limit < 1:
        raise ValueError(f"page size must be at least 1, got {limit}")


LIBRARIES_LISTING = listing_key("libraries")


def documents_listing(library_id: str) -> str:
    return listing_key("documents", library_id)


def chunks_listing(library_id: str, document_id: str | None) -> str:
    # A different number of parts keeps "every chunk" apart from any one document's chunks.
    if document_id is None:
        return listing_key("chunks", library_id)
    return listing_key("chunks", library_id, document_id)


def page_of(rows: Sequence[tuple[int, T]], limit: int, listing: str) -> Page[T]:
    """The page for ``rows``, which hold up to ``limit + 1`` (seq, item) pairs in seq order.

    Adapters fetch one row more than asked for: its presence is what says another page
    exists, so the last page has ``next_cursor=None`` even when it is exactly full.
    """
    if len(rows) <= limit:
        return Page(items=[item for _, item in rows], next_cursor=None)
    shown = rows[:limit]
    return Page(items=[item for _, item in shown], next_cursor=encode_cursor(listing, shown[-1][0]))
