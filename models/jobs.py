"""Serving many sessions from one process: compute once, answer first, refine as the CPU allows.

Imports only torch and the standard library (no streamlit), so it is tested with plain threads.

* :class:`SingleFlight` caches results by content key (model, image hash, parameters, seed). A
  request identical to one already running waits for it instead of computing again; results are
  immutable and shared by every session; the least recently used are dropped past ``max_entries``.
* :class:`HeavyPool` is a fair, anytime scheduler for expensive requests (the robustness curve,
  many Monte Carlo samples). A job computes in rounds: its callable returns an iterator of partial
  results (``models.rounds.Partial``: ``value``, ``done``, ``total``, ``final``), and a worker runs
  one round (one ``next()``), publishes the partial on the job (``latest``, ``version``,
  :meth:`Job.wait_change`), then puts the job back in the queue for its next round. The next round
  to run is the one with (a) the fewest rounds done, so every waiting session's first round runs
  before anyone's refinement, then (b) the least work left (``total - done`` of its latest
  partial, else the cost declared on submit), then (c) the earliest ticket. A plain callable that
  returns a value is one final round. Finals go to the result cache.

  Light before heavy: light requests (a slider move) run in the sessions' own threads inside
  :meth:`HeavyPool.light`; while one does, no worker starts a round that runs in this process (for at
  most ``light_wait_s``, so heavy work cannot starve; a job whose rounds run in a helper process,
  ``gated=False``, takes no GIL here and is not held back). The workers also run at a lower
  scheduling priority (``nice``): they take every core the light requests leave idle, and give it
  back at once when a slider moves. With two or more workers, a refinement never takes the last
  free one: a first round that comes while others refine starts at once. A worker that waits for a
  shared result another thread computes (:class:`SingleFlight`) hands its place to a new thread.

  Identical requests share one job; each owner (a session) has at most one job at a time; a job
  nobody waits for any more is dropped at once (queued: removed; running: cancelled at its next
  progress report or at the end of its round). A job reports its queue position before its first
  round and, after it, whether its refinement waits behind other jobs' rounds (``limited``: the
  page then says the server is busy). Tickets keep places until a session has its answer: when an
  owner's inputs change before it was shown anything (it asks for another key while its job waits
  for its first round, or for its last if it waits for the whole, or it stops waiting and asks again
  within ``keep_place_s``), the old job is dropped and the new one takes the old one's ticket, so the
  session keeps its place ahead of the jobs other sessions asked for later. A session that has been
  answered goes to the back with its next request (:meth:`Job.answered`): otherwise, under load,
  the sessions served first would keep the earliest tickets and be served first again and again. A
  job its owners wait for whole that ends keeps its place for them for ``chain_s``: a page that asks
  for a second heavy result after the first is not sent to the back of the queue in between.

  Answer first, refine without waiting: an owner that has drawn an answer and ends its script run
  holds the job (:meth:`HeavyPool.hold`) for a lease instead of releasing it; it refines while the
  lease runs, each new look (the page's next run) renews it, and a job whose owners' leases have all
  run out, or whose owners are gone (``alive``), is dropped before its next round.
* :func:`configure_process` fixes torch's intra-op threads once per process.

Fair queuing after Demers, Keshav & Shenker (SIGCOMM 1989); the smallest-remaining rule is SRPT
(Schrage 1968); rounds that refine an answer are anytime algorithms (Dean & Boddy, AAAI 1988).
"""

from __future__ import annotations

import atexit
import gc
import itertools
import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import torch

T = TypeVar("T")
Progress = Callable[[float, str], None]

_CONFIGURED = False
_CONFIG_LOCK = threading.Lock()


CGROUP_CPU_MAX = "/sys/fs/cgroup/cpu.max"  # cgroup v2: "<quota> <period>" (µs), or "max <period>"


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity (a cpuset, ``taskset``, ``bench/load.py
    --server-cpus``), else the machine's count, and at most its cgroup's CPU quota rounded up (``docker
    --cpus``, a Kubernetes CPU limit: no cpuset, every host core in the affinity); at least 1. The heavy
    pool runs one worker per core (``ui/waiting.py``) and ``models/offload.py`` one helper process per
    worker, so a container given 2 cores of a 64-core host starts 2 helpers, not 64."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # no affinity on this platform
        cores = os.cpu_count() or 1
    quota = _cgroup_quota_cores(CGROUP_CPU_MAX)
    return max(1, cores if quota is None else min(cores, quota))


def _cgroup_quota_cores(path: str) -> int | None:
    """The cgroup v2 CPU quota in ``path`` as whole cores (rounded up), or None: no quota, no file."""
    try:
        with open(path) as f:
            quota, period = f.read().split()[:2]
        return None if quota == "max" else max(1, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError, ZeroDivisionError):
        return None


def configure_process(threads: int | None = None) -> None:
    """Once per process: torch intra-op threads (``DROPBLOCK_LAB_TORCH_THREADS``, default 1) and a
    frozen start-up heap.

    One intra-op thread per request: sessions already run in parallel, and N sessions × N threads
    on N cores only oversubscribe. ``gc.freeze()`` moves everything imported so far (torch,
    matplotlib, streamlit) out of the collector's reach, so the full collection Streamlit runs
    after every script run (``runner.postScriptGC``) scans only objects made since; that collection
    was about two thirds of the server's CPU per rerun (bench/profile_render.py).
    """
    global _CONFIGURED
    with _CONFIG_LOCK:
        if _CONFIGURED:
            return
        n = threads if threads is not None else int(os.environ.get("DROPBLOCK_LAB_TORCH_THREADS", "1") or 1)
        torch.set_num_threads(max(1, n))
        gc.collect()
        gc.freeze()
        _CONFIGURED = True


def release_memory() -> bool:
    """Collect garbage, then hand the heap's free pages back to the OS (glibc's ``malloc_trim``).

    Called when the shared model cache lets a model go: its weights (hundreds of MB) are freed, but
    glibc keeps freed heap pages mapped, so without a trim the server's RSS would stay at its peak
    after every switch of network. Returns whether the pages were handed back (glibc only)."""
    gc.collect()
    try:
        import ctypes

        return bool(ctypes.CDLL("libc.so.6").malloc_trim(0))
    except (OSError, AttributeError):  # not glibc: nothing to trim
        return False


def lower_thread_priority(nice: int) -> bool:
    """Add ``nice`` to the calling thread's niceness. On Linux a thread is a task with its own
    priority (``setpriority`` on its native id); elsewhere this does nothing and returns False.
    Raising niceness needs no privilege."""
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
    except (AttributeError, OSError):
        return False
    return True


class _Flight:
    __slots__ = ("done", "result", "error")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: object = None
        self.error: BaseException | None = None


class SingleFlight(Generic[T]):
    """A bounded LRU of results keyed by content, where identical concurrent requests compute once.

    Args:
        max_entries: results kept; the least recently used is dropped first.

    ``computations`` counts the calls of ``compute`` actually made (for tests and the bench).
    A failed computation is not cached: its waiters get the same exception, the next call retries.
    """

    def __init__(self, max_entries: int = 64) -> None:
        if max_entries < 1:
            raise ValueError(f"expected max_entries >= 1, but got {max_entries}")
        self.max_entries = max_entries
        self._results: OrderedDict[Hashable, T] = OrderedDict()
        self._flights: dict[Hashable, _Flight] = {}
        self._lock = threading.Lock()
        self.computations = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._results)

    def keys(self) -> list[Hashable]:
        """The keys of the results held, least recently used first (a snapshot)."""
        with self._lock:
            return list(self._results)

    def peek(self, key: Hashable) -> T | None:
        """The held result for ``key`` (now the most recently used), or None; computes nothing."""
        with self._lock:
            if key not in self._results:
                return None
            self._results.move_to_end(key)
            return self._results[key]

    def put(self, key: Hashable, value: T) -> None:
        """Hold ``value`` for ``key`` (results computed elsewhere, e.g. on a :class:`HeavyPool`)."""
        with self._lock:
            self._hold_locked(key, value)

    def clear(self) -> None:
        """Drop every held result (computations in flight still finish and are kept)."""
        with self._lock:
            self._results.clear()

    def _hold_locked(self, key: Hashable, value: T) -> None:
        self._results[key] = value
        self._results.move_to_end(key)
        while len(self._results) > self.max_entries:
            self._results.popitem(last=False)

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        """The cached result for ``key``, else ``compute()`` once for all concurrent callers."""
        with self._lock:
            if key in self._results:
                self._results.move_to_end(key)
                return self._results[key]
            flight = self._flights.get(key)
            leader = flight is None
            if leader:
                flight = self._flights[key] = _Flight()
                self.computations += 1
        if not leader:
            with _waiting_elsewhere():  # a pool worker waiting here hands its place to another
                flight.done.wait()
            if flight.error is not None:
                raise flight.error
            return flight.result  # type: ignore[return-value]
        try:
            result = compute()
        except BaseException as err:
            flight.error = err
            raise
        else:
            flight.result = result
            with self._lock:
                self._hold_locked(key, result)
            return result
        finally:
            with self._lock:
                del self._flights[key]
            flight.done.set()


_WORKER = threading.local()  # .pool: the HeavyPool whose worker this thread is


@contextmanager
def _waiting_elsewhere():
    """Around a wait for work another thread does (another job's computation of a shared result): a
    heavy pool's worker that waits here stops counting as one of the pool's ``workers``, so another
    thread runs rounds meanwhile instead of every worker waiting behind one computation."""
    pool = getattr(_WORKER, "pool", None)
    if pool is None:
        yield
        return
    pool._blocked_change(+1)
    try:
        yield
    finally:
        pool._blocked_change(-1)


def wait_elsewhere(job: Job, timeout: float | None = None) -> bool:
    """``job.wait(timeout)`` by a thread that may be a heavy pool's worker (a job that needs another
    job's result): while it waits it hands its place to another thread, as :class:`SingleFlight`'s
    waiters do, so that the job it waits for gets a worker even in a pool of one."""
    with _waiting_elsewhere():
        return job.wait(timeout)


class Cancelled(Exception):
    """Raised inside a heavy job's progress callback once nobody waits for the job any more."""


class PartialLike(Protocol):
    """What the scheduler reads of a round's result (``models.rounds.Partial``): samples done of total."""

    value: object
    done: int
    total: int

    @property
    def final(self) -> bool: ...


@dataclass(frozen=True)
class Whole:
    """A one-shot computation's result seen as one final round (``Job.latest`` of a plain callable)."""

    value: object
    done: int = 1
    total: int = 1

    @property
    def final(self) -> bool:
        return self.done >= self.total


def _is_round(value: object) -> bool:
    return all(hasattr(value, name) for name in ("value", "done", "total", "final"))


class Job:
    """One heavy computation, shared by every owner that asked for it: queue position, progress,
    the latest round's partial result, the final result.

    ``latest``: the last round's partial (a ``Partial``; :class:`Whole` for a plain callable), None
    before the first round ends. ``version`` counts the partials published (and, once more, the
    job's end); :meth:`wait_change` waits for the next. ``rounds``: rounds done. ``result``: the
    final partial of a rounds job, the value of a plain callable."""

    def __init__(self, pool: HeavyPool, key: Hashable, compute: Callable[[Progress], object],
                 cost: float | None = None) -> None:
        self.pool, self.key, self._compute = pool, key, compute
        self.cost = cost
        self.created = time.monotonic()
        self.owners: set[Hashable] = set()
        self.leases: dict[Hashable, float] = {}  # owner -> monotonic deadline: held, not waiting (HeavyPool.hold)
        self.held_at: dict[Hashable, float] = {}  # owner -> when it last held the job (monotonic)
        self.whole = False  # its owners wait for its last round: nothing is shown before (HeavyPool.submit)
        self.finish = False  # finished even when nobody waits any more, after every other round (HeavyPool.submit)
        self.gated = True  # light work holds its rounds back (HeavyPool.submit)
        self.ticket = 0  # place among the jobs of the same rounds and work left: lower runs first
        self.keep = True  # the pool's cache holds the final result
        self.fraction = 0.0  # progress within the round that runs (the job's own reports)
        self.text = ""
        self.started = False  # its first round has started
        self.running = False  # a round of it runs now
        self.cancelled = False
        self.rounds = 0
        self.latest: PartialLike | None = None
        self.version = 0
        self.done = threading.Event()
        self.result: object = None
        self.error: BaseException | None = None
        self._iter: Iterator | None = None
        self._changed = threading.Condition()

    def __repr__(self) -> str:
        state = "done" if self.done.is_set() else "running" if self.running else "queued"
        return f"Job({self.key!r}, {state}, rounds={self.rounds}, owners={len(self.owners)})"

    def position(self) -> int:
        """Requests ahead of this one before its first round: 0 once that starts (or it is done)."""
        return self.pool._ahead(self)

    @property
    def limited(self) -> bool:
        """Refinement waits for the server: at least one round done, not final, and waiting in the
        queue behind other jobs' rounds (the page says the server is busy and shows what it has)."""
        return self.pool._limited(self)

    def answered(self) -> bool:
        """Whether its owners have been shown a round (a job in rounds after its first, unless they
        wait for the last): a session that has an answer keeps no place in the queue for its next
        request, or under load the sessions served first would be served first again and again."""
        return self.rounds > 0 and not self.whole

    def remaining(self) -> float:
        """Work left: ``total - done`` of the latest partial, else the declared cost (unknown: inf)."""
        latest = self.latest
        if latest is not None:
            return max(0.0, float(latest.total - latest.done))
        return math.inf if self.cost is None else float(self.cost)

    def progress(self, fraction: float, text: str) -> None:
        """The job's own report within a round; raises :class:`Cancelled` once nobody waits."""
        if self.cancelled:
            raise Cancelled
        self.fraction, self.text = fraction, text

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the end (final result, error or cancel); whether it came within ``timeout``."""
        return self.done.wait(timeout)

    def wait_change(self, version: int, timeout: float | None = None) -> bool:
        """Wait until ``self.version`` differs from ``version`` (a new partial, or the end); whether
        it did within ``timeout``."""
        with self._changed:
            return self._changed.wait_for(lambda: self.version != version, timeout)

    def value(self):
        """The final result (after ``done``); re-raises the job's error."""
        if self.error is not None:
            raise self.error
        return self.result

    def _order(self) -> tuple[int, int, float, int]:
        # A job whose owners wait for its end (``whole``) has shown nothing yet: its later rounds go
        # right after the waiting first rounds, ahead of every refinement.
        if self.finish and not self.owners:  # nobody waits: after every round someone does
            return math.inf, 0, self.remaining(), self.ticket
        if self.whole:
            return 0, int(self.rounds > 0), self.remaining(), self.ticket
        return self.rounds, 0, self.remaining(), self.ticket

    def _publish(self, part: PartialLike) -> None:
        with self._changed:
            self.latest = part
            self.rounds += 1
            self.version += 1
            self._changed.notify_all()

    def _end(self, error: BaseException | None = None) -> None:
        with self._changed:
            if self.done.is_set():
                return
            if error is not None:
                self.error = error
            self.version += 1
            self.done.set()
            self._changed.notify_all()

    def _close(self) -> None:
        """Close a rounds iterator that will not run again (its ``finally`` blocks run here)."""
        it, self._iter = self._iter, None
        close = getattr(it, "close", None)
        if close is not None:
            try:
                close()
            except Exception:  # noqa: BLE001 -- a generator failing while it is dropped changes nothing
                pass

    def _step(self) -> str:
        """Run one round in the calling worker: "more", "final" (``result`` set), "ended" (the rounds
        stopped before a final partial: ``result`` is the last one, not cached) or "error"."""
        try:
            if self.cancelled:
                raise Cancelled
            self.started = True
            if self._iter is None and self.rounds == 0:
                out = self._compute(self.progress)
                if not isinstance(out, Iterator):  # a plain callable: one final round
                    self.result = out
                    self._publish(Whole(out))
                    return "final"
                self._iter = out
            try:
                part = next(self._iter)
            except StopIteration:  # ended before a final partial: the last one is the result
                if self.latest is None:
                    raise ValueError("expected at least one partial result, but the rounds ended without one") from None
                self.result = self.latest
                return "ended"
            if not _is_round(part):
                raise TypeError(f"expected a partial result with value, done, total and final, but got "
                                f"{type(part).__name__}")
            self._publish(part)
            if part.final:
                self.result = part
                self._close()
                return "final"
            return "more"
        except BaseException as err:  # handed to the waiters
            self.error = err
            self._close()
            return "error"


_TRACE: list = []  # [file or None], opened on first use


def _trace(job: Job, status: str, started: float, cpu: float, queued: int, running: int) -> None:
    """One line per round to the file named by ``DROPBLOCK_LAB_JOB_TRACE`` (bench/load.py sets it for
    the server it starts): when the job was made, when its round started and ended, the round's CPU."""
    if not _TRACE:
        path = os.environ.get("DROPBLOCK_LAB_JOB_TRACE")
        _TRACE.append(open(path, "a", buffering=1) if path else None)  # noqa: SIM115
    if _TRACE[0] is None:
        return
    now = time.monotonic()
    title = str(job.key[0] if isinstance(job.key, tuple) else job.key)[:40]  # a view's key starts with its name
    _TRACE[0].write(f"{title}\t{job.rounds}\t{status}\t{job.created:.3f}\t{started:.3f}\t{now:.3f}\t"
                    f"{time.thread_time() - cpu:.3f}\t{queued}\t{running}\t{int(job.whole)}\n")


class HeavyPool:
    """``workers`` threads that run heavy jobs round by round, fairly; one job per owner; identical
    requests share a job; light work goes first.

    Args:
        workers: rounds that run at once.
        cache: final results by key, so a repeated request returns at once.
        nice: added to the workers' niceness (Linux: per thread), 0 = unchanged. With a positive
            value the light requests, in the sessions' own threads, are scheduled first, so one
            worker per core takes only the CPU they leave idle.
        keep_place_s: how long an owner that let an unfinished job go keeps its ticket.
        light_wait_s: the longest a worker holds back a round while light work runs (:meth:`light`).
        chain_s: how long the owners of a job that ended keep its place for their next request.
        alive: ``alive(owner)`` tells whether an owner (a session) still exists; a held job whose
            owners are all gone is dropped before its next round (default: every owner is alive).
        failed_keep_s: how long a job that failed (not cancelled) is what :meth:`submit` returns for
            its key to the owners it had: their next look (a refining view's next tick) sees the
            error, instead of starting the same rounds again, only to fail again, without ever
            showing why. Anyone else asking runs it again.

    Making a pool starts no thread: the workers start with the first job.
    """

    def __init__(self, workers: int = 1, cache: SingleFlight | None = None, nice: int = 0,
                 keep_place_s: float = 10.0, light_wait_s: float = 0.25, chain_s: float = 1.0,
                 alive: Callable[[Hashable], bool] | None = None, failed_keep_s: float = 10.0) -> None:
        if workers < 1:
            raise ValueError(f"expected workers >= 1, but got {workers}")
        if not 0 <= nice <= 19:
            raise ValueError(f"expected nice in [0, 19], but got {nice}")
        if not keep_place_s >= 0:
            raise ValueError(f"expected keep_place_s >= 0, but got {keep_place_s}")
        if not light_wait_s >= 0:
            raise ValueError(f"expected light_wait_s >= 0, but got {light_wait_s}")
        self.nice = nice
        self.keep_place_s = keep_place_s
        self.light_wait_s = light_wait_s
        self.chain_s = chain_s
        self.alive = alive
        self.failed_keep_s = failed_keep_s
        self._failed: dict[Hashable, tuple[Job, float, frozenset]] = {}  # key -> (failed job, until, its owners)
        self.cache: SingleFlight = cache or SingleFlight(16)
        self._queue: list[Job] = []  # jobs waiting for a round, in no order: the next is min(_order)
        self._tickets = itertools.count(1)
        self._places: dict[Hashable, tuple[int, float]] = {}  # owner -> (ticket, until): an unfinished job let go
        self._jobs: dict[Hashable, Job] = {}  # key -> job queued or running
        self._by_owner: dict[Hashable, Job] = {}
        self._running: list[Job] = []
        self._light = 0  # light sections running now
        self._closing: list[Job] = []  # dropped under the lock by a worker: closed by it outside the lock
        self._cond = threading.Condition()
        self.computations = 0  # jobs whose first round started
        self.rounds_run = 0
        self.workers = workers
        self._started = False
        self._stopping = False
        self._threads: list[threading.Thread] = []
        self._blocked = 0  # workers waiting for a shared result another thread computes (_waiting_elsewhere)
        self._names = itertools.count()

    def _start_locked(self) -> None:
        if not self._started:
            self._started = True
            for _ in range(self.workers):
                self._spawn_locked()
            atexit.register(self.shutdown)

    def _spawn_locked(self) -> None:
        thread = threading.Thread(target=self._worker, name=f"heavy-{next(self._names)}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _blocked_change(self, delta: int) -> None:
        """A worker starts (+1) or stops (-1) waiting for a result another thread computes. While it
        waits it does not count: a thread is added so that ``workers`` threads can run rounds; once it
        goes on, the first thread to look for a round while there are more than ``workers`` ends."""
        with self._cond:
            self._blocked += delta
            if delta > 0 and not self._stopping and len(self._threads) - self._blocked < self.workers:
                self._spawn_locked()

    @staticmethod
    def _refines(job: Job) -> bool:
        """A round nobody waits for now: a later round of an answered job, or a finished-anyway job's."""
        return job._order()[0] > 0

    def shutdown(self, timeout: float = 2.0) -> None:
        """Cancel every job and let the workers end (at exit: jobs refine after their page's run, and
        a worker still inside a torch op when the interpreter finalises would abort the process)."""
        with self._cond:
            self._stopping = True
            for job in self._running:
                job.cancelled = True  # stops at its next progress report or the end of its round
            dropped, self._queue = self._queue, []
            for job in dropped:
                job.cancelled = True
            self._jobs.clear()
            self._cond.notify_all()
            threads = list(self._threads)
        for job in dropped:
            job._close()
            job._end(Cancelled())
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def cached(self, key: Hashable):
        """The final result held for ``key``, or None (nothing is started)."""
        return self.cache.peek(key)

    @contextmanager
    def light(self):
        """Light work (run in a session's own thread) inside this: no worker starts a round while any
        runs, for at most ``light_wait_s`` per round, so heavy work cannot starve. Rounds already
        running go on (at their lower priority). Starts no thread."""
        with self._cond:
            self._light += 1
        try:
            yield
        finally:
            with self._cond:
                self._light -= 1
                if not self._light:
                    self._cond.notify_all()

    def submit(self, owner: Hashable, key: Hashable, compute: Callable[[Progress], object], *,
               keep: bool = True, cost: float | None = None, whole: bool = False, finish: bool = False,
               gated: bool = True) -> Job:
        """The job for ``key`` (a new one, the one already queued/running, or a finished one from the
        cache), owned by ``owner``; the owner's previous job, if different, is released (and dropped
        if nobody else waits).

        Args:
            compute: ``compute(progress)`` returns an iterator of partial results, one per round (a
                generator function), or the result itself (one final round). ``progress(fraction,
                text)`` raises :class:`Cancelled` once nobody waits.
            keep: the pool's cache holds the final result; ``False``: the caller keeps it elsewhere
                (unless another request for the same key asks for it to be kept).
            cost: the work before its first round is known (same unit as a partial's ``total -
                done``); smaller first among first rounds. None: unknown, after those declared.
            whole: the owner shows only the last round (a one-shot result computed in rounds so that
                others' first rounds go between them): all its rounds are ordered as first rounds.
            finish: when nobody waits any more, the job is not dropped but finished after every round
                someone waits for (a result every session that shows the same model and image asks
                for, e.g. a keep_prob scan: the next request finds its rounds so far, not a new job).
            gated: light work holds its rounds back (:meth:`light`); ``False`` for a job whose rounds
                run in another process (``models/offload.py``), which takes no GIL from light work.

        The owner keeps its place: a job asked for while the owner's previous job was unfinished
        (waiting or running, or let go less than ``keep_place_s`` ago) takes that job's ticket,
        ahead of every job asked for after it; otherwise it takes a new ticket (the back).
        """
        dropped: list[Job] = []
        with self._cond:
            now = time.monotonic()
            for who in [w for w, (_, until) in self._places.items() if until < now]:
                del self._places[who]
            previous = self._by_owner.get(owner)
            if previous is not None and previous.key != key and not previous.done.is_set():
                dropped += self._release_locked(owner, previous)  # inputs changed: dropped unless shared; place kept
            job = self._jobs.get(key)
            for gone in [k for k, (_, until, _) in self._failed.items() if until < now]:
                del self._failed[gone]
            failed = self._failed.get(key)
            if job is None and failed is not None and owner in failed[2]:  # its error, not the same rounds again
                return self._after_release(failed[0], dropped)
            if job is None or job.cancelled:
                hit = self.cache.peek(key)
                if hit is not None:  # finished meanwhile: nothing to run, nothing to own
                    self._places.pop(owner, None)
                    job = Job(self, key, compute)
                    job.result, job.latest, job.rounds = hit, hit if _is_round(hit) else Whole(hit), 1
                    job._end()
                    return self._after_release(job, dropped)
            place = self._places.pop(owner, None)
            if job is None or job.cancelled:
                self._start_locked()
                job = Job(self, key, compute, cost)
                job.keep, job.gated = keep, gated
                job.ticket = place[0] if place is not None else next(self._tickets)
                self._jobs[key] = job
                self._queue.append(job)
                self._cond.notify()
            elif place is not None and place[0] < job.ticket:
                job.ticket = place[0]  # a shared job behind this owner's place moves up to it
            job.keep = job.keep or keep
            job.whole = job.whole or whole
            job.finish = job.finish or finish
            previous = self._by_owner.get(owner)
            if previous is not None and previous is not job:
                dropped += self._release_locked(owner, previous)
            job.owners.add(owner)
            job.leases.pop(owner, None)  # waiting again: no lease runs out while it waits
            self._by_owner[owner] = job
        return self._after_release(job, dropped)

    @staticmethod
    def _after_release(job: Job, dropped: list[Job]) -> Job:
        for gone in dropped:  # outside the lock: a generator's finally is the job's code
            gone._close()
        return job

    def hold(self, owner: Hashable, job: Job, seconds: float) -> None:
        """``owner`` shows ``job``'s answer and stops waiting, but wants its refinement for ``seconds``
        more: the job goes on unless the lease runs out (or the owner is gone) before another look
        (:meth:`submit` of the same key) renews it. Releasing or asking for another key ends it at once."""
        with self._cond:
            if owner in job.owners and not job.done.is_set():
                job.leases[owner] = time.monotonic() + seconds
                job.held_at[owner] = time.monotonic()

    def drop_held(self, owner: Hashable, before: float) -> None:
        """Let go at once of the jobs ``owner`` holds (:meth:`hold`) but has not looked at since
        ``before`` (a monotonic time): a page run that ended without asking for them again (another
        page, a cancel) wants them no more, and need not wait for their leases to run out."""
        with self._cond:
            stale = [job for job in self._jobs.values()  # every job queued or running
                     if owner in job.leases and job.held_at.get(owner, 0.0) < before]
            dropped = [gone for job in stale for gone in self._release_locked(owner, job)]
        for gone in dropped:
            gone._close()

    def _expire_locked(self) -> list[Job]:
        """Forget the owners whose lease ran out or who are gone; drop the jobs nobody holds."""
        now, dropped = time.monotonic(), []
        for job in list(self._queue):
            gone = [o for o, until in job.leases.items() if until < now or (self.alive is not None and not self.alive(o))]
            for owner in gone:
                job.leases.pop(owner, None)
                dropped += self._release_locked(owner, job)
        return dropped

    def release(self, owner: Hashable, job: Job) -> None:
        """``owner`` no longer waits for ``job`` (navigated away, closed the tab, asked for another)."""
        with self._cond:
            dropped = self._release_locked(owner, job)
        self._after_release(job, dropped)

    def _release_locked(self, owner: Hashable, job: Job) -> list[Job]:
        """Forget ``owner`` on ``job``; drop the job if nobody waits. Returns the job if it was queued
        (its iterator is to be closed outside the lock), else nothing."""
        if owner in job.owners and not job.done.is_set() and not job.answered():
            self._places[owner] = (job.ticket, time.monotonic() + self.keep_place_s)
        job.owners.discard(owner)
        job.leases.pop(owner, None)
        job.held_at.pop(owner, None)
        if self._by_owner.get(owner) is job:
            del self._by_owner[owner]
        if job.owners or job.done.is_set() or job.finish:
            return []
        job.cancelled = True  # running: stops at its next progress report or at the end of its round
        if self._jobs.get(job.key) is job:
            del self._jobs[job.key]
        if job in self._queue:
            self._queue.remove(job)
            job._end(Cancelled())
            return [job]
        return []

    def _ahead(self, job: Job) -> int:
        with self._cond:
            if job.started or job.done.is_set() or job not in self._queue:
                return 0
            order = job._order()
            return sum(1 for j in self._queue if j is not job and j._order() < order) + len(self._running)

    def _limited(self, job: Job) -> bool:
        with self._cond:
            if not job.rounds or job.done.is_set() or job.running or job not in self._queue:
                return False
            order = job._order()
            return any(j._order() < order for j in self._queue if j is not job)

    def _next_locked(self) -> Job | None:
        """Wait for a job to run and for the light gate; take the round that goes first. None: jobs
        were dropped (leases over) and are to be closed outside the lock first."""
        held_since: float | None = None
        while True:
            if self._stopping:
                return None
            if not self._queue and self._closing:
                return None
            if not self._queue:
                held_since = None
                self._cond.wait()
                continue
            expired = self._expire_locked()
            if expired:
                self._closing += expired
                continue
            job = min(self._queue, key=Job._order)
            if self._light and job.gated:
                now = time.monotonic()
                held_since = now if held_since is None else held_since
                left = held_since + self.light_wait_s - now
                if left > 0:
                    self._cond.wait(left)
                    continue
            if self._refines(job) and self.workers > 1 and \
                    sum(map(self._refines, self._running)) >= self.workers - 1:
                # One worker is kept for the rounds someone waits for: a first round that comes
                # while others refine starts at once, not after a refinement round (seconds long).
                self._cond.wait(0.5)
                continue
            self._queue.remove(job)
            return job

    def _worker(self) -> None:
        if self.nice:
            lower_thread_priority(self.nice)
        _WORKER.pool = self
        while True:
            with self._cond:
                if self._stopping:
                    return
                if len(self._threads) - self._blocked > self.workers:  # a waiting worker went on: one too many
                    self._threads.remove(threading.current_thread())
                    return
                job = self._next_locked()
                closing, self._closing = self._closing, []
                if job is not None:
                    self._running.append(job)
                    job.running = True
                    self.computations += not job.started
                    self.rounds_run += 1
            for gone in closing:  # dropped when their leases ran out: closed outside the lock (job code)
                gone._close()
            if job is None:
                continue
            status, started, cpu = "error", time.monotonic(), time.thread_time()
            try:
                status = job._step()
            finally:
                _trace(job, status, started, cpu, len(self._queue), len(self._running))
                with self._cond:
                    self._running.remove(job)
                    job.running = False
                    if status == "more" and (job.cancelled or not (job.owners or job.finish)):
                        status = "dropped"
                    if status == "more":
                        self._queue.append(job)
                        self._cond.notify()
                    else:
                        if self._jobs.get(job.key) is job:
                            del self._jobs[job.key]
                        if status == "error" and not isinstance(job.error, Cancelled) and self.failed_keep_s > 0:
                            self._failed[job.key] = (job, time.monotonic() + self.failed_keep_s,
                                                     frozenset(job.owners))
                        for owner in list(job.owners):
                            if self._by_owner.get(owner) is job:
                                del self._by_owner[owner]
                            if status == "final" and self.chain_s > 0 and job.whole:  # its next request keeps its place
                                self._places[owner] = (job.ticket, time.monotonic() + self.chain_s)
                if status == "final" and job.keep:
                    self.cache.put(job.key, job.result)  # before done: a waiter that sees done finds it
                if status == "dropped":
                    job._close()
                    job._end(Cancelled())
                elif status != "more":
                    job._end()
