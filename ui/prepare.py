"""What the app computes before a class asks: the bundled samples' shared scans, when the default model loads.

A class starts on the bundled samples (``ui/inputs.py``). A few heavy results depend on the model and
the image only, not on keep_prob, block_size or the seed, so every session that shows them waits for
the same computation: the keep_prob scans that measure the curve page's grid (the paper's placement),
the theory page's deep arm (:func:`ui.views.deep_middle`), and the lesson's step 5 grid and step 8
choice. When the pinned model loads (``ui.inputs``; ``DROPBLOCK_LAB_PREPARE=0`` turns it off), a
background thread starts them for each sample, the default first, for nobody
(``ui.waiting.Rounds.ahead``): they run after every round a session waits for, are kept with their
view's results, and a session that asks meanwhile joins the job. The first visitors of those pages
then find the measured grid instead of waiting for it.
"""

from __future__ import annotations

import logging
import threading

import models as M
from models import jobs, offload
from ui import views
from ui.inputs import Context, model_key, sample_contexts
from ui.lesson_curves import curve_grid_scan, measure_figure5, measure_strategy, strategy_scan
from ui.lesson_steps import STEPS
from ui.waiting import Rounds

__all__ = ["prepare", "prepare_samples", "shared_scans"]

_LOG = logging.getLogger(__name__)
HELPERS_WAIT_S = 60.0  # for the helper processes to be ready before the scans start (they run there)
_PREPARED: set[str] = set()  # model keys whose samples were prepared (or are being)
_LOCK = threading.Lock()


def shared_scans(ctx: Context) -> list[Rounds]:
    """The views in rounds every session showing ``ctx``'s model and image asks for alike, whatever its
    keep_prob, block_size and seed (each a ``finish`` keep_prob scan)."""
    step = {s.run: s for s in STEPS}
    scans = [views.curve_scan(ctx, views.curve_spec(ctx.spec, "paper")),
             views.keep_prob_scan(ctx, views.DEEP, views.DEEP_METHODS),
             curve_grid_scan(ctx, step[measure_figure5]),
             strategy_scan(ctx, step[measure_strategy])]
    assert len(scans) == views.SCANS_PREPARED_PER_SAMPLE  # the view keeps room for them (views.SCANS_KEPT)
    return scans


def prepare(ctx: Context) -> list[jobs.Job]:
    """Start :func:`shared_scans` for ``ctx``'s model and image; returns the jobs started (none for a
    result held already)."""
    return [job for job in (rounds.ahead() for rounds in shared_scans(ctx)) if job is not None]


def prepare_samples(loaded: M.LoadedModel) -> threading.Thread | None:
    """:func:`prepare` for every bundled sample on ``loaded``, once per model, in a background thread
    (the default sample first; their clean passes run there too), once the helper processes are ready
    on the CPU. Returns the thread, or None if the model had it already."""
    key = model_key(loaded)
    with _LOCK:
        if key in _PREPARED:
            return None
        _PREPARED.add(key)

    def run() -> None:
        try:
            if loaded.device.type == "cpu" and offload.helpers().n:  # started with the model (ui/inputs.py):
                offload.helpers().wait_ready(HELPERS_WAIT_S)  # else the rounds would run in the app's process
            for ctx in sample_contexts(loaded):
                prepare(ctx)
        except Exception:  # a convenience: each page computes what it needs when asked
            _LOG.warning("preparing the bundled samples' shared scans failed", exc_info=True)

    thread = threading.Thread(target=run, name="prepare-samples", daemon=True)
    thread.start()
    return thread
