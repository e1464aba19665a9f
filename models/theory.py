"""The theory page: Algorithm 1 step by step on a small map, the schedule, and common mistakes.

Each mistake is measured, not asserted: the realised drop rate and how well the mean
activation is preserved between training and inference, next to the paper's recipe
(DropBlock, arXiv:1810.12890: Eq. (1) with the valid seed region, ``count(M)/count_ones(M)``,
identity at inference). The mistakes come from a tutorial and common implementations:
no gamma correction, seeds everywhere with truncated border blocks, scaling by
``count_ones/count_zeros``, and multiplying by keep_prob at inference.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

import dropblock as db

__all__ = [
    "AlgorithmSteps",
    "Mistake",
    "Schedule",
    "compute_algorithm_steps",
    "compute_mistakes",
    "compute_schedule",
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


def _toy_activation(height: int, width: int) -> Tensor:
    """A smooth blob plus a faint ramp: something recognisable to drop blocks from."""
    rows = torch.linspace(-1, 1, height)[:, None]
    cols = torch.linspace(-1, 1, width)[None, :]
    return 1.0 + torch.exp(-(rows**2 + cols**2) * 3) * 2 + 0.3 * cols


def compute_algorithm_steps(
    height: int = 16, width: int = 16, keep_prob: float = 0.8, block_size: int = 3, *, seed: int = 0,
    seed_region: db.SeedRegion = "valid",
) -> AlgorithmSteps:
    """Sample one mask on a toy map and keep every intermediate of Algorithm 1."""
    a = _toy_activation(height, width)[None, None]
    mask = db.sample_drop_block_mask(
        a, keep_prob, block_size, seed_region=seed_region, generator=torch.Generator().manual_seed(seed)
    )
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
        scale=float(mask.scale[0]),
    )


@dataclass(frozen=True)
class Mistake:
    """One recipe measured on many constant maps (input mean 1)."""

    name: str
    what: str
    realised_drop: float
    train_mean: float  # mean activation in training (1.0 = preserved)
    eval_mean: float  # mean activation at inference
    is_paper: bool = False

    @property
    def mismatch(self) -> float:
        """Relative train/inference mismatch of the mean activation."""
        return abs(self.train_mean - self.eval_mean) / max(abs(self.eval_mean), 1e-12)


def compute_mistakes(
    height: int = 14, width: int = 14, keep_prob: float = 0.9, block_size: int = 7, *, n_maps: int = 4000, seed: int = 0
) -> tuple[Mistake, ...]:
    """The paper's recipe and five common mistakes, measured on ``n_maps`` constant maps."""
    x = torch.ones(n_maps, 1, height, width)
    gen = torch.Generator().manual_seed(seed)
    paper = db.sample_drop_block_mask(x, keep_prob, block_size, generator=gen)
    no_gamma = db.sample_drop_block_mask(x, keep_prob, block_size, gamma=1 - keep_prob, generator=gen)
    everywhere = db.sample_drop_block_mask(x, keep_prob, block_size, seed_region="everywhere", generator=gen)

    kept = paper.block_mask.float()
    ones = kept.sum(dim=(1, 2, 3), keepdim=True)
    zeros = kept[0].numel() - ones
    tutorial_scale = torch.where(zeros > 0, ones / zeros.clamp_min(1), torch.ones_like(ones))
    train = lambda m: float(db.apply_mask(x, m).mean())  # noqa: E731
    drop = lambda m: float(m.drop_fraction.mean())  # noqa: E731
    return (
        Mistake("Paper (Eq. 1, valid seeds, count/count_ones, identity at inference)",
                "γ from Eq. (1) on the valid seed region; kept units scaled by count(M)/count_ones(M).",
                drop(paper), train(paper), 1.0, is_paper=True),
        Mistake("No γ correction (γ = 1 − keep_prob)",
                "Seeds drawn with the dropout rate; each seed then grows to a b×b block.",
                drop(no_gamma), train(no_gamma), 1.0),
        Mistake("Seeds everywhere, border blocks truncated",
                "Eq. (1)'s γ, but seeds also where the block does not fit (the tutorial, current timm).",
                drop(everywhere), train(everywhere), 1.0),
        Mistake("Tutorial scaling count_ones/count_zeros",
                "Kept units × count_ones/count_zeros instead of count/count_ones (maps with nothing dropped, "
                "where it is infinite, left unscaled).",
                drop(paper), float((x * kept * tutorial_scale).mean()), 1.0),
        Mistake("Tutorial inference: multiply by keep_prob",
                "Correct training, but activations multiplied by keep_prob at inference.",
                drop(paper), train(paper), keep_prob),
        Mistake("No normalisation",
                "A × M only: the expected activation shrinks in training but not at inference.",
                drop(paper), float((x * kept).mean()), 1.0),
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
