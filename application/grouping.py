"""Grouped search: the best ``k`` groups of chunks sharing a value (their document, or a
metadata key's value), each with its ``group_size`` best chunks, best group first.

A group's rank is its best chunk's. The index is searched deep enough to fill the groups:
first ``k·group_size`` chunks, then four times deeper each round (as Qdrant widens and
retries), up to ``Limits.max_group_candidates``. Every round ranks chunks afresh from the
best, so a round's groups are exact for the chunks it saw. When each chunk belongs to one
group (``document_id``), the chunks of groups already full are left out of the next round
(the filter mask), so best chunks crowded into a few documents do not crowd out the rest.
The answer is final once the top ``k`` groups are all full, or the search ran out of chunks
(fewer came back than asked, or the rest fall short of the score threshold), or the depth
reached its limit (then the groups are filled as far as the deepest round saw).

Membership: a chunk with no value for the key (absent or null) is in no group and skipped,
as Qdrant does; a list value puts the chunk in the group of each distinct item, so one chunk
may appear in several groups (Qdrant too).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from domain.index.scoring import Hits, Mask

GroupKey = str | int | float | bool
# A search to ``depth`` among ``allowed`` labels: its hits (best first, within the score
# threshold) and whether it ran out of chunks before ``depth``.
DepthSearch = Callable[[int, Mask | None], tuple[Hits, bool]]
# The labels outside the given groups, as a mask (None: the key cannot say).
Excluding = Callable[[Sequence[GroupKey]], Mask]

_WIDEN = 4


@dataclass(slots=True)
class Group:
    key: GroupKey
    rank: float  # the best chunk's score, oriented so that higher is better
    hits: list[tuple[int, float]] = field(default_factory=list)  # (label, score) best first


def groups_of_value(value: object) -> list[GroupKey]:
    """The groups a chunk with this value for the key belongs to (see the module docstring)."""
    if value is None:
        return []
    if isinstance(value, list):
        seen: dict[tuple[bool, GroupKey], GroupKey] = {}
        for item in value:
            if isinstance(item, str | int | float | bool):
                seen.setdefault(_identity(item), item)
        return list(seen.values())
    if isinstance(value, str | int | float | bool):
        return [value]
    return []


def search_groups(
    search: DepthSearch,
    groups_of: Callable[[int], list[GroupKey]],
    *,
    k: int,
    group_size: int,
    max_depth: int,
    higher_is_better: bool,
    base: Mask | None,
    excluding: Excluding | None,
) -> tuple[list[Group], str]:
    """The best ``k`` groups and the strategy of the deepest round's search."""
    depth = min(max_depth, k * group_size)
    full: dict[tuple[bool, GroupKey], Group] = {}  # kept across rounds when ``excluding``
    while True:
        allowed = base
        if excluding is not None and full:
            outside = excluding([group.key for group in full.values()])
            allowed = outside if base is None else base & outside
        hits, exhausted = search(depth, allowed)
        found = _grouped(hits, groups_of, group_size, higher_is_better, skip=full)
        ranked = sorted([*full.values(), *found.values()], key=lambda g: g.rank, reverse=True)
        top = ranked[:k]
        filled = len(top) == k and all(len(group.hits) == group_size for group in top)
        if filled or exhausted or depth >= max_depth:
            return top, hits.strategy
        if excluding is not None:
            full.update((key, g) for key, g in found.items() if len(g.hits) == group_size)
        depth = min(max_depth, depth * _WIDEN)


def _grouped(
    hits: Hits,
    groups_of: Callable[[int], list[GroupKey]],
    group_size: int,
    higher_is_better: bool,
    *,
    skip: dict[tuple[bool, GroupKey], Group],
) -> dict[tuple[bool, GroupKey], Group]:
    """The hits dealt into their groups in rank order, each group keeping its best
    ``group_size``; groups in ``skip`` are already complete."""
    groups: dict[tuple[bool, GroupKey], Group] = {}
    for label, score in zip(hits.labels.tolist(), hits.scores.tolist(), strict=True):
        for key in groups_of(label):
            identity = _identity(key)
            if identity in skip:
                continue
            group = groups.get(identity)
            if group is None:
                rank = score if higher_is_better else -score
                group = groups[identity] = Group(key, rank)
            if len(group.hits) < group_size:
                group.hits.append((label, score))
    return groups


def _identity(key: GroupKey) -> tuple[bool, GroupKey]:
    """A key for grouping in which ``True`` and ``1`` stay apart (Python equates them)."""
    return isinstance(key, bool), key
