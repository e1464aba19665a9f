"""One mechanism for every result a page shows: ``@view``.

A view is a typed function of its own arguments (a page :class:`ui.inputs.Context`, specs, plain
values). The decorator makes it

* **keyed by its arguments**: a context counts by its model, its image and the settings the view
  declares in ``depends`` (``ui/settings.py`` row keys); any other setting is put back at its
  default before the function runs, so a setting a view ignores can neither change nor re-key it.
  Specs passed as arguments are projected the same way. Nobody builds a key by hand.
* **cached and single-flight**: one bounded LRU of results for the process (``models.jobs``),
  shared by every session; identical concurrent requests compute once. Results are immutable.
* **light or heavy** (a property of the view). A light view runs
  in the session's own script thread, marked light for the scheduler (heavy rounds do not start
  while one runs). A heavy view runs on the heavy pool (``models.jobs.HeavyPool``: low-priority
  workers, one job per session, fair order); meanwhile the page shows its place in the queue, then
  its progress, and a rerun, another page or a closed tab lets the job go.
* **in rounds** (``rounds=True``): the function yields ``models.rounds.Partial`` results, the
  mean and spread of the samples drawn so far; the call returns :class:`Rounds`, an iterable of
  them (iterating waits for the final one). :func:`progressive` draws the first answer and ends the
  script run there: the job keeps refining on a lease (``HeavyPool.hold``), and a fragment that
  Streamlit reruns every :data:`TICK_S` (``run_every``, driven by the browser) draws each new round
  in place, saying "8 of 32 samples" and, while the server is busy with other sessions' first
  rounds, that it will refine when it is free; it stops ticking once the final round is drawn.

Pools and caches are made on first use: importing this module starts no thread.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import streamlit as st
import torch
from PIL import Image
from streamlit.runtime.scriptrunner import get_script_run_ctx

import models as M
from models import jobs
from models.fallback import compute_with_fallback
from models.imageset import ImageSet
from ui import layout, settings
from ui.preempt import interruption, pending
from ui.i18n import N_, _, ngettext, tr

DRAW_EVERY_S = 1.0  # a view in rounds redraws its result at most this often (the status line every round)
TICK_S = 2.0  # a refining view's fragment reruns this often (the browser's timer) until its final round
LEASE_S = 3 * TICK_S + 2.0  # a refining job with no look for this long is dropped (the page was left)
_LOCK = threading.Lock()
_POOL: jobs.HeavyPool | None = None


def pool() -> jobs.HeavyPool:
    """The heavy pool: one low-priority worker per core (made on first use; workers on first job).
    A heavy round takes the cores the light requests leave idle (nice 19 weighs 15 against 1024).
    Finished results are kept by their views, not by the pool (its own cache holds one)."""
    global _POOL
    with _LOCK:
        if _POOL is None:
            _POOL = jobs.HeavyPool(workers=os.cpu_count() or 2, cache=jobs.SingleFlight(max_entries=1), nice=19,
                                   alive=_session_alive)
        return _POOL


@dataclasses.dataclass(frozen=True)
class Noted:
    """A result and the note to show with it (the CPU retry after a CUDA out-of-memory)."""

    value: Any
    note: str


def on_model(compute: Callable, ctx, *args, **kwargs):
    """``compute(backbone, clean, *args, **kwargs)`` for ``ctx``, retried on the CPU after a CUDA
    out-of-memory (then with a note)."""
    result, note = compute_with_fallback(compute, ctx.loaded, ctx.clean, *args, **kwargs)
    return Noted(result, note) if note else result


def _shown(result):
    if isinstance(result, Noted):
        st.warning(tr(result.note), icon="🐢")
        return result.value
    return result


class Same:
    """A key part that is one object itself: equal only to itself (tensors, arrays and pictures, which
    compare by content or not at all). The key holds the object, so its id is never reused while the
    entry lives; results are immutable, so the same object means the same content."""

    __slots__ = ("obj",)

    def __init__(self, obj) -> None:
        self.obj = obj

    def __hash__(self) -> int:
        return id(self.obj)

    def __eq__(self, other) -> bool:
        return isinstance(other, Same) and other.obj is self.obj


_BY_IDENTITY = (torch.Tensor, np.ndarray, Image.Image)


def _by_identity(value):
    if isinstance(value, _BY_IDENTITY):
        return Same(value)
    if isinstance(value, tuple):
        return tuple(_by_identity(v) for v in value)
    return value


def _project(value, depends: frozenset[str]):
    """(key part, value the function gets) for one argument."""
    if isinstance(value, _BY_IDENTITY):
        return Same(value), value
    if isinstance(value, tuple):  # e.g. several results drawn together: each element by identity where it must be
        return _by_identity(value), value
    if hasattr(value, "__view__"):
        return value.__view__(depends)
    if isinstance(value, M.RegularizerSpec):
        spec = settings.project(value, depends)
        return spec, spec
    if isinstance(value, ImageSet):
        return ("imageset", value.key), value
    hash(value)  # a TypeError names an argument a view cannot be keyed by
    return value, value


class View:
    """A view function made cached, single-flight, light or heavy, and possibly in rounds."""

    def __init__(self, fn: Callable, depends: Iterable[str], heavy, title: str | None, rounds: bool, keep: int) -> None:
        unknown = set(depends) - set(settings.BY_KEY)
        if unknown:
            raise ValueError(f"expected settings from ui/settings.py, but got {sorted(unknown)}")
        self.fn, self.depends, self.heavy, self.title, self.rounds = fn, frozenset(depends), heavy, title, rounds
        self.keep, self._results = keep, None
        self.name = f"{fn.__module__}.{fn.__qualname__}"
        self._progress = "progress" in inspect.signature(fn).parameters
        functools.update_wrapper(self, fn)

    def key(self, *args, **kwargs) -> tuple[tuple, tuple, dict]:
        """(cache key, arguments, keyword arguments) as the function gets them."""
        parts = [_project(a, self.depends) for a in args]
        named = {k: _project(v, self.depends) for k, v in sorted(kwargs.items())}
        key = (self.name, tuple(p[0] for p in parts), tuple((k, p[0]) for k, p in named.items()))
        return key, tuple(p[1] for p in parts), {k: p[1] for k, p in named.items()}

    def results(self) -> jobs.SingleFlight:
        """This view's finished results, shared by every session (made on first use)."""
        with _LOCK:
            if self._results is None:
                self._results = jobs.SingleFlight(max_entries=self.keep)
            return self._results

    def cached(self, *args, **kwargs):
        """The finished result for these arguments if held, else None (nothing is started)."""
        found = self.results().peek(self.key(*args, **kwargs)[0])
        return found.value if self.rounds and found is not None else found

    def __call__(self, *args, **kwargs):
        key, args, kwargs = self.key(*args, **kwargs)
        cache, title = self.results(), _(self.title or N_("Computing"))
        if self.rounds:
            return Rounds(cache, key, self._job(args, kwargs), title)
        if not self.heavy:
            with pool().light():  # no heavy round starts while a light view computes
                return _shown(cache.get(key, lambda: self.fn(*args, **kwargs)))
        found = cache.peek(key)
        if found is None:
            found = _wait(_submit(key, self._job(args, kwargs)), title)
            cache.put(key, found)
        return _shown(found)

    def _job(self, args: tuple, kwargs: dict) -> Callable[[jobs.Progress], Any]:
        def run(progress: jobs.Progress):
            return self.fn(*args, **kwargs, **({"progress": progress} if self._progress else {}))

        return run


def view(*, depends: Iterable[str] = settings.SPEC_KEYS + ("seed",), heavy: bool = False,
         title: str | None = None, rounds: bool = False, keep: int = 16) -> Callable[[Callable], View]:
    """Make ``fn`` a view (see the module's docstring).

    Args:
        depends: the settings (``ui/settings.py`` keys) the view reads from a context or spec; the
            others are put back at their defaults (default: every regulariser setting and the seed).
        heavy: run on the heavy pool.
        title: what the page says while it waits (N_-marked; translated when shown).
        rounds: ``fn`` yields ``models.rounds.Partial`` results, refined in place (always heavy).
        keep: results held (least recently used dropped first), shared by every session.
    """
    return lambda fn: View(fn, depends, heavy, title, rounds, keep)


# ------------------------------------------------------------------ waiting on the heavy pool


def _owner() -> str:
    run = get_script_run_ctx()
    return run.session_id if run is not None else f"thread-{threading.get_ident()}"


def _session_alive(owner) -> bool:
    """Whether the session ``owner`` is still connected (a tab closed: its held jobs are dropped).
    Owners that are not sessions (threads, tests) count as alive."""
    if not isinstance(owner, str) or owner.startswith("thread-"):
        return True
    try:
        from streamlit.runtime import Runtime

        if not Runtime.exists():
            return True
        return Runtime.instance()._session_mgr.get_active_session_info(owner) is not None  # noqa: SLF001
    except Exception:  # noqa: BLE001 -- Streamlit internals moved: keep the job, its lease still ends it
        return True


def _submit(key: tuple, run: Callable[[jobs.Progress], Any]) -> jobs.Job:
    return pool().submit(_owner(), key, run)


def _waiting_text(job: jobs.Job, title: str) -> str:
    ahead = job.position()
    if ahead:
        return ngettext("{title}: waiting for the server, {n} request ahead of yours…",
                        "{title}: waiting for the server, {n} requests ahead of yours…", ahead).format(title=title, n=ahead)
    return f"{title}: {tr(job.text)}" if job.text else f"{title}…"


def _wait(job: jobs.Job, title: str):
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

    def __init__(self, cache: jobs.SingleFlight, key: tuple, run: Callable[[jobs.Progress], Any], title: str) -> None:
        self.cache, self.key, self.title = cache, key, title

        def kept(progress: jobs.Progress):
            out = run(progress)
            if not isinstance(out, Iterator):
                return out
            return _keeping(out, cache, key)

        self.run = kept

    def __iter__(self) -> Iterator:
        return _rounds(self.cache, self.key, self.run, self.title)

    def answer(self) -> Iterator:
        """The answer there is now (the final one if held), after waiting only for a first round."""
        return _rounds(self.cache, self.key, self.run, self.title, answer=True)

    def final(self):
        """The final round if it is held, else None (nothing is started)."""
        return self.cache.peek(self.key)


def _keeping(parts: Iterator, cache: jobs.SingleFlight, key: tuple) -> Iterator:
    """The rounds, the final one kept in the view's results by the worker itself: a job that
    finishes while nobody waits (refining between a page's runs) is still kept."""
    for part in parts:
        if getattr(part, "final", False):
            cache.put(key, part)
        yield part


def _rounds(cache: jobs.SingleFlight, key: tuple, run: Callable[[jobs.Progress], Any], title: str,
            answer: bool = False) -> Iterator:
    """The rounds of a view in rounds, as they come (the last one final), with a status line.
    ``answer``: only the latest round (waiting for the first if none yet); the job is then held, not
    released, so it refines after this run ends."""
    found = cache.peek(key)
    if found is not None:
        st.caption(_round_text(found, None))
        yield found
        return
    job, status, stop, asked = _submit(key, run), st.empty(), _interruption(), pending()
    version, shown, last, drawn = 0, None, 0.0, None
    try:
        while True:
            part = job.latest
            if job.version != version and part is not None:
                version = job.version
                status.caption(_round_text(part, job))
                shown, now = ("part", part.done, job.limited), time.monotonic()
                if part.final:
                    cache.put(key, part)
                # the first round, the final one, and between them a redraw at most every DRAW_EVERY_S
                if part.final or drawn is None or now - drawn >= DRAW_EVERY_S:
                    drawn = now
                    yield part
                if part.final or answer:
                    return
            if job.done.is_set() and job.version == version:
                job.value()  # a failed job raises its error here
                return
            job.wait_change(version, 0.1)
            if (drawn is not None or answer) and asked():
                # shown already, or only an answer was wanted (a ticking fragment inside the one whose
                # control moved: Streamlit would not preempt it), and the visitor asked for something else
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
            if answer and drawn is not None:
                pool().hold(_owner(), job, LEASE_S)  # refines after this run; a later look renews it
            else:
                pool().release(_owner(), job)


def final(parts: Iterator):
    """The final value of a view in rounds, without drawing the rounds (its status line says how far
    it is): for results a page needs whole, e.g. a lesson step's verdict."""
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
    if not isinstance(parts, Rounds):
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
    drawn: list = []

    def refining() -> None:
        from ui.frame import guard  # ui.frame imports this module's users

        with guard():
            for part in parts.answer():
                with layout.draft(None if part.final else part.done):
                    draw(part.value)
                drawn.append(part)
            if drawn and drawn[-1].final:  # after Streamlit's own auto_rerun message: the timer stops
                _stop_ticking()

    if get_script_run_ctx() is None:  # bare mode (no session, no browser timer): the answer there is
        refining()
    else:
        st.fragment(refining, run_every=TICK_S)()
    return drawn[-1].value if drawn else None


def _stop_ticking() -> None:
    """Tell the browser to stop rerunning the fragment that runs now (Streamlit's stop_auto_rerun,
    the message it sends itself when a ticking fragment is no longer drawn)."""
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    from streamlit.runtime.scriptrunner_utils.script_run_context import ThreadState

    try:
        fragment = ThreadState.get().fragment_id
    except RuntimeError:
        return
    run = get_script_run_ctx()
    if fragment and run is not None:
        msg = ForwardMsg()
        msg.stop_auto_rerun.fragment_ids.append(fragment)
        run.enqueue(msg)


_interruption = interruption