"""Batched passes (several specs, seeds and keep_probs in one batch) equal the separate runs.

The oracle is the previous round's engine, written out here: the start activation expanded to
the batch in NCHW, masks drawn site by site (one generator per sample, as the engine now draws
them), ``x * (mask * scale)``.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torchvision.models import ResNet50_Weights, resnet18

import dropblock as db
import models as M
from models.backbone import Site, identity_site, resnet_backbone
from models.engine import iter_runs, run_regularized_many, sample_generators, same_pass
from models.setcurve import compute_set_curve, default_set_methods, image_seed
from tests.tolerance import assert_same_decisions

TOL = {"rtol": 1e-4, "atol": 1e-4}


@pytest.fixture(scope="module")
def resnet18_bb() -> M.Backbone:
    """A small ResNet (BasicBlocks), untrained, seeded."""
    torch.manual_seed(1)
    return resnet_backbone(resnet18(weights=None).eval(), ResNet50_Weights.IMAGENET1K_V1.meta["categories"], "resnet18")


@pytest.fixture(params=["lite0", "resnet18"])
def bb_clean(request, lite0, coffee_clean, resnet18_bb):
    if request.param == "lite0":
        return lite0.backbone, coffee_clean
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(3))
    return resnet18_bb, M.clean_pass(resnet18_bb, x)


def reference_mask(h, spec, gen, group, quarter):
    """Each kind's own sampler at a site of ``group``, with the paper's γ/4 written out: DropBlock's γ
    divided by 4, the other kinds' drop 1 - keep_prob divided by 4."""
    keep_prob, block_size = spec.params_at(group)
    if spec.kind == "dropblock":
        return db.sample_drop_block_mask(h, keep_prob, block_size, per_channel=spec.per_channel,
                                         seed_region=spec.seed_region, gamma_scale=0.25 if quarter else 1.0,
                                         gamma_mode=spec.gamma_mode, normalize=spec.normalize, generator=gen)
    keep_prob = 1.0 - (1.0 - keep_prob) / 4 if quarter else keep_prob
    if spec.kind == "dropout":
        return db.sample_dropout_mask(h, keep_prob, generator=gen)
    if spec.kind == "spatial_dropout":
        return db.sample_spatial_dropout_mask(h, keep_prob, generator=gen)
    return db.sample_cutout_mask(h, keep_prob, seed_region=spec.seed_region, generator=gen)


def reference_run(backbone, clean, spec, n_samples, seed):
    """The previous round's run_regularized: (logits, [drop fractions per site]), with this round's
    streams: sample s draws from its own generator, seeded ``sample_seed(seed, s)``."""
    gen = sample_generators(seed, range(n_samples))
    drops = []

    def drop(h, site, quarter=False):
        mask = reference_mask(h, spec, gen, site.group, quarter)
        drops.append(mask.drop_fraction)
        return h * (mask.block_mask * mask.scale.view(-1, 1, 1, 1))

    def in_block(h, site):
        return h if site.kind == "skip" and not spec.skip else drop(h, site, spec.quarter_at(site.group))

    with torch.inference_mode():
        level = spec.resume_level
        start = (clean.x if level < 0 else clean.acts[level]).contiguous()
        h = start.expand(n_samples, *start.shape[1:])
        if spec.on_input:
            h, first = backbone.stem(drop(h, Site(0, -1, "input"))), 1
        elif spec.placement == "after_group":
            h, first = drop(h, Site(spec.group, -1, "group_output")), spec.group + 1
        else:
            first = level + 1
        for g in range(first, 5):
            dropped_here = spec.placement == "in_blocks" and not spec.on_input and g in spec.groups
            site_fn = in_block if dropped_here else identity_site
            h = backbone.run_group(h, g, site_fn, before_act=spec.act_site == "before_act")
        logits, feats = backbone.head(h)
        if spec.fc_keep_prob < 1.0:
            mask = db.sample_dropout_mask(feats.mean(dim=(2, 3), keepdim=True), spec.fc_keep_prob, generator=gen)
            drops.append(mask.drop_fraction)
            logits = backbone.classifier((feats * mask.block_mask / spec.fc_keep_prob).mean(dim=(2, 3)))
    return logits, drops


PAPER = M.RegularizerSpec(placement="in_blocks", groups=(3, 4), keep_prob=0.8, block_size=7)
MIXED = [  # (spec, n_samples, seed): one pass, different kinds, sizes, options and seeds
    (PAPER, 3, 0),
    (replace(PAPER, block_size=1, keep_prob=0.9), 2, 0),
    (replace(PAPER, kind="spatial_dropout", keep_prob=0.85), 3, 7),
    (replace(PAPER, kind="dropout", skip=False, group3_quarter=False), 1, 2),
    (replace(PAPER, group_params=((3, 0.9, 3), (4, 0.85, 5)), fc_keep_prob=0.5, gamma_mode="calibrated",
             per_channel=False, normalize="batch"), 2, 5),
]


def test_a_mixed_batch_equals_the_previous_engine_run_by_run(bb_clean):
    backbone, clean = bb_clean
    runs = run_regularized_many(backbone, clean, MIXED)
    assert len(runs) == len(MIXED)
    for (spec, n, seed), run in zip(MIXED, runs):
        logits, drops = reference_run(backbone, clean, spec, n, seed)
        assert run.spec == spec and run.logits.shape == (n, 1000)
        torch.testing.assert_close(run.logits, logits, **TOL)
        assert len(run.site_drops) == len(drops)
        for (_, got), want in zip(run.site_drops, drops):  # the very same masks
            assert torch.equal(got, want)


@pytest.mark.parametrize("spec", [
    M.RegularizerSpec(keep_prob=0.7, block_size=3),  # after group 3
    M.RegularizerSpec(kind="cutout", keep_prob=0.8),  # on the input image
    replace(PAPER, act_site="before_act"),
], ids=["after_group", "input", "before_act"])
def test_single_runs_equal_the_previous_engine(lite0, coffee_clean, spec):
    bb = lite0.backbone
    run = M.run_regularized(bb, coffee_clean, spec, n_samples=4, seed=9)
    logits, drops = reference_run(bb, coffee_clean, spec, 4, 9)
    torch.testing.assert_close(run.logits, logits, **TOL)
    assert all(torch.equal(got, want) for (_, got), want in zip(run.site_drops, drops))


def test_specs_that_do_not_share_a_pass_are_refused_and_split(lite0, coffee_clean):
    bb = lite0.backbone
    after = M.RegularizerSpec(keep_prob=0.8)
    assert same_pass(PAPER, replace(PAPER, kind="spatial_dropout", keep_prob=0.5, skip=False))
    assert not same_pass(PAPER, after) and not same_pass(PAPER, replace(PAPER, act_site="before_act"))
    with pytest.raises(ValueError):
        run_regularized_many(bb, coffee_clean, [(PAPER, 1, 0), (after, 1, 0)])
    with pytest.raises(ValueError):
        run_regularized_many(bb, coffee_clean, [(PAPER, 0, 0)])
    runs = [(PAPER, 2, 0), (after, 2, 0), (replace(after, keep_prob=0.9), 2, 1)]
    got = dict(iter_runs(bb, coffee_clean, runs, max_samples=64))
    assert sorted(got) == [0, 1, 2]
    for i, (spec, n, seed) in enumerate(runs):
        alone = M.run_regularized(bb, coffee_clean, spec, n_samples=n, seed=seed)
        torch.testing.assert_close(got[i].logits, alone.logits, **TOL)


def per_point_curve(backbone, clean, base, keep_probs, methods, n_samples, seed):
    """The previous round's curve: one run per point, keep_prob 1 the clean pass."""
    rows = []
    for kind, block_size in methods:
        row = []
        for kp in keep_probs:
            if kp >= 1.0:
                probs = clean.probs.expand(n_samples, -1)
            else:
                point = replace(base, kind=kind, block_size=block_size, keep_prob=kp)
                logits, _ = reference_run(backbone, clean, point, n_samples, seed)
                probs = logits.softmax(dim=-1)
            row.append(probs.float())
        rows.append(torch.stack(row))
    return torch.stack(rows)  # (methods, keep_probs, samples, classes)


@pytest.mark.parametrize("max_samples", [None, 3, 64])
def test_batched_curve_equals_the_per_point_computation(bb_clean, max_samples):
    backbone, clean = bb_clean
    keep_probs, methods = (1.0, 0.9, 0.75), (("dropblock", 1), ("dropblock", 7), ("spatial_dropout", 1))
    base = replace(PAPER, keep_prob=1.0, block_size=1)
    curve = M.compute_robustness_curve(backbone, clean, base, keep_probs=keep_probs, methods=methods, n_samples=3,
                                       seed=4, max_samples=max_samples)
    probs = per_point_curve(backbone, clean, base, keep_probs, methods, 3, 4)
    p = probs[..., clean.top1]
    torch.testing.assert_close(curve.mean_prob, p.mean(dim=-1), **TOL)
    torch.testing.assert_close(curve.std_prob, p.std(dim=-1, unbiased=False), **TOL)
    torch.testing.assert_close(curve.top1_agreement, (probs.argmax(dim=-1) == clean.top1).float().mean(dim=-1))
    assert torch.all(curve.mean_prob[:, 0] == float(clean.probs[0, clean.top1]))  # keep_prob 1: the clean pass, copied
    assert torch.all(curve.std_prob[:, 0] == 0)


def test_batched_set_curve_equals_one_point_per_pass(lite0, coffee_clean):
    inputs = [coffee_clean.x, torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(2))]
    kwargs = {"keep_probs": (1.0, 0.8), "n_samples": 2, "seed": 3}
    batched = compute_set_curve(lite0.backbone, inputs, M.RegularizerSpec(), max_samples=64, **kwargs)
    single = compute_set_curve(lite0.backbone, inputs, M.RegularizerSpec(), max_samples=1, **kwargs)
    torch.testing.assert_close(batched.class_prob, single.class_prob, **TOL)
    # top-1 decisions from two batch shapes agree with each image's own run wherever it is no near-tie
    for i, x in enumerate(inputs):
        clean = M.clean_pass(lite0.backbone, x)
        for m, (_, spec) in enumerate(default_set_methods(M.RegularizerSpec())):
            run = M.run_regularized(lite0.backbone, clean, replace(spec, keep_prob=0.8), n_samples=2,
                                    seed=image_seed(3, i))
            kept = run.probs.argmax(dim=-1) == clean.top1
            for curve in (batched, single):
                assert_same_decisions(curve.top1_kept[m, 1, i], kept, run.probs)
