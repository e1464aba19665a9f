"""Every result a page shows, one typed function each (``ui/view.py``: cached by its own arguments,
single-flight, light or heavy, some in rounds).

Each declares the settings it reads (``depends``); any other setting cannot re-key it. The numbers
come from ``models/`` (``compute_*``, pure functions of the model, the image's clean pass and a
spec), which come from ``dropblock/``. The route of each number on screen: docs/architecture.md.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator

import models as M
from models import jobs, offload
from models.checkpoints import ModelCam, compute_model_cam
from models.compute import DEFAULT_CURVE_METHODS
from models.keepgrid import KeepProbScan, compute_keep_prob_scan_rounds
from models.rounds import Partial
from models.theory import (TheoryContrasts, compute_algorithm_steps, compute_depth_contrast_rounds, compute_mistakes,
                           compute_theory_contrasts_rounds, compute_tutorial_contrasts_rounds)
from ui.i18n import N_
from ui.inputs import Context
from ui.settings import SAMPLES, SPEC_KEYS
from ui.view import on_model, view
from ui.waiting import pool

SWEEPS = tuple(k for k in SPEC_KEYS if k not in ("keep_prob", "block_size")) + ("seed",)  # curves sweep these two


PLACED_BY = ("group", "placement", "act_site")  # the settings that move the first site (M.first_site_input)


@view(depends=PLACED_BY)
def site_input(ctx: Context) -> M.SiteInput:
    """The activation at the spec's first site, before the drop: the layers up to it run once per model,
    image and placement (the spec's fields no setting sets, such as the kind, count too); keep_prob,
    block_size, the mask options and the seed neither recompute nor re-key it."""
    return on_model(M.first_site_input, ctx, ctx.spec)


@view()
def mask_sample(ctx: Context, n_channels: int = 8, channels: tuple[int, ...] | None = None) -> M.MaskSample:
    """The masks and feature maps at the site only (no layer after it): drawn before the network runs,
    on the cached :func:`site_input`, so a keep_prob, block_size or seed move runs no layer.
    ``channels``: show these (another sample's) instead of the most active ones the mask hit."""
    # No CPU retry here: the layers, the part that can run out of GPU memory, ran in site_input, which
    # has one (and then lives on the CPU, where this draw follows it). This draws a mask the size of one
    # activation on the CPU and multiplies once: were even that to fail, the page's guard says so.
    return M.compute_mask_sample_at(site_input(ctx), ctx.spec, seed=ctx.seed, n_channels=n_channels,
                                    channels=channels)


@view()
def mask_outcome(ctx: Context) -> M.MaskOutcome:
    """Top-5 and CAMs without and with the masks of :func:`mask_sample` (same spec and seed)."""
    return on_model(M.compute_mask_outcome, ctx, ctx.spec, seed=ctx.seed)


@view(depends=())
def model_cam(ctx: Context, class_idx: int) -> ModelCam:
    """The clean CAM of ``class_idx`` on this image (no drop): one result per model, image and class,
    so the pictures drawn from it are drawn once."""
    return compute_model_cam(ctx.backbone, ctx.clean, class_idx)


@view(rounds=True, title=N_("Drawing the masks"), offload=True)
def comparison(ctx: Context, spec: M.RegularizerSpec, progress=None) -> Iterator[Partial[M.Comparison]]:
    """One pictured draw per method, then its realised drop over 64 draws, in rounds."""
    return M.compute_comparison_rounds(ctx.backbone, ctx.clean, spec, seed=ctx.seed, progress=progress)


@view(rounds=True, title=N_("Sampling masks"), offload=True)
def dropblock_dropout(ctx: Context, spec: M.RegularizerSpec, fc_keep_prob: float, n_samples: int,
                      progress=None) -> Iterator[Partial[M.StrategyComparison]]:
    return M.compute_dropblock_dropout_rounds(ctx.backbone, ctx.clean, spec, fc_keep_prob=fc_keep_prob,
                                              n_samples=n_samples, seed=ctx.seed, progress=progress)


@view(rounds=True, title=N_("Sampling masks"), offload=True)
def cam_shift(ctx: Context, n_samples: int, class_idx: int | None, progress=None) -> Iterator[Partial[M.CamShift]]:
    return M.compute_cam_shift_rounds(ctx.backbone, ctx.clean, ctx.spec, n_samples=n_samples, seed=ctx.seed,
                                      class_idx=class_idx, progress=progress)


@view(depends=SWEEPS, rounds=True, title=N_("Computing the curve"), offload=True)
def robustness_curve(ctx: Context, spec: M.RegularizerSpec, n_samples: int, keep_probs: tuple[float, ...],
                     methods: tuple[tuple[str, int], ...] = DEFAULT_CURVE_METHODS, class_idx: int | None = None,
                     progress=None) -> Iterator[Partial[M.RobustnessCurve]]:
    """The curve sweeps its own keep_probs and block sizes: the sidebar's keep_prob and block_size
    neither recompute nor re-key it."""
    return M.compute_robustness_curve_rounds(ctx.backbone, ctx.clean, spec, keep_probs=tuple(keep_probs),
                                             methods=tuple(methods), n_samples=n_samples, seed=ctx.seed,
                                             class_idx=class_idx, progress=progress)


SCANS_PREPARED_PER_SAMPLE = 4  # ui/prepare.py's shared_scans: the curve's grid, the deep arm, lesson steps 5 and 8
SCANS_KEPT = SCANS_PREPARED_PER_SAMPLE * len(SAMPLES) + 16  # the prepared ones, and room for anybody's others


@view(depends=SWEEPS[:-1], rounds=True, finish=True, offload=True, keep=SCANS_KEPT,
      title=N_("Measuring where the class probability falls"))
def keep_prob_scan(ctx: Context, spec: M.RegularizerSpec, methods: tuple[tuple[str, int | None], ...],
                   coarse: tuple[float, ...] | None = None, n_samples: int = 4,
                   progress=None) -> Iterator[Partial[KeepProbScan]]:
    """Where each method's class probability falls on this model and image (models/keepgrid.py),
    measured with seed 0 whatever the sidebar's seed: a property of the model and the image, shared by
    every session that shows them, so finished even when the session that asked moves on. Dozens of
    Monte Carlo passes on ResNet-50, in rounds: the curve page shows each round's points as a
    provisional curve (``KeepProbScan.curve``); a page that needs the grid itself waits for the last
    round (``view.final``)."""
    extra = {} if coarse is None else {"coarse": tuple(coarse)}
    return compute_keep_prob_scan_rounds(ctx.backbone, ctx.clean, spec, methods=tuple(methods), n_samples=n_samples,
                                         seed=ctx.seed, progress=progress, **extra)


@view(depends=(), keep=32)
def algorithm_steps(size: int, keep_prob: float, block_size: int, seed: int, seed_region: str):
    """Algorithm 1 step by step on a small map (no model)."""
    return compute_algorithm_steps(size, size, keep_prob, block_size, seed=seed, seed_region=seed_region)


@view(depends=("keep_prob", "block_size", "seed"))
def mistakes(ctx: Context):
    """The recipes measured on this image's group-3 activation."""
    return compute_mistakes(ctx.clean.acts[3], ctx.spec.keep_prob, ctx.spec.block_size, seed=ctx.seed)


@view(depends=("keep_prob", "seed"), rounds=True, title=N_("Measuring the recipes"), offload=True)
def tutorial_contrasts(ctx: Context, progress=None) -> Iterator[Partial]:
    return compute_tutorial_contrasts_rounds(ctx.backbone, ctx.clean, ctx.spec.keep_prob, seed=ctx.seed,
                                             progress=progress)


@view(depends=("seed",), rounds=True, title=N_("Measuring the recipes"), offload=True)
def depth_contrast(ctx: Context, keep_probs: tuple[float, ...], progress=None) -> Iterator[Partial]:
    """DropBlock in the shallow vs the deep groups at ``keep_probs`` (models/theory.py)."""
    return compute_depth_contrast_rounds(ctx.backbone, ctx.clean, tuple(keep_probs), seed=ctx.seed, progress=progress)


DEEP = M.RegularizerSpec(keep_prob=1.0, block_size=7, placement="in_blocks", groups=(3, 4), skip=False,
                         group3_quarter=False)  # the theory page's "deep" arm, scanned for its middle keep_prob
DEEP_METHODS: tuple[tuple[str, int | None], ...] = (("dropblock", 7),)


@view(depends=("keep_prob", "seed"), rounds=True, title=N_("Measuring the recipes"), in_helpers=True)
def theory_contrasts(ctx: Context, progress=None) -> Iterator[Partial[TheoryContrasts]]:
    """The theory page's measured contrasts as one job (models/theory.py): the tutorial's advice and
    shallow vs deep, whose keep_probs include the middle of a keep_prob scan (:func:`deep_middle`,
    one per model and image for every session), so that the page's first answers come together after
    one wait in the queue. This runs in the pool's worker, which waits for the scan (where another
    session's job computes it, the worker gives its place to another thread meanwhile); the rounds
    themselves run in a helper process (models/offload.py)."""
    return offload.helpers().rounds(f"{__name__}:_theory_rounds", (ctx, deep_middle(ctx)), {}, progress)


def deep_middle(ctx: Context) -> float:
    """Where DropBlock in the deep groups (:data:`DEEP`) halves this image's class probability: the
    middle of :func:`keep_prob_scan`'s result, computed to its end once per model and image (in a
    helper process when one is ready) and kept with that view's results.

    Computed as that view's job on the heavy pool, so that a job already computing it (the scan
    prepared when the model loaded, ``ui/prepare.py``, or another page's) is joined, not run twice; its
    rounds go with the first rounds, as a result someone waits for whole. The caller (the theory job's
    pool worker) hands its place to another thread while it waits."""
    rounds = keep_prob_scan(ctx, DEEP, DEEP_METHODS)

    def run():
        owner = (__name__, "deep_middle", threading.get_ident())  # never a session: its own job stays its own
        job = pool().submit(owner, rounds.key, rounds.run, whole=True, finish=True, gated=rounds.gated)
        try:
            jobs.wait_elsewhere(job)
        finally:
            pool().release(owner, job)
        return job.value()

    return keep_prob_scan.results().get(rounds.key, run).value.middle()


def curve_spec(spec: M.RegularizerSpec, place: str) -> M.RegularizerSpec:
    """The robustness curve's regulariser: DropBlock at the sidebar's placement (``place="sidebar"``) or
    at Figure 5's (``"paper"``: inside the blocks of groups 3 and 4, γ/4 in group 3, skip connections
    too); the curve sweeps keep_prob and block_size itself."""
    spec = dataclasses.replace(spec, kind="dropblock")
    if place == "paper":
        spec = dataclasses.replace(spec, placement="in_blocks", groups=(3, 4), group3_quarter=True, skip=True)
    return spec


def curve_scan(ctx: Context, spec: M.RegularizerSpec):
    """The keep_prob scan that measures the grid of the curve of ``spec`` (:func:`curve_spec`)."""
    return keep_prob_scan(ctx, dataclasses.replace(spec, keep_prob=1.0, block_size=1), DEFAULT_CURVE_METHODS)


def _theory_rounds(ctx: Context, middle: float, progress=None) -> Iterator[Partial[TheoryContrasts]]:
    return compute_theory_contrasts_rounds(ctx.backbone, ctx.clean, ctx.spec.keep_prob, middle=lambda: middle,
                                           seed=ctx.seed, progress=progress)
