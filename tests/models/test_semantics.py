"""Real semantics on EfficientNet-Lite0's ImageNet weights: predictions, CAM placement, Fig. 5."""

from __future__ import annotations

import pytest
import torch

import models as M

from .conftest import load_asset


@pytest.mark.parametrize(
    "name,accepted",
    [("coffee", {"espresso"}), ("chelsea", {"tabby", "tiger cat", "Egyptian cat", "Persian cat", "Siamese cat"})],
)
def test_top1_on_bundled_samples(lite0, name, accepted):
    bb = lite0.backbone
    clean = M.clean_pass(bb, M.to_input(load_asset(name), bb.mean, bb.std))
    assert bb.categories[clean.top1] in accepted
    assert float(clean.probs.max()) > 0.3


def test_wrong_normalisation_breaks_prediction(lite0):
    """The preprocessing matters: ImageNet mean/std instead of 0.5/0.5 changes the answer."""
    bb = lite0.backbone
    good = M.clean_pass(bb, M.to_input(load_asset("coffee"), bb.mean, bb.std))
    bad = M.clean_pass(bb, M.to_input(load_asset("coffee"), (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)))
    assert float(bad.probs[0, good.top1]) < float(good.probs[0, good.top1]) - 0.05


def test_cam_peak_lies_on_the_cup(lite0, coffee_clean):
    shift = M.compute_cam_shift(lite0.backbone, coffee_clean, M.RegularizerSpec(), n_samples=4)
    row, col = divmod(int(shift.clean_cam.argmax()), 224)
    # the cup and its espresso fill rows ~0-125 and columns ~35-190 of the 224 crop
    assert 15 <= row <= 120 and 50 <= col <= 175
    cup = torch.zeros(224, 224, dtype=torch.bool)
    cup[0:125, 35:190] = True
    assert shift.clean_cam[cup].mean() > 2 * shift.clean_cam[~cup].mean()


def test_larger_blocks_remove_more_semantics_fig5(lite0, coffee_clean):
    """Paper Fig. 5 (green curves): at the same keep_prob, block_size 7 hurts more than 1."""
    curve = M.compute_robustness_curve(
        lite0.backbone, coffee_clean, M.RegularizerSpec(placement="in_blocks"),
        keep_probs=(1.0, 0.95, 0.9), methods=(("dropblock", 1), ("dropblock", 7)), n_samples=16, seed=0,
    )
    b1, b7 = curve.mean_prob
    assert b1[0] == b7[0] == pytest.approx(curve.clean_prob)
    assert (b7[1:] < b1[1:]).all()
    assert (b1[1:] < curve.clean_prob).all()
    # after a single group too
    after = M.compute_robustness_curve(
        lite0.backbone, coffee_clean, M.RegularizerSpec(placement="after_group", group=3),
        keep_probs=(0.8,), methods=(("dropblock", 1), ("dropblock", 7)), n_samples=32, seed=0,
    )
    assert after.mean_prob[1, 0] < after.mean_prob[0, 0]


def test_comparison_at_one_budget(lite0, coffee_clean):
    views = M.compute_comparison(lite0.backbone, coffee_clean, M.RegularizerSpec(keep_prob=0.8, block_size=5), seed=1).views
    assert [v.label for v in views] == ["Dropout", "SpatialDropout", "Cutout (features)", "DropBlock",
                                        "Cutout (input image)"]
    for v in views:
        assert abs(v.realised_drop - 0.2) < 0.06, v.label
        assert v.cam.shape == (224, 224) and len(v.top5) == 5
    assert views[4].mask.shape == (224, 224) and views[4].site_label == "input image"
    assert views[2].mask.shape == (14, 14) and views[2].site_label == "group 3 output"


def test_mask_view_numbers_match_the_library(lite0, coffee_clean):
    view = M.compute_mask_sample(lite0.backbone, coffee_clean, M.RegularizerSpec(keep_prob=0.85, block_size=5), seed=4)
    h, w = view.map_size
    import dropblock as db

    assert view.gamma == pytest.approx(db.dropblock_gamma(0.85, 5, h, w))
    assert view.expected_drop == pytest.approx(db.expected_drop_fraction(0.85, 5, h, w))
    assert f"= {view.gamma:.5f}" in view.formula
    assert view.seed_mask.shape == view.block_mask.shape == view.before.shape == view.after.shape
    kept = view.block_mask
    assert (view.after[~kept] == 0).all()


def test_cam_shift_summary(lite0, coffee_clean):
    shift = M.compute_cam_shift(lite0.backbone, coffee_clean, M.RegularizerSpec(keep_prob=0.8), n_samples=8, seed=0)
    assert shift.class_name == "espresso" and shift.sample_probs.shape == (8,)
    torch.testing.assert_close(shift.difference, shift.mean_cam - shift.clean_cam)
    assert 0 <= shift.keeps_top1 <= 1 and 0.1 < shift.realised_drop < 0.25
    with pytest.raises(ValueError, match="class_idx"):
        M.compute_cam_shift(lite0.backbone, coffee_clean, M.RegularizerSpec(), class_idx=1000)
