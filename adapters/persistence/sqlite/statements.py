"""Statement helpers the SQLite repositories share: the upsert and batched ``IN`` lists.

Every write is an ``INSERT ... ON CONFLICT DO UPDATE`` upsert that leaves ``seq`` alone:
a replaced row keeps its place in listings, and, unlike ``INSERT OR REPLACE`` (a delete
then an insert), it does not fire the cascade that would delete a document's chunks.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy.dialects.sqlite import insert as sqlite_insert

T = TypeVar("T")

# Ids per ``IN (...)`` list: far below SQLite's bound-parameter limit (32,766), large
# enough that a 10,000-id batch takes 20 statements.
IN_BATCH = 500


def batches(items: Iterable[T], size: int = IN_BATCH) -> Iterator[list[T]]:
    """``items`` in lists of ``size`` (the last one shorter), in order."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def unique(ids: Iterable[str]) -> list[str]:
    """``ids`` without repeats, in first-seen order."""
    return list(dict.fromkeys(ids))


def upsert(table: Any, key: Sequence[str]) -> Any:
    """Insert into ``table``, or on a clash of ``key`` replace every column but ``seq``."""
    statement = sqlite_insert(table)
    kept = {*key, "seq"}
    replaced = {c.name: statement.excluded[c.name] for c in table.c if c.name not in kept}
    return statement.on_conflict_do_update(index_elements=list(key), set_=replaced)
