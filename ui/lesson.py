"""The guided lesson: DropBlock (Ghiasi, Lin & Le, NeurIPS 2018, arXiv:1810.12890) in eight steps.

Each step is data: a title, one short paragraph, its own parameters (a ``RegularizerSpec`` and a
seed, independent of the sidebar; the image and the model are the sidebar's), one question with
choices, and a function that measures the answer on this image and draws the step's one main
picture. The measurements are the app's own cached compute functions (``ui/views.py``:
``mask_sample``, ``cam_shift``, ``robustness_curve``, ``mistakes``, ``dropblock_dropout``) called
with the step's parameters, so a class on the same image shares one result per step; nothing here
computes DropBlock itself.

Predict, then reveal: the question is asked with nothing selected; once the student chooses, the
measured numbers for this image appear with a verdict (✅ right, 🤔 not this time) and the step's
explanation. Before that a step says only what a prediction needs: a sentence that answers the question
belongs in ``Step.explain`` (tests/app/test_lesson.py checks each step's text before the reveal for its
answer's key phrase). Steps whose picture gives the answer away (the curve, the schedule, the mistakes
chart) draw it with the answer. In presenter mode the step's title, paragraph, question and reveal stay
on the projector and its top line names the step's own parameters (:func:`headline`).

The step lives in ``st.session_state["lesson_step"]``, which ``ui.state`` mirrors in the URL as
``step=1..8``; the buttons "lesson_prev" and "lesson_next" move it (presenter mode binds the arrow
keys to them).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import streamlit as st
import torch

import dropblock as db
import models as M
from models.compute import STRATEGY_ARMS
from models.keepgrid import LOW, with_keep_prob
from models.theory import Mistake, Mistakes, compute_schedule
from ui import charts, chartview, frame, layout, paper, render, view, views
from ui.i18n import N_, _, listing
from ui.inputs import Context

STEP_KEY = "lesson_step"  # session key; the URL's "step" (ui/settings.py)
TIE = 0.005  # probabilities closer than this are "about the same"
CHANNELS = 4  # channels in the mask pictures: tiles stay large on a phone
PICTURE_WIDTH = "content"  # pictures at their own size (at most the column): the question stays in view
TILE = 96  # px per map in the mask grids, at most (as drawn by the browser and in their PNG downloads)
HOT = 0.8  # step 4: the clean CAM's hottest fifth (pixels at or above this quantile) is "the object"


@dataclass(frozen=True)
class Outcome:
    """What was measured for a question: the right option (None: the measurement cannot decide)
    and the sentence giving the numbers, already translated."""

    answer: str | None
    measured: str


@dataclass(frozen=True)
class Step:
    title: str  # N_-marked; translated where shown
    text: str  # N_-marked: the step's one paragraph
    prompt: str  # N_-marked question
    options: tuple[tuple[str, str], ...]  # (key, N_-marked label)
    specs: tuple[M.RegularizerSpec, ...]  # the step's own parameters (and its seed, below)
    seed: int
    run: Callable[[Context, "Step"], tuple[Callable[[], None], Callable[[], Outcome]]]
    picture_first: bool = True  # False: the picture gives the answer away, so it comes with the answer
    setting: str | None = None  # N_-marked parameters in words, where the specs alone would not say them
    explain: str = ""  # N_-marked: the why, shown with the answer (before it, only what a prediction needs)

    @property
    def spec(self) -> M.RegularizerSpec:
        return self.specs[0]

    def facts(self) -> dict[str, float | int]:
        """The numbers the step's text, question and choices name, from its own parameters."""
        spec = self.specs[-1]
        kp = spec.keep_prob
        return {"kp": kp, "drop": 1 - kp, "b": spec.block_size, "b2": spec.block_size ** 2, "n": CURVE_SAMPLES,
                "kps": listing(f"{k:g}" for k in CURVE_KEEP_PROBS),
                "small": 1 / kp, "large": kp / (1 - kp) if kp < 1 else 1.0,
                "target": SCHEDULE_TARGET, "total": SCHEDULE_STEPS, "half": SCHEDULE_STEPS // 2,
                "mid": (1 + SCHEDULE_TARGET) / 2, "fc_kp": STRATEGY_FC_KEEP}


def step_context(ctx: Context, spec: M.RegularizerSpec, seed: int) -> Context:
    """The sidebar's model and image with this step's own parameters (the caches key on them)."""
    return dataclasses.replace(ctx, spec=spec, seed=seed)


def nearest(value: float, options: dict[str, float], *, log: bool = False) -> str:
    """The option whose value is closest to ``value`` (on a log scale for ratios)."""
    f = (lambda v: math.log(max(v, 1e-12))) if log else (lambda v: v)
    return min(options, key=lambda k: abs(f(options[k]) - f(value)))


def lowest(values: dict[str, float]) -> str | None:
    """The key of the smallest value; None when the two smallest are within :data:`TIE`."""
    first, second = sorted(values.values())[:2]
    return None if second - first < TIE else min(values, key=values.get)


def lower(a: float, b: float, key_a: str, key_b: str, same: str | None = "same") -> str | None:
    """The key of the smaller value; ``same`` when they are within :data:`TIE`."""
    if abs(a - b) < TIE:
        return same
    return key_a if a < b else key_b


# ------------------------------------------------------------------ the steps' measurements


def show(picture, name: str, caption: str) -> None:
    """A step's picture at its own size (at most the column's width), with its PNG download."""
    render.show_image(picture, name, caption=caption, width=PICTURE_WIDTH)


def _block(ctx: Context, step: Step):
    view = views.mask_sample(step_context(ctx, step.spec, step.seed), n_channels=CHANNELS)
    b = view.block[0] * view.block[1]

    def picture():
        caption = _("For each channel: the mask (yellow seeds, red dropped units), the feature map before, and after "
                    "(kept units rescaled). {chosen}").format(chosen=render.channels_note(view))
        render.show_mask_grid(view, ("blocks", "before", "after"), (), "lesson-1-blocks", caption, tile=TILE, size=TILE)

    def outcome():
        seeds, dropped = int(view.seed_mask.sum()), int((~view.block_mask).sum())
        if seeds == 0:
            return Outcome(None, _("No seed fell in the channels shown in this draw, so there is nothing to count."))
        ratio = dropped / seeds
        answer = nearest(ratio, {"one": 1.0, "line": float(view.block[0]), "square": float(b)})
        return Outcome(answer, _("In this draw {seeds} seeds dropped {dropped} units: {ratio:.1f} units per seed. "
                                 "A whole {bh}×{bw} block is {b} units; overlapping blocks share some.")
                       .format(seeds=seeds, dropped=dropped, ratio=ratio, bh=view.block[0], bw=view.block[1], b=b))

    return picture, outcome


def _gamma(ctx: Context, step: Step):
    view = views.mask_sample(step_context(ctx, step.spec, step.seed), n_channels=CHANNELS)

    def picture():
        render.show_mask_grid(view, ("seeds", "mask"), (), "lesson-2-gamma",
                              _("For each channel: the seeds (red), drawn with probability γ, and the blocks grown "
                                "from them (red = dropped)."), tile=TILE, size=TILE)

    def outcome():
        answer = nearest(view.gamma, {"equal": view.target_drop, "smaller": view.target_drop / (view.block[0] ** 2),
                                      "larger": min(1.0, 2 * view.target_drop)}, log=True)
        text = _("Measured on this {h}×{w} feature map: γ = {gamma:.5f} against 1 − keep_prob = {target:.3f}, "
                 "about "
                 "{times:.0f} times smaller. Each seed drops up to {b} units, so this draw dropped {realised:.3f} of "
                 "the units (expected {expected:.3f}).").format(
            h=view.map_size[0], w=view.map_size[1], gamma=view.gamma, target=view.target_drop,
            times=view.target_drop / view.gamma if view.gamma else float("inf"), b=view.block[0] * view.block[1],
            realised=view.realised_drop, expected=view.expected_drop if view.expected_drop is not None else math.nan)
        return Outcome(answer, text)

    return picture, outcome


def _budget(ctx: Context, step: Step):
    dropout, dropblock = step.specs
    blocks = views.mask_sample(step_context(ctx, dropblock, step.seed), n_channels=CHANNELS)
    # Dropout on the same channels: the most active ones DropBlock hit (Dropout hits nearly every channel)
    pair = [views.mask_sample(step_context(ctx, dropout, step.seed), n_channels=CHANNELS, channels=blocks.channels),
            blocks]

    def picture():
        render.show_tile_grid(
            lambda: render.mask_rows(pair[0], ("mask", "after")) + render.mask_rows(pair[1], ("mask", "after")), (),
            "lesson-3-budget", _("Dropout's mask and the features after it, then DropBlock's; red: dropped units. "
                                 "The {k} most active channels DropBlock hit.").format(k=CHANNELS),
            key=(pair[0], pair[1], "mask/after"), channels=pair[1].channels, tile=TILE, size=TILE)

    def outcome():
        shifts = [view.final(views.cam_shift(step_context(ctx, s, step.seed), SAMPLES, None)) for s in (dropout, dropblock)]
        p_out, p_block = (float(s.sample_probs.mean()) for s in shifts)
        answer = lower(p_block, p_out, "dropblock", "dropout")
        return Outcome(answer, _("p({cls}) without dropping: {clean:.3f}. Mean of {n} draws with Dropout: {p_out:.3f} "
                                 "(drop {d_out:.3f}); with DropBlock: {p_block:.3f} (drop {d_block:.3f}).").format(
            cls=shifts[0].class_name, clean=shifts[0].clean_prob, n=SAMPLES, p_out=p_out, d_out=shifts[0].realised_drop,
            p_block=p_block, d_block=shifts[1].realised_drop))

    return picture, outcome


@dataclass(frozen=True)
class CamLoss:
    """Step 4's measure on the clean CAM's hottest fifth ("hot") and the rest: the mean clean CAM and the
    mean change (mean − clean), in the CAM's class-score units; ``share`` is the share of it lost."""

    hot_clean: float
    hot_change: float
    rest_clean: float
    rest_change: float

    @staticmethod
    def share(change: float, clean: float) -> float:
        return -change / clean if clean > 0 else 0.0

    @property
    def hot_share(self) -> float:
        return self.share(self.hot_change, self.hot_clean)

    @property
    def rest_share(self) -> float:
        return self.share(self.rest_change, self.rest_clean)


SAME_SHARE = 0.02  # step 4: shares lost within 2 percentage points are "about the same"


def cam_loss(shift: M.CamShift) -> CamLoss:
    """Step 4's measure: the mean CAM and its mean change on the clean CAM's hottest fifth, and elsewhere."""
    hot = shift.clean_cam >= torch.quantile(shift.clean_cam.flatten().float(), HOT)
    clean, change = shift.clean_cam.float(), shift.difference.float()
    return CamLoss(float(clean[hot].mean()), float(change[hot].mean()), float(clean[~hot].mean()),
                   float(change[~hot].mean()))


def _cam(ctx: Context, step: Step):
    shift = view.final(views.cam_shift(step_context(ctx, step.spec, step.seed), SAMPLES, None))

    def picture():
        vmax = float(max(shift.clean_cam.max(), shift.mean_cam.max()))
        row = [np.asarray(render.overlay(ctx.image, shift.clean_cam, vmax)),
               np.asarray(render.overlay(ctx.image, shift.mean_cam, vmax)),
               np.asarray(render.diverging(shift.difference))]
        picture = render.with_scale(render.grid([row], size=224), shift.difference,
                                    _("the change, in class-score units (as the CAM)"))
        show(picture, "lesson-4-cam",
             _("Class activation map for “{cls}”: without DropBlock · mean of {n} DropBlock draws (same scale) · "
               "the change (red: gained, blue: lost).").format(cls=shift.class_name, n=shift.n_samples))

    def outcome():
        loss = cam_loss(shift)
        answer = ("same" if abs(loss.hot_share - loss.rest_share) < SAME_SHARE
                  else "object" if loss.hot_share > loss.rest_share else "background")
        return Outcome(answer, _("Where the CAM was hottest (its top fifth) it lost {hot:.0%} of its value "
                                 "({hot_change:+.2f} of {hot_clean:.2f}); elsewhere {rest:.0%} ({rest_change:+.2f} of "
                                 "{rest_clean:.2f}), in the CAM's class-score units. p({cls}) went from {clean:.3f} to "
                                 "{mean:.3f} on average, and {kept:.0%} of the draws kept the top-1 class.").format(
            hot=loss.hot_share, hot_change=loss.hot_change, hot_clean=loss.hot_clean, rest=loss.rest_share,
            rest_change=loss.rest_change, rest_clean=loss.rest_clean, cls=shift.class_name, clean=shift.clean_prob,
            mean=float(shift.sample_probs.mean()), kept=shift.keeps_top1))

    return picture, outcome


CURVE_KEEP_PROBS = (1.0, 0.9, 0.8, 0.7)  # the fixed grid of a robust ResNet-50; step 5 measures its own (curve_grid)
CURVE_SAMPLES = 8
CURVE_METHODS = (("dropblock", 1), ("dropblock", 7))


def curve_areas(curve: M.RobustnessCurve) -> tuple[float, float]:
    """Step 5's measure: the mean class probability over the keep_probs, for b=1 and for b=7 (lower falls faster)."""
    return float(curve.mean_prob[0].mean()), float(curve.mean_prob[1].mean())


def curve_grid(ctx: Context, step: Step) -> tuple[float, ...]:
    """Step 5's keep_probs, measured on this model and image (models/keepgrid.py): where the b=1 and b=7
    curves fall to 75%, 50% and 25% of the clean probability, and 1."""
    return views.keep_prob_scan(step_context(ctx, step.spec, step.seed), step.spec, CURVE_METHODS).grid


def _figure5(ctx: Context, step: Step):
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
        chartview.show_charts(lambda: charts.describe_robustness_curve(c, CURVE_SAMPLES, CURVE_METHODS)[:1],
                              "lesson-5-figure5", key=c)
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


def _schedule(ctx: Context, step: Step):
    sched = compute_schedule(SCHEDULE_TARGET, SCHEDULE_STEPS)
    half = SCHEDULE_STEPS // 2
    at_half = db.linear_keep_prob(half, SCHEDULE_STEPS, SCHEDULE_TARGET)

    def picture():
        chartview.show_charts(lambda: [charts.describe_schedule(sched, at=(half, at_half))], "lesson-6-schedule",
                              key=(SCHEDULE_TARGET, SCHEDULE_STEPS))

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


def _mistakes(ctx: Context, step: Step):
    report = views.mistakes(step_context(ctx, step.spec, step.seed))
    rows = [(label, m) for m in report.rows for start, label in RECIPES.items() if m.name.startswith(start)]

    def picture():
        chartview.show_charts(lambda: [charts.describe_gains([(_(label), m) for label, m in rows])],
                              "lesson-7-mistakes", key=report)

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
    coarse = views.keep_prob_scan(sctx, step.spec, STRATEGY_METHODS)
    paper = float(coarse.ratio[0, coarse.keep_probs.index(STRATEGY_KEEP_PROB)])
    grid = tuple(k for k in coarse.grid if k < 1.0)
    fine = views.keep_prob_scan(sctx, step.spec, STRATEGY_METHODS, coarse=grid, n_samples=SAMPLES)
    refined = tuple((k, float(r)) for k, r in zip(fine.keep_probs, fine.ratio[0]) if k < 1.0)
    if paper > LOW or not refined:
        kp = STRATEGY_KEEP_PROB
    else:
        kp = min(refined, key=lambda kr: abs(kr[1] - 0.5))[0]
    return StrategyChoice(kp, paper, refined, coarse.n_samples)


def _strategy(ctx: Context, step: Step):
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
        vmax = float(max(v.mean_cam.max() for v in result.views))
        row = [np.asarray(render.overlay(ctx.image, v.mean_cam, vmax)) for v in result.views]
        show(render.grid([row], size=200), "lesson-8-strategy",
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


SAMPLES = 16  # Monte Carlo draws where a step averages (a first answer after 2, in rounds)

STEPS: tuple[Step, ...] = (
    Step(N_("What a block is"),
         N_("Dropout zeroes single units, but neighbouring units of a feature map carry nearly the same information, "
            "so the network hardly notices. DropBlock instead draws a few random **seeds** (yellow in the picture) "
            "and zeroes a region around each; block_size sets its size, here {b}."),
         N_("One yellow seed: how many units of the feature map does it zero?"),
         (("one", N_("1: just the seed")), ("line", N_("a line of block_size units")),
          ("square", N_("a square of block_size × block_size units"))),
         (M.RegularizerSpec(keep_prob=0.85, block_size=5, group=3),), seed=1, run=_block,
         explain=N_("Each seed zeroes the whole block_size × block_size square around it ({b}×{b} = {b2} units; "
                    "blocks that overlap share units), then the kept units are rescaled by count(M)/count_ones(M) "
                    "so the mean activation stays the same.")),
    Step(N_("Why γ is smaller than 1 − keep_prob"),
         N_("keep_prob says what share of units to keep, so 1 − keep_prob is the drop budget. DropBlock draws "
            "**seeds** with probability γ, and every seed grows into a block of block_size² units."),
         N_("To drop {drop:.0%} of the units with {b}×{b} blocks, the seed probability γ must be…"),
         (("equal", N_("about {drop:g}, the same as 1 − keep_prob")), ("smaller", N_("much smaller than {drop:g}")),
          ("larger", N_("larger than {drop:g}"))),
         (M.RegularizerSpec(keep_prob=0.9, block_size=7, group=2),), seed=2, run=_gamma,
         explain=N_("Since every seed drops a whole block, seeds must be much rarer than the units to drop. Eq. (1) "
                    "divides by block_size² and corrects for the border where a block does not fit; overlapping "
                    "blocks make it drop a little less than asked.")),
    Step(N_("The same budget, very different damage"),
         N_("Here Dropout and DropBlock drop the same share of units from the same feature map (DropBlock with the "
            "calibrated γ, so both expect to drop exactly {drop:.0%})."),
         N_("Both drop {drop:.0%} of the units. Which lowers the probability of the top class more?"),
         (("dropout", N_("Dropout (single units)")), ("dropblock", N_("DropBlock, block_size {b}")),
          ("same", N_("about the same"))),
         (M.RegularizerSpec(kind="dropout", keep_prob=0.8, group=3),
          M.RegularizerSpec(keep_prob=0.8, block_size=7, group=3, gamma_mode="calibrated")),
         seed=3, run=_budget, picture_first=True,
         explain=N_("Dropout's holes are single units the next layers can fill in from their neighbours; DropBlock "
                    "removes whole regions.")),
    Step(N_("Where the evidence was"),
         N_("A class activation map (CAM; Zhou et al. 2016) weights the last convolutional features by the "
            "classifier's weights for one class: it shows where the evidence for that class lies. DropBlock at "
            "inference hides blocks of the features; comparing the CAMs shows which evidence the prediction leaned "
            "on and where it moves."),
         N_("DropBlock hides blocks anywhere on the feature map. As a share of what was there, where does the CAM "
            "lose more?"),
         (("object", N_("on the object, where the CAM was hottest")), ("background", N_("in the rest of the image")),
          ("same", N_("about the same share everywhere"))),
         (M.RegularizerSpec(keep_prob=0.8, block_size=7, group=3),), seed=4, run=_cam),
    Step(N_("The paper's Figure 5"),
         N_("The paper takes a ResNet-50 trained without DropBlock and applies DropBlock at inference, inside the "
            "blocks of groups 3 and 4, lowering keep_prob, with block_size 1 (dropout) and with block_size 7. Here "
            "is the same experiment on this image."),
         N_("As keep_prob falls, which curve falls faster?"),
         (("b1", N_("block_size 1 (like dropout)")), ("b7", N_("block_size 7")), ("same", N_("about the same"))),
         (M.RegularizerSpec(placement="in_blocks", groups=(3, 4)),),
         seed=5, run=_figure5, picture_first=False,
         setting=N_("DropBlock with block_size 1 and 7 at keep_probs measured for this model, inside the blocks of "
                    "groups 3 and 4 (γ/4 in group 3, skip connections too), {n} draws per point"),
         explain=N_("In the paper, accuracy falls faster with block_size 7 than with block_size 1 (dropout): blocks "
                    "remove semantic information that scattered units do not. Sec. 4.2's own sentence says accuracy "
                    "drops more quickly with block_size 1; its conclusion and Figure 5 need block_size 7 to fall "
                    "faster, so the sentence reads as if the block sizes were swapped (see the Robustness curve "
                    "page).")),
    Step(N_("The schedule"),
         N_("A small keep_prob from the first step hurts learning, the paper says (Sec. 3). It lowers keep_prob "
            "from 1 to the target over training instead, like ScheduledDropPath; the target is usually between 0.75 "
            "and 0.95. At inference DropBlock is off."),
         N_("Target keep_prob {target:g}, reached at step {total:,}. What is keep_prob at step {half:,}?"),
         (("target", N_("{target:.2f}, the target")), ("half", N_("{mid:.2f}, halfway between 1 and the target")),
          ("one", N_("1.00, still off"))),
         (M.RegularizerSpec(keep_prob=SCHEDULE_TARGET),), seed=0, run=_schedule,
         picture_first=False, setting=N_("target keep_prob {target:g}, reached at step {total:,}"),
         explain=N_("The schedule is linear in the step: halfway through, keep_prob is halfway from 1 to the "
                    "target.")),
    Step(N_("Common mistakes"),
         N_("The tutorial rescales the kept units by count_ones/count_zeros instead of count(M)/count_ones(M), and "
            "says to multiply by keep_prob at inference; implementations also let seeds fall everywhere and truncate "
            "the border blocks. Each recipe is measured on this image's real feature map: a sound one keeps the mean "
            "activation at 1 in training and at inference. Seeds everywhere changes how much is dropped, not the "
            "mean."),
         N_("With count_ones/count_zeros at keep_prob {kp:g}, the mean activation in training becomes…"),
         (("same", N_("unchanged, ×1")), ("small", N_("a little larger, about ×{small:.2f}")),
          ("large", N_("much larger, about ×{large:.0f}"))),
         (M.RegularizerSpec(keep_prob=0.9, block_size=7, group=3),), seed=7, run=_mistakes,
         picture_first=False),
    Step(N_("DropBlock and Dropout together"),
         N_("Hu, Si, Zeng & Shu (East China Jiaotong University) combine the two: DropBlock in the shallow and middle "
            "convolutional groups (their p = 0.8), Dropout on the fully connected layer before the classifier (they "
            "give no rate). Here DropBlock runs inside the blocks of groups 2 and 3 and Dropout on the pooled "
            "features before fc at keep_prob {fc_kp:g}, this app's choice (the DropBlock paper's AmoebaNet-B uses "
            "0.5 before its softmax)."),
         N_("Which one lowers the probability of the top class the most?"),
         tuple(ARM_LABELS.items()),
         (M.RegularizerSpec(
             placement="in_blocks", groups=(2, 3), skip=False, group3_quarter=False,
             group_params=((2, STRATEGY_KEEP_PROB, 3), (3, STRATEGY_KEEP_PROB, 3))),), seed=8, run=_strategy,
         setting=N_("DropBlock inside the blocks of groups 2 and 3 with block_size 3, at Hu et al.'s p = 0.8 unless "
                    "that leaves less than 10% of the class probability on this model (then a keep_prob measured "
                    "for it, said below); Dropout before fc at keep_prob {fc_kp:g}")),
)


def describe(spec: M.RegularizerSpec) -> str:
    """A step's parameters in one translated phrase; the method's name (DropBlock, Dropout) is a name."""
    kind, groups = M.KIND_LABELS[spec.kind], listing(map(str, spec.groups))
    if spec.group_params:
        params = listing((_("group {g} at keep_prob {kp:g} with {b}×{b} blocks").format(g=g, kp=kp, b=b)
                          for g, kp, b in spec.group_params), clauses=True)
        return _("{kind} inside the blocks of groups {groups}: {params}").format(kind=kind, groups=groups,
                                                                                  params=params)
    if spec.placement == "in_blocks":
        return _("{kind} with keep_prob {kp:g} and {b}×{b} blocks inside the blocks of groups {groups}").format(
            kind=kind, kp=spec.keep_prob, b=spec.block_size, groups=groups)
    if spec.kind == "dropblock":
        return _("{kind} with keep_prob {kp:g} and {b}×{b} blocks on the output of group {g}").format(
            kind=kind, kp=spec.keep_prob, b=spec.block_size, g=spec.group)
    return _("{kind} with keep_prob {kp:g} on the output of group {g}").format(kind=kind, kp=spec.keep_prob,
                                                                               g=spec.group)


def parameters(step: Step) -> str:
    """The parameters the step's main figure uses, in words (its caption and presenter mode's top line)."""
    facts = step.facts()
    return (_(step.setting).format(**facts) if step.setting
            else listing((describe(spec) for spec in step.specs), clauses=True))


def headline(step: Step) -> str:
    """Presenter mode's top line for this step: its own parameters and seed, not the sidebar's (Markdown-safe)."""
    return _("{params} · seed **{seed}**").format(params=parameters(step), seed=step.seed)


# ------------------------------------------------------------------ drawing


def current_step() -> int:
    """The step shown, 1..len(STEPS) (the URL's value was parsed and clamped by ui/settings.py)."""
    value = st.session_state.get(STEP_KEY, 1)
    return min(len(STEPS), max(1, value if isinstance(value, int) and not isinstance(value, bool) else 1))


def _go(step: int) -> None:
    st.session_state[STEP_KEY] = min(len(STEPS), max(1, step))


def navigation(n: int) -> None:
    """Previous / indicator / next. The keys are a contract: presenter mode binds ← and → to them."""
    left, mid, right = st.columns([1, 3, 1], vertical_alignment="center")
    back, ahead = layout.lesson_shortcut("lesson_prev"), layout.lesson_shortcut("lesson_next")
    # with a shortcut, Streamlit shows its key (← / →) on the button itself
    left.button(_("Previous") if back else _("← Previous"), key="lesson_prev", on_click=_go, args=(n - 1,),
                disabled=n <= 1, width="stretch", shortcut=back)
    mid.progress(n / len(STEPS), text=_("Step {n} of {total}").format(n=n, total=len(STEPS)))
    right.button(_("Next") if ahead else _("Next →"), key="lesson_next", on_click=_go, args=(n + 1,),
                 disabled=n >= len(STEPS), width="stretch", type="primary", shortcut=ahead)


def main_picture(picture: Callable[[], None]) -> None:
    """The step's one main picture: full width and on screen in presenter mode (ui/layout.py)."""
    with layout.main_figure():
        picture()


def draw(ctx: Context) -> None:
    n = current_step()
    step = STEPS[n - 1]
    st.title(_("DropBlock in eight steps"))
    layout.presenter_params(headline(step))  # the projector's top line: this step's parameters
    navigation(n)
    with layout.on_projector("lesson-step"):  # the step's title and paragraph: the projector shows them too
        st.header(_("{n} · {title}").format(n=n, title=_(step.title)))
        st.markdown(_(step.text).format(**step.facts()))
    st.caption(_("This step sets its own parameters ({params}; seed {seed}). The sidebar's keep_prob, block_size, "
                 "seed and placement are not used here; the image and the model are the sidebar's.").format(
        params=parameters(step), seed=step.seed))
    body(ctx, n)


@frame.fragment(message=N_("Something went wrong while measuring this step. Try another image; the details are "
                           "in the server log."))  # answering reruns only the step, not the sidebar and the model
def body(ctx: Context, n: int) -> None:
    _body(ctx, STEPS[n - 1], n)


def _body(ctx: Context, step: Step, n: int) -> None:
    """The step's picture, its question and, once answered, the measured answer with a verdict."""
    facts = step.facts()
    picture, outcome = step.run(ctx, step)
    slot = st.container()
    # the question and, beside it, the reveal: both on the projector, under the picture
    ask, reveal = layout.on_projector("lesson-answer").columns([2, 3])
    options = dict(step.options)
    choice = ask.radio(_(step.prompt).format(**facts), list(options), index=None,
                       format_func=lambda k: _(options[k]).format(**facts), key=f"lesson_q{n}")
    if step.picture_first:
        with slot:
            main_picture(picture)
    if choice is None:
        if not step.picture_first:
            slot.info(_("Choose an answer: the chart comes with it."), icon="👇")
        return
    result = outcome()
    with reveal:
        if result.answer is None:
            st.info(result.measured, icon="📏")
        elif result.answer == choice:
            st.success(_("Right. {measured}").format(measured=result.measured), icon="✅")
        else:
            st.info(_("Not this time: the measured answer is “{answer}”. {measured}").format(
                answer=_(options[result.answer]).format(**facts), measured=result.measured), icon="🤔")
        if step.explain:  # the why, now that the student has committed to a prediction
            st.markdown(_(step.explain).format(**facts))
    if not step.picture_first:
        with slot:
            main_picture(picture)
