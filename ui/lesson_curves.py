"""The guided lesson's steps 5–8 (ui/lesson_steps.py): what each measures on the whole network and draws.

The paper's Figure 5 (DropBlock, Ghiasi, Lin & Le, NeurIPS 2018, arXiv:1810.12890, Sec. 4.2), the
keep_prob schedule (Sec. 3), the common mistakes, and DropBlock with Dropout (Hu, Si, Zeng & Shu).
As in ui/lesson_maps.py, each ``measure_*`` function returns the step's picture and its outcome,
from the app's cached views (``ui/views.py``) called with the step's own parameters.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np
import streamlit as st

import dropblock as db
import models as M
from models.compute import STRATEGY_ARMS
from models.keepgrid import LOW, with_keep_prob
from models.theory import Mistake, Mistakes
from ui import charts, chartview, paper, render, view, views
from ui.i18n import N_, _, listing
from ui.inputs import Context
from ui.lesson_maps import SAMPLES, Outcome, lower, lowest, nearest, show, step_context

if TYPE_CHECKING:
    from ui.lesson_steps import Step


CURVE_KEEP_PROBS = (1.0, 0.9, 0.8, 0.7)  # the fixed grid of a robust ResNet-50; step 5 measures its own (curve_grid)
CURVE_SAMPLES = 8
CURVE_METHODS = (("dropblock", 1), ("dropblock", 7))


def curve_areas(curve: M.RobustnessCurve) -> tuple[float, float]:
    """Step 5's measure: the mean class probability over the keep_probs, for b=1 and for b=7 (lower falls faster)."""
    return float(curve.mean_prob[0].mean()), float(curve.mean_prob[1].mean())


def curve_grid(ctx: Context, step: Step) -> tuple[float, ...]:
    """Step 5's keep_probs, measured on this model and image (models/keepgrid.py): where the b=1 and b=7
    curves fall to 75%, 50% and 25% of the clean probability, and 1."""
    return view.final(curve_grid_scan(ctx, step)).grid


def curve_grid_scan(ctx: Context, step: Step):
    """The keep_prob scan :func:`curve_grid` reads (one per model and image: the step's own spec and seed)."""
    return views.keep_prob_scan(step_context(ctx, step.spec, step.seed), step.spec, CURVE_METHODS)


def strategy_scan(ctx: Context, step: Step):
    """Step 8's coarse keep_prob scan (:func:`strategy_choice`), one per model and image."""
    return views.keep_prob_scan(step_context(ctx, step.spec, step.seed), step.spec, STRATEGY_METHODS)


def measure_figure5(ctx: Context, step: Step):
    holder = {}

    def curve():  # computed only once the student has answered
        if "curve" not in holder:
            parts = views.robustness_curve(step_context(ctx, step.spec, step.seed), step.spec, CURVE_SAMPLES,
                                           curve_grid(ctx, step), methods=CURVE_METHODS)
            holder["curve"] = view.final(parts)
        return holder["curve"]

    def picture():
        c = curve()
        # the curve page's first chart (hover for values), its PNG download from the same description
        chartview.show_charts("lesson-5-figure5", first_curve_chart, c)
        st.caption(paper.headline())
        paper.results(("imagenet",), ("robust",))

    def outcome():
        b1, b7 = curve_areas(curve())
        c = curve()
        return Outcome(lower(b7, b1, "b7", "b1"), _(
            "Mean p({cls}) over keep_prob {kps}: {b1:.3f} with b=1, {b7:.3f} with b=7 ({n} draws per point; "
            "{clean:.3f} without dropping).").format(
            cls=c.class_name, kps=listing(f"{k:g}" for k in c.keep_probs), b1=b1, b7=b7, n=CURVE_SAMPLES,
            clean=c.clean_prob))

    return picture, outcome


SCHEDULE_TARGET, SCHEDULE_STEPS = 0.9, 10_000


def measure_schedule(ctx: Context, step: Step):
    half = SCHEDULE_STEPS // 2
    at_half = db.linear_keep_prob(half, SCHEDULE_STEPS, SCHEDULE_TARGET)

    def picture():
        chartview.show_charts("lesson-6-schedule", charts.describe_schedule_of, SCHEDULE_TARGET, SCHEDULE_STEPS, (half, at_half))

    def outcome():
        answer = nearest(at_half, {"target": SCHEDULE_TARGET, "half": (1 + SCHEDULE_TARGET) / 2, "one": 1.0})
        return Outcome(answer, _("db.linear_keep_prob({step}, {total}, {target:g}) = {value:.3f}: halfway, keep_prob "
                                 "is halfway from 1 to the target, so the network is eased into the drop.").format(
            step=half, total=SCHEDULE_STEPS, target=SCHEDULE_TARGET, value=at_half))

    return picture, outcome


RECIPES = {  # models/theory.py's recipe names (by their start) -> the chart's short label
    "Paper": N_("the paper's recipe"),
    "Tutorial step 1": N_("tutorial step 1: no γ correction"),
    "Seeds everywhere": N_("seeds everywhere"),
    "Tutorial scaling": N_("tutorial: count_ones/count_zeros"),
    "Tutorial inference": N_("× keep_prob at inference"),
    "Classic dropout scaling": N_("no scaling, × keep_prob at inference"),
    "No normalisation": N_("no normalisation"),
}


def tutorial_row(report: Mistakes) -> Mistake:
    """Step 7's row: the tutorial's count_ones/count_zeros scaling."""
    return next(m for m in report.rows if m.name.startswith("Tutorial scaling"))


def first_curve_chart(curve: M.RobustnessCurve):
    """Step 5's chart: the curve page's first (p(class) mean ± std)."""
    return charts.describe_robustness_curve(curve, CURVE_SAMPLES, CURVE_METHODS)[0]


def gains_chart(report: Mistakes):
    """Step 7's chart: each recipe's gain, labelled in the session's language."""
    return charts.describe_gains([(_(label), m) for m in report.rows for start, label in RECIPES.items()
                                  if m.name.startswith(start)])


def arms_picture(image, result: M.StrategyComparison):
    """Step 8's picture: the four arms' mean CAMs on one scale."""
    vmax = float(max(v.mean_cam.max() for v in result.views))
    return render.grid([[np.asarray(render.overlay(image, v.mean_cam, vmax)) for v in result.views]], size=200)


def measure_mistakes(ctx: Context, step: Step):
    report = views.mistakes(step_context(ctx, step.spec, step.seed))

    def picture():
        chartview.show_charts("lesson-7-mistakes", gains_chart, report)

    def outcome():
        gain = tutorial_row(report).train_mean
        paper = next(m for m in report.rows if m.is_paper).train_mean
        kp = report.keep_prob
        answer = nearest(gain, {"same": 1.0, "small": 1 / kp, "large": kp / (1 - kp)}, log=True)
        return Outcome(answer, _("On this image's {c} channels of {h}×{w} at keep_prob {kp:g}, count_ones/count_zeros "
                                 "makes the mean activation ×{gain:.2f} in training, and ×1 at inference; the "
                                 "paper's "
                                 "count(M)/count_ones(M) gives ×{paper:.2f}.").format(
            c=report.channels, h=report.map_size[0], w=report.map_size[1], kp=kp, gain=gain,
            paper=paper))

    return picture, outcome


STRATEGY_KEEP_PROB = 0.8  # Hu et al., Sec. 1.2.2: p = 0.8
STRATEGY_FC_KEEP = 0.5  # this app's choice (Hu et al. give none); AmoebaNet-B's before softmax (DropBlock, Sec. 4.1.2)
STRATEGY_METHODS = (("dropblock", None),)  # the step's own block sizes (group_params)
ARM_LABELS = {"dropblock": N_("only DropBlock, in the conv groups"), "dropout_fc": N_("only Dropout, before fc"),
              "both": N_("both together")}


@dataclasses.dataclass(frozen=True)
class StrategyChoice:
    """Step 8's DropBlock keep_prob on this model: Hu et al.'s 0.8, unless that leaves the class below
    10% of its clean probability; then the refined scan's point nearest half of it."""

    keep_prob: float
    paper_ratio: float  # DropBlock only at 0.8: mean p ÷ clean p (the coarse scan)
    refined: tuple[tuple[float, float], ...]  # (keep_prob, mean p ÷ clean p) at the refined points, SAMPLES draws
    coarse_samples: int


def strategy_choice(ctx: Context, step: Step) -> StrategyChoice:
    sctx = step_context(ctx, step.spec, step.seed)
    coarse = view.final(strategy_scan(ctx, step))
    paper = float(coarse.ratio[0, coarse.keep_probs.index(STRATEGY_KEEP_PROB)])
    grid = tuple(k for k in coarse.grid if k < 1.0)
    fine = view.final(views.keep_prob_scan(sctx, step.spec, STRATEGY_METHODS, coarse=grid, n_samples=SAMPLES))
    refined = tuple((k, float(r)) for k, r in zip(fine.keep_probs, fine.ratio[0]) if k < 1.0)
    if paper > LOW or not refined:
        kp = STRATEGY_KEEP_PROB
    else:
        kp = min(refined, key=lambda kr: abs(kr[1] - 0.5))[0]
    return StrategyChoice(kp, paper, refined, coarse.n_samples)


def measure_strategy(ctx: Context, step: Step):
    choice = strategy_choice(ctx, step)
    spec = with_keep_prob(step.spec, choice.keep_prob)
    result = view.final(views.dropblock_dropout(step_context(ctx, spec, step.seed), spec, STRATEGY_FC_KEEP, SAMPLES))
    arms = dict(zip(STRATEGY_ARMS, result.views))
    if choice.keep_prob == STRATEGY_KEEP_PROB:
        why = _("DropBlock at Hu et al.'s p = {kp:g}.").format(kp=STRATEGY_KEEP_PROB)
    else:
        why = _("Hu et al.'s p = {paper:g} leaves only {ratio:.0%} of p({cls}) on this model ({n} draws), so this step "
                "uses keep_prob {kp:g}, measured for it: DropBlock alone at {points} keeps {ratios} of the clean "
                "probability ({m} draws each), and {kp:g} is the point nearest half.").format(
            paper=STRATEGY_KEEP_PROB, ratio=choice.paper_ratio, cls=result.class_name, n=choice.coarse_samples,
            kp=choice.keep_prob, points=", ".join(f"{k:g}" for k, _r in choice.refined),
            ratios=", ".join(f"{r:.0%}" for _k, r in choice.refined), m=SAMPLES)

    def picture():
        show(arms_picture, (ctx.image, result), "lesson-8-strategy",
             _("Mean CAM for “{cls}” over {n} draws, same scale: nothing dropped · only DropBlock · "
               "only Dropout · both.").format(cls=result.class_name, n=result.n_samples))
        st.caption(why)

    def outcome():
        probs = {k: arms[k].class_prob for k in ARM_LABELS}
        answer = lowest(probs)
        listed = listing((_("{arm}: {p:.3f} (top-1 kept in {kept:.0%})").format(
            arm=_(ARM_LABELS[k]), p=p, kept=arms[k].keeps_top1) for k, p in probs.items()), clauses=True)
        text = _("Mean p({cls}) over {n} draws, {clean:.3f} without dropping: {listed}.").format(
            cls=result.class_name, n=result.n_samples, clean=result.clean_prob, listed=listed) + " " + why
        if answer is None:
            text = _("Too close to call on this image. {measured}").format(measured=text)
        return Outcome(answer, text)

    return picture, outcome
