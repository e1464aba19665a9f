"""Figure 5 over a set of images: consistent with the engine, seeded, cancellable."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

import models as M
from models.setcurve import Cancelled, compute_set_curve, default_set_methods, image_seed

from tests.tolerance import assert_same_decisions

from .conftest import load_asset


@pytest.fixture(scope="module")
def inputs(lite0):
    bb = lite0.backbone
    return [M.to_input(load_asset(name), bb.mean, bb.std) for name in ("coffee", "chelsea", "rocket")]


KPS = (1.0, 0.8)


@pytest.fixture(scope="module")
def curve(lite0, inputs):
    return compute_set_curve(lite0.backbone, inputs, M.RegularizerSpec(), keep_probs=KPS, n_samples=3, seed=5)


def test_methods_are_the_papers_comparison():
    base = M.RegularizerSpec(group=3)
    labels = [label for label, _ in default_set_methods(base)]
    assert labels == ["DropBlock b=1", "DropBlock b=7", "SpatialDropout", "DropBlock b=7, paper placement"]
    paper = default_set_methods(base)[-1][1]
    assert (paper.placement, paper.groups, paper.group3_quarter, paper.block_size) == ("in_blocks", (3, 4), True, 7)
    # already the paper's placement: not listed twice
    in_blocks = default_set_methods(replace(base, placement="in_blocks"))
    assert [label for label, _ in in_blocks] == labels[:3]


def test_each_point_is_the_engines_run_with_the_images_own_seed(lite0, inputs, curve):
    bb = lite0.backbone
    assert curve.top1_kept.shape == (4, 2, 3, 3) and curve.top1_kept.dtype == torch.bool
    assert curve.class_prob.shape == (4, 2, 3, 3) and curve.class_prob.dtype == torch.float32
    for i, x in enumerate(inputs):
        clean = M.clean_pass(bb, x)
        assert curve.clean_top1[i] == clean.top1
        # keep_prob 1 is the clean network in every sample
        assert curve.top1_kept[:, 0, i].all()
        torch.testing.assert_close(curve.class_prob[:, 0, i], clean.probs[0, clean.top1].expand(4, 3))
        for m, (_, spec) in enumerate(default_set_methods(M.RegularizerSpec())):
            run = M.run_regularized(bb, clean, replace(spec, keep_prob=0.8), n_samples=3, seed=image_seed(5, i))
            torch.testing.assert_close(curve.class_prob[m, 1, i], run.probs[:, clean.top1].float())
            assert_same_decisions(curve.top1_kept[m, 1, i], run.probs.argmax(dim=1) == clean.top1, run.probs)


def test_summary_is_mean_and_spread_over_samples(curve):
    s = curve.summary()
    share = curve.top1_kept.float().mean(dim=2)  # (M, K, S): one value per Monte Carlo sample
    torch.testing.assert_close(s["unchanged_mean"], share.mean(dim=-1))
    torch.testing.assert_close(s["unchanged_std"], share.std(dim=-1, unbiased=False))
    torch.testing.assert_close(s["prob_mean"], curve.class_prob.mean(dim=(2, 3)))
    assert (s["unchanged_std"][:, 0] == 0).all() and (s["prob_std"][:, 0] == 0).all()
    assert ((s["unchanged_mean"] >= 0) & (s["unchanged_mean"] <= 1)).all()


def test_same_seed_same_curve_other_seed_other_masks(lite0, inputs, curve):
    again = compute_set_curve(lite0.backbone, inputs, M.RegularizerSpec(), keep_probs=KPS, n_samples=3, seed=5)
    assert torch.equal(again.class_prob, curve.class_prob) and torch.equal(again.top1_kept, curve.top1_kept)
    other = compute_set_curve(lite0.backbone, inputs[:1], M.RegularizerSpec(), keep_probs=KPS, n_samples=3, seed=6)
    assert not torch.equal(other.class_prob[:, 1, 0], curve.class_prob[:, 1, 0])


def test_block_size_7_hurts_more_than_1_over_the_set(curve):
    s = curve.summary()
    assert s["prob_mean"][1, 1] < s["prob_mean"][0, 1]  # the paper's Fig. 5 ordering at keep_prob 0.8


@pytest.mark.parametrize("how", ["returns False", "raises"])
def test_progress_can_cancel(lite0, inputs, how):
    seen: list[float] = []

    def progress(fraction: float, text: str):
        seen.append(fraction)
        if len(seen) == 5:
            if how == "raises":
                raise Cancelled("stop")
            return False
        return None

    with pytest.raises(Cancelled):
        compute_set_curve(lite0.backbone, inputs, M.RegularizerSpec(), keep_probs=KPS, n_samples=2, progress=progress)
    assert len(seen) == 5 and seen == sorted(seen) and seen[0] == 0.0


def test_progress_reaches_one(lite0, inputs):
    seen = []
    compute_set_curve(lite0.backbone, inputs[:1], M.RegularizerSpec(), keep_probs=(0.9,), n_samples=1,
                      progress=lambda f, t: seen.append((f, t)))
    assert [f for f, _ in seen] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert "image 1 of 1" in seen[0][1]


@pytest.mark.parametrize("kwargs", [{"keep_probs": ()}, {"keep_probs": (0.0,)}, {"n_samples": 0}, {"methods": ()}])
def test_bad_arguments(lite0, inputs, kwargs):
    with pytest.raises(ValueError, match="expected"):
        compute_set_curve(lite0.backbone, inputs[:1], M.RegularizerSpec(), **kwargs)
    with pytest.raises(ValueError, match="expected"):
        compute_set_curve(lite0.backbone, [], M.RegularizerSpec())
