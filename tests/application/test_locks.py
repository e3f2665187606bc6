"""The readers-writer lock that guards each library: readers share, a writer is alone, and a
waiting writer is not starved by readers that keep arriving."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

from application.locks import ReadWriteLock

WAIT = 10.0  # generous bound for anything that must happen; never reached when correct


def start(target: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, "condition never became true"
        time.sleep(0.001)


def writers_waiting(lock: ReadWriteLock) -> int:
    # Reading the lock's own bookkeeping is the only way to know a writer is queued
    # (rather than not yet scheduled) without a timed guess.
    with lock._cond:
        return lock._writers_waiting


def test_readers_hold_the_lock_at_the_same_time() -> None:
    lock = ReadWriteLock()
    inside = threading.Barrier(4, timeout=WAIT)

    def reader() -> None:
        with lock.read():
            inside.wait()  # only passes if all four readers are inside together

    threads = [start(reader) for _ in range(4)]
    for thread in threads:
        thread.join(WAIT)
        assert not thread.is_alive()
    assert not inside.broken


def test_a_writer_waits_for_readers_and_then_excludes_new_readers() -> None:
    lock = ReadWriteLock()
    events: list[str] = []
    reader_in, writer_in, release_reader, release_writer = (threading.Event() for _ in range(4))

    def first_reader() -> None:
        with lock.read():
            events.append("reader-in")
            reader_in.set()
            release_reader.wait(WAIT)
            events.append("reader-out")

    def writer() -> None:
        with lock.write():
            events.append("writer-in")
            writer_in.set()
            release_writer.wait(WAIT)
            events.append("writer-out")

    def late_reader() -> None:
        with lock.read():
            events.append("late-reader-in")

    threads = [start(first_reader)]
    assert reader_in.wait(WAIT)
    threads.append(start(writer))
    wait_until(lambda: writers_waiting(lock) == 1)
    assert not writer_in.is_set()

    release_reader.set()
    assert writer_in.wait(WAIT)
    threads.append(start(late_reader))
    release_writer.set()
    for thread in threads:
        thread.join(WAIT)
    assert events == ["reader-in", "reader-out", "writer-in", "writer-out", "late-reader-in"]


def test_writers_exclude_each_other() -> None:
    lock = ReadWriteLock()
    holders = 0
    most = 0
    guard = threading.Lock()

    def writer() -> None:
        nonlocal holders, most
        for _ in range(200):
            with lock.write():
                with guard:
                    holders += 1
                    most = max(most, holders)
                time.sleep(0)  # let other threads run while the lock is held
                with guard:
                    holders -= 1

    threads = [start(writer) for _ in range(6)]
    for thread in threads:
        thread.join(WAIT * 3)
        assert not thread.is_alive()
    assert most == 1


def test_a_waiting_writer_is_not_starved_by_a_stream_of_readers() -> None:
    """Readers overlap without a gap, so a reader-preferring lock would never let the
    writer in; this one makes every reader that arrives after the writer wait for it."""
    lock = ReadWriteLock()
    stop = threading.Event()
    writer_done = threading.Event()
    reads_after_writer_queued = 0
    counting = threading.Event()
    count_guard = threading.Lock()

    def reader() -> None:
        nonlocal reads_after_writer_queued
        while not stop.is_set():
            with lock.read():
                if counting.is_set() and not writer_done.is_set():
                    with count_guard:
                        reads_after_writer_queued += 1
                time.sleep(0.001)

    readers = [start(reader) for _ in range(8)]
    time.sleep(0.05)  # let the stream of overlapping readers get going

    def writer() -> None:
        with lock.write():
            writer_done.set()

    writer_thread = start(writer)
    wait_until(lambda: writers_waiting(lock) == 1 or writer_done.is_set())
    counting.set()
    finished = writer_done.wait(WAIT)
    stop.set()
    writer_thread.join(WAIT)
    for thread in readers:
        thread.join(WAIT)
    assert finished, "the writer never got the lock"
    # A read counted here entered before the writer queued and was still inside when
    # counting began: at most one per reader. Any read that began later waited.
    assert reads_after_writer_queued <= len(readers)


def test_many_threads_never_see_a_half_done_write() -> None:
    """16 threads, each a random mix of reads and writes. A write changes two fields in two
    steps with a thread switch in between; a read must always see them equal, and the
    lock's holders must always be one writer alone or readers only."""
    lock = ReadWriteLock()
    state = {"a": 0, "b": 0}
    active_readers = 0
    active_writers = 0
    guard = threading.Lock()
    violations: list[str] = []
    writes_done = 0

    def worker(seed: int) -> None:
        nonlocal active_readers, active_writers, writes_done
        rng = random.Random(seed)
        for _ in range(300):
            if rng.random() < 0.3:
                with lock.write():
                    with guard:
                        active_writers += 1
                        if active_writers != 1 or active_readers:
                            violations.append(f"write with {active_writers}w/{active_readers}r")
                    state["a"] += 1
                    time.sleep(0)
                    state["b"] += 1
                    writes_done += 1
                    with guard:
                        active_writers -= 1
                continue
            with lock.read():
                with guard:
                    active_readers += 1
                    if active_writers:
                        violations.append("read while a writer holds the lock")
                a = state["a"]
                time.sleep(0)
                b = state["b"]
                if a != b:
                    violations.append(f"torn read a={a} b={b}")
                with guard:
                    active_readers -= 1

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
        assert not thread.is_alive(), "a thread is stuck: deadlock or starvation"
    assert violations == []
    assert state["a"] == state["b"] == writes_done > 0
