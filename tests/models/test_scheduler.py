"""models/jobs.py's HeavyPool as a fair, anytime scheduler, with plain threads: jobs in rounds, every
first round before anyone's refinement, the least work left next, light work first, shared jobs,
drops on release, the load-limited flag, finals cached, plain callables, errors, no thread at start.

Rounds are gated with events, so orders are checked by construction, not by timing; the waits that
remain are generous bounds (a machine of this kind may be 2x slower, and busy)."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass

import pytest

from models.jobs import Cancelled, HeavyPool, SingleFlight, Whole, wait_elsewhere
from tests import polling

try:
    from models.rounds import Partial
except ImportError:  # models/rounds.py lands with the anytime views; the same shape until then
    @dataclass(frozen=True)
    class Partial:  # type: ignore[no-redef]
        value: object
        done: int
        total: int

        @property
        def final(self) -> bool:
            return self.done >= self.total

WAIT = 20.0  # generous bound for anything that should happen "soon"


def until(condition, timeout: float = WAIT) -> bool:
    return polling.until(condition, timeout, every=0.002)


def rounds(name: str, total: int, log: list, *, per_round: int = 1, gates: dict | None = None,
           closed: list | None = None, fail_at: int | None = None, sleep: float = 0.0):
    """A rounds job: each round logs ``(name, round index)`` when it starts, waits for
    ``gates[index]`` if given, then yields ``Partial((name, done), done, total)``; ``closed`` gets
    ``name`` when the generator is closed; ``fail_at``: that round raises."""
    def compute(progress):
        done, index = 0, 0
        try:
            while done < total:
                progress(done / total, f"{name} round {index}")
                log.append((name, index))
                if gates is not None and index in gates:
                    assert gates[index].wait(WAIT)
                if sleep:
                    time.sleep(sleep)
                if fail_at == index:
                    raise ValueError(f"{name} failed")
                progress((done + per_round / 2) / total, f"{name} half way")  # a cancel lands here too
                done = min(total, done + per_round)
                index += 1
                yield Partial((name, done), done, total)
        finally:
            if closed is not None:
                closed.append(name)
    return compute


def blocker(gate: threading.Event, started: threading.Event | None = None):
    """A plain job that holds a worker until ``gate`` is set."""
    def compute(progress):
        if started is not None:
            started.set()
        assert gate.wait(WAIT)
        return "blocker"
    return compute


def hold_worker(pool: HeavyPool):
    """Occupy ``pool``'s one worker; returns (job, gate to set to free it)."""
    gate, started = threading.Event(), threading.Event()
    job = pool.submit("holder", ("hold", id(gate)), blocker(gate, started))
    assert started.wait(WAIT)
    return job, gate


# ------------------------------------------------------------------ rounds


def test_a_rounds_job_publishes_each_partial_then_its_final():
    pool = HeavyPool(workers=1)
    log: list = []
    gates = {i: threading.Event() for i in range(3)}
    job = pool.submit("s", "curve", rounds("c", 3, log, gates=gates))
    assert job.latest is None and job.version == 0
    versions = [0]
    for i in range(3):
        gates[i].set()
        assert job.wait_change(versions[-1], WAIT)
        versions.append(job.version)
        assert job.latest.done >= i + 1
    assert job.wait(WAIT)
    assert job.value() == Partial(("c", 3), 3, 3) and job.latest.final
    assert job.rounds == 3 and log == [("c", 0), ("c", 1), ("c", 2)]
    assert versions == sorted(versions) and len(set(versions)) == 4
    assert pool.computations == 1 and pool.rounds_run == 3


def test_wait_change_times_out_without_a_new_partial_and_wakes_at_the_end():
    pool = HeavyPool(workers=1)
    gate = threading.Event()
    job = pool.submit("s", "k", rounds("k", 1, [], gates={0: gate}))
    assert not job.wait_change(0, 0.05)
    gate.set()
    assert job.wait_change(0, WAIT) and job.wait(WAIT)
    version = job.version
    assert job.wait_change(version - 1, 0) and not job.wait_change(version, 0.01)


def test_a_plain_callable_is_one_final_round():
    pool = HeavyPool(workers=1)
    job = pool.submit("s", "plain", lambda progress: {"answer": 42})
    assert job.wait(WAIT)
    assert job.value() == {"answer": 42} and job.rounds == 1
    assert isinstance(job.latest, Whole) and job.latest.final and job.latest.value == {"answer": 42}
    assert pool.cached("plain") == {"answer": 42}


def test_rounds_that_end_without_a_final_partial_end_with_the_last_one():
    def two_of_four(progress):
        yield Partial("a", 1, 4)
        yield Partial("b", 2, 4)

    def none(progress):
        return
        yield  # a generator that yields nothing

    pool = HeavyPool(workers=1)
    job = pool.submit("s", "short", two_of_four)
    assert job.wait(WAIT) and job.value() == Partial("b", 2, 4)
    assert pool.cached("short") is None  # not a final result: nothing to hold
    empty = pool.submit("s", "empty", none)
    assert empty.wait(WAIT)
    with pytest.raises(ValueError, match="at least one partial"):
        empty.value()


def test_something_else_than_a_partial_is_an_error():
    pool = HeavyPool(workers=1)
    job = pool.submit("s", "bad", lambda progress: iter([1, 2]))
    assert job.wait(WAIT)
    with pytest.raises(TypeError, match="partial result"):
        job.value()


# ------------------------------------------------------------------ fair order


def test_every_first_round_runs_before_any_second_round():
    pool = HeavyPool(workers=1)
    log: list = []
    holder, free = hold_worker(pool)
    jobs = [pool.submit(f"s{i}", f"k{i}", rounds(f"j{i}", 3, log)) for i in range(6)]
    assert [j.position() for j in jobs] == [1, 2, 3, 4, 5, 6]  # the holder runs: one ahead of all
    free.set()
    assert all(j.wait(WAIT) for j in jobs)
    firsts = [name for name, index in log[:6]]
    assert firsts == [f"j{i}" for i in range(6)] and all(index == 0 for _, index in log[:6])
    assert all(index == 1 for _, index in log[6:12]) and all(index == 2 for _, index in log[12:])
    assert [j.value().done for j in jobs] == [3] * 6


def test_least_work_left_goes_first_then_the_ticket():
    pool = HeavyPool(workers=1)
    log: list = []
    holder, free = hold_worker(pool)
    big = pool.submit("a", "big", rounds("big", 8, log), cost=8)
    small = pool.submit("b", "small", rounds("small", 2, log), cost=2)
    mid = pool.submit("c", "mid", rounds("mid", 4, log), cost=4)
    mid_too = pool.submit("d", "mid2", rounds("mid2", 4, log), cost=4)
    unknown = pool.submit("e", "unknown", rounds("unknown", 1, log))  # no cost declared: after those that did
    assert [j.position() for j in (small, mid, mid_too, big, unknown)] == [1, 2, 3, 4, 5]
    free.set()
    assert all(j.wait(WAIT) for j in (big, small, mid, mid_too, unknown))
    assert [name for name, index in log if index == 0] == ["small", "mid", "mid2", "big", "unknown"]
    # second rounds by work left after the first (total - done): small 1, mid 3, mid2 3, big 7
    assert [name for name, index in log if index == 1] == ["small", "mid", "mid2", "big"]


def test_refinement_is_round_robin_with_the_least_work_left_first_in_each_round():
    pool = HeavyPool(workers=1)
    log: list = []
    holder, free = hold_worker(pool)
    long = pool.submit("a", "long", rounds("long", 10, log, per_round=2))  # no costs: by ticket first
    short = pool.submit("b", "short", rounds("short", 3, log))
    free.set()
    assert long.wait(WAIT) and short.wait(WAIT)
    assert log[:2] == [("long", 0), ("short", 0)]
    # after the first rounds: short has 2 left, long 8, so short's second round goes first; then
    # long's (fewer rounds done), then short's third (less left), then long alone
    assert log[2:] == [("short", 1), ("long", 1), ("short", 2), ("long", 2), ("long", 3), ("long", 4)]


def test_identical_requests_share_one_job_and_its_rounds():
    pool = HeavyPool(workers=1)
    log: list = []
    holder, free = hold_worker(pool)
    first = pool.submit("s1", "same", rounds("same", 3, log))
    second = pool.submit("s2", "same", rounds("other", 3, log))
    assert first is second and first.owners == {"s1", "s2"}
    free.set()
    assert first.wait(WAIT) and [name for name, _ in log] == ["same"] * 3
    assert pool.computations == 2  # the holder and the shared job


# ------------------------------------------------------------------ drops


def test_a_queued_job_nobody_waits_for_is_dropped_at_once_and_its_rounds_closed():
    pool = HeavyPool(workers=1)
    log, closed = [], []
    refining_gates, other_gates = {1: threading.Event()}, {0: threading.Event()}
    refining = pool.submit("a", "refining", rounds("refining", 4, log, gates=refining_gates, closed=closed))
    assert until(lambda: ("refining", 1) in log)  # its second round waits at the gate
    other = pool.submit("b", "other", rounds("other", 2, log, gates=other_gates))
    refining_gates[1].set()  # its second round ends; other's first round runs next and holds the worker
    assert until(lambda: ("other", 0) in log)
    assert refining.rounds == 2 and not refining.done.is_set() and not refining.running
    pool.release("a", refining)
    assert refining.done.is_set() and isinstance(refining.error, Cancelled)
    assert closed == ["refining"]  # its generator's finally ran at the release
    other_gates[0].set()
    assert other.wait(WAIT) and refining.rounds == 2 and ("refining", 2) not in log
    with pytest.raises(Cancelled):
        refining.value()


def test_a_running_job_let_go_stops_at_its_next_progress_report():
    pool = HeavyPool(workers=1)
    log, closed = [], []
    gates = {2: threading.Event()}
    job = pool.submit("s", "long", rounds("long", 50, log, gates=gates, closed=closed))
    assert until(lambda: ("long", 2) in log)  # its third round waits at the gate
    pool.release("s", job)
    gates[2].set()  # the round goes on to its progress report, which raises
    assert job.wait(WAIT) and isinstance(job.error, Cancelled)
    assert job.rounds == 2 and closed == ["long"] and len(log) == 3
    assert pool.cached("long") is None


def test_a_job_to_finish_goes_on_after_its_owner_left_behind_every_waited_round_and_is_found_again():
    """A result every session asks for (a keep_prob scan per model and image) is not thrown away when the
    session that asked moves on: it finishes after every round someone waits for, and a later request
    for it finds its rounds so far."""
    pool, log, gate = HeavyPool(workers=1), [], threading.Event()
    scan = pool.submit("a", "scan", rounds("scan", 4, log, gates={1: gate}), finish=True)
    assert until(lambda: ("scan", 1) in log)  # its second round holds the worker
    pool.release("a", scan)  # the session moved on
    other = pool.submit("b", "other", rounds("other", 3, log))  # someone waits for this one
    gate.set()
    assert other.wait(WAIT) and scan.wait(WAIT)
    assert scan.error is None and scan.result.final and pool.cached("scan") is scan.result
    after = log.index(("scan", 1))
    assert log[after + 1:] == [("other", 0), ("other", 1), ("other", 2), ("scan", 2), ("scan", 3)]
    again = pool.submit("c", "scan", rounds("scan", 4, log))
    assert again.done.is_set() and again.result is scan.result  # found, not computed again


def test_a_job_to_finish_asked_again_while_unfinished_is_the_same_job_with_its_rounds():
    pool, log, gate = HeavyPool(workers=1), [], threading.Event()
    scan = pool.submit("a", "scan", rounds("scan", 3, log, gates={1: gate}), finish=True)
    assert until(lambda: ("scan", 1) in log)
    pool.release("a", scan)
    again = pool.submit("b", "scan", rounds("scan", 3, log))
    assert again is scan and scan.rounds >= 1 and scan.latest is not None  # an answer at once
    gate.set()
    assert scan.wait(WAIT) and [r for n, r in log if n == "scan"] == [0, 1, 2]


def test_a_running_round_without_a_report_is_dropped_at_its_end():
    pool = HeavyPool(workers=1)
    gate, ends = threading.Event(), []

    def quiet(progress):  # never reports progress
        for done in (1, 2, 3):
            assert gate.wait(WAIT)
            ends.append(done)
            yield Partial(done, done, 3)

    job = pool.submit("s", "quiet", quiet)
    assert until(lambda: job.running)
    pool.release("s", job)
    gate.set()
    assert job.wait(WAIT) and isinstance(job.error, Cancelled)
    assert ends == [1]  # the round that ran finished; no other started


def test_a_shared_job_goes_on_while_one_owner_is_left():
    pool = HeavyPool(workers=1)
    log: list = []
    gates = {1: threading.Event()}
    job = pool.submit("s1", "k", rounds("k", 3, log, gates=gates))
    assert pool.submit("s2", "k", rounds("k", 3, log)) is job
    pool.release("s1", job)
    gates[1].set()
    assert job.wait(WAIT) and job.value().final


def test_an_owner_asking_for_another_key_drops_its_refining_job():
    pool = HeavyPool(workers=1)
    log: list = []
    gates = {1: threading.Event()}
    old = pool.submit("s", "old", rounds("old", 5, log, gates=gates))
    assert until(lambda: ("old", 1) in log)
    new = pool.submit("s", "new", rounds("new", 1, log))
    gates[1].set()
    assert old.wait(WAIT) and isinstance(old.error, Cancelled)
    assert new.wait(WAIT) and new.value().final and ("old", 2) not in log


# ------------------------------------------------------------------ light before heavy


def test_no_round_starts_while_light_work_runs_until_it_ends():
    pool = HeavyPool(workers=1, light_wait_s=WAIT)
    log: list = []
    with pool.light():
        job = pool.submit("s", "k", rounds("k", 2, log))
        time.sleep(0.3)
        assert log == [] and not job.started and job.position() == 0  # nothing ahead: it waits for the light work
    assert job.wait(WAIT) and log == [("k", 0), ("k", 1)]


def test_a_refinement_round_waits_for_light_work_too():
    pool = HeavyPool(workers=1, light_wait_s=WAIT)
    log: list = []
    gates = {0: threading.Event()}
    job = pool.submit("s", "k", rounds("k", 2, log, gates=gates))
    assert until(lambda: log == [("k", 0)])
    with pool.light():
        gates[0].set()  # the first round ends while light work runs
        assert job.wait_change(0, WAIT) and job.rounds == 1
        time.sleep(0.3)
        assert log == [("k", 0)]  # the second round has not started
    assert job.wait(WAIT) and log == [("k", 0), ("k", 1)]


def test_light_work_holds_a_round_back_at_most_light_wait_s():
    bound = 0.2
    pool = HeavyPool(workers=1, light_wait_s=bound)
    started = threading.Event()
    with pool.light():
        asked = time.monotonic()
        job = pool.submit("s", "k", lambda progress: started.set() or time.monotonic())
        assert started.wait(WAIT)  # heavy work is not starved by light work that never ends
        assert job.wait(WAIT) and job.value() - asked >= bound - 0.005


def test_light_sections_nest_and_count_across_threads():
    pool = HeavyPool(workers=1, light_wait_s=WAIT)
    inside, leave = threading.Event(), threading.Event()

    def session():
        with pool.light():
            inside.set()
            assert leave.wait(WAIT)

    other = threading.Thread(target=session)
    other.start()
    assert inside.wait(WAIT)
    with pool.light():
        job = pool.submit("s", "k", lambda progress: "ran")
    time.sleep(0.2)
    assert not job.started  # the other session's light work still runs
    leave.set()
    other.join(WAIT)
    assert job.wait(WAIT) and job.value() == "ran"


def test_light_sections_end_on_an_exception():
    pool = HeavyPool(workers=1, light_wait_s=WAIT)
    with pytest.raises(RuntimeError):
        with pool.light():
            raise RuntimeError("light work failed")
    job = pool.submit("s", "k", lambda progress: 1)
    assert job.wait(5)  # far below light_wait_s: the failed section let the worker go


# ------------------------------------------------------------------ load-limited refinement


def test_limited_while_refinement_waits_behind_other_jobs_rounds():
    pool = HeavyPool(workers=1)
    log: list = []
    a_gates = {1: threading.Event()}
    b_gates = {0: threading.Event()}
    a = pool.submit("a", "a", rounds("a", 4, log, gates=a_gates))
    assert until(lambda: ("a", 1) in log)  # a's first round done, its second runs
    assert not a.limited  # refining, nobody waiting
    b = pool.submit("b", "b", rounds("b", 2, log, gates=b_gates))
    c = pool.submit("c", "c", lambda progress: "c")
    assert (b.position(), c.position()) == (1, 2) and not a.limited
    a_gates[1].set()
    assert until(lambda: ("b", 0) in log)  # b's first round runs; a waits behind c's
    assert a.limited and a.rounds == 2 and not a.latest.final
    assert not b.limited and not c.limited  # b runs; c has no round done
    b_gates[0].set()
    assert all(j.wait(WAIT) for j in (a, b, c))
    assert not a.limited and a.value().final


def test_limited_only_while_another_jobs_round_waits_ahead():
    """Held between rounds by light work: alone in the queue it is not limited; once another job's
    first round waits ahead of its refinement, it is."""
    pool = HeavyPool(workers=1, light_wait_s=WAIT)
    log: list = []
    gates = {0: threading.Event()}
    job = pool.submit("s", "k", rounds("k", 3, log, gates=gates))
    assert until(lambda: ("k", 0) in log)
    with pool.light():
        gates[0].set()
        assert job.wait_change(0, WAIT) and until(lambda: not job.running)
        assert job.rounds == 1 and not job.limited  # queued for its next round, nothing ahead
        other = pool.submit("t", "t", lambda progress: "t")
        assert job.limited and other.position() == 0
    assert other.wait(WAIT) and job.wait(WAIT)
    assert not job.limited and job.value().final


# ------------------------------------------------------------------ cache, errors, threads


def test_finals_are_cached_and_a_repeat_returns_them_without_running():
    pool = HeavyPool(workers=1)
    log: list = []
    job = pool.submit("s1", "k", rounds("k", 2, log))
    assert job.wait(WAIT)
    assert pool.cached("k") == Partial(("k", 2), 2, 2)
    again = pool.submit("s2", "k", rounds("k", 2, log))
    assert again.done.is_set() and again.value() == job.value() and again.latest.final
    assert again.position() == 0 and not again.limited
    assert pool.computations == 1 and len(log) == 2
    kept_elsewhere = pool.submit("s3", "elsewhere", rounds("e", 1, log), keep=False)
    assert kept_elsewhere.wait(WAIT) and pool.cached("elsewhere") is None


def test_the_pool_uses_only_the_caches_public_methods():
    class Public:
        """Only what a cache offers in public: no _lock, no _results."""
        def __init__(self):
            self.held = {}

        def peek(self, key):
            return self.held.get(key)

        def put(self, key, value):
            self.held[key] = value

    cache = Public()
    pool = HeavyPool(workers=1, cache=cache)  # type: ignore[arg-type]
    job = pool.submit("s", "k", lambda progress: 5)
    assert job.wait(WAIT) and cache.held == {"k": 5} and pool.cached("k") == 5


def test_an_error_in_a_round_reaches_every_waiter_and_is_not_cached():
    pool = HeavyPool(workers=1)
    log, closed = [], []
    holder, free = hold_worker(pool)
    job = pool.submit("s1", "k", rounds("k", 4, log, fail_at=1, closed=closed))
    assert pool.submit("s2", "k", rounds("k", 4, log)) is job
    free.set()
    errors = []

    def waiter():
        job.wait(WAIT)
        try:
            job.value()
        except ValueError as err:
            errors.append(err)

    threads = [threading.Thread(target=waiter) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    assert len(errors) == 3 and all(e is errors[0] for e in errors)
    assert job.latest == Partial(("k", 1), 1, 4) and closed == ["k"]
    assert pool.cached("k") is None
    assert pool.submit("s1", "k", rounds("k", 1, log)) is job  # its owners' next look: the error (failed_keep_s)
    retry = pool.submit("s3", "k", rounds("k", 1, log))  # anyone else: run again
    assert retry is not job and retry.wait(WAIT) and retry.value().final


def test_making_a_pool_or_entering_light_work_starts_no_thread():
    before = set(threading.enumerate())
    pool = HeavyPool(workers=4, cache=SingleFlight(4), nice=19)
    with pool.light():
        pass
    assert pool.cached("nothing") is None
    assert set(threading.enumerate()) <= before
    job = pool.submit("s", "k", lambda progress: 1)
    assert job.wait(WAIT)
    started = set(threading.enumerate()) - before
    assert len(started) == 4 and all(t.name.startswith("heavy-") and t.daemon for t in started)


@pytest.mark.parametrize("value", [0.0, 1.5])
def test_light_wait_is_validated(value):
    HeavyPool(light_wait_s=value)
    with pytest.raises(ValueError, match="light_wait_s"):
        HeavyPool(light_wait_s=-value - 0.1)


# ------------------------------------------------------------------ stress


def test_thirty_owners_in_rounds_finish_without_deadlock():
    """30 sessions ask for 4-round jobs on 3 workers, with light work beside them; a third share
    keys, some change their inputs, some leave. Every job still waited for ends with its final."""
    pool = HeavyPool(workers=3, light_wait_s=0.02)
    rng = random.Random(19)
    log: list = []
    stop = threading.Event()

    def light_traffic():
        while not stop.is_set():
            with pool.light():
                time.sleep(0.002)
            time.sleep(0.003)

    lights = [threading.Thread(target=light_traffic) for _ in range(2)]
    for t in lights:
        t.start()
    kept: dict[str, object] = {}
    left = []
    try:
        for i in range(30):
            owner = f"s{i}"
            key = f"shared{i % 5}" if i % 3 == 0 else f"own{i}"
            job = pool.submit(owner, key, rounds(key, 4, log, sleep=0.001))
            if rng.random() < 0.2:  # inputs changed
                job = pool.submit(owner, key + "-changed", rounds(key + "-changed", 4, log, sleep=0.001))
            if rng.random() < 0.15:  # left the page
                pool.release(owner, job)
                left.append(job)
            else:
                kept[owner] = job
        deadline = time.monotonic() + 120
        for owner, job in kept.items():
            assert job.wait(max(0.0, deadline - time.monotonic())), (owner, job)
            assert job.value().final and job.value().done == 4
    finally:
        stop.set()
        for t in lights:
            t.join(WAIT)
    assert all(j.wait(WAIT) for j in left)
    late = pool.submit("late", "late", rounds("late", 2, log))  # the pool still serves, nothing stuck
    assert late.wait(WAIT) and late.value().final


# ------------------------------------------------------------------ answer first, refine on a lease


def test_a_held_job_refines_after_its_owner_stops_waiting():
    pool, log = HeavyPool(workers=1), []
    gates = {1: threading.Event()}
    job = pool.submit("s", "curve", rounds("c", 3, log, gates=gates))
    assert until(lambda: job.rounds >= 1)
    pool.hold("s", job, 60.0)  # the page drew its answer and ended its run
    gates[1].set()
    assert job.wait(WAIT) and job.error is None and job.result.done == 3
    assert pool.cached("curve").done == 3


def test_a_lease_that_runs_out_drops_the_job_before_its_next_round():
    pool, log, closed = HeavyPool(workers=1), [], []
    first, other_gate = threading.Event(), threading.Event()
    job = pool.submit("s", "curve", rounds("c", 4, log, closed=closed, gates={0: first}))
    assert until(lambda: log == [("c", 0)])  # its first round runs, held at its gate
    other = pool.submit("t", "other", blocker(other_gate))  # a first round: it goes before the curve's second
    first.set()
    assert until(lambda: job.rounds == 1 and other.started)
    pool.hold("s", job, 0.0)  # a lease already over: nobody looks at the curve any more
    other_gate.set()
    assert job.wait(WAIT) and isinstance(job.error, Cancelled)
    assert job.rounds == 1 and closed == ["c"] and other.wait(WAIT)


def test_a_look_renews_the_lease_and_a_gone_owner_drops_the_job():
    alive = {"s": True}
    pool, log = HeavyPool(workers=1, alive=lambda owner: alive.get(owner, True)), []
    holder, gate = hold_worker(pool)
    job = pool.submit("s", "curve", rounds("c", 4, log))
    pool.hold("s", job, 0.0)
    assert pool.submit("s", "curve", rounds("c", 4, log)) is job and not job.leases  # a new look: waiting again
    pool.hold("s", job, 60.0)
    alive["s"] = False  # the tab was closed
    gate.set()
    assert job.wait(WAIT) and isinstance(job.error, Cancelled) and log == []


def test_an_ended_job_keeps_its_place_for_its_owner_next_request():
    """A page's second heavy request (the curve after its scan) is not sent behind later arrivals."""
    pool, log = HeavyPool(workers=1, chain_s=30.0), []
    holder, gate = hold_worker(pool)
    scan = pool.submit("s", "scan", rounds("scan", 1, log), whole=True)  # a one-shot result the page waits for
    late = pool.submit("t", "late", rounds("late", 1, log))  # asked after the scan
    gate.set()
    assert scan.wait(WAIT)
    curve = pool.submit("s", "curve", rounds("curve", 1, log))
    assert curve.ticket == scan.ticket < late.ticket


def test_a_session_shown_an_answer_asks_again_from_the_back():
    """Round-robin under load: a session whose job answered (its first round shown, refining) and that
    asks for something else goes behind the sessions still waiting for their first answer, however
    early its own first ticket was; one that changed its inputs before any answer keeps its place."""
    pool, log, gate = HeavyPool(workers=1, chain_s=30.0), [], threading.Event()
    answered = pool.submit("a", "a1", rounds("a1", 3, log, gates={1: gate}))  # the worker stays in its round 1
    assert answered.wait_change(0, WAIT) and answered.rounds == 1
    waiting = pool.submit("b", "b1", rounds("b1", 1, log))
    late = pool.submit("c", "c1", rounds("c1", 1, log))
    changed = pool.submit("c", "c2", rounds("c2", 1, log))  # c changed its inputs before any answer: same place
    again = pool.submit("a", "a2", rounds("a2", 1, log))  # a moves on: a1 dropped, a2 from the back
    assert answered.ticket < waiting.ticket < changed.ticket == late.ticket < again.ticket
    gate.set()
    assert waiting.wait(WAIT) and changed.wait(WAIT) and again.wait(WAIT)
    firsts = [name for name, index in log if index == 0 and name != "a1"]
    assert firsts == ["b1", "c2", "a2"]


def test_a_held_job_not_looked_at_again_is_let_go_at_once():
    """A page run that ends without asking for a held job again (another page, a cancel) lets it go at
    once, not when its lease runs out; a job it did look at again stays."""
    import threading
    import time

    from models.jobs import HeavyPool
    from models.rounds import Partial

    release = threading.Event()

    def slow(progress):
        yield Partial(1, 1, 3)
        release.wait(10)
        yield Partial(2, 2, 3)
        yield Partial(3, 3, 3)

    pool = HeavyPool(workers=1)
    try:
        old = pool.submit("a", "old", slow)
        assert old.wait_change(0, 10) and old.latest.done == 1
        pool.hold("a", old, 60.0)
        started = time.monotonic()
        time.sleep(0.01)
        kept = pool.submit("b", "kept", slow)
        pool.hold("b", kept, 60.0)  # looked at during the run
        pool.drop_held("a", started)
        pool.drop_held("b", started)
        assert old.cancelled and "a" not in old.owners
        assert not kept.cancelled and "b" in kept.owners
    finally:
        release.set()


def test_shutdown_cancels_the_jobs_and_ends_the_workers():
    """At exit the pool cancels what it holds and its workers end (a worker left inside a torch op
    while the interpreter finalises aborts the process)."""
    import threading

    from models.jobs import HeavyPool
    from models.rounds import Partial

    started = threading.Event()

    def endless(progress):
        n = 0
        while True:
            n += 1
            started.set()
            yield Partial(n, n, 10**9)

    pool = HeavyPool(workers=2)
    job = pool.submit("a", "endless", endless)
    pool.hold("a", job, 60.0)
    assert started.wait(10)
    pool.shutdown(timeout=10.0)
    assert job.cancelled
    assert not any(t.is_alive() for t in pool._threads)


def test_a_whole_job_in_rounds_goes_with_the_first_rounds():
    """A one-shot result computed in rounds (its owner waits for the last) keeps first-round priority
    after its first round: ahead of other jobs' refinements, behind their first rounds."""
    from models.jobs import HeavyPool
    from models.rounds import Partial

    pool = HeavyPool(workers=1)
    refining, whole = (pool.submit(o, o, lambda p: iter(())) for o in ("refining", "whole"))
    whole.whole = True
    refining.rounds = whole.rounds = 2
    refining.latest, whole.latest = Partial(0, 2, 4), Partial(0, 2, 40)
    fresh = pool.submit("fresh", "fresh", lambda p: iter(()))
    assert sorted([refining, whole, fresh], key=lambda j: j._order()) == [fresh, whole, refining]


# ------------------------------------------------------------------ workers kept free for first rounds


def test_with_two_workers_one_is_kept_for_first_rounds_while_another_refines():
    pool = HeavyPool(workers=2)
    log: list = []
    gates = {1: threading.Event()}  # a's and b's second rounds (refinements) wait here
    a = pool.submit("a", "a", rounds("a", 3, log, gates=gates))
    b = pool.submit("b", "b", rounds("b", 3, log, gates=gates))
    assert a.wait_change(0, WAIT) and b.wait_change(0, WAIT)  # both answered: the rest is refinement
    assert until(lambda: ("a", 1) in log or ("b", 1) in log)
    time.sleep(0.3)  # the second refinement would have started by now were both workers free for it
    assert sorted(n for n, i in log if i == 1) in (["a"], ["b"])  # one refinement runs, the other waits
    c_log: list = []
    c = pool.submit("c", "c", rounds("c", 1, c_log))
    assert c.wait(WAIT) and c_log == [("c", 0)]  # a first round starts beside the refinement at once
    gates[1].set()
    assert a.wait(WAIT) and b.wait(WAIT)
    assert a.value().final and b.value().final


def test_a_worker_waiting_for_a_shared_result_lets_another_thread_run_rounds():
    pool = HeavyPool(workers=1)
    shared: SingleFlight = SingleFlight()
    gate, leading = threading.Event(), threading.Event()

    def slow():
        leading.set()
        assert gate.wait(WAIT)
        return 42

    def needs_shared(progress):  # the first asker computes it in its own thread, outside the pool
        return shared.get("scan", slow) + 1

    leader = threading.Thread(target=lambda: shared.get("scan", slow), daemon=True)
    leader.start()
    assert leading.wait(WAIT)
    waiting = pool.submit("w", "waits", needs_shared)  # the pool's one worker waits for the scan ...
    assert until(lambda: pool._blocked == 1)
    other = pool.submit("o", "other", lambda progress: "other")
    assert other.wait(WAIT) and other.value() == "other"  # ... and another job runs meanwhile
    assert not waiting.done.is_set()
    gate.set()
    assert waiting.wait(WAIT) and waiting.value() == 43
    leader.join(WAIT)
    assert until(lambda: len(pool._threads) == 1)  # the extra thread ends once the waiting one goes on
    again = pool.submit("o", "again", lambda progress: "again")
    assert again.wait(WAIT) and again.value() == "again"


def test_a_shared_result_waited_for_outside_a_pool_changes_no_pool():
    pool = HeavyPool(workers=1)
    shared: SingleFlight = SingleFlight()
    gate = threading.Event()
    leader = threading.Thread(target=lambda: shared.get("k", lambda: gate.wait(WAIT) and 1), daemon=True)
    leader.start()
    follower = threading.Thread(target=lambda: shared.get("k", lambda: 2), daemon=True)
    follower.start()
    time.sleep(0.1)
    assert pool._blocked == 0 and not pool._threads  # a session's thread is no pool worker
    gate.set()
    leader.join(WAIT)
    follower.join(WAIT)
    assert shared.peek("k") == 1


def test_a_job_that_waits_for_another_job_of_a_pool_of_one_lets_that_job_run():
    """The theory page's job waits for the deep keep_prob scan's job (``views.deep_middle``): in a pool
    of one worker, the one it waits for must get a thread."""
    pool = HeavyPool(workers=1)

    def needs_other(progress):
        other = pool.submit("needs", "other", lambda progress: 41, whole=True, finish=True)
        try:
            assert wait_elsewhere(other, WAIT)
        finally:
            pool.release("needs", other)
        return other.value() + 1

    job = pool.submit("s", "theory", needs_other)
    assert job.wait(WAIT) and job.value() == 42
    assert until(lambda: len(pool._threads) == 1)  # the extra thread ends once the waiting one goes on
