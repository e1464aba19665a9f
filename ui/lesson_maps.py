"""The guided lesson's steps 1–4 (ui/lesson_steps.py): what each measures on one feature map and draws.

DropBlock (Ghiasi, Lin & Le, NeurIPS 2018, arXiv:1810.12890): a block, γ, the same budget as Dropout,
and the CAM's shift. Each ``measure_*`` function takes the sidebar's context and its step, and returns
two callables: the step's one main picture and its :class:`Outcome` (the right option and the measured
numbers). The measurements are the app's cached views (``ui/views.py``) called with the step's own
parameters, so a class on the same image shares one result per step; nothing here computes DropBlock
itself. Also the helpers steps 5–8 (ui/lesson_curves.py) share: :class:`Outcome`, :func:`step_context`,
the answer pickers and :func:`show`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image

import models as M
from ui import layout, render, view, views
from ui.i18n import _
from ui.inputs import Context

if TYPE_CHECKING:
    from ui.lesson_steps import Step

TIE = 0.005  # probabilities closer than this are "about the same"
SAMPLES = 16  # Monte Carlo draws where a step averages (a first answer after 2, in rounds)
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


def show(draw, args: tuple, name: str, caption: str) -> None:
    """A step's picture ``draw(*args)`` at its own size (at most the column's width), with its PNG
    download; across the screen in presenter mode (as high as the step's text leaves room for, ui/layout.py)."""
    render.show_picture(draw, *args, name=name, caption=caption,
                        width="stretch" if layout.presenting() else PICTURE_WIDTH)


def _scale_beside(picture: Image.Image, t, label: str) -> Image.Image:
    """``picture`` with :func:`render.diverging_scale` at its right, vertically centred: a wide picture
    that fills a projector's width within the height a lesson step leaves (under it, it is 2:1)."""
    bar = render.diverging_scale(t, label)
    out = Image.new("RGB", (picture.width + 16 + bar.width, max(picture.height, bar.height)), "white")
    out.paste(picture.convert("RGB"), (0, (out.height - picture.height) // 2))
    out.paste(bar, (picture.width + 16, (out.height - bar.height) // 2))
    return out


def cam_picture(image: Image.Image, shift: M.CamShift, label: str, beside: bool) -> Image.Image:
    """Step 4's picture: the clean CAM, the mean CAM on one scale, and their difference with its scale
    (``beside``: at its right, for a projector; else under it)."""
    vmax = float(max(shift.clean_cam.max(), shift.mean_cam.max()))
    row = [np.asarray(render.overlay(image, shift.clean_cam, vmax)), np.asarray(render.overlay(image, shift.mean_cam, vmax)),
           np.asarray(render.diverging(shift.difference))]
    return (_scale_beside if beside else render.with_scale)(render.grid([row], size=224), shift.difference, label)


def measure_block(ctx: Context, step: Step):
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


def measure_gamma(ctx: Context, step: Step):
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


def measure_budget(ctx: Context, step: Step):
    dropout, dropblock = step.specs
    blocks = views.mask_sample(step_context(ctx, dropblock, step.seed), n_channels=CHANNELS)
    # Dropout on the same channels: the most active ones DropBlock hit (Dropout hits nearly every channel)
    pair = [views.mask_sample(step_context(ctx, dropout, step.seed), n_channels=CHANNELS, channels=blocks.channels),
            blocks]

    def picture():
        render.show_mask_grid(
            tuple(pair), ("mask", "after"), (), "lesson-3-budget",
            _("Dropout's mask and the features after it, then DropBlock's; red: dropped units. The {k} most active "
              "channels DropBlock hit.").format(k=CHANNELS), tile=TILE, size=TILE)

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


def measure_cam(ctx: Context, step: Step):
    shift = view.final(views.cam_shift(step_context(ctx, step.spec, step.seed), SAMPLES, None))

    def picture():
        show(cam_picture, (ctx.image, shift, _("the change, in class-score units (as the CAM)"), layout.presenting()),
             "lesson-4-cam",
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
