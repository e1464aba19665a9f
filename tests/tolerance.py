"""Comparisons that hold on every machine of the kind (STYLE.md 19).

A GEMM's last bits depend on the CPU and on the batch shape, so two code paths that compute the
same probabilities agree to a tolerance, not bit for bit; a decision taken from them (a top-1)
agrees wherever it is not a near-tie.
"""

from __future__ import annotations

import torch
from torch import Tensor


def clear_top1(probs: Tensor, margin: float = 1e-3) -> Tensor:
    """Bool mask over ``probs.shape[:-1]``: rows whose two best classes are more than ``margin``
    apart, whose top-1 no rounding difference can flip."""
    top2 = probs.topk(2, dim=-1).values
    clear = (top2[..., 0] - top2[..., 1]) > margin
    assert bool(clear.any()), "no row has a clear top-1: the comparison would check nothing"
    return clear


def assert_same_decisions(got: Tensor, want: Tensor, probs: Tensor, margin: float = 1e-3) -> None:
    """``got`` and ``want`` (bool, ``probs.shape[:-1]``) are top-1 decisions from two code paths;
    ``probs`` are one path's probabilities. They must agree wherever that top-1 is clear."""
    clear = clear_top1(probs, margin)
    assert got.shape == want.shape == clear.shape
    assert torch.equal(got[clear], want[clear]), (got, want)
