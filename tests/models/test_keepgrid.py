"""keep_prob grids measured per model (issue 21, item 13): on the fragile EfficientNet-Lite0 fallback
the curves must have points where the class probability is falling, not flat lines at zero."""

from __future__ import annotations

import pytest
import torch

import models as M
from models.compute import DEFAULT_CURVE_METHODS
from models.keepgrid import COARSE, _crossing, compute_keep_prob_scan, with_keep_prob

PAPER = M.RegularizerSpec(placement="in_blocks", groups=(3, 4), group3_quarter=True, skip=True, keep_prob=1.0,
                          block_size=1)


def in_band(ratio: torch.Tensor) -> torch.Tensor:
    return ((ratio > 0.1) & (ratio < 0.9)).sum(dim=-1)


def test_the_papers_fixed_grid_is_flat_at_zero_on_the_fallback(lite0, coffee_clean):
    """The problem: 1, 0.95, ..., 0.75 leaves DropBlock b=7 below 10% of clean at every point but the first."""
    curve = M.compute_robustness_curve(lite0.backbone, coffee_clean, PAPER,
                                       keep_probs=(1.0, 0.95, 0.9, 0.85, 0.8, 0.75), n_samples=8, seed=0)
    assert int(in_band(curve.mean_prob[1] / curve.clean_prob)) <= 1


def test_measured_grid_gives_every_default_curve_three_points_in_the_fall(lite0, coffee_clean):
    scan = compute_keep_prob_scan(lite0.backbone, coffee_clean, PAPER, methods=DEFAULT_CURVE_METHODS, seed=0)
    assert scan.keep_probs == tuple(sorted(COARSE, reverse=True)) and scan.grid[0] == 1.0
    assert list(scan.grid) == sorted(scan.grid, reverse=True) and min(scan.grid) > 0.8  # fragile: all above 0.8
    for hi, lo in scan.band:
        assert 1.0 >= hi > lo
    curve = M.compute_robustness_curve(lite0.backbone, coffee_clean, PAPER, keep_probs=scan.grid, n_samples=8, seed=0)
    assert all(int(n) >= 3 for n in in_band(curve.mean_prob / curve.clean_prob)), curve.mean_prob


def test_scan_ratio_is_the_mean_class_probability_of_the_runs(lite0, coffee_clean):
    scan = compute_keep_prob_scan(lite0.backbone, coffee_clean, PAPER, methods=(("dropblock", 7),),
                                  coarse=(1.0, 0.98), n_samples=4, seed=3)
    curve = M.compute_robustness_curve(lite0.backbone, coffee_clean, PAPER, keep_probs=(1.0, 0.98),
                                       methods=(("dropblock", 7),), n_samples=4, seed=3)
    assert float(scan.ratio[0, 0]) == 1.0
    assert float(scan.ratio[0, 1]) * scan.clean_prob == pytest.approx(float(curve.mean_prob[0, 1]), abs=1e-4)


def test_with_keep_prob_sets_every_group():
    spec = M.RegularizerSpec(group_params=((2, 0.8, 3), (3, 0.8, 5)))
    out = with_keep_prob(spec, 0.97)
    assert out.keep_prob == 0.97 and out.group_params == ((2, 0.97, 3), (3, 0.97, 5))


@pytest.mark.parametrize("ratio,target,expected", [
    ((1.0, 0.8, 0.2, 0.0), 0.5, 0.85),  # halfway between 0.9 and 0.8
    ((1.0, 1.0, 1.0, 1.0), 0.5, 0.7),  # never falls: the lowest
    ((1.0, 0.4, 0.2, 0.0), 0.9, 0.9 + 0.1 * (0.9 - 0.4) / 0.6),
])
def test_crossing_interpolates_between_scan_points(ratio, target, expected):
    assert _crossing((1.0, 0.9, 0.8, 0.7), ratio, target) == pytest.approx(expected)


def test_scan_rejects_a_zero_keep_prob(lite0, coffee_clean):
    with pytest.raises(ValueError, match="expected keep_probs in"):
        compute_keep_prob_scan(lite0.backbone, coffee_clean, PAPER, coarse=(1.0, 0.0))
