"""The journaled-build state machine (``application/live/journal.py``) on its own: a build
started from a snapshot of the serving index, completed after more writes, ends with exactly
what the serving index holds; a superseded or failed build changes nothing. Truth is a dict
from label to value, written by hand alongside the journal."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from application.live.build import IndexBuilds
from application.live.journal import JournaledBuilds
from application.live.text_build import TextBuilds
from domain.index.scoring import Labels
from domain.models import Bm25Params, IndexSpec, IndexType, TextIndexSpec, TextIndexType


class DictIndex:
    """An index reduced to what a journal replays into: label -> value."""

    def __init__(self, items: dict[int, str] | None = None) -> None:
        self.items = dict(items or {})

    def add(self, labels: Labels, values: Sequence[str]) -> None:
        self.items.update(zip(labels.tolist(), values, strict=True))

    def remove(self, labels: Labels) -> None:
        for label in labels.tolist():
            self.items.pop(label, None)


def new_builds() -> JournaledBuilds[str, list[str]]:
    return JournaledBuilds(list)


# A write: labels 0..7 (so writes overlap) set to a value, or removed (values None).
writes = st.lists(
    st.tuples(
        st.lists(st.integers(0, 7), min_size=1, max_size=4, unique=True),
        st.none() | st.sampled_from(["a", "b", "c"]),
    ),
    max_size=12,
)


def apply_write(
    serving: DictIndex, builds: JournaledBuilds[str, list[str]], write: tuple[list[int], str | None]
) -> None:
    """What a live library does on a write: change the serving index, then journal it."""
    label_list, value = write
    labels = np.array(label_list, np.int64)
    if value is None:
        serving.remove(labels)
        builds.journal(labels, None)
        return
    values = [f"{value}{label}" for label in label_list]
    serving.add(labels, values)
    builds.journal(labels, values)
    values.clear()  # the caller's buffer may be reused: the journal kept its own copy
    labels[:] = -1


@settings(max_examples=200, deadline=None)
@given(before=writes, during=writes)
def test_a_completed_build_holds_every_write_made_while_it_ran(
    before: list[tuple[list[int], str | None]], during: list[tuple[list[int], str | None]]
) -> None:
    serving, builds = DictIndex(), new_builds()
    for write in before:
        apply_write(serving, builds, write)
    generation = builds.start("spec")
    built = DictIndex(serving.items)  # the build reads the index as it was at start
    for write in during:
        apply_write(serving, builds, write)

    assert builds.complete(generation, built)
    assert built.items == serving.items
    assert not builds.is_current(generation)


def test_a_superseded_build_neither_completes_nor_fails() -> None:
    builds = new_builds()
    old = builds.start("old")
    builds.journal(np.array([1], np.int64), ["x"])
    new = builds.start("new")
    builds.journal(np.array([2], np.int64), ["y"])
    untouched = DictIndex({5: "z"})

    assert not builds.complete(old, untouched)
    assert not builds.fail(old)
    assert untouched.items == {5: "z"}
    assert builds.is_current(new)
    # The newer build replays only what was written after it started.
    built = DictIndex()
    assert builds.complete(new, built)
    assert built.items == {2: "y"}


def test_a_failed_build_stops_journaling_and_cannot_complete() -> None:
    builds = new_builds()
    generation = builds.start("spec")
    assert builds.fail(generation)
    builds.journal(np.array([1], np.int64), ["x"])
    index = DictIndex()

    assert not builds.complete(generation, index)
    assert not builds.fail(generation)
    assert index.items == {}


def test_a_cancelled_keyword_build_no_longer_has_a_spec_and_cannot_complete() -> None:
    builds = TextBuilds()
    spec = TextIndexSpec(type=TextIndexType.BM25, params=Bm25Params())
    generation = builds.start(spec)
    assert builds.spec(generation) == spec
    builds.cancel()

    assert builds.spec(generation) is None
    assert not builds.complete(generation, DictIndex())


def test_progress_counts_only_for_the_build_in_flight_and_stays_below_done() -> None:
    builds = IndexBuilds()
    spec = IndexSpec(type=IndexType.FLAT)
    assert builds.in_flight() is None
    old = builds.start(spec)
    builds.report_progress(old, 1.5)
    assert builds.in_flight() == (spec, 0.999)  # done only once the index is live

    new = builds.start(spec)
    assert builds.in_flight() == (spec, 0.0)  # a new build starts from nothing
    builds.report_progress(old, 0.5)  # a superseded build's report is ignored
    assert builds.in_flight() == (spec, 0.0)
    builds.report_progress(new, -0.25)
    assert builds.in_flight() == (spec, 0.0)
    builds.report_progress(new, 0.25)
    assert builds.in_flight() == (spec, 0.25)
    assert builds.fail(new)
    assert builds.in_flight() is None
