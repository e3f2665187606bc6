"""The crash loop, short form: three SIGKILLs at random moments while a client writes.

After every restart each acknowledged write is there exactly, the write in flight at the
kill is there entirely or not at all, counts match the chunks, searches agree with brute
force, and no answer was a 5xx. ``make soak`` runs the same loop with hundreds of kills.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.crasher import Crasher

pytestmark = pytest.mark.e2e


def test_acknowledged_writes_survive_sigkill_at_random_moments_and_nothing_is_half_applied(
    tmp_path: Path,
) -> None:
    crasher = Crasher(tmp_path / "data", seed=20261126, min_run=0.3, max_run=1.2)

    stats = crasher.run(kills=3)

    assert stats.kills == 3
    assert stats.server_errors == 0
    assert stats.acknowledged_writes > 0
    assert stats.chunks_checked > 0
    assert stats.searches_checked > 0
