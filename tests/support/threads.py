"""Running the same searches from many threads at once, and comparing them with the same
searches run alone: the oracle of the concurrency tests."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np

Job = TypeVar("Job", bound=Hashable)
Answer = TypeVar("Answer")

THREADS = 8


def from_threads(
    search: Callable[[Job], Answer],
    jobs: Sequence[Job],
    *,
    threads: int = THREADS,
    rounds: int = 1,
    until: Callable[[], bool] | None = None,
) -> list[tuple[Job, Answer]]:
    """Every ``(job, search(job))`` made by ``threads`` threads that start together, each
    running all ``jobs`` ``rounds`` times in its own shuffled order (so different searches
    overlap). With ``until``, a thread keeps adding rounds until ``until()`` is true after
    one. An exception in any thread is raised here."""
    start = threading.Barrier(threads)

    def worker(seed: int) -> list[tuple[Job, Answer]]:
        rng = np.random.default_rng(seed)
        done: list[tuple[Job, Answer]] = []
        start.wait()
        round_ = 0
        while round_ < rounds or (until is not None and not until()):
            for position in rng.permutation(len(jobs)).tolist():
                job = jobs[position]
                done.append((job, search(job)))
            round_ += 1
        return done

    with ThreadPoolExecutor(threads) as pool:
        futures = [pool.submit(worker, seed) for seed in range(threads)]
        return [pair for future in futures for pair in future.result()]


def disagreements(
    answers: Sequence[tuple[Job, Answer]],
    alone: Mapping[Job, Answer] | Sequence[Mapping[Job, Answer]],
) -> list[str]:
    """A line for each answer that is none of the answers the same job gave alone (one
    mapping, or several when the index may legitimately change, as before and after a
    build swaps it in)."""
    references = [alone] if isinstance(alone, Mapping) else list(alone)
    return [
        f"{job!r}: got {answer!r}, alone {[r[job] for r in references]!r}"
        for job, answer in answers
        if all(answer != reference[job] for reference in references)
    ]
