"""compute_* results for the pages: exact, visible drop budgets on Compare methods (issue 10)."""

from __future__ import annotations

import pytest

import dropblock as db
import models as M


@pytest.mark.parametrize("seed_region", ["valid", "everywhere"])
def test_compare_page_realised_drops_match_the_budget_with_calibrated_gamma(lite0, coffee_clean, seed_region):
    """At keep_prob 0.75 every method on the feature map, and Cutout on the image, drops 0.25
    within 3% over a Monte Carlo mean, once DropBlock's gamma is calibrated."""
    spec = M.RegularizerSpec(keep_prob=0.75, block_size=7, gamma_mode="calibrated", seed_region=seed_region)
    comparison = M.compute_comparison(lite0.backbone, coffee_clean, spec, seed=0, n_samples=512)
    assert len(comparison) == 5
    for view in comparison:
        if seed_region == "everywhere" and view.label.startswith("Cutout"):
            continue  # a square cut at the border drops less than its area: the original Cutout
        assert abs(view.realised_drop - 0.25) / 0.25 < 0.03, (view.label, view.realised_drop)
        assert view.target_drop == pytest.approx(0.25)
    units = {v.label: v.unit for v in comparison}
    assert units["Cutout (input image)"] == "input-image pixels"
    assert all(u.startswith("feature units, group 3 (14×14×") for k, u in units.items() if "input" not in k)
    if seed_region == "valid":  # Eq. (1) alone would miss: its exact expectation is well below 0.25
        assert comparison.expected_eq1 < 0.225 and comparison.gamma_calibrated > comparison.gamma_eq1
    dropblock = next(v for v in comparison if v.label == "DropBlock")
    assert dropblock.spec.gamma_mode == "calibrated"


def test_compare_honours_shared_mask_and_eq1(lite0, coffee_clean):
    spec = M.RegularizerSpec(keep_prob=0.75, block_size=7, per_channel=False)
    comparison = M.compute_comparison(lite0.backbone, coffee_clean, spec, seed=0, n_samples=64)
    dropblock = next(v for v in comparison if v.label == "DropBlock")
    assert not dropblock.spec.per_channel
    expected = db.expected_drop_fraction(0.75, 7, 14, 14)
    assert comparison.expected_eq1 == pytest.approx(expected)
    assert abs(dropblock.realised_drop - expected) < 0.03  # Eq. (1): about 0.21, not 0.25
    assert "placement: always after one group here" in comparison.ignored


def test_dropblock_and_dropout_arms_on_one_image(lite0, coffee_clean):
    spec = M.RegularizerSpec(keep_prob=0.9, block_size=3, placement="in_blocks", groups=(1, 2), skip=False,
                             group_params=((1, 0.9, 3), (2, 0.8, 5)))
    result = M.compute_dropblock_dropout(lite0.backbone, coffee_clean, spec, fc_keep_prob=0.5, n_samples=8, seed=0)
    none, dropblock, dropout_fc, both = result.views
    assert [v.label for v in result.views] == ["None", "DropBlock only", "Dropout before fc only",
                                               "DropBlock + Dropout before fc"]
    # none is the clean network: every sample the same, probability the clean one
    assert none.prob_std < 1e-5 and none.keeps_top1 == 1.0
    assert none.class_prob == pytest.approx(result.clean_prob, abs=1e-4)
    assert none.conv_drop == 0.0 and none.fc_drop == 0.0
    assert dropblock.conv_drop > 0.02 and dropblock.fc_drop == 0.0
    assert dropout_fc.conv_drop == 0.0 and abs(dropout_fc.fc_drop - 0.5) < 0.03
    # same seed: the same DropBlock masks with and without Dropout (the fc draw comes after them)
    assert both.conv_drop == pytest.approx(dropblock.conv_drop) and abs(both.fc_drop - 0.5) < 0.03
    assert dropout_fc.prob_std > 0 and both.prob_std > 0
    assert result.clean_cam.shape == both.mean_cam.shape == (224, 224)
    assert both.spec.group_params == dropblock.spec.group_params == ((1, 0.9, 3), (2, 0.8, 5))
