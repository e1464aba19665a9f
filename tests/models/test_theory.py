"""The theory page's measurements (issues 10 and 21): mistakes on real multi-channel activations,
the tutorial's step 1 without γ correction, the original dropout's scaling, Dropout vs DropConnect
in their own units, and the tutorial's contrasts."""

from __future__ import annotations

import pytest
import torch

import dropblock as db
import models as M
from models.theory import compute_mistakes, compute_tutorial_contrasts


def row(report, start: str):
    return next(m for m in report.rows if m.name.startswith(start))


def test_mistakes_are_measured_on_all_channels_of_the_real_activation(coffee_clean):
    act = coffee_clean.acts[3]  # the image's group-3 output, (1, 112, 14, 14) on EfficientNet-Lite0
    report = compute_mistakes(act, 0.9, 7, n_samples=64, seed=0)
    assert report.channels == act.shape[1] > 1 and report.map_size == (14, 14)
    paper = row(report, "Paper")
    assert paper.mismatch < 0.005 and abs(paper.realised_drop - 0.0929) < 0.01
    tutorial = row(report, "Tutorial scaling")
    assert 7.5 < tutorial.train_mean < 10.0  # about 8-9x the input mean, not 1.3x
    # on one channel at a time most maps have nothing dropped and stay unscaled: far milder
    one_channel = compute_mistakes(act[:, :1], 0.9, 7, n_samples=64, seed=0)
    assert row(one_channel, "Tutorial scaling").train_mean < tutorial.train_mean / 2


def test_tutorial_step1_seed_probability_drops_about_068_not_010(coffee_clean):
    """Issue 21: the tutorial's step 1 (seed probability 1 - keep_prob, no γ correction) realises ~0.68
    at 14×14, b=7, keep_prob 0.9; the exact expectation is 0.681, the paper's Eq. (1) 0.0929."""
    report = compute_mistakes(coffee_clean.acts[3], 0.9, 7, n_samples=64, seed=0)
    tutorial = row(report, "Tutorial step 1")
    exact = db.expected_drop_fraction(0.9, 7, 14, 14, gamma=0.1)
    assert abs(exact - 0.681) < 0.001
    assert abs(tutorial.realised_drop - exact) < 0.02
    assert tutorial.realised_drop > 6 * row(report, "Paper").realised_drop


@pytest.mark.parametrize("keep_prob,low,high", [(0.9, 0.002, 0.012), (0.75, 0.035, 0.07)])
def test_classic_dropout_scaling_is_off_by_the_overlap_shortfall_only(coffee_clean, keep_prob, low, high):
    report = compute_mistakes(coffee_clean.acts[3], keep_prob, 7, n_samples=64, seed=0)
    classic = row(report, "Classic dropout scaling")
    assert classic.eval_mean == keep_prob
    assert low < classic.mismatch < high  # about 0.6% at 0.9 and 5% at 0.75
    assert classic.mismatch < row(report, "Tutorial inference").mismatch < row(report, "Tutorial scaling").mismatch
    assert not any("alternative" in m.name for m in report.rows)  # the tutorial's "或者…" is the paper's recipe


@pytest.mark.parametrize("keep_prob", [0.5, 0.9])
def test_dropout_hides_units_not_weights_measured_in_its_own_units(coffee_clean, keep_prob):
    report = compute_mistakes(coffee_clean.acts[3], keep_prob, 7, n_samples=8)
    assert all("hides weights" not in m.name for m in report.rows)  # not a row of feature-unit recipes
    c = report.connect
    assert c.units == coffee_clean.acts[3].shape[1] and c.outputs == 1000
    dropout, connect = 0, 1
    # Dropout silences whole input units (about 1 - keep_prob of them), never part of a column
    assert abs(c.units_silenced[dropout] - (1 - keep_prob)) < 0.12 and c.columns_partly[dropout] == 0.0
    assert c.weights_zeroed[dropout] == pytest.approx(c.units_silenced[dropout], abs=1e-6)
    # DropConnect zeroes about 1 - keep_prob of the weights, scattered: every column partly, none wholly
    assert abs(c.weights_zeroed[connect] - (1 - keep_prob)) < 0.01
    assert c.columns_partly[connect] > 0.99 and c.units_silenced[connect] == 0.0


def test_mistakes_reject_a_batch():
    with pytest.raises(ValueError, match="expected one activation"):
        compute_mistakes(torch.ones(2, 3, 8, 8))


def test_tutorial_contrasts_site_commutes_with_relu_not_relu6(resnet, lite0, coffee_clean):
    on_lite0 = compute_tutorial_contrasts(lite0.backbone, coffee_clean, 0.9, n_samples=4, seed=0)
    assert on_lite0.site_max_logit_change > 1e-2  # ReLU6 clips: the site matters
    clean = M.clean_pass(resnet, torch.randn(1, 3, 224, 224))
    on_resnet = compute_tutorial_contrasts(resnet, clean, 0.9, n_samples=2, seed=0)
    assert on_resnet.site_max_logit_change < 1e-3  # ReLU: the same network output
    constant, growing = on_lite0.block_size
    assert constant.realised_drop != growing.realised_drop and growing.label.startswith("b = 3 in group 3")


def test_depth_contrast_shallow_vs_deep_is_the_runs_own_numbers(lite0, coffee_clean):
    """Issue 21, item 11: the tutorial's "not in shallow layers" against Hu et al.'s shallow and middle layers."""
    from models.engine import run_regularized
    from models.theory import compute_depth_contrast

    c = compute_depth_contrast(lite0.backbone, coffee_clean, (0.9, 0.98), n_samples=4, seed=2)
    assert c.keep_probs == (0.9, 0.98) and len(c.rows) == 2
    for kp, (shallow, deep) in zip(c.keep_probs, c.rows):
        assert shallow.label.startswith("groups 1 and 2") and deep.label.startswith("groups 3 and 4")
        for x in (shallow, deep):  # the same budget in both: Eq. (1) with its overlap shortfall
            assert 0.8 * (1 - kp) < x.realised_drop < 1.05 * (1 - kp)
    spec = M.RegularizerSpec(keep_prob=0.98, block_size=7, placement="in_blocks", groups=(1, 2), skip=False,
                             group3_quarter=False)
    run = run_regularized(lite0.backbone, coffee_clean, spec, n_samples=4, seed=2)
    assert c.rows[1][0].class_prob == pytest.approx(float(run.probs[:, coffee_clean.top1].mean()), abs=1e-4)
    # on the fallback, the shallow groups lose more of p(espresso) at the same budget
    assert c.rows[1][0].class_prob < c.rows[1][1].class_prob
    with pytest.raises(ValueError, match="at least one keep_prob"):
        compute_depth_contrast(lite0.backbone, coffee_clean, ())
