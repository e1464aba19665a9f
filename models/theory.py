"""The theory page: Algorithm 1 step by step on a small map, the schedule, and common mistakes.

Each mistake is measured, not asserted, on the current image's real multi-channel activation:
the realised drop rate and how well the mean activation is preserved between training and
inference, next to the paper's recipe (DropBlock, arXiv:1810.12890: Eq. (1) with the valid
seed region, ``count(M)/count_ones(M)``, identity at inference). The mistakes come from the
tutorial in ``shared/seeds`` -- its step 1 draws seeds with probability 1 - keep_prob (no gamma
correction: 0.68 dropped instead of 0.10 at 14x14, b=7), seeds everywhere with truncated border
blocks, scaling by ``count_ones/count_zeros``, multiplying by keep_prob at inference (its other
option, "或者采用训练时已完成的缩放", keeps the scaling done in training: the paper's recipe) -- and
from common implementations (no normalisation; the original dropout's test-time scaling).

The DropBlock + Dropout paper (Hu, Si, Zeng & Shu) says in its abstract that Dropout hides
weights, which is DropConnect; :class:`UnitsVsWeights` measures both, in their own units
(input units and weights), apart from the recipes' table of feature units.

The tutorial's other points become measured contrasts on the network
(:func:`compute_tutorial_contrasts`): DropBlock before vs after the non-linearity, and a
block_size growing with depth vs the paper's constant one.

The Monte Carlo measurements also come in rounds (:mod:`models.rounds`,
``compute_*_rounds``): sample ``s`` draws from :func:`models.engine.sample_seed` (seed, s), so each
round draws only its new samples and the last round equals the one-shot result.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import torch
from torch import Tensor

import dropblock as db

from .backbone import Backbone
from .engine import CleanPass, DropRun, RegularizerSpec, iter_runs, sample_generators, sample_range
from .rounds import FIRST, Partial, Progress, round_progress, round_ranges
from .text import N_

__all__ = [
    "AlgorithmSteps",
    "Contrast",
    "Mistake",
    "Mistakes",
    "Schedule",
    "TutorialContrasts",
    "UnitsVsWeights",
    "DepthContrast",
    "TheoryContrasts",
    "compute_algorithm_steps",
    "compute_depth_contrast",
    "compute_depth_contrast_rounds",
    "compute_mistakes",
    "compute_mistakes_rounds",
    "compute_schedule",
    "compute_theory_contrasts_rounds",
    "compute_tutorial_contrasts",
    "compute_tutorial_contrasts_rounds",
]


@dataclass(frozen=True, eq=False)
class AlgorithmSteps:
    """Algorithm 1 on one toy (H, W) activation map."""

    keep_prob: float
    block: tuple[int, int]
    gamma: float
    valid_region: Tensor  # (H, W) bool: where seeds may fall
    activation: Tensor  # (H, W) the toy input A
    seed_mask: Tensor  # (H, W) bool
    block_mask: Tensor  # (H, W) bool, True = kept (M)
    masked: Tensor  # A * M
    output: Tensor  # A * M * count(M) / count_ones(M)
    count: int
    count_ones: int
    scale: float
    seed: int  # the generator's seed of this draw
    asked_seed: int  # the seed asked for: ``seed`` differs when that one drew too few seeds


def _toy_activation(height: int, width: int) -> Tensor:
    """A smooth blob plus a faint ramp: something recognisable to drop blocks from."""
    rows = torch.linspace(-1, 1, height)[:, None]
    cols = torch.linspace(-1, 1, width)[None, :]
    return 1.0 + torch.exp(-(rows**2 + cols**2) * 3) * 2 + 0.3 * cols


def compute_algorithm_steps(
    height: int = 16, width: int = 16, keep_prob: float = 0.8, block_size: int = 3, *, seed: int = 0,
    seed_region: db.SeedRegion = "valid", min_seeds: int = 1, tries: int = 1000,
) -> AlgorithmSteps:
    """Sample one mask on a toy map and keep every intermediate of Algorithm 1.

    A draw without a seed shows nothing happening (count_ones = count, scale 1), so the draw is the
    first of the seeds ``seed``, ``seed + 1``, ... (at most ``tries`` of them) that draws at least
    ``min_seeds`` seeds, when γ > 0; the result says which (``seed``) and what was asked (``asked_seed``).
    """
    a = _toy_activation(height, width)[None, None]
    used = seed
    for used in range(seed, seed + max(1, tries)):
        mask = db.sample_drop_block_mask(
            a, keep_prob, block_size, seed_region=seed_region, generator=torch.Generator().manual_seed(used)
        )
        if mask.gamma <= 0 or int(mask.seed_mask.sum()) >= min_seeds:
            break
    bh, bw = mask.block_size
    valid = torch.zeros(height, width, dtype=torch.bool)
    if seed_region == "valid":
        ch, cw = (bh - 1) // 2, (bw - 1) // 2
        valid[ch : height - bh + ch + 1, cw : width - bw + cw + 1] = True
    else:
        valid[:] = True
    keep = mask.block_mask[0, 0]
    return AlgorithmSteps(
        keep_prob=keep_prob, block=(bh, bw), gamma=mask.gamma, valid_region=valid, activation=a[0, 0],
        seed_mask=mask.seed_mask[0, 0], block_mask=keep, masked=a[0, 0] * keep,
        output=db.apply_mask(a, mask)[0, 0], count=keep.numel(), count_ones=int(keep.sum()),
        scale=float(mask.scale[0]), seed=used, asked_seed=seed,
    )


@dataclass(frozen=True)
class Mistake:
    """One recipe measured on a real activation (mean magnitude gain: 1.0 = preserved)."""

    name: str
    what: str
    realised_drop: float
    train_mean: float  # mean |output| / mean |input| in training (1.0 = preserved)
    eval_mean: float  # the same at inference
    is_paper: bool = False

    @property
    def mismatch(self) -> float:
        """Relative train/inference mismatch of the mean activation."""
        return abs(self.train_mean - self.eval_mean) / max(abs(self.eval_mean), 1e-12)


@dataclass(frozen=True, eq=False)
class Mistakes:
    """The recipes measured on ``n_samples`` masks over all channels of one real activation."""

    rows: tuple[Mistake, ...]
    map_size: tuple[int, int]
    channels: int
    n_samples: int
    keep_prob: float
    block_size: int
    connect: UnitsVsWeights  # "Dropout hides weights": Dropout vs DropConnect, counted in weights and units


@dataclass(frozen=True)
class UnitsVsWeights:
    """Dropout (Eq. (5) of Hu et al.: units y times r ~ Bernoulli(p)) vs DropConnect (Wan et al. 2013:
    each weight its own Bernoulli), measured on a ``units`` -> ``outputs`` fully connected layer.

    Shares are means over ``samples`` draws at the same keep_prob. A weight column is the weights
    leaving one input unit; a unit is silenced when its whole column is zeroed.
    """

    units: int
    outputs: int
    keep_prob: float
    samples: int
    units_silenced: tuple[float, float]  # (Dropout, DropConnect): share of input units whose column is all zero
    weights_zeroed: tuple[float, float]  # (Dropout, DropConnect): share of the units x outputs weights zeroed
    columns_partly: tuple[float, float]  # (Dropout, DropConnect): share of columns partly (not wholly) zeroed


def compute_mistakes(
    activation: Tensor, keep_prob: float = 0.9, block_size: int = 7, *, n_samples: int = 64, seed: int = 0
) -> Mistakes:
    """The paper's recipe and common mistakes, measured on a real multi-channel activation.

    Args:
        activation: (1, C, H, W) or (C, H, W), e.g. the current image's group-3 output. Masks
            are drawn per sample over all C channels, as in training; the mean gain is
            ``mean |out| / mean |A|`` (a mask times a non-negative scale multiplies magnitudes).
        keep_prob, block_size: DropBlock's settings.
        n_samples: masks drawn (a Monte Carlo batch). Sample ``s`` draws its three masks (the
            paper's, without γ correction, seeds everywhere) from :func:`models.engine.sample_seed`
            (seed, s); the Dropout vs DropConnect draws continue sample 0's generator.

    The tutorial's ``count_ones/count_zeros`` is a per-sample scalar near ``keep/drop``: about
    9x at keep_prob 0.9 on such a tensor (on single-channel maps, most of which have nothing
    dropped and stay unscaled, it looks far milder). The original dropout's scaling -- none in
    training, x keep_prob at inference -- is off only by Eq. (1)'s overlap shortfall.
    """
    a = _mistakes_input(activation)
    values, connect = _mistake_samples(a, keep_prob, block_size, range(0, len(sample_range(n_samples))), seed)
    return _mistakes_of(a, keep_prob, block_size, values, connect)


def compute_mistakes_rounds(
    activation: Tensor, keep_prob: float = 0.9, block_size: int = 7, *, n_samples: int = 64, seed: int = 0,
    first: int = FIRST, progress: Progress | None = None,
) -> Iterator[Partial[Mistakes]]:
    """:func:`compute_mistakes` in rounds (:func:`models.rounds.round_sizes`), each over the samples
    so far (the Dropout vs DropConnect rows are drawn in the first round); the last equals it.
    ``progress`` is called after each round's draws (masks only: a round is short)."""
    a = _mistakes_input(activation)
    total = len(sample_range(n_samples))
    values: Tensor | None = None
    connect: UnitsVsWeights | None = None
    for new in round_ranges(total, first):
        new_values, new_connect = _mistake_samples(a, keep_prob, block_size, new, seed)
        if progress is not None:
            progress(new.stop / total, N_("Sampling masks"))
        values = new_values if values is None else torch.cat([values, new_values], dim=1)
        connect = connect or new_connect
        yield Partial(_mistakes_of(a, keep_prob, block_size, values, connect), new.stop, total)


def _mistakes_input(activation: Tensor) -> Tensor:
    """(1, C, H, W) |activation| on the CPU, float32."""
    if activation.ndim == 3:
        activation = activation[None]
    if activation.ndim != 4 or activation.shape[0] != 1:
        raise ValueError(f"expected one activation (1, C, H, W), but got shape {tuple(activation.shape)}")
    return activation.detach().float().cpu().abs()


# The per-sample values :func:`_mistake_samples` returns, one row each: the realised drops of the three
# masks, and the mean |output| (before dividing by mean |A|) of each way of scaling.
_MISTAKE_VALUES = ("drop_paper", "drop_no_gamma", "drop_everywhere", "out_paper", "out_no_gamma", "out_everywhere",
                   "out_tutorial", "out_unscaled")


def _mistake_samples(a: Tensor, keep_prob: float, block_size: int, samples: range,
                     seed: int) -> tuple[Tensor, UnitsVsWeights | None]:
    """Samples ``samples`` on ``a`` (1, C, H, W): (len(_MISTAKE_VALUES), S) per-sample values, and
    Dropout vs DropConnect when the samples include sample 0 (drawn from its generator after its masks)."""
    gens = sample_generators(seed, samples)
    x = a.expand(len(samples), *a.shape[1:])
    paper = db.sample_drop_block_mask(x, keep_prob, block_size, generator=gens)
    no_gamma = db.sample_drop_block_mask(x, keep_prob, block_size, gamma=1 - keep_prob, generator=gens)
    everywhere = db.sample_drop_block_mask(x, keep_prob, block_size, seed_region="everywhere", generator=gens)
    kept = paper.block_mask.float()
    ones = kept.sum(dim=(1, 2, 3), keepdim=True)  # per sample, all channels
    zeros = kept[0].numel() - ones
    tutorial_scale = torch.where(zeros > 0, ones / zeros.clamp_min(1), torch.ones_like(ones))
    per_sample = lambda t: t.mean(dim=(1, 2, 3))  # noqa: E731  (S,) mean |output| of each sample
    values = torch.stack([
        paper.drop_fraction.float(), no_gamma.drop_fraction.float(), everywhere.drop_fraction.float(),
        per_sample(db.apply_mask(x, paper)), per_sample(db.apply_mask(x, no_gamma)),
        per_sample(db.apply_mask(x, everywhere)), per_sample(x * kept * tutorial_scale), per_sample(x * kept),
    ])
    connect = _dropout_vs_dropconnect(a.shape[1], keep_prob, gens[0]) if samples.start == 0 else None
    return values, connect


def _mistakes_of(a: Tensor, keep_prob: float, block_size: int, values: Tensor, connect: UnitsVsWeights) -> Mistakes:
    """The recipes over the per-sample ``values`` (len(_MISTAKE_VALUES), S) drawn so far."""
    base = float(a.mean())
    v = dict(zip(_MISTAKE_VALUES, (float(row.mean()) for row in values)))
    gain = lambda name: v[name] / base  # noqa: E731  mean gain over the samples (all the same size)
    drop_paper = v["drop_paper"]
    rows = (
        Mistake(N_("Paper (Eq. 1, valid seeds, count/count_ones, identity at inference)"),
                N_("γ from Eq. (1) on the valid seed region; kept units scaled by count(M)/count_ones(M)."),
                drop_paper, gain("out_paper"), 1.0, is_paper=True),
        Mistake(N_("Tutorial step 1: seeds with probability 1 − keep_prob (no γ correction)"),
                N_("The tutorial's step 1 makes each position a seed with probability 1 − keep_prob, like "
                   "Dropout, then grows every seed to a b×b block: each seed drops up to b² units, so far more "
                   "than 1 − keep_prob is dropped. Eq. (1) divides by b² (and corrects for the valid region)."),
                v["drop_no_gamma"], gain("out_no_gamma"), 1.0),
        Mistake(N_("Seeds everywhere, border blocks truncated"),
                N_("Eq. (1)'s γ, but seeds also where the block does not fit (the tutorial, current timm)."),
                v["drop_everywhere"], gain("out_everywhere"), 1.0),
        Mistake(N_("Tutorial scaling count_ones/count_zeros"),
                N_("Kept units × count_ones/count_zeros (per sample, over all channels) instead of "
                   "count/count_ones: a scale near keep/drop, identity at inference."),
                drop_paper, gain("out_tutorial"), 1.0),
        Mistake(N_("Tutorial inference: multiply by keep_prob"),
                N_("Correct training (count/count_ones), but activations × keep_prob at inference, the tutorial's "
                   "first option. Its other option, in parentheses, “or keep the scaling already done in training”, is "
                   "the paper's recipe: the first row."),
                drop_paper, gain("out_paper"), keep_prob),
        Mistake(N_("Classic dropout scaling: none in training, × keep_prob at inference"),
                N_("A × M in training, A × keep_prob at inference, as the original dropout scales at test time "
                   "(Srivastava et al. 2014), not the tutorial's advice: off by Eq. (1)'s overlap shortfall only."),
                drop_paper, gain("out_unscaled"), keep_prob),
        Mistake(N_("No normalisation"),
                N_("A × M only: the expected activation shrinks in training but not at inference."),
                drop_paper, gain("out_unscaled"), 1.0),
    )
    return Mistakes(rows, tuple(a.shape[-2:]), int(a.shape[1]), values.shape[1], float(keep_prob), int(block_size),
                    connect)


def _dropout_vs_dropconnect(units: int, keep_prob: float, gen: torch.Generator, outputs: int = 1000,
                            samples: int = 4) -> UnitsVsWeights:
    """Dropout and DropConnect at ``keep_prob`` on a ``units`` -> ``outputs`` layer, ``samples`` draws."""
    unit_keep = db.sample_dropout_mask(torch.ones(samples, units, 1, 1), keep_prob, generator=gen).block_mask
    dropout_w = unit_keep.view(samples, 1, units).expand(samples, outputs, units)  # (S, out, in): unit mask on weights
    connect_w = torch.rand(samples, outputs, units, generator=gen) < keep_prob  # (S, out, in): each weight its own
    silenced = lambda w: float((~w.any(dim=1)).float().mean())  # noqa: E731  whole column zeroed
    zeroed = lambda w: float((~w).float().mean())  # noqa: E731
    partly = lambda w: float(((~w).any(dim=1) & w.any(dim=1)).float().mean())  # noqa: E731
    return UnitsVsWeights(
        units=units, outputs=outputs, keep_prob=float(keep_prob), samples=samples,
        units_silenced=(silenced(dropout_w), silenced(connect_w)),
        weights_zeroed=(zeroed(dropout_w), zeroed(connect_w)),
        columns_partly=(partly(dropout_w), partly(connect_w)),
    )


@dataclass(frozen=True, eq=False)
class Schedule:
    steps: Tensor
    keep_probs: Tensor
    target: float
    total_steps: int


def compute_schedule(target: float, total_steps: int, *, horizon: int | None = None, points: int = 200) -> Schedule:
    """The linear keep_prob schedule (Sec. 3) sampled at ``points`` steps up to ``horizon``."""
    horizon = horizon or int(total_steps * 1.25) or 1
    steps = torch.linspace(0, horizon, points).round().long().unique()
    values = torch.tensor([db.linear_keep_prob(int(s), total_steps, target) for s in steps], dtype=torch.float64)
    return Schedule(steps, values, target, total_steps)


# ---------------------------------------------------------------------------- tutorial contrasts


@dataclass(frozen=True)
class Contrast:
    """One setting run on the network: Monte Carlo mean over ``n_samples`` masks."""

    label: str
    realised_drop: float  # mean over the dropped sites and samples
    class_prob: float  # mean probability of the clean top-1 class
    prob_std: float
    keeps_top1: float  # share of samples keeping the clean top-1


@dataclass(frozen=True, eq=False)
class TutorialContrasts:
    """The tutorial's advice against the paper's, measured on this image and seed."""

    class_name: str
    clean_prob: float
    n_samples: int
    site: tuple[Contrast, Contrast]  # after the activation (TF TPU ResNet), before it (tutorial)
    site_max_logit_change: float  # max |logit difference| between the two, same masks
    block_size: tuple[Contrast, Contrast]  # constant (paper), growing with depth (tutorial)


@dataclass(frozen=True, eq=False)
class _ContrastSamples:
    """Per-sample values of one setting (each (S,)): the clean top-1's probability, whether the
    top-1 is kept, the mean realised drop over the dropped sites; and the logits (S, classes)."""

    prob: Tensor
    kept: Tensor
    drop: Tensor
    logits: Tensor

    @classmethod
    def of(cls, clean: CleanPass, run: DropRun) -> _ContrastSamples:
        probs = run.probs.detach().float().cpu()
        drop = torch.stack([d.float().cpu() for s, d in run.site_drops if s.kind != "pooled"]).mean(dim=0)
        return cls(probs[:, clean.top1], probs.argmax(dim=1) == clean.top1, drop, run.logits.detach().float().cpu())

    @staticmethod
    def cat(parts: list[_ContrastSamples]) -> _ContrastSamples:
        return _ContrastSamples(*(torch.cat([getattr(p, f) for p in parts]) for f in ("prob", "kept", "drop", "logits")))

    def contrast(self, label: str) -> Contrast:
        p = self.prob
        return Contrast(label, float(self.drop.mean()), float(p.mean()), float(p.std(unbiased=False)),
                        float(self.kept.float().mean()))


def _contrast_samples(backbone: Backbone, clean: CleanPass, specs: list[RegularizerSpec], samples: range, seed: int,
                      progress: Progress | None = None) -> list[_ContrastSamples]:
    """Samples ``samples`` of every spec (several per batched pass where they share one)."""
    out: list[_ContrastSamples | None] = [None] * len(specs)
    for i, run in iter_runs(backbone, clean, [(spec, samples, seed) for spec in specs]):
        out[i] = _ContrastSamples.of(clean, run)
        if progress is not None:
            progress((i + 1) / len(specs), N_("Sampling masks"))
    return out  # type: ignore[return-value]


def _tutorial_settings(keep_prob: float) -> tuple[tuple[RegularizerSpec, str], ...]:
    base = RegularizerSpec(keep_prob=keep_prob, block_size=7, placement="in_blocks", groups=(3, 4))
    return (
        (base, N_("after BN and ReLU (TF TPU ResNet)")),
        (replace(base, group_params=((3, keep_prob, 3), (4, keep_prob, 7))),
         N_("b = 3 in group 3, 7 in group 4 (tutorial)")),
        (replace(base, act_site="before_act"), N_("after BN, before ReLU (tutorial)")),
    )


def _tutorial_of(backbone: Backbone, clean: CleanPass, settings, drawn: list[_ContrastSamples]) -> TutorialContrasts:
    after, growing, before = (d.contrast(label) for d, (_, label) in zip(drawn, settings))
    constant = Contrast(N_("b = 7 in groups 3 and 4 (paper)"), *(getattr(after, f) for f in
                                                          ("realised_drop", "class_prob", "prob_std", "keeps_top1")))
    return TutorialContrasts(
        class_name=backbone.categories[clean.top1],
        clean_prob=float(clean.probs[0, clean.top1]),
        n_samples=drawn[0].prob.shape[0],
        site=(after, before),
        site_max_logit_change=float((drawn[0].logits - drawn[2].logits).abs().max()),
        block_size=(constant, growing),
    )


def compute_tutorial_contrasts(
    backbone: Backbone, clean: CleanPass, keep_prob: float = 0.9, *, n_samples: int = 8, seed: int = 0
) -> TutorialContrasts:
    """DropBlock in the blocks of groups 3 and 4 (the paper's placement), two contrasts:

    * the site: after BN and ReLU (the TF TPU ResNet) vs after BN, before ReLU (the tutorial).
      The same masks are used; a mask times a positive scale commutes with ReLU, so on ResNet
      the two are equal up to rounding, while a clipping activation (ReLU6 in EfficientNet-Lite)
      makes them differ;
    * block_size 7 in both groups (the paper's constant) vs 3 in group 3 and 7 in group 4 (the
      tutorial's "growing with depth"), through ``RegularizerSpec.group_params``.
    """
    settings = _tutorial_settings(keep_prob)
    # Each setting with the same seed (so the same masks where the shapes agree); the first two share
    # a batched pass where the device takes it (models.engine.iter_runs).
    drawn = _contrast_samples(backbone, clean, [spec for spec, _ in settings], range(0, n_samples), seed)
    return _tutorial_of(backbone, clean, settings, drawn)


def compute_tutorial_contrasts_rounds(
    backbone: Backbone, clean: CleanPass, keep_prob: float = 0.9, *, n_samples: int = 8, seed: int = 0,
    first: int = FIRST, progress: Progress | None = None,
) -> Iterator[Partial[TutorialContrasts]]:
    """:func:`compute_tutorial_contrasts` in rounds (:func:`models.rounds.round_sizes`), each over the
    samples so far; ``progress`` is called after each pass. The last equals the one-shot result."""
    settings = _tutorial_settings(keep_prob)
    total = len(sample_range(n_samples))
    parts: list[list[_ContrastSamples]] = []
    for new in round_ranges(total, first):
        parts.append(_contrast_samples(backbone, clean, [spec for spec, _ in settings], new, seed,
                                       round_progress(progress, new, total)))
        drawn = [_ContrastSamples.cat(list(per_setting)) for per_setting in zip(*parts)]
        yield Partial(_tutorial_of(backbone, clean, settings, drawn), new.stop, total)


# ---------------------------------------------------------------------------- shallow vs deep


DEPTHS: tuple[tuple[tuple[int, ...], str], ...] = (
    ((1, 2), N_("groups 1 and 2: shallow (Hu et al.: DropBlock in the shallow and middle layers)")),
    ((3, 4), N_("groups 3 and 4: deep (the tutorial: not in shallow layers; the DropBlock paper's groups)")),
)


@dataclass(frozen=True, eq=False)
class DepthContrast:
    """Where to drop: the tutorial says not in shallow layers ("不在……较浅的卷积层"), Hu et al. put
    DropBlock in the shallow and middle layers. Both arms: DropBlock b = ``block_size`` inside the blocks
    (conv branches only, no γ/4), the same keep_prob, the same seed; Monte Carlo over ``n_samples``.

    ``rows[k][d]`` is keep_prob ``keep_probs[k]`` at depth ``DEPTHS[d]``.
    """

    class_name: str
    clean_prob: float
    n_samples: int
    block_size: int
    keep_probs: tuple[float, ...]
    rows: tuple[tuple[Contrast, Contrast], ...]


def compute_depth_contrast(
    backbone: Backbone, clean: CleanPass, keep_probs: tuple[float, ...] = (0.9,), *, block_size: int = 7,
    n_samples: int = 8, seed: int = 0,
) -> DepthContrast:
    """DropBlock in the shallow groups (1, 2) against the deep groups (3, 4) at each of ``keep_probs``.

    This measures how much each placement disturbs this pretrained network at inference (the mean
    probability of its clean top-1 class), not which placement trains better: neither document
    measures that on this network.
    """
    specs = _depth_specs(keep_probs, block_size)
    drawn = _contrast_samples(backbone, clean, specs, range(0, n_samples), seed)
    return _depth_of(backbone, clean, keep_probs, block_size, drawn)


def compute_depth_contrast_rounds(
    backbone: Backbone, clean: CleanPass, keep_probs: tuple[float, ...] = (0.9,), *, block_size: int = 7,
    n_samples: int = 8, seed: int = 0, first: int = FIRST, progress: Progress | None = None,
) -> Iterator[Partial[DepthContrast]]:
    """:func:`compute_depth_contrast` in rounds (:func:`models.rounds.round_sizes`), each over the
    samples so far; ``progress`` is called after each pass. The last equals the one-shot result."""
    specs = _depth_specs(keep_probs, block_size)
    total = len(sample_range(n_samples))
    parts: list[list[_ContrastSamples]] = []
    for new in round_ranges(total, first):
        parts.append(_contrast_samples(backbone, clean, specs, new, seed, round_progress(progress, new, total)))
        drawn = [_ContrastSamples.cat(list(per_spec)) for per_spec in zip(*parts)]
        yield Partial(_depth_of(backbone, clean, keep_probs, block_size, drawn), new.stop, total)


@dataclass(frozen=True, eq=False)
class TheoryContrasts:
    """The theory page's measured contrasts together: the tutorial's advice, shallow vs deep at the
    sidebar's keep_prob and at ``middle`` (where DropBlock in groups 3 and 4 leaves half of p)."""

    tutorial: TutorialContrasts
    depth: DepthContrast
    middle: float


def compute_theory_contrasts_rounds(
    backbone: Backbone, clean: CleanPass, keep_prob: float = 0.9, *, middle: Callable[[], float],
    n_samples: int = 8, seed: int = 0, first: int = FIRST, progress: Progress | None = None,
) -> Iterator[Partial[TheoryContrasts]]:
    """:func:`compute_tutorial_contrasts_rounds` and :func:`compute_depth_contrast_rounds` (at the
    keep_probs ``keep_prob`` and ``middle()``) as one job in rounds, so that their first answers come
    together: each round draws the new samples of both, and each component equals its own rounds
    (the last: its one-shot result). ``middle()`` runs once, before the first round (a keep_prob scan,
    kept elsewhere for every session)."""
    mid = float(middle())
    keep_probs = tuple(dict.fromkeys((float(keep_prob), mid)))
    done = [0.0, 0.0]

    def half(i: int) -> Progress | None:
        if progress is None:
            return None

        def report(fraction: float, text: str):
            done[i] = float(fraction)
            return progress(sum(done) / 2, text)

        return report

    tutorial = compute_tutorial_contrasts_rounds(backbone, clean, keep_prob, n_samples=n_samples, seed=seed,
                                                 first=first, progress=half(0))
    depth = compute_depth_contrast_rounds(backbone, clean, keep_probs, n_samples=n_samples, seed=seed, first=first,
                                          progress=half(1))
    for t, d in zip(tutorial, depth):
        yield Partial(TheoryContrasts(t.value, d.value, mid), t.done, t.total)


def _depth_specs(keep_probs: tuple[float, ...], block_size: int) -> list[RegularizerSpec]:
    if not keep_probs:
        raise ValueError("expected at least one keep_prob, but got none")
    return [RegularizerSpec(keep_prob=kp, block_size=block_size, placement="in_blocks", groups=groups, skip=False,
                            group3_quarter=False) for kp in keep_probs for groups, _label in DEPTHS]


def _depth_of(backbone: Backbone, clean: CleanPass, keep_probs: tuple[float, ...], block_size: int,
              drawn: list[_ContrastSamples]) -> DepthContrast:
    measured = [d.contrast(DEPTHS[i % len(DEPTHS)][1]) for i, d in enumerate(drawn)]
    rows = tuple((measured[2 * k], measured[2 * k + 1]) for k in range(len(keep_probs)))
    return DepthContrast(class_name=backbone.categories[clean.top1], clean_prob=float(clean.probs[0, clean.top1]),
                         n_samples=drawn[0].prob.shape[0], block_size=block_size,
                         keep_probs=tuple(float(k) for k in keep_probs), rows=rows)
