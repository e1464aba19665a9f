"""Two checkpoints side by side (issue 21, item 12): CAM spread and merged curves."""

from __future__ import annotations

import math

import pytest
import torch

import models as M
from models.checkpoints import cam_spread, compute_model_cam, merge_curves


def test_cam_spread_flat_peak_and_empty():
    flat = cam_spread(torch.ones(8, 8))
    assert flat.entropy == pytest.approx(1.0) and flat.area_half_max == 1.0
    peak = torch.zeros(8, 8)
    peak[3, 4] = 5.0
    one = cam_spread(peak)
    assert one.entropy == pytest.approx(0.0, abs=1e-12) and one.area_half_max == pytest.approx(1 / 64)
    two = peak.clone()
    two[6, 1] = 5.0  # two equal regions: more spread than one
    spread = cam_spread(two)
    assert spread.entropy == pytest.approx(math.log(2) / math.log(64)) and spread.area_half_max == pytest.approx(2 / 64)
    negative = cam_spread(-torch.ones(4, 4))
    assert math.isnan(negative.entropy) and negative.area_half_max == 0.0
    with pytest.raises(ValueError, match=r"expected a CAM of shape \(H, W\)"):
        cam_spread(torch.ones(1, 4, 4))


def test_model_cam_is_the_clean_cam_of_the_class(lite0, coffee_clean):
    cam = compute_model_cam(lite0.backbone, coffee_clean, coffee_clean.top1)
    assert cam.cam.shape == (224, 224) and cam.class_name == cam.top1_name == "espresso"
    assert cam.prob == pytest.approx(float(coffee_clean.probs[0, coffee_clean.top1]))
    assert 0 < cam.spread.area_half_max < 1 and 0 < cam.spread.entropy < 1
    with pytest.raises(ValueError, match="expected class_idx"):
        compute_model_cam(lite0.backbone, coffee_clean, 1000)


def test_merge_curves_keeps_both_and_refuses_different_grids(lite0, coffee_clean):
    spec = M.RegularizerSpec(placement="in_blocks", groups=(3, 4))
    a = M.compute_robustness_curve(lite0.backbone, coffee_clean, spec, keep_probs=(1.0, 0.98), n_samples=2, seed=0)
    b = M.compute_robustness_curve(lite0.backbone, coffee_clean, spec, keep_probs=(1.0, 0.98), n_samples=2, seed=1)
    both = merge_curves(a, b, ("A", "B"))
    assert both.labels[0] == "A: DropBlock b=1" and both.labels[3] == "B: DropBlock b=1"
    assert torch.equal(both.mean_prob[:3], a.mean_prob) and torch.equal(both.mean_prob[3:], b.mean_prob)
    c = M.compute_robustness_curve(lite0.backbone, coffee_clean, spec, keep_probs=(1.0, 0.97), n_samples=2, seed=0)
    with pytest.raises(ValueError, match="same keep_probs and class"):
        merge_curves(a, c, ("A", "B"))
