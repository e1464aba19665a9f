"""What each page of the app shows, computed in one call that returns a frozen dataclass.

Pages read widgets, call one ``compute_*`` function and draw the result. Everything returned
is on the CPU, detached, and small enough to cache per set of parameters.

The Monte Carlo views also come in rounds (:mod:`models.rounds`): ``compute_X_rounds`` yields a
:class:`~models.rounds.Partial` per round, the result over the samples drawn so far; after N
samples it equals ``compute_X`` with ``n_samples=N`` (sample ``s`` draws from
:func:`models.engine.sample_seed` (seed, s) however the samples are batched).

DropBlock: Ghiasi, Lin & Le, NeurIPS 2018 (arXiv:1810.12890). CAM: Zhou et al., CVPR 2016.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace

import torch
from torch import Tensor

import dropblock as db

from .backbone import Backbone, Site
from .engine import (
    KIND_LABELS,
    CleanPass,
    DropRun,
    RegularizerSpec,
    SiteInput,
    class_activation_map,
    first_site_input,
    iter_runs,
    pass_samples,
    run_regularized,
    sample_generators,
    sample_range,
    topk,
    upsample_cam,
)
from .rounds import FIRST, Partial, Progress, mean_std, round_progress, round_ranges
from .text import N_, Text

__all__ = [
    "COMPARED",
    "STRATEGY_ARMS",
    "CamShift",
    "Comparison",
    "MaskOutcome",
    "MaskSample",
    "MethodView",
    "RobustnessCurve",
    "StrategyComparison",
    "StrategyView",
    "compute_cam_shift",
    "compute_cam_shift_rounds",
    "compute_comparison",
    "compute_comparison_rounds",
    "compute_dropblock_dropout",
    "compute_dropblock_dropout_rounds",
    "compute_mask_outcome",
    "compute_mask_sample",
    "compute_mask_sample_at",
    "compute_robustness_curve",
    "compute_robustness_curve_rounds",
    "curve_of_samples",
    "gamma_formula",
]

Top = list[tuple[str, float]]


def gamma_formula(keep_prob: float, block_size: int, height: int, width: int, gamma_scale: float = 1.0) -> str:
    """Eq. (1) with the numbers plugged in, as plain text (the block clipped to the map)."""
    gamma = min(1.0, gamma_scale * db.dropblock_gamma(keep_prob, block_size, height, width))
    return _eq1_text(keep_prob, db.effective_block_size(block_size, height, width), height, width, gamma_scale, gamma)


def _eq1_text(keep_prob: float, block: tuple[int, int], height: int, width: int, gamma_scale: float,
              gamma: float) -> str:
    """Eq. (1) written out for a (bh, bw) block on an (H, W) map, ending in ``gamma``."""
    bh, bw = block
    prefix = "¼ · " if gamma_scale == 0.25 else ("" if gamma_scale == 1 else f"{gamma_scale:g} · ")
    return (
        f"γ = {prefix}(1 − {keep_prob:g}) / ({bh}·{bw}) · ({height}·{width}) / "
        f"(({height}−{bh}+1)·({width}−{bw}+1)) = {gamma:.5f}"
    )


def _cpu(t: Tensor) -> Tensor:
    return t.detach().to("cpu")


def _cam_for(backbone: Backbone, features: Tensor, class_idx: int) -> Tensor:
    return _cpu(upsample_cam(class_activation_map(features, backbone.classifier, class_idx)))


def _spatial(mask: Tensor, height: int, width: int) -> Tensor:
    """(..., h, w) bool mask -> (..., H, W); SpatialDropout's (1, 1) masks are broadcast."""
    return mask.expand(*mask.shape[:-2], height, width)


# ---------------------------------------------------------------------------- mask explorer


@dataclass(frozen=True, eq=False)
class MaskSample:
    """Masks and feature maps at the first site a regulariser acts on (one sample): everything the
    mask grid and its metrics show, and nothing from the layers after the site."""

    spec: RegularizerSpec
    site_label: str
    map_size: tuple[int, int]
    block: tuple[int, int]
    gamma: float
    formula: str
    target_drop: float  # 1 - keep_prob, or (1 - keep_prob) / 4 at a group-3 site with the paper's γ/4
    target_quartered: bool  # the site's target is (1 - keep_prob) / 4 (the paper's group 3)
    realised_drop: float
    expected_drop: float | None  # exact expectation (DropBlock only)
    channels: tuple[int, ...]  # the channels shown: the most active that were hit, then the most active
    hit_channels: int  # channels of the site with at least one dropped unit in this sample
    total_channels: int  # channels of the site
    seed_mask: Tensor  # (k, H, W) bool
    block_mask: Tensor  # (k, H, W) bool, True = kept
    before: Tensor  # (k, H, W)
    after: Tensor  # (k, H, W)


@dataclass(frozen=True, eq=False)
class MaskOutcome:
    """What the rest of the network makes of one mask sample: top-5 and CAMs without and with it."""

    spec: RegularizerSpec
    top5_clean: Top
    top5_dropped: Top
    cam_clean: Tensor  # (224, 224) CAM of the clean top-1 class without the drop
    cam_dropped: Tensor  # (224, 224) the same class with it


def shown_channels(before: Tensor, kept: Tensor, n: int) -> tuple[tuple[int, ...], int]:
    """The ``n`` channels to show: the most active of those the mask hit (at least one unit dropped),
    then, if fewer were hit, the most active of the rest; and how many channels were hit.

    Args:
        before: (C, H, W) the site's activation.
        kept: (C, H, W) or (1, H, W) bool, True = kept (one mask shared by all channels).
        n: how many channels to show, at most C.
    """
    activity = before.mean(dim=(1, 2))  # (C,)
    hit = (~kept).flatten(1).any(dim=1).expand(activity.shape[0])  # (C,)
    order = torch.argsort(activity, descending=True, stable=True)
    ranked = torch.cat([order[hit[order]], order[~hit[order]]])  # hit channels first, each by activity
    return tuple(int(c) for c in ranked[:n]), int(hit.sum())


def _mask_sample(spec: RegularizerSpec, site: Site, before: Tensor, after: Tensor, mask: db.DropMask,
                 n_channels: int, channels: Sequence[int] | None = None) -> MaskSample:
    """The grid's part of a run: ``before`` (1, C, H, W), ``after`` (S, C, H, W), sample 0 shown."""
    before = _cpu(before[0]).float()
    height, width = before.shape[-2:]
    n_channels = min(n_channels, before.shape[0])
    chosen, n_hit = shown_channels(before, _cpu(_spatial(mask.block_mask[0], height, width)), n_channels)
    if channels is None:
        channels = chosen
    else:  # another sample's channels, to show two methods on the same ones
        channels = tuple(int(c) for c in channels)
        if not channels or not all(0 <= c < before.shape[0] for c in channels):
            raise ValueError(f"expected channels in [0, {before.shape[0]}), but got {channels}")
        n_channels = len(channels)
    pick = lambda m: _cpu(_spatial(m[0], height, width))[  # noqa: E731
        list(channels) if m.shape[1] > 1 else [0] * n_channels
    ]
    if spec.kind == "dropblock":
        # All from the mask the engine drew: the site's keep_prob, its γ/4 factor, the block clipped
        # to the map and the γ it sampled with; nothing is decided or computed again here.
        block_size = max(mask.block_size)  # clips back to mask.block_size on this map
        if spec.gamma_mode == "calibrated":
            eq1 = min(1.0, mask.gamma_scale * db.dropblock_gamma(mask.keep_prob, block_size, height, width))
            formula = Text(N_("γ = {gamma:.5f}, calibrated: exact expected drop = {drop:.4f} (Eq. (1) would give "
                              "{eq1})"), gamma=mask.gamma, drop=mask.target_drop, eq1=f"{eq1:.5f}")
        else:
            formula = _eq1_text(mask.keep_prob, mask.block_size, height, width, mask.gamma_scale, mask.gamma)
        expected = db.expected_drop_fraction(
            mask.keep_prob, block_size, height, width, seed_region=spec.seed_region, gamma=mask.gamma
        )
    else:
        formula = Text(N_("γ = {gamma:.5f} ({kind}: {rule})"), gamma=mask.gamma, kind=KIND_LABELS[spec.kind],
                       rule=Text(N_("one square per image")) if spec.kind == "cutout" else "γ = 1 − keep_prob")
        expected = None
    return MaskSample(
        spec=spec,
        site_label=site.label,
        map_size=(height, width),
        block=mask.block_size,
        gamma=mask.gamma,
        formula=formula,
        target_drop=mask.target_drop,
        target_quartered=mask.gamma_scale == 0.25,
        realised_drop=float(mask.drop_fraction[0]),
        expected_drop=expected,
        channels=channels,
        hit_channels=n_hit,
        total_channels=before.shape[0],
        seed_mask=pick(mask.seed_mask),
        block_mask=pick(mask.block_mask),
        before=before[list(channels)],
        after=_cpu(after[0]).float()[list(channels)],
    )


def _mask_outcome(backbone: Backbone, clean: CleanPass, run: DropRun) -> MaskOutcome:
    return MaskOutcome(
        spec=run.spec,
        top5_clean=topk(clean.probs[0], backbone.categories),
        top5_dropped=topk(run.probs[0], backbone.categories),
        cam_clean=_cam_for(backbone, clean.features, clean.top1)[0],
        cam_dropped=_cam_for(backbone, run.features, clean.top1)[0],
    )


def compute_mask_sample(
    backbone: Backbone, clean: CleanPass, spec: RegularizerSpec, *, seed: int = 0, n_channels: int = 8,
    channels: Sequence[int] | None = None,
) -> MaskSample:
    """One set of masks at the first site and the ``n_channels`` most active channels the mask hit
    there (:func:`shown_channels`), or the given ``channels`` (another sample's, to compare on them).

    Runs the network only up to that site (nothing after it: for ``"after_group"`` and Cutout on
    the input, no layer at all beyond the cached activation): :func:`compute_mask_sample_at` of
    ``first_site_input(backbone, clean, spec)``. The masks are those the network of
    :func:`compute_mask_outcome` runs with for the same ``seed``.
    """
    return compute_mask_sample_at(first_site_input(backbone, clean, spec), spec, seed=seed, n_channels=n_channels,
                                  channels=channels)


def compute_mask_sample_at(
    site: SiteInput, spec: RegularizerSpec, *, seed: int = 0, n_channels: int = 8,
    channels: Sequence[int] | None = None,
) -> MaskSample:
    """:func:`compute_mask_sample` drawn on a site input computed already: no layer runs, so a move
    of keep_prob, block_size or the seed draws new masks in a few milliseconds.

    Args:
        site: ``models.engine.first_site_input(backbone, clean, s)`` for a spec ``s`` placed as
            ``spec`` (the same placement, groups, site and, for Cutout, input or features).
        spec: what to draw; its keep_prob, block size, γ/4 rule and mask options apply at
            ``site`` (:meth:`RegularizerSpec.mask_args`).
        seed: a single draw is sample 0 of a run seeded ``seed``, whose generator is seeded
            ``sample_seed(seed, 0)``, i.e. ``seed`` itself: the masks of :func:`compute_mask_outcome`.
        n_channels, channels: as :func:`compute_mask_sample`.
    """
    generator = torch.Generator(device="cpu").manual_seed(int(seed))
    with torch.inference_mode():
        # The one call that decides γ (the γ/4 rule included) and draws; the page reads both from the mask.
        mask = db.sample_mask(site.before, **spec.mask_args(site.site.group), generator=generator)
        after = db.apply_mask(site.before, mask)  # keep_prob 1: ``before`` itself, as in the full run
    return _mask_sample(spec, site.site, site.before, after, mask, n_channels, channels)


def compute_mask_outcome(backbone: Backbone, clean: CleanPass, spec: RegularizerSpec, *, seed: int = 0) -> MaskOutcome:
    """Top-5 and the clean top-1's CAM without and with the masks of :func:`compute_mask_sample`
    (same ``seed``): the whole regularised network, one sample."""
    return _mask_outcome(backbone, clean, run_regularized(backbone, clean, spec, n_samples=1, seed=seed))


# ---------------------------------------------------------------------------- compare methods


@dataclass(frozen=True, eq=False)
class MethodView:
    """One regulariser at the shared drop budget."""

    label: str
    spec: RegularizerSpec
    site_label: str
    unit: str  # what the drop fraction counts: feature units at group g, or input-image pixels
    mask: Tensor  # (H, W) bool, True = kept (channel ``channel``; the image for input Cutout)
    dropped: Tensor  # (H, W) that channel after the drop (input Cutout: mean over RGB of the input)
    channel: int | None  # the most active channel this draw dropped units in (else the most active); None: the image
    target_drop: float
    realised_drop: float  # Monte Carlo mean over ``n_samples`` mask draws
    sample_drop: float  # the draw shown (sample 0, the first of the mean's draws)
    top5: Top
    class_prob: float  # probability of the clean top-1 class, the draw shown
    cam: Tensor  # (224, 224), same class as the clean CAM
    drop_std: float = 0.0  # population std of the drop over the ``n_samples`` draws


@dataclass(frozen=True, eq=False)
class Comparison:
    """Dropout, SpatialDropout, Cutout and DropBlock at one budget on the same feature map,
    plus the original Cutout on the input image."""

    views: tuple[MethodView, ...]
    group: int
    map_size: tuple[int, int]
    keep_prob: float
    gamma_mode: str
    gamma_eq1: float  # Eq. (1)'s gamma for this map and block
    gamma_calibrated: float  # the gamma whose exact expected drop is 1 - keep_prob
    expected_eq1: float  # exact expected drop with Eq. (1)'s gamma
    cutout_side: int  # side of the feature-map Cutout square (whole squares only: its drop is side² / (H·W))
    n_samples: int
    honoured: tuple[str, ...]  # sidebar settings this comparison uses
    ignored: tuple[str, ...]  # ... and those it does not

    def __iter__(self):
        return iter(self.views)

    def __len__(self) -> int:
        return len(self.views)


COMPARED: tuple[tuple[str, str], ...] = (
    ("dropout", "features"), ("spatial_dropout", "features"), ("cutout", "features"), ("dropblock", "features"),
    ("cutout", "input"),
)


def compute_comparison(
    backbone: Backbone, clean: CleanPass, spec: RegularizerSpec, *, seed: int = 0, n_samples: int = 64
) -> Comparison:
    """Every method at drop budget ``1 - spec.keep_prob``, on the output of group ``spec.group``.

    Dropout, SpatialDropout, Cutout (one square per map, shared by its channels) and DropBlock
    act on the same feature map, so their drop fractions count the same feature units; the
    original Cutout acts on the input image and counts image pixels. DropBlock uses
    ``spec.gamma_mode`` (Eq. (1), or the calibrated gamma that makes the expected drop exact),
    ``spec.per_channel`` and ``spec.seed_region``; Cutout uses ``spec.seed_region`` too
    ("valid" keeps the square inside, an exact budget). The placement is always "after one group"
    here. ``realised_drop`` is the mean over ``n_samples`` mask draws (masks only, cheap; draw
    ``s`` from :func:`models.engine.sample_seed` (seed, s)); the network runs once per method, for
    the draw pictured, which is draw 0.
    """
    n_samples = len(sample_range(n_samples))
    pictured = _comparison_pictured(backbone, clean, spec, seed)
    return _comparison_with(pictured, _comparison_drops(clean, pictured, range(0, n_samples), seed))


def compute_comparison_rounds(
    backbone: Backbone, clean: CleanPass, spec: RegularizerSpec, *, seed: int = 0, n_samples: int = 64,
    first: int = FIRST, progress: Progress | None = None,
) -> Iterator[Partial[Comparison]]:
    """:func:`compute_comparison` in rounds: the pictured draws and the first ``first`` drop samples,
    then more (:func:`models.rounds.round_sizes`); each :class:`Partial`'s ``realised_drop`` and
    ``drop_std`` are over the draws so far, and the last equals :func:`compute_comparison`.
    ``progress`` is called after each method's draws of a round."""
    total = len(sample_range(n_samples))
    pictured = _comparison_pictured(backbone, clean, spec, seed)
    drops = torch.empty(len(pictured.views), 0)
    for new in round_ranges(total, first):
        drops = torch.cat([drops, _comparison_drops(clean, pictured, new, seed, round_progress(progress, new, total))],
                          dim=1)
        yield Partial(_comparison_with(pictured, drops), new.stop, total)


def _comparison_pictured(backbone: Backbone, clean: CleanPass, spec: RegularizerSpec, seed: int) -> Comparison:
    """The comparison with each method's pictured draw (one network run each) and no drop samples yet."""
    class_idx = clean.top1
    group = spec.group
    site_acts = clean.acts[group][0]
    height, width = site_acts.shape[-2:]
    base = replace(spec, placement="after_group", fc_keep_prob=1.0, group_params=())
    views = []
    methods = [replace(base, kind=kind, cutout_on=on) for kind, on in COMPARED]  # type: ignore[arg-type]
    # The four feature-map methods share one batched pass from the cached group output (one sample each).
    runs = dict(iter_runs(backbone, clean, [(method, 1, seed) for method in methods], max_samples=len(methods)))
    for i, (kind, on) in enumerate(COMPARED):
        method, run = methods[i], runs[i]
        if on == "input":
            mask = _cpu(run.mask.block_mask[0, 0])
            dropped = _cpu(run.after[0]).float().mean(dim=0)
            channel = None
            unit, label = Text(N_("input-image pixels")), Text(N_("Cutout (input image)"))
        else:
            kept = _cpu(_spatial(run.mask.block_mask[0], height, width))  # (C or 1, H, W)
            (channel,), _hit = shown_channels(_cpu(site_acts).float(), kept, 1)  # a channel where something dropped
            mask = kept[channel if kept.shape[0] > 1 else 0]
            dropped = _cpu(run.after[0, channel]).float()
            unit = Text(N_("feature units, group {group} ({height}×{width}×{channels})"), group=group, height=height,
                        width=width, channels=site_acts.shape[0])
            label = Text(N_("Cutout (features)")) if kind == "cutout" else KIND_LABELS[kind]
        views.append(MethodView(
            label=label, spec=method, site_label=run.site.label, unit=unit, mask=mask, dropped=dropped, channel=channel,
            target_drop=run.mask.target_drop, realised_drop=float("nan"),
            sample_drop=float(run.mask.drop_fraction[0]),
            top5=topk(run.probs[0], backbone.categories), class_prob=float(run.probs[0, class_idx]),
            cam=_cam_for(backbone, run.features[:1], class_idx)[0], drop_std=float("nan"),
        ))
    return Comparison(
        views=tuple(views), group=group, map_size=(height, width), keep_prob=spec.keep_prob,
        gamma_mode=spec.gamma_mode,
        gamma_eq1=db.dropblock_gamma(spec.keep_prob, spec.block_size, height, width),
        gamma_calibrated=db.calibrated_gamma(spec.keep_prob, spec.block_size, height, width,
                                             seed_region=spec.seed_region),
        expected_eq1=db.expected_drop_fraction(spec.keep_prob, spec.block_size, height, width,
                                               seed_region=spec.seed_region),
        cutout_side=db.cutout_size(spec.keep_prob, height, width),
        n_samples=0,
        honoured=("keep_prob", "block_size", N_("seed"), N_("group"), N_("γ mode"), N_("seed region (DropBlock and Cutout)"),
                  N_("shared mask (DropBlock)"), N_("normalisation (DropBlock)")),
        ignored=(N_("placement: always after one group here"),
                 N_("site before/after ReLU (no activation at a group output)")),
    )


def _comparison_drops(clean: CleanPass, pictured: Comparison, samples: range, seed: int,
                      progress: Progress | None = None) -> Tensor:
    """(methods, S): the realised drop of draws ``samples`` of each method at its site (masks only).

    Draw ``s`` comes from :func:`models.engine.sample_seed` (seed, s), so draw 0 is the pictured one."""
    out = torch.empty(len(pictured.views), len(samples))
    for i, view in enumerate(pictured.views):
        start = clean.x if view.spec.on_input else clean.acts[pictured.group]
        out[i] = db.sample_mask(start.expand(len(samples), *start.shape[1:]), **view.spec.mask_args(pictured.group),
                                generator=sample_generators(seed, samples)).drop_fraction.float().cpu()
        if progress is not None:
            progress((i + 1) / len(pictured.views), N_("Sampling masks"))
    return out


def _comparison_with(pictured: Comparison, drops: Tensor) -> Comparison:
    """``pictured`` with its realised drops: the mean and population std of ``drops`` (methods, S)."""
    means, stds = mean_std(drops)
    views = tuple(replace(view, realised_drop=float(means[i]), drop_std=float(stds[i]))
                  for i, view in enumerate(pictured.views))
    return replace(pictured, views=views, n_samples=drops.shape[1])


# ---------------------------------------------------------------------------- CAM shift


@dataclass(frozen=True, eq=False)
class CamShift:
    """CAM without vs with the regulariser, for one class."""

    class_idx: int
    class_name: str
    clean_cam: Tensor  # (224, 224)
    sample_cam: Tensor  # (224, 224), the first Monte Carlo sample
    mean_cam: Tensor  # (224, 224), the Monte Carlo mean
    difference: Tensor  # mean_cam - clean_cam
    top5_clean: Top
    top5_sample: Top
    top5_mean: Top  # of the mean probability over samples
    clean_prob: float
    sample_probs: Tensor  # (S,) probability of the class in each sample
    keeps_top1: float  # share of samples whose top-1 is the clean top-1
    realised_drop: float  # mean over sites and samples
    n_samples: int

    @property
    def prob_std(self) -> float:
        """Population std of the class probability over the samples."""
        return float(self.sample_probs.float().std(unbiased=False))


def compute_cam_shift(
    backbone: Backbone,
    clean: CleanPass,
    spec: RegularizerSpec,
    *,
    n_samples: int = 16,
    seed: int = 0,
    class_idx: int | None = None,
) -> CamShift:
    """Monte Carlo CAMs under ``spec``: one sample, the mean, and the shift from the clean CAM.

    All ``n_samples`` run as one batch; sample ``s`` draws from :func:`models.engine.sample_seed`
    (seed, s), and "one sample" is sample 0 (the mask explorer's draw for ``seed``).
    """
    class_idx = _cam_class(backbone, clean, class_idx)
    return _cam_shift_of(backbone, clean, class_idx, _cam_samples(backbone, clean, spec, range(0, n_samples), seed,
                                                                   class_idx))


def compute_cam_shift_rounds(
    backbone: Backbone,
    clean: CleanPass,
    spec: RegularizerSpec,
    *,
    n_samples: int = 16,
    seed: int = 0,
    class_idx: int | None = None,
    first: int = FIRST,
    progress: Progress | None = None,
) -> Iterator[Partial[CamShift]]:
    """:func:`compute_cam_shift` in rounds (:func:`models.rounds.round_sizes`): each round runs only
    its new samples (at most :func:`models.engine.pass_samples` per pass, ``progress`` called after
    each pass) and yields the shift over every sample so far; the last equals :func:`compute_cam_shift`."""
    class_idx = _cam_class(backbone, clean, class_idx)
    total = len(sample_range(n_samples))
    parts: list[tuple[Tensor, Tensor, Tensor]] = []
    for new in round_ranges(total, first):
        report = round_progress(progress, new, total)
        limit = pass_samples(backbone)
        for start in range(new.start, new.stop, limit):
            parts.append(_cam_samples(backbone, clean, spec, range(start, min(start + limit, new.stop)), seed,
                                      class_idx))
            if report is not None:
                report((min(start + limit, new.stop) - new.start) / len(new), N_("Sampling masks"))
        cams, probs, drops = (torch.cat(t) for t in zip(*parts))
        yield Partial(_cam_shift_of(backbone, clean, class_idx, (cams, probs, drops)), new.stop, total)


def _cam_class(backbone: Backbone, clean: CleanPass, class_idx: int | None) -> int:
    class_idx = clean.top1 if class_idx is None else int(class_idx)
    if not 0 <= class_idx < len(backbone.categories):
        raise ValueError(f"expected class_idx in 0..{len(backbone.categories) - 1}, but got {class_idx}")
    return class_idx


def _cam_samples(backbone: Backbone, clean: CleanPass, spec: RegularizerSpec, samples: range, seed: int,
                 class_idx: int) -> tuple[Tensor, Tensor, Tensor]:
    """Samples ``samples`` as one batch: CAMs (S, 224, 224), probabilities (S, 1000), and each sample's
    realised drop (S,), the mean over the sites it was dropped at."""
    run: DropRun = run_regularized(backbone, clean, spec, n_samples=len(samples), seed=seed, start=samples.start)
    drops = torch.stack([d.float().cpu() for _, d in run.site_drops]).mean(dim=0)  # (sites, S) -> (S,)
    return _cam_for(backbone, run.features, class_idx), _cpu(run.probs).float(), drops


def _cam_shift_of(backbone: Backbone, clean: CleanPass, class_idx: int,
                  samples: tuple[Tensor, Tensor, Tensor]) -> CamShift:
    """The shift over the samples (:func:`_cam_samples`, concatenated in sample order)."""
    cams, probs, drops = samples
    clean_cam = _cam_for(backbone, clean.features, class_idx)[0]
    mean_cam = cams.mean(dim=0)
    return CamShift(
        class_idx=class_idx,
        class_name=backbone.categories[class_idx],
        clean_cam=clean_cam,
        sample_cam=cams[0],
        mean_cam=mean_cam,
        difference=mean_cam - clean_cam,
        top5_clean=topk(clean.probs[0], backbone.categories),
        top5_sample=topk(probs[0], backbone.categories),
        top5_mean=topk(probs.mean(dim=0), backbone.categories),
        clean_prob=float(clean.probs[0, class_idx]),
        sample_probs=probs[:, class_idx],
        keeps_top1=float((probs.argmax(dim=1) == clean.top1).float().mean()),
        realised_drop=float(drops.mean()),
        n_samples=probs.shape[0],
    )


# ---------------------------------------------------------------------------- robustness curve


@dataclass(frozen=True, eq=False)
class RobustnessCurve:
    """The paper's Figure 5 on one image: class probability vs keep_prob at inference."""

    keep_probs: tuple[float, ...]
    class_idx: int
    class_name: str
    clean_prob: float
    labels: tuple[str, ...]
    mean_prob: Tensor  # (methods, keep_probs)
    std_prob: Tensor  # (methods, keep_probs), population std over the samples
    top1_agreement: Tensor  # (methods, keep_probs): share of samples keeping the clean top-1
    n_samples: int = 0  # Monte Carlo samples per point the means hold (0: not recorded)


DEFAULT_CURVE_METHODS: tuple[tuple[str, int], ...] = (("dropblock", 1), ("dropblock", 7), ("spatial_dropout", 1))


def compute_robustness_curve(
    backbone: Backbone,
    clean: CleanPass,
    base: RegularizerSpec,
    *,
    keep_probs: Sequence[float] = (1.0, 0.95, 0.9, 0.85, 0.8, 0.75),
    methods: Sequence[tuple[str, int]] = DEFAULT_CURVE_METHODS,
    n_samples: int = 8,
    seed: int = 0,
    class_idx: int | None = None,
    progress: Callable[[float, str], None] | None = None,
    max_samples: int | None = None,
) -> RobustnessCurve:
    """Class probability and top-1 agreement vs keep_prob for each (kind, block_size) in ``methods``.

    ``base`` gives the placement (the paper: in the blocks of groups 3 and 4). Every point draws
    its masks from ``seed`` (sample ``s`` from :func:`models.engine.sample_seed` (seed, s)), as a
    separate run would; points run several at a time through the network (at most
    ``max_samples`` samples per pass, default :func:`models.engine.pass_samples`) from the cached
    activation, and keep_prob 1 is the clean pass itself.
    """
    curve = _Curve(backbone, clean, base, tuple(keep_probs), tuple(methods), class_idx)
    p, agree = curve.draw(range(0, n_samples), seed, progress, max_samples)
    if progress is not None:
        progress(1.0, N_("done"))
    return curve.result(p, agree)


def compute_robustness_curve_rounds(
    backbone: Backbone,
    clean: CleanPass,
    base: RegularizerSpec,
    *,
    keep_probs: Sequence[float] = (1.0, 0.95, 0.9, 0.85, 0.8, 0.75),
    methods: Sequence[tuple[str, int]] = DEFAULT_CURVE_METHODS,
    n_samples: int = 8,
    seed: int = 0,
    class_idx: int | None = None,
    progress: Callable[[float, str], None] | None = None,
    max_samples: int | None = None,
    first: int = FIRST,
) -> Iterator[Partial[RobustnessCurve]]:
    """:func:`compute_robustness_curve` in rounds (:func:`models.rounds.round_sizes`): every point
    draws only the round's new samples, and each :class:`Partial` holds the mean and population std
    over the samples so far; the last equals :func:`compute_robustness_curve`. ``progress`` is
    called after each pass as there, its fraction counting the samples of every round."""
    curve = _Curve(backbone, clean, base, tuple(keep_probs), tuple(methods), class_idx)
    total = len(sample_range(n_samples))
    p, agree = torch.empty(len(curve.points), 0), torch.empty(len(curve.points), 0, dtype=torch.bool)
    for new in round_ranges(total, first):
        p_new, agree_new = curve.draw(new, seed, round_progress(progress, new, total), max_samples)
        p, agree = torch.cat([p, p_new], dim=1), torch.cat([agree, agree_new], dim=1)
        if new.stop >= total and progress is not None:
            progress(1.0, N_("done"))
        yield Partial(curve.result(p, agree), new.stop, total)


def curve_of_samples(backbone: Backbone, clean: CleanPass, keep_probs: Sequence[float],
                     methods: Sequence[tuple[str, int]], p: Tensor, agree: Tensor) -> RobustnessCurve:
    """The robustness curve of samples drawn elsewhere (a keep_prob scan's, models/keepgrid.py): ``p``
    the clean top-1's probability and ``agree`` whether the top-1 stayed, (points, S), one row per
    (method, keep_prob below 1) in the order of ``methods`` then ``keep_probs``."""
    curve = _Curve(backbone, clean, None, tuple(keep_probs), tuple(methods), None)
    if p.shape[0] != len(curve.points) or agree.shape != p.shape:
        raise ValueError(f"expected samples of {len(curve.points)} points, but got {tuple(p.shape)} and "
                         f"{tuple(agree.shape)}")
    return curve.result(p, agree)


class _Curve:
    """One robustness curve's points: which specs run, and how their samples become the result."""

    def __init__(self, backbone: Backbone, clean: CleanPass, base: RegularizerSpec | None,
                 keep_probs: tuple[float, ...], methods: tuple[tuple[str, int], ...], class_idx: int | None) -> None:
        self.backbone, self.clean, self.keep_probs, self.methods = backbone, clean, keep_probs, methods
        self.class_idx = clean.top1 if class_idx is None else int(class_idx)
        self.labels = [KIND_LABELS[kind] + (f" b={block_size}" if kind == "dropblock" else "")
                       for kind, block_size in methods]
        self.points = [(m, k) for m in range(len(methods)) for k, kp in enumerate(keep_probs) if kp < 1.0]
        self.specs = [] if base is None else [  # None: the samples come from elsewhere
            replace(base, kind=methods[m][0], block_size=methods[m][1], keep_prob=keep_probs[k])
            for m, k in self.points]

    def _text(self, i: int) -> str:
        m, k = self.points[i]
        return Text(N_("{method}, keep_prob {keep_prob:g}"), method=self.labels[m], keep_prob=self.keep_probs[k])

    def draw(self, samples: range, seed: int, progress: Callable[[float, str], None] | None,
             max_samples: int | None) -> tuple[Tensor, Tensor]:
        """Samples ``samples`` of every dropped point: the class probability (points, S) and whether
        the clean top-1 is kept (points, S), bool."""
        samples = sample_range(samples)
        p = torch.empty(len(self.points), len(samples))
        agree = torch.empty(len(self.points), len(samples), dtype=torch.bool)
        runs = [(spec, samples, seed) for spec in self.specs]
        # Every point from the cached activation with the seed it always had; several points per batched pass.
        if progress is not None and self.points:
            progress(0.0, self._text(0))
        for i, run in iter_runs(self.backbone, self.clean, runs, max_samples=max_samples):
            probs = _cpu(run.probs).float()
            p[i], agree[i] = probs[:, self.class_idx], probs.argmax(dim=-1) == self.clean.top1
            if progress is not None:  # after each pass's points: where a job nobody waits for stops
                progress((i + 1) / len(self.points), self._text(i))
        return p, agree

    def result(self, p: Tensor, agree: Tensor) -> RobustnessCurve:
        """The curve over the samples ``p`` and ``agree`` (points, S) hold."""
        clean, class_idx = self.clean, self.class_idx
        shape = (len(self.methods), len(self.keep_probs))
        # keep_prob 1 is the clean pass by construction: its value copied, not a mean of n copies (whose
        # last bits depend on the CPU's summation order)
        means = torch.full(shape, float(clean.probs[0, class_idx]), dtype=torch.float32)
        stds = torch.zeros(shape, dtype=torch.float32)
        agreement = torch.full(shape, float(clean.probs[0].argmax() == clean.top1), dtype=torch.float32)
        if self.points:
            rows, cols = (torch.tensor(ix) for ix in zip(*self.points))
            means[rows, cols], stds[rows, cols] = mean_std(p)
            agreement[rows, cols] = agree.float().mean(dim=-1)
        return RobustnessCurve(
            keep_probs=tuple(float(k) for k in self.keep_probs),
            class_idx=class_idx,
            class_name=self.backbone.categories[class_idx],
            clean_prob=float(clean.probs[0, class_idx]),
            labels=tuple(self.labels),
            mean_prob=means,
            std_prob=stds,
            top1_agreement=agreement,
            n_samples=p.shape[1],
        )


# ---------------------------------------------------------------------------- DropBlock + Dropout


@dataclass(frozen=True, eq=False)
class StrategyView:
    """One arm of the DropBlock + Dropout comparison, Monte Carlo over ``n_samples`` masks."""

    label: str
    spec: RegularizerSpec
    conv_drop: float  # mean realised drop over the DropBlock sites (0 when off)
    fc_drop: float  # mean realised drop of the pooled features (0 when off)
    top5_mean: Top  # of the mean probability over samples
    class_prob: float  # mean probability of the clean top-1 class
    prob_std: float
    keeps_top1: float  # share of samples whose top-1 is the clean top-1
    sample_probs: Tensor  # (S,) the clean top-1's probability per sample
    mean_cam: Tensor  # (224, 224) Monte Carlo mean CAM of the clean top-1


@dataclass(frozen=True, eq=False)
class StrategyComparison:
    class_name: str
    clean_prob: float
    clean_cam: Tensor
    n_samples: int
    views: tuple[StrategyView, ...]  # none, DropBlock only, Dropout before fc only, both


STRATEGY_ARMS = ("none", "dropblock", "dropout_fc", "both")
_CHUNK = 4


def compute_dropblock_dropout(
    backbone: Backbone,
    clean: CleanPass,
    dropblock: RegularizerSpec,
    *,
    fc_keep_prob: float = 0.5,
    n_samples: int = 16,
    seed: int = 0,
) -> StrategyComparison:
    """The DropBlock + Dropout strategy (Hu, Si, Zeng & Shu) on one image, same seed for all arms.

    Args:
        dropblock: where and how DropBlock acts (e.g. in the blocks of the shallow and middle
            groups, with ``group_params`` giving each group its keep_prob and block_size).
        fc_keep_prob: keep_prob of the Dropout on the pooled features before ``fc``.

    Arms: none; DropBlock only; Dropout before fc only; both. With Dropout before fc the CAM is
    computed from the features with the dropped channels removed (and the rest scaled by
    1/keep_prob), which is exactly what the dropped logits see. Sample ``s`` of every arm draws
    from :func:`models.engine.sample_seed` (seed, s); "none" is the clean pass, copied.
    """
    arms = _strategy_arms(dropblock, fc_keep_prob)
    samples = range(0, len(sample_range(n_samples)))
    drawn = {arm: _strategy_samples(backbone, clean, spec, samples, seed) for arm, (_, spec) in arms.items()
             if arm != "none"}
    return _strategy_of(backbone, clean, arms, drawn, len(samples))


def compute_dropblock_dropout_rounds(
    backbone: Backbone,
    clean: CleanPass,
    dropblock: RegularizerSpec,
    *,
    fc_keep_prob: float = 0.5,
    n_samples: int = 16,
    seed: int = 0,
    first: int = FIRST,
    progress: Progress | None = None,
) -> Iterator[Partial[StrategyComparison]]:
    """:func:`compute_dropblock_dropout` in rounds (:func:`models.rounds.round_sizes`): each round runs
    the new samples of the three dropped arms (``progress`` called after each arm's chunk), and
    yields the four arms over every sample so far; the last equals :func:`compute_dropblock_dropout`."""
    arms = _strategy_arms(dropblock, fc_keep_prob)
    total = len(sample_range(n_samples))
    dropped = [arm for arm in STRATEGY_ARMS if arm != "none"]
    drawn: dict[str, list[tuple[Tensor, ...]]] = {arm: [] for arm in dropped}
    for new in round_ranges(total, first):
        report = round_progress(progress, new, total)
        for a, arm in enumerate(dropped):
            arm_report = None if report is None else (
                lambda f, text, a=a: report((a + f) / len(dropped), text))  # noqa: E731
            drawn[arm].append(_strategy_samples(backbone, clean, arms[arm][1], new, seed, arm_report))
        merged = {arm: tuple(torch.cat(t) for t in zip(*parts)) for arm, parts in drawn.items()}
        yield Partial(_strategy_of(backbone, clean, arms, merged, new.stop), new.stop, total)


def _strategy_arms(dropblock: RegularizerSpec, fc_keep_prob: float) -> dict[str, tuple[str, RegularizerSpec]]:
    db.check_keep_prob(fc_keep_prob, "fc_keep_prob")
    return {
        "none": (N_("None"), replace(dropblock, kind="dropblock", keep_prob=1.0, group_params=(), fc_keep_prob=1.0)),
        "dropblock": (N_("DropBlock only"), replace(dropblock, kind="dropblock", fc_keep_prob=1.0)),
        "dropout_fc": (N_("Dropout before fc only"), replace(dropblock, kind="dropblock", keep_prob=1.0, group_params=(),
                                                         fc_keep_prob=fc_keep_prob)),
        "both": (N_("DropBlock + Dropout before fc"), replace(dropblock, kind="dropblock", fc_keep_prob=fc_keep_prob)),
    }


def _strategy_samples(backbone: Backbone, clean: CleanPass, spec: RegularizerSpec, samples: range, seed: int,
                      progress: Progress | None = None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Samples ``samples`` of one arm: probabilities (S, 1000), CAMs of the clean top-1 (S, 224, 224),
    and each sample's mean realised drop over the DropBlock sites (S,) and of the pooled features (S,)
    (zeros where the arm has none)."""
    probs, cams, conv, fc = [], [], [], []
    # Chunks of _CHUNK samples bound the memory of a run from the shallow groups, where 16 samples at
    # once would hold hundreds of MB of activations; each sample draws from its own stream, so the
    # chunking changes no mask.
    for start in range(samples.start, samples.stop, _CHUNK):
        n = min(_CHUNK, samples.stop - start)
        run = run_regularized(backbone, clean, spec, n_samples=n, seed=seed, start=start)
        probs.append(_cpu(run.probs).float())
        cams.append(_cam_for(backbone, run.features, clean.top1))
        conv_sites = [d.float().cpu() for s, d in run.site_drops if s.kind != "pooled"]  # each (n,)
        fc_sites = [d.float().cpu() for s, d in run.site_drops if s.kind == "pooled"]
        conv.append(torch.stack(conv_sites).mean(dim=0) if conv_sites else torch.zeros(n))
        fc.append(torch.stack(fc_sites).mean(dim=0) if fc_sites else torch.zeros(n))
        del run
        if progress is not None:
            progress((start + n - samples.start) / len(samples), N_("Sampling masks"))
    return torch.cat(probs), torch.cat(cams), torch.cat(conv), torch.cat(fc)


def _strategy_of(backbone: Backbone, clean: CleanPass, arms: dict[str, tuple[str, RegularizerSpec]],
                 drawn: dict[str, tuple[Tensor, ...]], n_samples: int) -> StrategyComparison:
    """The four arms over the samples ``drawn`` holds (the three dropped arms; "none" is the clean pass)."""
    class_idx = clean.top1
    clean_probs = _cpu(clean.probs).float()
    clean_cam = _cam_for(backbone, clean.features, class_idx)[0]
    views = []
    for arm in STRATEGY_ARMS:
        label, spec = arms[arm]
        if arm == "none":  # nothing is dropped: every sample is the clean pass, copied (std 0 by construction)
            views.append(StrategyView(
                label=label, spec=spec, conv_drop=0.0, fc_drop=0.0, top5_mean=topk(clean_probs[0], backbone.categories),
                class_prob=float(clean_probs[0, class_idx]), prob_std=0.0, keeps_top1=1.0,
                sample_probs=clean_probs[0, class_idx].expand(n_samples).clone(), mean_cam=clean_cam.clone(),
            ))
            continue
        probs, cams, conv, fc = drawn[arm]
        p = probs[:, class_idx]
        views.append(StrategyView(
            label=label, spec=spec,
            conv_drop=float(conv.mean()), fc_drop=float(fc.mean()),
            top5_mean=topk(probs.mean(dim=0), backbone.categories),
            class_prob=float(p.mean()), prob_std=float(p.std(unbiased=False)),
            keeps_top1=float((probs.argmax(dim=1) == class_idx).float().mean()),
            sample_probs=p, mean_cam=cams.mean(dim=0),
        ))
    return StrategyComparison(
        class_name=backbone.categories[class_idx], clean_prob=float(clean.probs[0, class_idx]),
        clean_cam=clean_cam, n_samples=n_samples, views=tuple(views),
    )
