"""Serving many sessions from one process: compute once, keep heavy work from blocking light work.

Imports only torch and the standard library (no streamlit), so it is tested with plain threads.

* :class:`SingleFlight` caches results by content key (model, image hash, parameters, seed). A
  request identical to one already running waits for it instead of computing again; results are
  immutable and shared by every session; the least recently used are dropped past ``max_entries``.
* :class:`HeavyPool` runs expensive requests (the robustness curve, many Monte Carlo samples) on a
  bounded number of worker threads, so they queue among themselves while light requests (a slider
  move) keep running in the sessions' own threads. The workers can run at a lower scheduling
  priority (``nice``): they take every core the light requests leave idle, and give it back at
  once when a slider moves. Identical requests share one job; a job reports
  its queue position and progress; each owner (a session) has at most one job at a time, and a job
  nobody waits for any more is cancelled cooperatively at its next progress report. The queue is
  ordered by ticket, not by arrival of the latest request: when an owner's inputs change (it asks
  for another key while its job waits or runs, or it stops waiting and asks again within
  ``keep_place_s``), the old job is cancelled and the new one takes the old one's ticket, so the
  session keeps its place ahead of the jobs other sessions asked for later.
* :func:`configure_process` fixes torch's intra-op threads once per process.
"""

from __future__ import annotations

import bisect
import gc
import itertools
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

import torch

T = TypeVar("T")
Progress = Callable[[float, str], None]

_CONFIGURED = False
_CONFIG_LOCK = threading.Lock()


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
            self._results[key] = value
            self._results.move_to_end(key)
            while len(self._results) > self.max_entries:
                self._results.popitem(last=False)

    def clear(self) -> None:
        """Drop every held result (computations in flight still finish and are kept)."""
        with self._lock:
            self._results.clear()

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
                self._results[key] = result
                while len(self._results) > self.max_entries:
                    self._results.popitem(last=False)
            return result
        finally:
            with self._lock:
                del self._flights[key]
            flight.done.set()


class Cancelled(Exception):
    """Raised inside a heavy job's progress callback once nobody waits for the job any more."""


class Job:
    """One heavy computation: queue position, progress, result; shared by every owner that asked."""

    def __init__(self, pool: HeavyPool, key: Hashable, compute: Callable[[Progress], object]) -> None:
        self.pool, self.key, self._compute = pool, key, compute
        self.owners: set[Hashable] = set()
        self.ticket = 0  # place in the queue: lower runs first (HeavyPool)
        self.keep = True  # the pool's cache holds the result when done
        self.fraction = 0.0
        self.text = ""
        self.started = False
        self.cancelled = False
        self.done = threading.Event()
        self.result: object = None
        self.error: BaseException | None = None

    def position(self) -> int:
        """Requests ahead of this one: 0 once it runs (or is done)."""
        return self.pool._ahead(self)

    def progress(self, fraction: float, text: str) -> None:
        if self.cancelled:
            raise Cancelled
        self.fraction, self.text = fraction, text

    def wait(self, timeout: float | None = None) -> bool:
        return self.done.wait(timeout)

    def value(self):
        """The result (after ``done``); re-raises the job's error."""
        if self.error is not None:
            raise self.error
        return self.result

    def _run(self) -> None:
        try:
            if self.cancelled:
                raise Cancelled
            self.started = True
            self.result = self._compute(self.progress)
        except BaseException as err:  # handed to the waiters
            self.error = err
        finally:
            self.done.set()


class HeavyPool:
    """``workers`` threads for expensive requests; one job per owner; identical requests share a job.

    Args:
        workers: jobs that run at once.
        cache: finished results by key, so a repeated request returns at once.
        nice: added to the workers' niceness (Linux: per thread), 0 = unchanged. With a positive
            value the light requests, in the sessions' own threads, are scheduled first, so one
            worker per core takes only the CPU they leave idle.
    """

    def __init__(self, workers: int = 1, cache: SingleFlight | None = None, nice: int = 0,
                 keep_place_s: float = 10.0) -> None:
        if workers < 1:
            raise ValueError(f"expected workers >= 1, but got {workers}")
        if not 0 <= nice <= 19:
            raise ValueError(f"expected nice in [0, 19], but got {nice}")
        if not keep_place_s >= 0:
            raise ValueError(f"expected keep_place_s >= 0, but got {keep_place_s}")
        self.nice = nice
        self.keep_place_s = keep_place_s
        self.cache: SingleFlight = cache or SingleFlight(16)
        self._queue: list[Job] = []  # sorted by ticket
        self._tickets = itertools.count(1)
        self._places: dict[Hashable, tuple[int, float]] = {}  # owner -> (ticket, until): an unfinished job let go
        self._jobs: dict[Hashable, Job] = {}  # key -> job queued or running
        self._by_owner: dict[Hashable, Job] = {}
        self._running: list[Job] = []
        self._cond = threading.Condition()
        self.computations = 0
        self.workers = workers
        self._started = False  # the workers start with the first job: making a pool starts no thread

    def _start_locked(self) -> None:
        if not self._started:
            self._started = True
            for i in range(self.workers):
                threading.Thread(target=self._worker, name=f"heavy-{i}", daemon=True).start()

    def cached(self, key: Hashable):
        with self.cache._lock:
            return self.cache._results.get(key)

    def submit(self, owner: Hashable, key: Hashable, compute: Callable[[Progress], object], *,
               keep: bool = True) -> Job:
        """The job for ``key`` (a new one, or the one already queued/running), owned by ``owner``;
        the owner's previous job, if different, is released (and cancelled if nobody else waits).
        ``keep=False``: the pool's cache does not hold the result (the caller keeps it elsewhere)
        unless another request for the same key asks it to.

        The owner keeps its place: a job asked for while the owner's previous job was unfinished
        (waiting or running, or let go less than ``keep_place_s`` ago) is queued at that job's
        ticket, ahead of every job asked for after it; otherwise it joins the back of the queue.
        """
        with self._cond:
            self._start_locked()
            now = time.monotonic()
            for who in [w for w, (_, until) in self._places.items() if until < now]:
                del self._places[who]
            previous = self._by_owner.get(owner)
            if previous is not None and previous.key != key and not previous.done.is_set():
                self._release_locked(owner, previous)  # inputs changed: cancelled unless shared; place kept
            place = self._places.pop(owner, None)
            job = self._jobs.get(key)
            if job is None or job.cancelled:
                job = Job(self, key, compute)
                job.keep = keep
                job.ticket = place[0] if place is not None else next(self._tickets)
                self._jobs[key] = job
                bisect.insort(self._queue, job, key=lambda j: j.ticket)
                self._cond.notify()
            elif place is not None and place[0] < job.ticket and job in self._queue:
                self._queue.remove(job)  # a shared job waiting behind this owner's place moves up to it
                job.ticket = place[0]
                bisect.insort(self._queue, job, key=lambda j: j.ticket)
            job.keep = job.keep or keep
            previous = self._by_owner.get(owner)
            if previous is not None and previous is not job:
                self._release_locked(owner, previous)
            job.owners.add(owner)
            self._by_owner[owner] = job
            return job

    def release(self, owner: Hashable, job: Job) -> None:
        """``owner`` no longer waits for ``job`` (navigated away, closed the tab, asked for another)."""
        with self._cond:
            self._release_locked(owner, job)

    def _release_locked(self, owner: Hashable, job: Job) -> None:
        if owner in job.owners and not job.done.is_set():
            self._places[owner] = (job.ticket, time.monotonic() + self.keep_place_s)
        job.owners.discard(owner)
        if self._by_owner.get(owner) is job:
            del self._by_owner[owner]
        if not job.owners and not job.done.is_set():
            job.cancelled = True
            if job in self._queue:
                self._queue.remove(job)
                job.error = Cancelled()
                job.done.set()
            if self._jobs.get(job.key) is job:
                del self._jobs[job.key]

    def _ahead(self, job: Job) -> int:
        with self._cond:
            if job.started or job.done.is_set():
                return 0
            try:
                return self._queue.index(job) + len(self._running)
            except ValueError:
                return 0

    def _worker(self) -> None:
        if self.nice:
            lower_thread_priority(self.nice)
        while True:
            with self._cond:
                while not self._queue:
                    self._cond.wait()
                job = self._queue.pop(0)
                self._running.append(job)
                self.computations += 1
            try:
                job._run()
                if job.error is None and job.keep:
                    with self.cache._lock:
                        self.cache._results[job.key] = job.result
                        while len(self.cache._results) > self.cache.max_entries:
                            self.cache._results.popitem(last=False)
            finally:
                with self._cond:
                    self._running.remove(job)
                    if self._jobs.get(job.key) is job:
                        del self._jobs[job.key]
                    for owner in list(job.owners):
                        if self._by_owner.get(owner) is job:
                            del self._by_owner[owner]
