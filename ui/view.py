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
import threading
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import streamlit as st
import torch
from PIL import Image

import models as M
from models import jobs, offload
from models.fallback import compute_with_fallback
from models.imageset import ImageSet
from models.rounds import Partial
from ui import settings
from ui.i18n import N_, _, tr
from ui.waiting import Rounds, pool, submit, wait_for
from ui.waiting import Chain, final, progressive  # noqa: F401 -- the pages draw views in rounds with these
_LOCK = threading.Lock()


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

    def __init__(self, fn: Callable, depends: Iterable[str], heavy, title: str | None, rounds: bool, keep: int,
                 finish: bool = False, offload: bool = False, in_helpers: bool = False) -> None:
        unknown = set(depends) - set(settings.BY_KEY)
        if unknown:
            raise ValueError(f"expected settings from ui/settings.py, but got {sorted(unknown)}")
        self.fn, self.depends, self.heavy, self.title, self.rounds = fn, frozenset(depends), heavy, title, rounds
        self.keep, self.finish, self._results = keep, finish, None
        if offload and not rounds:
            raise ValueError("expected offload only for a view in rounds")
        self.offload, self.in_helpers = offload, offload or in_helpers
        self.name = f"{fn.__module__}.{fn.__qualname__}"
        self.ref = f"{fn.__module__}:{fn.__qualname__}"  # the module's attribute: this view (models/offload.py)
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
        cache = self.results()
        if self.rounds:
            gated = not (self.in_helpers and offload.helpers().ready())  # in-process rounds wait for light work
            return Rounds(cache, key, self._job(args, kwargs), self._title(), self.finish, gated)
        if not self.heavy:
            with pool().light():  # no heavy round starts while a light view computes
                return _shown(cache.get(key, lambda: self.fn(*args, **kwargs)))
        found = cache.peek(key)
        if found is None:
            found = wait_for(submit(key, self._job(args, kwargs), whole=True, finish=self.finish), self._title())
            if isinstance(found, Partial):  # computed in rounds on the pool (others' first rounds go between)
                found = found.value
            cache.put(key, found)
        return _shown(found)

    def _title(self) -> str:
        return _(self.title or N_("Computing"))

    def _job(self, args: tuple, kwargs: dict) -> Callable[[jobs.Progress], Any]:
        def run(progress: jobs.Progress):
            if self.offload:  # in a helper process when one is ready (ui/inputs.py starts them), else here
                return offload.helpers().rounds(self.ref, args, kwargs, progress if self._progress else None)
            return self.fn(*args, **kwargs, **({"progress": progress} if self._progress else {}))

        return run


def view(*, depends: Iterable[str] = settings.SPEC_KEYS + ("seed",), heavy: bool = False,
         title: str | None = None, rounds: bool = False, keep: int = 16,
         finish: bool = False, offload: bool = False, in_helpers: bool = False) -> Callable[[Callable], View]:
    """Make ``fn`` a view (see the module's docstring).

    Args:
        depends: the settings (``ui/settings.py`` keys) the view reads from a context or spec; the
            others are put back at their defaults (default: every regulariser setting and the seed).
        heavy: run on the heavy pool.
        title: what the page says while it waits (N_-marked; translated when shown).
        rounds: ``fn`` yields ``models.rounds.Partial`` results, refined in place (always heavy).
        keep: results held (least recently used dropped first), shared by every session.
        finish: a heavy view computed to its end even when the session that asked moves on (a result
            every session showing the same model and image asks for): the next visitor finds its
            rounds so far instead of starting again.
        offload: its rounds run in a helper process (``models/offload.py``), so that they use a core
            the app's process, bound by its GIL, cannot; the same function on the same arguments.
        in_helpers: ``fn`` sends its rounds' work to the helper processes itself. Light work in this
            process holds back a view's rounds (``HeavyPool.light``) so that they take no GIL from a
            slider move, unless they run in a helper (``offload`` or ``in_helpers``, and one is ready).
    """
    return lambda fn: View(fn, depends, heavy, title, rounds, keep, finish, offload, in_helpers)
