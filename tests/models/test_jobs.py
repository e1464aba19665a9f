"""models/jobs.py with plain threads: compute once across sessions, heavy work queued and cancellable."""

from __future__ import annotations

import os
import threading
import time

import pytest

from models.jobs import Cancelled, HeavyPool, SingleFlight


def test_identical_concurrent_requests_compute_once():
    cache: SingleFlight[int] = SingleFlight(max_entries=4)
    started = threading.Event()
    release = threading.Event()
    calls = []

    def compute():
        calls.append(1)
        started.set()
        release.wait(5)
        return 42

    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.get(("view", 1), compute))) for _ in range(30)]
    for t in threads:
        t.start()
    assert started.wait(5)
    time.sleep(0.1)  # let the other 29 arrive while the first computes
    release.set()
    for t in threads:
        t.join(5)
    assert results == [42] * 30
    assert len(calls) == 1 and cache.computations == 1


def test_different_keys_compute_separately_and_lru_bounds():
    cache: SingleFlight[str] = SingleFlight(max_entries=2)
    for k in ["a", "b", "c", "a"]:
        assert cache.get(k, lambda k=k: k.upper()) == k.upper()
    assert len(cache) == 2
    assert cache.computations == 4  # "a" was evicted by "c", so computed again


def test_failure_reaches_every_waiter_and_is_not_cached():
    cache: SingleFlight[int] = SingleFlight()
    gate = threading.Event()

    def boom():
        gate.wait(5)
        raise ValueError("bad")

    errors = []

    def call():
        try:
            cache.get("k", boom)
        except ValueError as err:
            errors.append(err)

    threads = [threading.Thread(target=call) for _ in range(5)]
    for t in threads:
        t.start()
    time.sleep(0.1)
    gate.set()
    for t in threads:
        t.join(5)
    assert len(errors) == 5 and cache.computations == 1
    assert cache.get("k", lambda: 7) == 7  # retried, not a cached failure


def _slow(steps: int, gate: threading.Event | None = None, log: list | None = None):
    def compute(progress):
        for i in range(steps):
            progress(i / steps, f"step {i}")
            if gate is not None:
                gate.wait(5)
            time.sleep(0.01)
            if log is not None:
                log.append(i)
        return steps
    return compute


def test_heavy_pool_queue_positions_and_shared_jobs():
    pool = HeavyPool(workers=1)
    gate = threading.Event()
    first = pool.submit("s1", "curve-1", _slow(3, gate))
    time.sleep(0.1)
    second = pool.submit("s2", "curve-2", _slow(2))
    third = pool.submit("s3", "curve-3", _slow(2))
    same = pool.submit("s4", "curve-2", _slow(2))
    assert same is second  # identical request: one job, two owners
    assert first.position() == 0 and second.position() == 1 and third.position() == 2
    gate.set()
    for job in (first, second, third):
        assert job.wait(5)
    assert [j.value() for j in (first, second, third)] == [3, 2, 2]
    assert pool.computations == 3
    assert pool.cached("curve-2") == 2


def test_one_job_per_session_and_cancel_when_nobody_waits():
    pool = HeavyPool(workers=1)
    gate = threading.Event()
    log: list[int] = []
    running = pool.submit("s1", "long", _slow(50, gate, log))
    time.sleep(0.1)
    queued = pool.submit("s2", "other", _slow(2))
    replaced = pool.submit("s2", "another", _slow(2))  # s2 asks for something else: its old job goes
    assert queued.done.is_set() and isinstance(queued.error, Cancelled)
    pool.release("s1", running)  # s1 navigates away: the running job stops at its next progress report
    gate.set()
    assert running.wait(5) and isinstance(running.error, Cancelled)
    assert len(log) < 50
    assert replaced.wait(5) and replaced.value() == 2
    with pytest.raises(Cancelled):
        running.value()


def test_shared_job_survives_one_owner_leaving():
    pool = HeavyPool(workers=1)
    gate = threading.Event()
    job = pool.submit("s1", "k", _slow(3, gate))
    pool.submit("s2", "k", _slow(3))
    pool.release("s1", job)
    gate.set()
    assert job.wait(5) and job.value() == 3


@pytest.mark.skipif(not hasattr(os, "getpriority") or not os.path.exists("/proc/self/task"),
                    reason="per-thread priorities are a Linux feature")
def test_heavy_workers_run_below_the_light_requests():
    """nice > 0: the workers take idle cores only; the session threads (light requests) keep theirs."""
    def niceness() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    mine = niceness()
    pool = HeavyPool(workers=2, nice=7)
    jobs = [pool.submit(f"s{i}", f"k{i}", lambda progress: niceness()) for i in range(2)]
    assert all(job.wait(5) for job in jobs)
    assert [job.value() for job in jobs] == [min(19, mine + 7)] * 2
    assert niceness() == mine  # the caller's own thread is untouched
    plain = HeavyPool(workers=1)
    job = plain.submit("s", "k", lambda progress: niceness())
    assert job.wait(5) and job.value() == mine


@pytest.mark.parametrize("nice", [-1, 20])
def test_heavy_pool_nice_out_of_range(nice):
    with pytest.raises(ValueError, match="nice"):
        HeavyPool(workers=1, nice=nice)


def test_single_flight_keys_in_recency_order_and_clear():
    cache: SingleFlight[int] = SingleFlight(max_entries=2)
    cache.get("a", lambda: 1)
    cache.get("b", lambda: 2)
    cache.get("a", lambda: 99)  # a hit: "a" becomes the most recent
    assert cache.keys() == ["b", "a"]
    cache.get("c", lambda: 3)  # past max_entries: the least recent ("b") goes
    assert cache.keys() == ["a", "c"]
    cache.clear()
    assert cache.keys() == [] and len(cache) == 0
    assert cache.get("a", lambda: 5) == 5  # computed again after clear
