"""The guided lesson's eight steps as data: DropBlock (Ghiasi, Lin & Le, NeurIPS 2018, arXiv:1810.12890).

Each step is a title, one short paragraph, its own parameters (a ``RegularizerSpec`` and a seed,
independent of the sidebar; the image and the model are the sidebar's), one question with choices,
and a function that measures the answer on this image and draws the step's one main picture
(ui/lesson_maps.py for steps 1–4, ui/lesson_curves.py for steps 5–8). A sentence that answers the
question belongs in ``Step.explain``, shown only with the reveal (tests/app/test_lesson.py checks each
step's text before the reveal for its answer's key phrase). ui/lesson.py draws the steps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import models as M
from ui.i18n import N_, _, listing
from ui.inputs import Context
from ui.lesson_curves import (ARM_LABELS, CURVE_KEEP_PROBS, CURVE_SAMPLES, SCHEDULE_STEPS, SCHEDULE_TARGET,
                              STRATEGY_FC_KEEP, STRATEGY_KEEP_PROB, measure_figure5, measure_mistakes,
                              measure_schedule, measure_strategy)
from ui.lesson_maps import Outcome, measure_block, measure_budget, measure_cam, measure_gamma


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



STEPS: tuple[Step, ...] = (
    Step(N_("What a block is"),
         N_("Dropout zeroes single units, but neighbouring units of a feature map carry nearly the same information, "
            "so the network hardly notices. DropBlock instead draws a few random **seeds** (yellow in the picture) "
            "and zeroes a region around each; block_size sets its size, here {b}."),
         N_("One yellow seed: how many units of the feature map does it zero?"),
         (("one", N_("1: just the seed")), ("line", N_("a line of block_size units")),
          ("square", N_("a square of block_size × block_size units"))),
         (M.RegularizerSpec(keep_prob=0.85, block_size=5, group=3),), seed=1, run=measure_block,
         explain=N_("Each seed zeroes the whole block_size × block_size square around it ({b}×{b} = {b2} units; "
                    "blocks that overlap share units), then the kept units are rescaled by count(M)/count_ones(M) "
                    "so the mean activation stays the same.")),
    Step(N_("Why γ is smaller than 1 − keep_prob"),
         N_("keep_prob says what share of units to keep, so 1 − keep_prob is the drop budget. DropBlock draws "
            "**seeds** with probability γ, and every seed grows into a block of block_size² units."),
         N_("To drop {drop:.0%} of the units with {b}×{b} blocks, the seed probability γ must be…"),
         (("equal", N_("about {drop:g}, the same as 1 − keep_prob")), ("smaller", N_("much smaller than {drop:g}")),
          ("larger", N_("larger than {drop:g}"))),
         (M.RegularizerSpec(keep_prob=0.9, block_size=7, group=2),), seed=2, run=measure_gamma,
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
         seed=3, run=measure_budget, picture_first=True,
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
         (M.RegularizerSpec(keep_prob=0.8, block_size=7, group=3),), seed=4, run=measure_cam),
    Step(N_("The paper's Figure 5"),
         N_("The paper takes a ResNet-50 trained without DropBlock and applies DropBlock at inference, inside the "
            "blocks of groups 3 and 4, lowering keep_prob, with block_size 1 (dropout) and with block_size 7. Here "
            "is the same experiment on this image."),
         N_("As keep_prob falls, which curve falls faster?"),
         (("b1", N_("block_size 1 (like dropout)")), ("b7", N_("block_size 7")), ("same", N_("about the same"))),
         (M.RegularizerSpec(placement="in_blocks", groups=(3, 4)),),
         seed=5, run=measure_figure5, picture_first=False,
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
         (M.RegularizerSpec(keep_prob=SCHEDULE_TARGET),), seed=0, run=measure_schedule,
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
         (M.RegularizerSpec(keep_prob=0.9, block_size=7, group=3),), seed=7, run=measure_mistakes,
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
             group_params=((2, STRATEGY_KEEP_PROB, 3), (3, STRATEGY_KEEP_PROB, 3))),), seed=8, run=measure_strategy,
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
