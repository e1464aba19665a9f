"""models/jobs.py with plain threads: compute once across sessions, heavy work queued and cancellable.

The scheduler's rounds, fair order, light gate and load-limited flag: tests/models/test_scheduler.py."""

from __future__ import annotations

import os
import threading
import time

import pytest

from models import jobs as jobs_module
from models.jobs import Cancelled, HeavyPool, SingleFlight, usable_cores
from models.rounds import Partial
from tests import polling


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


def _slow(steps: int, gate: threading.Event | None = None, log: list | None = None, *, name: str | None = None,
          order: list | None = None):
    """A job of ``steps`` progress steps (each waits for ``gate`` if given; ``log``: steps completed;
    ``order``: ``name`` appended when it starts). Returns ``name``, else ``steps``."""
    def compute(progress):
        if order is not None:
            order.append(name)
        for i in range(steps):
            progress(i / steps, f"{name or 'step'} {i}")
            if gate is not None:
                gate.wait(10)
            time.sleep(0.01)
            if log is not None:
                log.append(i)
        return steps if name is None else name
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


# ------------------------------------------------------------------ issue 22 §7: inputs changed


def _logged(name: str, order: list, steps: int = 3, gate: threading.Event | None = None, after: list | None = None):
    """A job that records when it starts, and each step it completes (``after``: steps run)."""
    return _slow(steps, gate, after, name=name, order=order)


def test_changed_inputs_cancel_a_queued_job_and_the_new_one_keeps_its_place():
    """Owner X asks for A, then (inputs changed) for B: A is dropped, B stands where A stood, ahead of
    what other sessions asked for after A."""
    pool = HeavyPool(workers=1)
    gate, order = threading.Event(), []
    blocker = pool.submit("w", "busy", _logged("busy", order, gate=gate))
    assert _until(lambda: order == ["busy"])
    a = pool.submit("x", "A", _logged("A", order))
    c = pool.submit("y", "C", _logged("C", order))
    d = pool.submit("z", "D", _logged("D", order))
    b = pool.submit("x", "B", _logged("B", order))
    assert a.wait(1) and isinstance(a.error, Cancelled)
    assert (b.position(), c.position(), d.position()) == (1, 2, 3)
    gate.set()
    assert all(job.wait(10) for job in (blocker, b, c, d))
    assert order == ["busy", "B", "C", "D"]


@pytest.mark.parametrize("release_first", [False, True], ids=["resubmit", "release-then-resubmit"])
def test_changed_inputs_stop_the_running_job_at_its_next_step_and_the_new_one_runs_next(release_first):
    """X's A is running when X asks for B (the page reruns: it may first stop waiting for A, then ask for
    B): A stops at its next progress step, and B runs before the jobs other sessions queued meanwhile."""
    pool = HeavyPool(workers=1)
    gate, order, a_steps = threading.Event(), [], []
    a = pool.submit("x", "A", _logged("A", order, steps=50, gate=gate, after=a_steps))
    assert _until(lambda: order == ["A"])
    c = pool.submit("y", "C", _logged("C", order))
    d = pool.submit("z", "D", _logged("D", order))
    if release_first:
        pool.release("x", a)
    b = pool.submit("x", "B", _logged("B", order))
    assert b.position() == 1 and c.position() == 2 and d.position() == 3  # A still runs until its next step
    steps_at_change = len(a_steps)
    gate.set()
    assert all(job.wait(10) for job in (a, b, c, d))
    assert isinstance(a.error, Cancelled) and len(a_steps) <= steps_at_change + 1  # stopped at its next step
    assert order == ["A", "B", "C", "D"]


def test_a_place_is_kept_only_briefly_and_never_after_the_job_finished():
    pool = HeavyPool(workers=1, keep_place_s=0.2)
    gate, order = threading.Event(), []
    pool.submit("w", "busy", _logged("busy", order, gate=gate))
    assert _until(lambda: order == ["busy"])
    a = pool.submit("x", "A", _logged("A", order))
    c = pool.submit("y", "C", _logged("C", order))
    pool.release("x", a)  # X cancelled, and comes back later than keep_place_s
    time.sleep(0.5)
    b = pool.submit("x", "B", _logged("B", order))
    assert c.position() < b.position()
    gate.set()
    assert b.wait(10) and c.wait(10)
    assert order == ["busy", "C", "B"]
    e = pool.submit("y", "E", _logged("E", order))  # y's C finished: no place held for y
    f = pool.submit("x", "F", _logged("F", order))
    assert e.wait(10) and f.wait(10) and order[-2:] == ["E", "F"]


def _until(condition, timeout: float = 10.0) -> bool:
    return polling.until(condition, timeout, every=0.005)


def test_single_flight_peek_and_put_hold_results_computed_elsewhere():
    cache: SingleFlight[str] = SingleFlight(max_entries=2)
    assert cache.peek("a") is None
    cache.put("a", "A")
    cache.put("b", "B")
    assert cache.peek("a") == "A"  # and "a" is now the most recent
    cache.put("c", "C")
    assert cache.keys() == ["a", "c"] and cache.computations == 0
    assert cache.get("a", lambda: "other") == "A"


def test_a_result_the_caller_keeps_elsewhere_is_not_held_by_the_pool():
    pool = HeavyPool(workers=1)
    job = pool.submit("s", "set", lambda progress: "big", keep=False)
    assert job.wait(5) and job.value() == "big"
    assert pool.cached("set") is None
    kept = pool.submit("s", "curve", lambda progress: "small")
    assert kept.wait(5) and pool.cached("curve") == "small"


def test_a_job_that_failed_is_what_its_key_gives_for_a_while_then_it_runs_again():
    starts: list[int] = []

    def failing(progress):
        starts.append(1)
        yield Partial(10, 1, 4)
        raise ValueError("round 2 failed")

    pool = HeavyPool(workers=1, failed_keep_s=0.5)
    job = pool.submit("s1", "k", failing)
    assert job.wait(10) and isinstance(job.error, ValueError)
    again = pool.submit("s1", "k", failing)  # a refining page's next tick: the error, not the rounds again
    assert again is job and len(starts) == 1
    with pytest.raises(ValueError):
        again.value()
    other = pool.submit("s3", "k", failing)  # not one of its owners: runs it again
    assert other is not job and other.wait(10) and len(starts) == 2
    cancelled = pool.submit("s2", "c", _slow(50, threading.Event()))
    pool.release("s2", cancelled)
    assert cancelled.wait(10) and isinstance(cancelled.error, Cancelled)
    assert pool.submit("s2", "c", _slow(2)) is not cancelled  # a cancel is not a failure: asked again, it runs
    time.sleep(0.6)
    fresh = pool.submit("s1", "k", failing)  # later (another look, other settings and back): tried again
    assert fresh is not job and fresh.wait(10) and len(starts) == 3


def test_usable_cores_follow_the_process_affinity():
    """One pool worker and one helper per core the process may use (a cpuset or taskset), not per core
    of the host: a container given 2 cores of a large host must not start dozens of helpers."""
    cores = usable_cores()
    assert cores >= 1
    if not hasattr(os, "sched_getaffinity"):
        pytest.skip("no CPU affinity on this platform")
    allowed = os.sched_getaffinity(0)
    assert cores == len(allowed)
    try:
        os.sched_setaffinity(0, {min(allowed)})
        assert usable_cores() == 1
    finally:
        os.sched_setaffinity(0, allowed)


@pytest.mark.parametrize(("cpu_max", "cores"), [("150000 100000\n", 2), ("100000 100000\n", 1), ("50000 100000\n", 1),
                                                ("max 100000\n", None), ("", None), (None, None)])
def test_usable_cores_follow_a_cgroup_cpu_quota(tmp_path, monkeypatch, cpu_max, cores):
    """A container limited by a CPU quota (``docker --cpus``, a Kubernetes limit) has every host core
    in its affinity: the quota, rounded up, bounds the workers and helpers."""
    path = tmp_path / "cpu.max"
    if cpu_max is not None:
        path.write_text(cpu_max)
    monkeypatch.setattr(jobs_module, "CGROUP_CPU_MAX", str(path))
    monkeypatch.setattr(jobs_module.os, "sched_getaffinity", lambda pid: set(range(64)), raising=False)
    assert usable_cores() == (64 if cores is None else cores)
