"""Waiting on the heavy pool, for ``ui/view.py``'s views: a one-shot heavy view's place in the queue
and progress (:func:`wait_for`), and a view in rounds (:class:`Rounds`): its first answer drawn, then
each new round in place by a fragment the browser reruns every :data:`TICK_S` (:func:`progressive`),
or only its final value (:func:`final`).

The pool is made on first use (its workers on its first job): importing this module starts no thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from models import jobs
from ui import layout
from ui.i18n import _, ngettext, tr
from ui.preempt import interruption, pending, session_alive, stop_ticking

DRAW_EVERY_S = 1.0  # a view in rounds redraws its result at most this often (the status line every round)
TICK_S = 2.0  # a refining view's fragment reruns this often (the browser's timer) until its final round
LEASE_S = 3 * TICK_S + 2.0  # a refining job with no look for this long is dropped (the page was left)
_LOCK = threading.Lock()
_POOL: jobs.HeavyPool | None = None


def pool() -> jobs.HeavyPool:
    """The heavy pool: one low-priority worker per usable core (``jobs.usable_cores``), made on first use
    (its workers on its first job). A heavy round takes the cores the light requests leave idle (nice 19
    weighs 15 against 1024).
    Finished results are kept by their views, not by the pool (its own cache holds one)."""
    global _POOL
    with _LOCK:
        if _POOL is None:
            _POOL = jobs.HeavyPool(workers=jobs.usable_cores(), cache=jobs.SingleFlight(max_entries=1), nice=19,
                                   alive=session_alive)
        return _POOL


AHEAD = "ahead"  # the heavy pool's owner of the jobs started before anyone asks (Rounds.ahead), at once let go


def _owner() -> str:
    run = get_script_run_ctx()
    return run.session_id if run is not None else f"thread-{threading.get_ident()}"


def let_go_unseen(since: float) -> None:
    """At the end of a page's full run: the refining jobs this session holds but did not ask for again
    during the run (``since``: when it started) are let go at once (another page, a cancel)."""
    if _POOL is not None:
        _POOL.drop_held(_owner(), since)


def submit(key: tuple, run: Callable[[jobs.Progress], Any], whole: bool = False, finish: bool = False,
           gated: bool = True) -> jobs.Job:
    return pool().submit(_owner(), key, run, whole=whole, finish=finish, gated=gated)


def _waiting_text(job: jobs.Job, title: str) -> str:
    ahead = job.position()
    if ahead:
        return ngettext("{title}: waiting for the server, {n} request ahead of yours…",
                        "{title}: waiting for the server, {n} requests ahead of yours…", ahead).format(title=title, n=ahead)
    return f"{title}: {tr(job.text)}" if job.text else f"{title}…"


def wait_for(job: jobs.Job, title: str):
    """Wait for a one-shot heavy job, showing its queue position, then its progress."""
    holder, stop = st.empty(), _interruption()
    try:
        shown, last = None, 0.0
        while not job.wait(0.1):
            if stop():
                holder.empty()  # the yield point: Streamlit raises its rerun or stop here
                shown = None
            text, now = _waiting_text(job, title), time.monotonic()
            # Redraw on change, and at least every second: each st call is where Streamlit stops
            # this script for a rerun, another page or a closed tab.
            if (text, round(job.fraction, 2)) != shown or now - last > 1.0:
                holder.progress(min(1.0, job.fraction), text=text)
                shown, last = (text, round(job.fraction, 2)), now
    finally:
        if not job.done.is_set():
            pool().release(_owner(), job)  # cancelled unless another session waits for it
        holder.empty()
    return job.value()


def _round_text(part, job: jobs.Job | None) -> str:
    text = _("{done} of {total} samples").format(done=part.done, total=part.total)
    if part.final or job is None:
        return text
    if job.limited:
        return _("{samples}: the server is busy; it will refine when it is free.").format(samples=text)
    return _("{samples}; refining…").format(samples=text)


class Rounds:
    """What a view in rounds returns: iterating it yields the rounds as they come (the last one
    final, waiting for it); :meth:`answer` yields the round there is (or, before any, the first),
    and leaves the job refining on a lease. Each iteration asks again (a fragment's rerun does)."""

    def __init__(self, cache: jobs.SingleFlight, key: tuple, run: Callable[[jobs.Progress], Any], title: str,
                 finish: bool = False, gated: bool = True) -> None:
        self.cache, self.key, self.title, self.finish, self.gated = cache, key, title, finish, gated

        def kept(progress: jobs.Progress):
            out = run(progress)
            if not isinstance(out, Iterator):
                return out
            return _keeping(out, cache, key)

        self.run = kept

    def __iter__(self) -> Iterator:
        return _rounds(self.cache, self.key, self.run, self.title, finish=self.finish, gated=self.gated)

    def answer(self, wait: bool = True, said: bool = True) -> Iterator:
        """The answer there is now (the final one if held), after waiting only for a first round
        (``wait``; else none, if there is no round yet: the waiting line says where the job is).
        ``said``: the status line says how many samples the answer holds (else the caller does)."""
        return _rounds(self.cache, self.key, self.run, self.title, answer=True, wait=wait, said=said,
                       finish=self.finish, gated=self.gated)

    def final(self):
        """The final round if it is held, else None (nothing is started)."""
        return self.cache.peek(self.key)

    def start(self) -> Rounds:
        """Ask for the job now, without waiting for it: a page that draws light parts above the view
        starts it first, so that its first round computes (in a helper process) while they are drawn;
        :func:`progressive` then finds it, or its first answer, further down."""
        if self.cache.peek(self.key) is None:
            submit(self.key, self.run, finish=self.finish, gated=self.gated)
        return self

    def ahead(self) -> jobs.Job | None:
        """Start the job for nobody, before anyone asks (a ``finish`` view's shared result): it runs
        after every round a session waits for, to its end, and its final round is kept with the view's
        results; a session that asks meanwhile joins it. None if the result is held already.

        Raises:
            ValueError: for a view that is not ``finish`` (nobody would wait for it: it would be dropped).
        """
        if not self.finish:
            raise ValueError("expected a finish view: a job nobody owns is otherwise dropped at once")
        if self.cache.peek(self.key) is not None:
            return None
        cache, key, run = self.cache, self.key, self.run

        def unless_held(progress: jobs.Progress):  # found meanwhile (computed another way): not again
            held = cache.peek(key)
            return held if held is not None else run(progress)

        job = pool().submit(AHEAD, key, unless_held, finish=True, gated=self.gated)
        pool().release(AHEAD, job)
        return job


@dataclass(frozen=True)
class _Meanwhile:
    """A chain's first view's last round, shown while the second has none yet: never the last."""

    value: Any
    done: int
    total: int
    final: bool = False


class Chain:
    """Two views in rounds drawn as one, the second made from the first's final value (the curve on
    the grid its keep_prob scan measured): the first's rounds until it is whole, then the second's.
    Answers as :class:`Rounds` does (:func:`progressive` draws it); ``draw`` gets either view's values."""

    def __init__(self, first: Rounds, then: Callable[[Any], Rounds]) -> None:
        self.first, self.then = first, then

    def final(self):
        whole = self.first.final()
        return None if whole is None else self.then(whole.value).final()

    def answer(self, wait: bool = True, said: bool = True) -> Iterator:
        whole = self.first.final()
        if whole is None:
            for whole in self.first.answer(wait, said):
                if not whole.final:
                    yield whole
            if whole is None or not whole.final:
                return
        shown = False
        for part in self.then(whole.value).answer(wait, said):
            shown = True
            yield part
        if not shown:  # in a tick, before the second's first round: the first's last, not an empty place
            yield _Meanwhile(whole.value, whole.done, whole.total)


def _keeping(parts: Iterator, cache: jobs.SingleFlight, key: tuple) -> Iterator:
    """The rounds, the final one kept in the view's results by the worker itself: a job that
    finishes while nobody waits (refining between a page's runs) is still kept."""
    for part in parts:
        if getattr(part, "final", False):
            cache.put(key, part)
        yield part


def _rounds(cache: jobs.SingleFlight, key: tuple, run: Callable[[jobs.Progress], Any], title: str,
            answer: bool = False, wait: bool = True, said: bool = True, whole: bool = False,
            finish: bool = False, gated: bool = True) -> Iterator:
    """The rounds of a view in rounds, as they come (the last one final), with a status line.
    ``answer``: only the latest round (waiting for the first if none yet and ``wait``); the job is
    then held, not released, so it refines after this run ends. ``whole``: the caller waits for the
    last round (its rounds are scheduled as first rounds, ``HeavyPool.submit``). ``finish``: the job is
    finished even if nobody waits for it any more (``HeavyPool.submit``). ``gated``: light work in this
    process holds its rounds back (``HeavyPool.submit``; not for rounds run in a helper process)."""
    found = cache.peek(key)
    if found is not None:
        if said:
            st.caption(_round_text(found, None))
        yield found
        return
    job, status, stop, asked = submit(key, run, whole, finish, gated), st.empty(), _interruption(), pending()
    version, shown, last, drawn = 0, None, 0.0, None
    try:
        while True:
            # The end is read before the round: a job publishes its last round before it ends, so an
            # end seen first with no round is a job that ended without one (an error or a cancel).
            # Read the other way round, a round published between the two reads would be lost.
            ended = job.done.is_set()
            if ended and job.error is not None and not isinstance(job.error, jobs.Cancelled):
                job.value()  # failed (maybe after rounds shown before): the error, not its last round again
            part = job.latest
            if job.version != version and part is not None:
                version = job.version
                if said:
                    status.caption(_round_text(part, job))
                else:
                    status.empty()
                shown, now = ("part", part.done, job.limited), time.monotonic()
                if part.final:
                    cache.put(key, part)
                # the first round, the final one, and between them a redraw at most every DRAW_EVERY_S
                if part.final or drawn is None or now - drawn >= DRAW_EVERY_S:
                    drawn = now
                    yield part
                if part.final or answer:
                    return
            if ended and (job.version == version or part is None):
                job.value()  # a cancelled job raises Cancelled here (one with no round too); a finished one returns
                return
            if not wait:  # no round yet: say where the job is, and come back at the next tick
                status.progress(min(1.0, job.fraction), text=_waiting_text(job, title))
                return
            job.wait_change(version, 0.1)
            if drawn is not None and asked():  # shown already, and the visitor asked for something else
                return
            if stop():
                status.empty()
                shown = None
            now = time.monotonic()
            if part is None:
                text = _waiting_text(job, title)
                if ("wait", text, round(job.fraction, 2)) != shown or now - last > 1.0:
                    status.progress(min(1.0, job.fraction), text=text)
                    shown, last = ("wait", text, round(job.fraction, 2)), now
            elif ("part", part.done, job.limited) != shown or now - last > 1.0:
                status.caption(_round_text(part, job))
                shown, last = ("part", part.done, job.limited), now
    finally:
        if not job.done.is_set():
            if answer and (drawn is not None or not wait):
                pool().hold(_owner(), job, LEASE_S)  # refines after this run; a later look renews it
            else:
                pool().release(_owner(), job)


def final(parts: Iterator):
    """The final value of a view in rounds, without drawing the rounds (its status line says how far
    it is): for results a page needs whole, e.g. a lesson step's verdict or a measured grid. Nothing
    is shown before the last round, so the job's rounds go ahead of refinements, as first rounds do."""
    if isinstance(parts, Rounds):
        parts = _rounds(parts.cache, parts.key, parts.run, parts.title, whole=True, finish=parts.finish,
                        gated=parts.gated)
    last = None
    for last in parts:
        pass
    return None if last is None else last.value


def progressive(parts: Iterator, draw: Callable[[Any], None]):
    """Draw a view in rounds: the first answer, then each new round in place, without holding the
    script run open. Returns the value drawn in this run (the final one if held, else the first
    round's). Drafts draw no widgets (``layout.draft``).

    ``parts`` from a view in rounds (:class:`Rounds`): the run draws the answer there is and ends;
    until the final round is drawn, a fragment around the drawing reruns every :data:`TICK_S`
    (Streamlit's ``run_every``, timed by the browser) and draws the latest round, renewing the job's
    lease; it stops ticking once the final round is drawn. Any other iterable: every round drawn
    in this run, one after another."""
    if not isinstance(parts, (Rounds, Chain)):
        holder, last = st.empty(), None
        for i, part in enumerate(parts):
            with holder.container(), layout.draft(None if part.final else i + 1):
                draw(part.value)
            last = part
        return None if last is None else last.value
    found = parts.final()
    if found is not None:  # whole already: no fragment, no timer (a full run clears the browser's timers)
        st.caption(_round_text(found, None))
        draw(found.value)
        return found.value
    # The first round is waited for here, in the run itself (its place in the queue shown), not in the
    # ticking fragment: a tick must never wait, or the next tick would cut its wait short.
    waiting, first = st.empty(), None
    with waiting.container():  # the queue position while it waits; the rounds' line is the fragment's
        for first in parts.answer(said=False):
            pass
    waiting.empty()
    if first is None:  # the visitor asked for something else first
        return None
    if first.final:  # whole at once: nothing to refine, no timer
        st.caption(_round_text(first, None))
        draw(first.value)
        return first.value
    drawn: list = []

    def refining() -> None:
        from ui.frame import guard  # ui.frame imports this module's users

        with guard():
            try:
                for part in parts.answer(wait=False):
                    with layout.draft(None if part.final else part.done):
                        draw(part.value)
                    drawn.append(part)
            except Exception:  # failed: the guard says so, and the timer stops (no retry every tick)
                stop_ticking()
                raise
            if drawn and drawn[-1].final:  # after Streamlit's own auto_rerun message: the timer stops
                stop_ticking()

    if get_script_run_ctx() is None:  # bare mode (no session, no browser timer): the answer there is
        refining()
    else:
        st.fragment(refining, run_every=TICK_S)()
    return drawn[-1].value if drawn else None


_interruption = interruption