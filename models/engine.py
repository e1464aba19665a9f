"""Run a backbone with a regulariser in place: features, masks, predictions and CAM.

* A clean pass per image keeps the activations after the stem and after each group, so a
  change of keep_prob, block_size or seed re-runs only the layers after the insertion point.
* Monte Carlo samples run as one batch: the cached activation is expanded to S samples and
  every sample draws its masks from its own seeded CPU ``torch.Generator``: sample ``s`` of a run
  seeded ``seed`` from :func:`sample_seed` (seed, s), which is ``seed`` itself for sample 0. So a
  sample's masks do not depend on how many samples run, nor on which share its batch: samples
  [a, b) of a run (``(spec, range(a, b), seed)``) are exactly those samples of a longer run, and a
  result computed in rounds (:mod:`models.rounds`) equals the one-shot run. A single draw
  (``n_samples=1``: the mask explorer, a shared link) is sample 0, drawn from ``seed``. DropBlock
  normalises per sample by default, so samples are independent of each other
  (``normalize="batch"`` couples them through the scale, as TF/torchvision/timm do: the masks
  stay per sample, the scale depends on the batch).
* Several runs can share one batch (:func:`run_regularized_many`, :func:`iter_runs`): each part
  keeps its own generators, so its masks are exactly those of its separate run. The layers before
  the first site run once on the one cached image; on the CPU, EfficientNet-Lite0 re-runs in NHWC
  (channels last), where its convolutions measured ~30% faster (ResNet-50: no faster, so NCHW).
* The masks alone (the mask explorer's grid, animation frames): :func:`first_site_input` runs the
  same forward only up to the first site and stops there, before the drop, keeping the activation
  the first mask is drawn for; it depends on the spec's placement only (not on keep_prob, block_size,
  the mask options or the seed), so it is computed once and a new mask is drawn on it with
  ``dropblock.sample_mask`` (``RegularizerSpec.mask_args``), as the full run draws it.
* Masks come from a **CPU** generator (they are small) and are moved to the model's device, so
  a seed gives the same masks on a GPU server, a CPU one, and after a CPU retry on CUDA OOM.
* Dropout before ``fc`` (Hu, Si, Zeng & Shu, "A regularization strategy combining Dropblock and
  Dropout": DropBlock in the convolutional layers plus Dropout before the classifier) acts on
  the globally pooled features. Pooling is linear, so dropping pooled channel k equals dropping
  channel k of the last conv features entirely: ``DropRun.features`` carries that channel mask
  (scaled by 1/keep_prob), and its CAM stays consistent with the logits
  (``logits = fc(features.mean((2, 3)))``).
* Class activation maps follow Zhou et al., "Learning Deep Features for Discriminative
  Localization", CVPR 2016: ``M_c = sum_k w_{c,k} f_k`` over the last conv features.
* Nothing here modifies the model or registers hooks: regularisers run inside our functional
  block forwards (see :mod:`models.backbone`), so one cached model can serve every session.

DropBlock: Ghiasi, Lin & Le, NeurIPS 2018 (arXiv:1810.12890).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

import dropblock as db

from .backbone import Backbone, Site, identity_site
from .text import N_

__all__ = [
    "KINDS",
    "KIND_LABELS",
    "SITE_ACTS",
    "CleanPass",
    "DropRun",
    "RegularizerSpec",
    "SiteInput",
    "class_activation_map",
    "clean_pass",
    "run_regularized",
    "iter_runs",
    "pass_samples",
    "run_regularized_many",
    "first_site_input",
    "same_pass",
    "sample_generators",
    "sample_range",
    "sample_seed",
    "topk",
    "upsample_cam",
]

Kind = db.Kind
Placement = Literal["after_group", "in_blocks"]
ActSite = Literal["after_act", "before_act"]
SITE_ACTS: dict[str, str] = {"after_act": N_("after BN and ReLU (TF TPU ResNet)"),
                             "before_act": N_("after BN, before ReLU (tutorial)")}
KINDS: tuple[str, ...] = ("dropout", "spatial_dropout", "cutout", "dropblock")  # dropblock.KINDS, in the pages' order
KIND_LABELS = {"dropout": "Dropout", "spatial_dropout": "SpatialDropout", "cutout": "Cutout", "dropblock": "DropBlock"}


@dataclass(frozen=True)
class RegularizerSpec:
    """What to drop, how much, and where.

    Attributes:
        kind: ``"dropblock"``, ``"dropout"``, ``"spatial_dropout"`` or ``"cutout"``.
        keep_prob: in (0, 1].
        block_size: DropBlock's block side (clipped to each map).
        placement: ``"after_group"`` drops the output of group ``group``; ``"in_blocks"``
            drops inside every block of ``groups`` -- after each conv branch and, with
            ``skip``, on the skip connection -- as in the paper.
        group: 1..4, for ``"after_group"``.
        groups: for ``"in_blocks"``; the paper uses (3, 4).
        group3_quarter: divide the drop rate (DropBlock: gamma) by 4 in group 3, as the paper.
        skip: also drop on skip connections (``"in_blocks"``).
        per_channel: DropBlock masks per channel (default) or shared across channels.
        seed_region: DropBlock ``"valid"`` (paper) or ``"everywhere"``.
        gamma_mode: DropBlock ``"eq1"`` (paper) or ``"calibrated"`` (exact expected drop = target).
        normalize: DropBlock ``count(M)/count_ones(M)`` per ``"sample"`` or over the ``"batch"``.
        act_site: in-block branch sites ``"after_act"`` (after BN and ReLU, the TF TPU ResNet) or
            ``"before_act"`` (after BN, before ReLU, as the tutorial says).
        fc_keep_prob: Dropout on the pooled features before ``fc``; 1.0 = off.
        group_params: per-group ``(group, keep_prob, block_size)`` overriding ``keep_prob`` and
            ``block_size`` there, e.g. ``((3, 0.9, 3), (4, 0.9, 7))`` for a block size growing
            with depth, as the tutorial suggests (the paper keeps it constant).
        cutout_on: Cutout on the ``"input"`` image (the original, DeVries & Taylor 2017) or on
            the ``"features"`` where the other kinds act (a like-for-like drop budget).
    """

    kind: Kind = "dropblock"
    keep_prob: float = 0.9
    block_size: int = 7
    placement: Placement = "after_group"
    group: int = 3
    groups: tuple[int, ...] = (3, 4)
    group3_quarter: bool = True
    skip: bool = True
    per_channel: bool = True
    seed_region: db.SeedRegion = "valid"
    gamma_mode: db.GammaMode = "eq1"
    normalize: db.Normalize = "sample"
    act_site: ActSite = "after_act"
    fc_keep_prob: float = 1.0
    group_params: tuple[tuple[int, float, int], ...] = ()
    cutout_on: Literal["input", "features"] = "input"

    def __post_init__(self) -> None:
        db.check_kind(self.kind)
        db.check_keep_prob(self.keep_prob)
        db.check_block_size(self.block_size)
        db.check_seed_region(self.seed_region)
        if self.placement not in ("after_group", "in_blocks"):
            raise ValueError(f"expected placement 'after_group' or 'in_blocks', but got {self.placement!r}")
        if self.group not in (1, 2, 3, 4):
            raise ValueError(f"expected group in 1..4, but got {self.group!r}")
        if not self.groups or any(g not in (1, 2, 3, 4) for g in self.groups):
            raise ValueError(f"expected groups to be a non-empty subset of 1..4, but got {self.groups!r}")
        db.check_gamma_mode(self.gamma_mode)
        db.check_normalize(self.normalize)
        if self.cutout_on not in ("input", "features"):
            raise ValueError(f"expected cutout_on 'input' or 'features', but got {self.cutout_on!r}")
        if self.act_site not in SITE_ACTS:
            raise ValueError(f"expected act_site in {tuple(SITE_ACTS)}, but got {self.act_site!r}")
        db.check_keep_prob(self.fc_keep_prob, "fc_keep_prob")
        if not isinstance(self.group_params, tuple):
            raise TypeError(f"expected group_params to be a tuple of (group, keep_prob, block_size), "
                            f"but got {type(self.group_params).__name__}")
        for entry in self.group_params:
            if (not isinstance(entry, tuple) or len(entry) != 3 or entry[0] not in (1, 2, 3, 4)
                    or not isinstance(entry[1], numbers.Real)):
                raise ValueError(f"expected group_params entries (group 1..4, keep_prob, block_size), but got {entry!r}")
            db.check_keep_prob(entry[1])
            db.check_block_size(entry[2])
        if len({g for g, _, _ in self.group_params}) != len(self.group_params):
            raise ValueError(f"expected each group at most once in group_params, but got {self.group_params!r}")

    def params_at(self, group: int) -> tuple[float, int]:
        """(keep_prob, block_size) at sites of ``group``: ``group_params`` there, else the spec's."""
        for g, keep_prob, block_size in self.group_params:
            if g == group:
                return float(keep_prob), int(block_size)
        return self.keep_prob, self.block_size

    @property
    def label(self) -> str:
        name = KIND_LABELS[self.kind]
        if self.kind == "dropblock":
            name += f" b={self.block_size}"
        return f"{name}, keep_prob={self.keep_prob:g}"

    @property
    def on_input(self) -> bool:
        """Whether the regulariser acts on the input image (the original Cutout)."""
        return self.kind == "cutout" and self.cutout_on == "input"

    def quarter_at(self, group: int) -> bool:
        """Whether a site in ``group`` gets a quarter of the drop (the paper's γ/4 in group 3). Only
        ``"in_blocks"`` sites are quartered (all of them are inside blocks)."""
        return self.placement == "in_blocks" and self.group3_quarter and group == 3

    def mask_args(self, group: int) -> dict[str, object]:
        """The arguments of ``dropblock.sample_mask(x, **args, generator=...)`` at a site of ``group``:
        the kind, the group's keep_prob and block size (:meth:`params_at`), ``gamma_scale`` 0.25 where
        the drop is quartered (:meth:`quarter_at`: the paper's γ/4) and the mask options. A parameter
        read: nothing is drawn or computed (γ is computed where the mask is drawn, once)."""
        keep_prob, block_size = self.params_at(group)
        return {"kind": self.kind, "keep_prob": keep_prob, "block_size": block_size,
                "gamma_scale": 0.25 if self.quarter_at(group) else 1.0, "per_channel": self.per_channel,
                "seed_region": self.seed_region, "gamma_mode": self.gamma_mode, "normalize": self.normalize}

    @property
    def resume_level(self) -> int:
        """Index into ``CleanPass.acts`` whose activation the re-run starts from (-1: the input)."""
        if self.on_input:
            return -1
        if self.placement == "after_group":
            return self.group
        return min(self.groups) - 1


@dataclass(frozen=True, eq=False)
class CleanPass:
    """One image through the unregularised network.

    Attributes:
        x: (1, 3, 224, 224) normalised input.
        acts: (stem, group1, group2, group3, group4) outputs, each (1, C, H, W).
        logits: (1, 1000). features: (1, K, 7, 7) CAM features.
    """

    x: Tensor
    acts: tuple[Tensor, ...]
    logits: Tensor
    features: Tensor

    @property
    def probs(self) -> Tensor:
        return self.logits.softmax(dim=-1)

    @property
    def top1(self) -> int:
        return int(self.logits.argmax(dim=-1)[0])


@dataclass(frozen=True, eq=False)
class DropRun:
    """S Monte Carlo samples of the regularised network on one image.

    Row ``i`` of every (S, ...) field is sample ``samples[i]`` of the run's seed.

    Attributes:
        logits: (S, 1000). features: (S, K, 7, 7), with Dropout before fc's channel mask applied.
        site: where ``before``/``after``/``mask`` were captured (the first site dropped).
        before: (1, C, H, W) the clean activation at ``site``.
        after: (S, C, H, W) the same activation after the drop.
        mask: the DropMask applied at ``site``.
        site_drops: realised drop fraction (S,) for every site that was dropped, including the
            pooled features (``Site.kind == "pooled"``) when Dropout before fc is on.
        samples: which samples of the seed these are, ``range(0, S)`` for a run from the start.
    """

    spec: RegularizerSpec
    logits: Tensor
    features: Tensor
    site: Site
    before: Tensor
    after: Tensor
    mask: db.DropMask
    site_drops: tuple[tuple[Site, Tensor], ...] = field(default=())
    samples: range = range(0, 1)

    @property
    def probs(self) -> Tensor:
        return self.logits.softmax(dim=-1)


_MASK64 = (1 << 64) - 1


def sample_seed(seed: int, sample: int) -> int:
    """The seed Monte Carlo sample ``sample`` of a run seeded ``seed`` draws its masks from.

    Sample 0 draws from ``seed`` itself, so every single draw (``n_samples=1``: the mask explorer,
    an animation frame, a shared link) is the first sample of every longer run with that seed.
    Sample ``s > 0`` draws from SplitMix64's output function (Steele, Lea & Flood 2014) applied to
    ``seed XOR s * 0x9E3779B97F4A7C15`` (64 bits), shifted right by one (a non-negative 63-bit
    seed): far from ``seed``, from the other samples' and from other small seeds' streams.
    """
    if isinstance(sample, bool) or not isinstance(sample, numbers.Integral) or sample < 0:
        raise ValueError(f"expected sample to be an int >= 0, but got {sample!r}")
    if sample == 0:
        return int(seed)
    z = (int(seed) & _MASK64) ^ ((int(sample) * 0x9E3779B97F4A7C15) & _MASK64)
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return (z ^ (z >> 31)) >> 1


def sample_generators(seed: int, samples: range) -> list[torch.Generator]:
    """One CPU generator per sample of ``samples``, seeded :func:`sample_seed` (seed, s)."""
    return [torch.Generator(device="cpu").manual_seed(sample_seed(seed, s)) for s in samples]


def sample_range(samples: int | range) -> range:
    """``n`` -> ``range(0, n)``; a ``range(a, b)`` with 0 <= a < b and step 1 as it is."""
    if isinstance(samples, range):
        if samples.step != 1 or samples.start < 0 or len(samples) < 1:
            raise ValueError(f"expected samples range(a, b) with 0 <= a < b and step 1, but got {samples!r}")
        return samples
    if isinstance(samples, bool) or not isinstance(samples, numbers.Integral) or samples < 1:
        raise ValueError(f"expected n_samples to be an int >= 1, but got {samples!r}")
    return range(0, int(samples))


def clean_pass(backbone: Backbone, x: Tensor) -> CleanPass:
    """Run ``x`` (1, 3, 224, 224) once, keeping every group's output."""
    with torch.inference_mode():
        x = x.to(backbone.device)
        h = backbone.stem(x)  # NCHW: exactly the model's own forward (the re-runs switch to NHWC)
        acts = [h]
        for g in range(1, 5):
            h = backbone.run_group(h, g)
            acts.append(h)
        logits, feats = backbone.head(h)
    return CleanPass(x, tuple(acts), logits, feats)


def run_regularized(
    backbone: Backbone, clean: CleanPass, spec: RegularizerSpec, *, n_samples: int = 1, seed: int = 0,
    start: int = 0,
) -> DropRun:
    """Re-run from the cached activation at ``spec.resume_level`` with ``n_samples`` masks at once.

    Args:
        backbone: the model (never modified).
        clean: the image's :func:`clean_pass`.
        spec: what to drop and where.
        n_samples: Monte Carlo samples, run as one batch.
        seed: sample ``s`` draws its masks from a CPU ``torch.Generator`` seeded
            :func:`sample_seed` (seed, s) -- ``seed`` itself for sample 0 -- (drawn on the CPU,
            then moved to the model's device, so a seed means the same masks on every device).
        start: the first sample: the run is samples ``range(start, start + n_samples)``, equal to
            those rows of a run of ``start + n_samples`` samples.
    """
    if isinstance(start, bool) or not isinstance(start, numbers.Integral) or start < 0:
        raise ValueError(f"expected start to be an int >= 0, but got {start!r}")
    samples = sample_range(n_samples)
    return run_regularized_many(backbone, clean, [(spec, range(start, start + len(samples)), seed)])[0]


def same_pass(a: RegularizerSpec, b: RegularizerSpec) -> bool:
    """Whether two specs can share one batched pass: the same layers run, the same sites are offered.

    Kind, keep_prob, block_size, per-group parameters, mask options, γ/4 in group 3, skip
    connections and Dropout before fc may differ: each part of a batch draws and applies its own.
    """
    key = lambda s: (s.on_input, s.resume_level, s.act_site, s.placement,  # noqa: E731
                     s.group if s.placement == "after_group" else s.groups)
    return key(a) == key(b)


@dataclass
class _Part:
    spec: RegularizerSpec
    rows: slice
    samples: range
    generators: list[torch.Generator]  # one per sample (row), in order
    captured: dict = field(default_factory=dict)
    drops: list = field(default_factory=list)


Run = tuple[RegularizerSpec, "int | range", int]  # (spec, n_samples or the samples range(a, b), seed)


def run_regularized_many(
    backbone: Backbone, clean: CleanPass, runs: Sequence[Run]
) -> tuple[DropRun, ...]:
    """Several ``(spec, samples, seed)`` runs as ONE batch through the network.

    ``samples`` is ``n`` (samples 0..n-1) or ``range(a, b)``. Each run is a part of the batch
    whose sample ``s`` draws its masks at every site from its own CPU generator seeded
    :func:`sample_seed` (seed, s), exactly as :func:`run_regularized` alone would (same shapes,
    same order): the results equal the separate runs up to float rounding, and samples [a, b)
    equal those rows of a run from sample 0. The specs must share one pass (:func:`same_pass`).
    The layers before the first site run once, on the one cached image, and are expanded to the
    batch only where a mask is applied.
    """
    runs = [(spec, sample_range(samples), seed) for spec, samples, seed in runs]
    if not runs:
        raise ValueError("expected at least one (spec, n_samples, seed)")
    for spec, _, _ in runs:
        if not same_pass(runs[0][0], spec):
            raise ValueError("expected specs that share one pass (same placement, groups, site and resume level)")
    parts, total = [], 0
    for spec, samples, seed in runs:
        n = len(samples)
        parts.append(_Part(spec, slice(total, total + n), samples, sample_generators(int(seed), samples)))
        total += n
    first_spec = runs[0][0]

    def expanded(h: Tensor) -> Tensor:
        return h if h.shape[0] == total else h.expand(total, *h.shape[1:])

    def drop_part(part: _Part, hp: Tensor, site: Site, out: Tensor | None = None) -> Tensor:
        """Draw ``part``'s mask for its rows ``hp`` (one generator per row) and apply it (into ``out``
        when given; a mask that drops nothing gives ``hp`` itself, or copies it there)."""
        mask = db.sample_mask(hp, **part.spec.mask_args(site.group), generator=part.generators)
        dropped = db.apply_mask(hp, mask, out=out)
        part.drops.append((site, mask.drop_fraction))
        if not part.captured:
            part.captured.update(site=site, before=hp[:1], after=dropped, mask=mask)
        return dropped

    def drop(h: Tensor, site: Site, in_block: bool) -> Tensor:
        active = [_offered(p.spec, site, in_block) for p in parts]
        if not any(active):
            return h
        h = expanded(h)
        if len(parts) == 1:
            return drop_part(parts[0], h, site)
        # Each part writes its rows of one batch tensor: no concatenating copy per site.
        batch = torch.empty_like(h)  # in h's layout, also when h is one sample expanded
        for part, on in zip(parts, active):
            hp, rows = h[part.rows], batch[part.rows]
            if on:
                drop_part(part, hp, site, rows)
            else:
                rows.copy_(hp)
        return batch

    with torch.inference_mode():
        h = _run_to_group4(backbone, clean, first_spec, drop)
        logits, feats = backbone.head(expanded(h), folded=True)
        out = []
        for part in parts:
            lp, fp = logits[part.rows], feats[part.rows]
            if part.spec.fc_keep_prob < 1.0:
                lp, fp = _dropout_before_fc(backbone, fp, part.spec.fc_keep_prob, part.generators, part.drops)
            c = part.captured
            out.append(DropRun(part.spec, lp, fp, c["site"], c["before"], c["after"], c["mask"], tuple(part.drops),
                               part.samples))
    return tuple(out)


def _offered(spec: RegularizerSpec, site: Site, in_block: bool) -> bool:
    """Whether ``spec`` drops at ``site`` (an in-block skip connection only with ``spec.skip``)."""
    return not (in_block and site.kind == "skip" and not spec.skip)


DropFn = Callable[[Tensor, Site, bool], Tensor]  # (activation, site, in a block?) -> activation


def _run_to_group4(backbone: Backbone, clean: CleanPass, spec: RegularizerSpec, drop: DropFn) -> Tensor:
    """The layers from ``spec.resume_level``'s cached activation to group 4's output, offering
    ``drop`` every site of ``spec``'s placement in order: the input image (Cutout on the input), one
    group's output, or every in-block site of ``spec.groups``. Up to the first site the activation
    is the one cached image (1, C, H, W). Call under ``torch.inference_mode()``."""
    level = spec.resume_level
    h = _channels_last(clean.x if level < 0 else clean.acts[level], backbone)  # one image until the first site
    if spec.on_input:
        h = backbone.stem(drop(h, Site(0, -1, "input"), False))  # Cutout on the image
        first = 1
    elif spec.placement == "after_group":
        h = drop(h, Site(spec.group, -1, "group_output"), False)
        first = spec.group + 1
    else:
        first = level + 1

    def in_block_site(x: Tensor, site: Site) -> Tensor:
        return drop(x, site, True)

    before_act = spec.act_site == "before_act"
    for g in range(first, 5):
        in_blocks = not spec.on_input and spec.placement == "in_blocks" and g in spec.groups
        h = backbone.run_group(h, g, in_block_site if in_blocks else identity_site, before_act=before_act, folded=True)
    return h


@dataclass(frozen=True, eq=False)
class SiteInput:
    """The activation at the first site a spec drops at, before the drop: what the first mask of
    every run with that placement is drawn for. No layer after the site has run.

    Attributes:
        site: the first site (as :attr:`DropRun.site`).
        before: (1, C, H, W) the activation there, on the model's device and in the layout the full
            run offers it to its first drop (where no layer runs, the cached activation or image
            itself; EfficientNet-Lite0 on the CPU: its channels-last copy).
    """

    site: Site
    before: Tensor


class _Reached(Exception):
    """Stops a forward at its first site (carries the activation offered there)."""

    def __init__(self, site: SiteInput) -> None:
        super().__init__("first site reached")
        self.site = site


def first_site_input(backbone: Backbone, clean: CleanPass, spec: RegularizerSpec) -> SiteInput:
    """The activation :func:`run_regularized` offers its first drop, running only the layers up to
    that site: none for ``"after_group"`` and Cutout on the input (the cached group output or the
    image); with ``placement="in_blocks"`` the first conv branch of the first block of
    ``min(spec.groups)`` (the rest of that block, and every later one, never runs).

    It depends on the placement only (the fields :func:`same_pass` compares), not on keep_prob,
    block_size, the mask options or the seed: the first mask of a run (sample 0, seeded ``seed``) is
    ``dropblock.sample_mask(before, **spec.mask_args(site.group), generator=...)``, the same draw in
    the same order as the full run's, so masks, ``before`` and ``after`` equal its ``DropRun`` fields.
    """

    def stop(h: Tensor, site: Site, in_block: bool) -> Tensor:
        if not _offered(spec, site, in_block):
            return h
        raise _Reached(SiteInput(site, h))

    try:
        with torch.inference_mode():
            _run_to_group4(backbone, clean, spec, stop)
    except _Reached as reached:
        return reached.site
    raise AssertionError("every placement offers at least one site")  # pragma: no cover


def pass_samples(backbone: Backbone) -> int:
    """How many Monte Carlo samples one batched pass may hold.

    On the CPU a bigger batch saves Python and dispatch overhead but not arithmetic, and past a
    few dozen samples the activations leave the cache (measured: ``bench/views.py``); on a GPU
    bigger batches are what makes it fast, bounded here for memory (ResNet-50 from group 2,
    ~3 MB of activations per sample and layer).
    """
    return 8 if backbone.device.type == "cpu" else 256


def iter_runs(
    backbone: Backbone, clean: CleanPass, runs: Sequence[Run], *,
    max_samples: int | None = None,
):
    """Yield ``(index, DropRun)`` for every ``(spec, samples, seed)`` of ``runs``, batched.

    ``samples`` is ``n`` or ``range(a, b)`` (:func:`run_regularized_many`). Consecutive runs that
    share a pass (:func:`same_pass`) go through the network together, at most ``max_samples``
    samples per pass (default :func:`pass_samples`); a run is never split. Each sample draws from
    its own generator, so the masks never depend on the batching. Results come pass by pass, so
    a caller can report progress (or stop) between passes.
    """
    runs = [(spec, sample_range(samples), seed) for spec, samples, seed in runs]
    limit = max_samples or pass_samples(backbone)
    i = 0
    while i < len(runs):
        j, size = i + 1, len(runs[i][1])
        while j < len(runs) and same_pass(runs[i][0], runs[j][0]) and size + len(runs[j][1]) <= limit:
            size += len(runs[j][1])
            j += 1
        yield from enumerate(run_regularized_many(backbone, clean, runs[i:j]), start=i)
        i = j


def _channels_last(t: Tensor, backbone: Backbone) -> Tensor:
    """EfficientNet-Lite0's depthwise convolutions run about 30% faster in NHWC on the CPU; ResNet-50
    measured no faster, and its masks apply faster in NCHW (``bench/views.py``). Same values."""
    if t.device.type == "cpu" and t.dim() == 4 and backbone.name.startswith("efficientnet"):
        return t.contiguous(memory_format=torch.channels_last)
    return t


def _dropout_before_fc(
    backbone: Backbone, feats: Tensor, keep_prob: float, generator: db.Generators,
    drops: list[tuple[Site, Tensor]],
) -> tuple[Tensor, Tensor]:
    """Dropout on the pooled (S, K) features, then ``fc``; returns (logits, features).

    ``fc(dropout(mean(f)))`` equals ``fc(mean(f * r / keep_prob))`` with the same (S, K, 1, 1)
    channel mask r, so the features returned carry the mask and CAM stays consistent with the
    logits.
    """
    mask = db.sample_dropout_mask(feats.mean(dim=(2, 3), keepdim=True), keep_prob, generator=generator)
    drops.append((Site(4, -1, "pooled"), mask.drop_fraction))
    feats = db.apply_mask(feats, mask)  # (S, K, h, w) * (S, K, 1, 1) / keep_prob
    return backbone.classifier(feats.mean(dim=(2, 3))), feats


def class_activation_map(features: Tensor, classifier: torch.nn.Linear, class_idx: int) -> Tensor:
    """CAM (Zhou et al. 2016): (S, K, h, w) features -> (S, h, w) map for class ``class_idx``."""
    with torch.inference_mode():
        weights = classifier.weight[class_idx].to(features.dtype)  # (K,)
        return torch.einsum("skhw,k->shw", features, weights)


def upsample_cam(cam: Tensor, size: int = 224) -> Tensor:
    """(S, h, w) -> (S, size, size), bilinear, as CAM is shown over the input crop."""
    with torch.inference_mode():
        return F.interpolate(cam[:, None], size=(size, size), mode="bilinear", align_corners=False)[:, 0]


def topk(probs: Tensor, categories: tuple[str, ...], k: int = 5) -> list[tuple[str, float]]:
    """Top-k (class name, probability) of a (1000,) probability vector."""
    values, indices = probs.float().topk(k)
    return [(categories[int(i)], float(v)) for v, i in zip(values, indices)]

