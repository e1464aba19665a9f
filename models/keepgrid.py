"""keep_prob grids chosen per model from a measurement (issue 21, item 13).

The paper's Figure 5 sweeps keep_prob from 1 down to 0.75 on a ResNet-50 (DropBlock, arXiv:1810.12890,
Sec. 4.2). A much more fragile network (EfficientNet-Lite0, the offline fallback, with DropBlock in
groups 3 and 4) has lost its class already at keep_prob 0.9, so the same grid draws flat lines at zero
past the first point. Instead a quick coarse scan measures, for each curve, where the mean probability
of the clean top-1 class falls from 90% to 10% of its clean value, and the grid is refined there: for
each curve, the keep_probs where the scan crosses 75%, 50% and 25% (linear interpolation between scan
points), plus keep_prob 1 (the clean pass).

The scan is Monte Carlo (a few mask samples per point, sample ``s`` from
:func:`models.engine.sample_seed` (seed, s)); :func:`compute_keep_prob_scan_rounds` computes it in
rounds (:mod:`models.rounds`), each round's grid refined from the samples so far.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from .backbone import Backbone
from .compute import RobustnessCurve, curve_of_samples
from .engine import KIND_LABELS, CleanPass, RegularizerSpec, iter_runs, sample_range
from .rounds import FIRST, Partial, Progress, round_progress, round_ranges
from .text import N_

__all__ = ["COARSE", "HIGH", "LOW", "TARGETS", "KeepProbScan", "compute_keep_prob_scan", "compute_keep_prob_scan_rounds",
           "with_keep_prob"]

COARSE: tuple[float, ...] = (1.0, 0.995, 0.99, 0.98, 0.97, 0.95, 0.9, 0.85, 0.8, 0.7, 0.6, 0.5)
HIGH, LOW = 0.9, 0.1  # the band of the fall: from 90% to 10% of the clean class probability
TARGETS: tuple[float, ...] = (0.75, 0.5, 0.25)  # where each curve gets a refined grid point


def with_keep_prob(spec: RegularizerSpec, keep_prob: float) -> RegularizerSpec:
    """``spec`` at ``keep_prob`` everywhere: its own keep_prob and every group's in ``group_params``."""
    return replace(spec, keep_prob=keep_prob, group_params=tuple((g, keep_prob, b) for g, _kp, b in spec.group_params))


def _crossing(keep_probs: Sequence[float], ratio: Sequence[float], target: float) -> float:
    """The keep_prob where ``ratio`` (along descending ``keep_probs``) first falls to ``target``,
    interpolated linearly between the two scan points around it; the lowest keep_prob if it never does."""
    for k in range(1, len(keep_probs)):
        if ratio[k] <= target:
            hi, lo, r_hi, r_lo = keep_probs[k - 1], keep_probs[k], ratio[k - 1], ratio[k]
            if r_hi <= target or r_hi == r_lo:
                return lo
            return lo + (hi - lo) * (target - r_lo) / (r_hi - r_lo)
    return keep_probs[-1]


@dataclass(frozen=True, eq=False)
class KeepProbScan:
    """A coarse keep_prob scan of one or more curves and the grid refined from it.

    Attributes:
        keep_probs: the coarse grid, descending from 1.
        labels: one per curve.
        ratio: (curves, keep_probs) mean class probability over ``n_samples`` draws ÷ the clean one.
        clean_prob: the clean probability of the class.
        grid: descending keep_probs, 1 first: each curve's crossings of :data:`TARGETS`, rounded to
            3 decimals, points closer than 0.002 merged.
        band: (curves, 2): the keep_probs where each curve crosses :data:`HIGH` and :data:`LOW`.
        curve: the scan's points as a robustness curve (:class:`models.compute.RobustnessCurve`):
            the class probability's mean and spread and the top-1 agreement at the coarse keep_probs,
            over the scan's draws so far; what a page shows while the grid is measured.
    """

    keep_probs: tuple[float, ...]
    labels: tuple[str, ...]
    ratio: Tensor
    clean_prob: float
    n_samples: int
    grid: tuple[float, ...]
    band: tuple[tuple[float, float], ...]
    curve: RobustnessCurve

    def middle(self, curve: int = 0) -> float:
        """The keep_prob where ``curve`` falls to half its clean probability (on the scan)."""
        return round(_crossing(self.keep_probs, self.ratio[curve].tolist(), 0.5), 3)


def compute_keep_prob_scan(
    backbone: Backbone,
    clean: CleanPass,
    base: RegularizerSpec,
    *,
    methods: Sequence[tuple[str, int | None]] = (("dropblock", 7),),
    coarse: Sequence[float] = COARSE,
    n_samples: int = 4,
    seed: int = 0,
) -> KeepProbScan:
    """Scan keep_prob coarsely for each ``(kind, block_size)`` of ``methods`` and refine the grid.

    ``base`` gives the placement; ``block_size`` None keeps ``base``'s (and its ``group_params``' block
    sizes). Each point draws ``n_samples`` masks from ``seed``, as :func:`compute_robustness_curve` does.
    """
    scan = _Scan(backbone, clean, base, methods, coarse)
    return scan.result(*scan.draw(range(0, len(sample_range(n_samples))), seed))


def compute_keep_prob_scan_rounds(
    backbone: Backbone,
    clean: CleanPass,
    base: RegularizerSpec,
    *,
    methods: Sequence[tuple[str, int | None]] = (("dropblock", 7),),
    coarse: Sequence[float] = COARSE,
    n_samples: int = 4,
    seed: int = 0,
    first: int = FIRST,
    progress: Progress | None = None,
) -> Iterator[Partial[KeepProbScan]]:
    """:func:`compute_keep_prob_scan` in rounds (:func:`models.rounds.round_sizes`): each round's scan
    and grid come from the samples so far; the last equals :func:`compute_keep_prob_scan`."""
    scan = _Scan(backbone, clean, base, methods, coarse)
    total = len(sample_range(n_samples))
    p = torch.empty(len(scan.points), 0, dtype=torch.float64)
    agree = torch.empty(len(scan.points), 0, dtype=torch.bool)
    for new in round_ranges(total, first):
        p_new, agree_new = scan.draw(new, seed, round_progress(progress, new, total))
        p, agree = torch.cat([p, p_new], dim=1), torch.cat([agree, agree_new], dim=1)
        yield Partial(scan.result(p, agree), new.stop, total)


class _Scan:
    """One scan's points, and how their samples become the grid."""

    def __init__(self, backbone: Backbone, clean: CleanPass, base: RegularizerSpec,
                 methods: Sequence[tuple[str, int | None]], coarse: Sequence[float]) -> None:
        self.keep_probs = tuple(sorted({float(k) for k in coarse} | {1.0}, reverse=True))
        if self.keep_probs[-1] <= 0:
            raise ValueError(f"expected keep_probs in (0, 1], but got {min(coarse)}")
        self.backbone, self.clean, self.methods = backbone, clean, tuple(methods)
        self.class_idx = clean.top1
        self.clean_prob = float(clean.probs[0, self.class_idx])
        self.specs = [replace(base, kind=kind) if block is None else replace(base, kind=kind, block_size=block)
                      for kind, block in self.methods]
        self.points = [(m, k) for m in range(len(self.specs)) for k, kp in enumerate(self.keep_probs) if kp < 1.0]

    def draw(self, samples: range, seed: int, progress: Progress | None = None) -> tuple[Tensor, Tensor]:
        """The class probability (points, S) float64 in samples ``samples`` of every point below 1, and
        whether each sample kept the clean top-1 (points, S) bool."""
        p = torch.empty(len(self.points), len(samples), dtype=torch.float64)
        agree = torch.empty(len(self.points), len(samples), dtype=torch.bool)
        runs = [(with_keep_prob(self.specs[m], self.keep_probs[k]), samples, seed) for m, k in self.points]
        for i, run in iter_runs(self.backbone, self.clean, runs):
            probs = run.probs.float().cpu()
            p[i], agree[i] = probs[:, self.class_idx].double(), probs.argmax(dim=-1) == self.class_idx
            if progress is not None:
                progress((i + 1) / len(self.points), N_("Measuring where the class probability falls"))
        return p, agree

    def result(self, p: Tensor, agree: Tensor) -> KeepProbScan:
        """The scan and its grid over the samples ``p`` and ``agree`` (points, S) hold."""
        keep_probs = self.keep_probs
        probs = torch.full((len(self.specs), len(keep_probs)), self.clean_prob, dtype=torch.float64)
        for i, (m, k) in enumerate(self.points):
            probs[m, k] = float(p[i].float().mean())
        ratio = probs / max(self.clean_prob, 1e-12)
        grid = {1.0}
        band = []
        for m in range(len(self.specs)):
            r = ratio[m].tolist()
            band.append((round(_crossing(keep_probs, r, HIGH), 4), round(_crossing(keep_probs, r, LOW), 4)))
            grid |= {round(_crossing(keep_probs, r, t), 3) for t in TARGETS}
        merged: list[float] = []
        for kp in sorted(grid, reverse=True):
            if not merged or merged[-1] - kp >= 0.002:
                merged.append(kp)
        labels = tuple(KIND_LABELS[kind] + (f" b={block}" if kind == "dropblock" and block else "")
                       for kind, block in self.methods)
        methods = tuple((kind, spec.block_size) for (kind, _block), spec in zip(self.methods, self.specs))
        curve = curve_of_samples(self.backbone, self.clean, keep_probs, methods, p, agree)
        return KeepProbScan(keep_probs=keep_probs, labels=labels, ratio=ratio, clean_prob=self.clean_prob,
                            n_samples=p.shape[1], grid=tuple(merged), band=tuple(band), curve=curve)
