"""The mask explorer split in two (issue 9): the masks alone, then what the network makes of them.

``compute_mask_sample`` + ``compute_mask_outcome`` must show one run: the masks of the sample are
those the whole network of ``run_regularized`` (the same seed) applies at its first site, and the
outcome is that run's top-5 and CAM; the sample must run no layer after the site it draws at. The
numbers the explorer shows (γ, its formula, the target) follow the paper's Eq. (1) and γ/4 rule,
written out here. The light route: the site's input is computed once per placement
(``first_site_input``), and every keep_prob, block_size or seed move draws on it
(``compute_mask_sample_at``) exactly the masks the full run draws, running no layer.
"""

from __future__ import annotations

import contextlib
from dataclasses import replace

import pytest
import torch

import dropblock as db
import models as M
from models.backbone import FoldedConv

from .conftest import load_asset

SPECS = {
    "group 3 output": M.RegularizerSpec(keep_prob=0.8, block_size=5),
    "group 1, shared, everywhere, calibrated": M.RegularizerSpec(
        keep_prob=0.7, block_size=7, group=1, per_channel=False, seed_region="everywhere", gamma_mode="calibrated"),
    "group 4, batch normalisation, keep_prob 1": M.RegularizerSpec(keep_prob=1.0, block_size=3, group=4,
                                                                    normalize="batch"),
    "in blocks 3+4, quarter, before act": M.RegularizerSpec(keep_prob=0.85, block_size=3, placement="in_blocks",
                                                            act_site="before_act"),
    "in blocks 1+2, no skip, group_params, fc dropout": M.RegularizerSpec(
        keep_prob=0.9, block_size=3, placement="in_blocks", groups=(2, 1), skip=False,
        group_params=((1, 0.8, 3), (2, 0.7, 5)), fc_keep_prob=0.5),
    "in blocks 4 only, block covers the map": M.RegularizerSpec(keep_prob=0.75, block_size=15, placement="in_blocks",
                                                                groups=(4,), group3_quarter=False),
    "dropout group 2": M.RegularizerSpec(kind="dropout", keep_prob=0.6, group=2),
    "spatial dropout in blocks 3": M.RegularizerSpec(kind="spatial_dropout", keep_prob=0.7, placement="in_blocks",
                                                     groups=(3,)),
    "cutout on the input": M.RegularizerSpec(kind="cutout", keep_prob=0.8, cutout_on="input"),
    "cutout on features, fc dropout": M.RegularizerSpec(kind="cutout", keep_prob=0.8, cutout_on="features", group=3,
                                                        fc_keep_prob=0.7),
}


@pytest.fixture(scope="module")
def families(lite0, resnet, coffee_clean):
    """(backbone, clean pass of the coffee image) for EfficientNet-Lite0 and ResNet-50."""
    x = M.to_input(load_asset("coffee"), resnet.mean, resnet.std)
    return {"lite0": (lite0.backbone, coffee_clean), "resnet50": (resnet, M.clean_pass(resnet, x))}


def _shown(mask: torch.Tensor, channels, height: int, width: int) -> torch.Tensor:
    """Sample 0's mask on the shown channels, (k, H, W); a shared or SpatialDropout mask broadcast."""
    m = mask[0].expand(mask.shape[1], height, width)
    return m[list(channels) if m.shape[0] > 1 else [0] * len(channels)]


@pytest.mark.parametrize("seed", [0, 7])
@pytest.mark.parametrize("name", list(SPECS))
@pytest.mark.parametrize("family", ["lite0", "resnet50"])
def test_sample_and_outcome_show_one_run(families, family, name, seed):
    backbone, clean = families[family]
    spec = SPECS[name]
    sample = M.compute_mask_sample(backbone, clean, spec, seed=seed, n_channels=6)
    outcome = M.compute_mask_outcome(backbone, clean, spec, seed=seed)
    run = M.run_regularized(backbone, clean, spec, n_samples=1, seed=seed)
    assert type(sample) is M.MaskSample and type(outcome) is M.MaskOutcome and sample.spec == outcome.spec == spec
    k = 3 if spec.on_input else 6  # the input image has 3 channels
    assert len(sample.channels) == k and sample.block_mask.shape == sample.before.shape == (k, *sample.map_size)
    height, width = sample.map_size
    assert sample.site_label == run.site.label and sample.block == run.mask.block_size
    assert sample.gamma == run.mask.gamma and sample.target_drop == run.mask.target_drop
    assert sample.realised_drop == float(run.mask.drop_fraction[0])
    assert torch.equal(sample.seed_mask, _shown(run.mask.seed_mask.cpu(), sample.channels, height, width))
    assert torch.equal(sample.block_mask, _shown(run.mask.block_mask.cpu(), sample.channels, height, width))
    assert torch.equal(sample.after, run.after[0].cpu().float()[list(sample.channels)])
    assert [c for c, _ in outcome.top5_dropped] == [c for c, _ in M.engine.topk(run.probs[0], backbone.categories)]
    assert outcome.top5_clean[0][0] == backbone.categories[clean.top1]


def _paper_gamma(spec: M.RegularizerSpec, height: int, width: int) -> tuple[float, int, float, bool]:
    """(keep_prob, block_size, Eq. (1)'s gamma, quartered) at the first site of ``spec``, from the
    paper's rules: the group's own keep_prob and block size where given, the block clipped to the map,
    and gamma / 4 inside the blocks of group 3."""
    group = spec.group if spec.placement == "after_group" else min(spec.groups)
    own = {g: (kp, b) for g, kp, b in spec.group_params}
    keep_prob, block_size = own.get(group, (spec.keep_prob, spec.block_size))
    bh, bw = min(block_size, height), min(block_size, width)
    quartered = spec.placement == "in_blocks" and spec.group3_quarter and group == 3
    gamma = (1 - keep_prob) / (bh * bw) * (height * width) / ((height - bh + 1) * (width - bw + 1))
    return keep_prob, block_size, min(1.0, gamma / 4 if quartered else gamma), quartered


@pytest.mark.parametrize("spec", [
    M.RegularizerSpec(keep_prob=0.8, block_size=5),
    M.RegularizerSpec(keep_prob=0.85, block_size=3, placement="in_blocks"),  # first site in group 3: γ/4
    M.RegularizerSpec(keep_prob=0.85, block_size=3, placement="in_blocks", group3_quarter=False),
    M.RegularizerSpec(keep_prob=0.9, block_size=3, placement="in_blocks", groups=(2, 3), group_params=((2, 0.7, 5),)),
    M.RegularizerSpec(keep_prob=0.75, block_size=15, group=4),  # the block covers the 7x7 map
], ids=["group 3 output", "in blocks 3, quarter", "in blocks 3, no quarter", "group 2's own parameters", "covers"])
def test_the_formula_shows_the_sampled_gamma_and_the_paper_rules(lite0, coffee_clean, spec):
    sample = M.compute_mask_sample(lite0.backbone, coffee_clean, spec, seed=5)
    height, width = sample.map_size
    keep_prob, block_size, gamma, quartered = _paper_gamma(spec, height, width)
    assert sample.gamma == pytest.approx(gamma, rel=1e-12)
    assert sample.target_quartered is quartered
    assert sample.target_drop == pytest.approx((1 - keep_prob) / (4 if quartered else 1), rel=1e-12)
    assert str(sample.formula).startswith("γ = ¼ · " if quartered else "γ = (1 − ")
    assert f"(1 − {keep_prob:g})" in str(sample.formula) and str(sample.formula).endswith(f"= {sample.gamma:.5f}")
    assert sample.expected_drop == pytest.approx(
        db.expected_drop_fraction(keep_prob, block_size, height, width, gamma=sample.gamma), rel=1e-12)


def test_the_first_site_matches_the_full_run(families):
    """In-block placement with the first group given last: the site is the first branch of the lowest group."""
    backbone, clean = families["resnet50"]
    spec = SPECS["in blocks 1+2, no skip, group_params, fc dropout"]
    site = M.first_site_input(backbone, clean, spec)
    run = M.run_regularized(backbone, clean, spec, n_samples=1, seed=3)
    assert site.site == run.site == M.Site(1, 0, "branch", 1)
    assert torch.equal(site.before, run.before)
    sample = M.compute_mask_sample_at(site, spec, seed=3, n_channels=site.before.shape[1])
    assert sample.target_drop == run.mask.target_drop == pytest.approx(0.2)  # group 1's own keep_prob 0.8


MOVES = [(0.6, 3), (0.95, 9), (1.0, 5)]  # (keep_prob, block_size): the sliders moved, the site input kept


def _full(mask: torch.Tensor, channels, height: int, width: int) -> torch.Tensor:
    return _shown(mask.cpu(), channels, height, width)


@pytest.mark.parametrize("name", list(SPECS))
@pytest.mark.parametrize("family", ["lite0", "resnet50"])
def test_slider_moves_draw_on_one_site_input_the_masks_of_the_full_run(families, family, name):
    """Every placement (after a group; in blocks with and without skip; group 3's γ/4; Cutout on the
    input) and kind: one site input, then keep_prob and block_size moved and seeds changed, each draw
    equal, bit for bit on every channel, to the first site of ``run_regularized(n_samples=1, seed)``."""
    backbone, clean = families[family]
    base = SPECS[name]
    site = M.first_site_input(backbone, clean, base)
    n = site.before.shape[1]
    # A site before the ReLU: the full run's ResNet ReLU after it works in place (torchvision's
    # ReLU(inplace=True)) on the tensors the run captured, so those are compared once both went through it.
    in_place = base.act_site == "before_act" and base.placement == "in_blocks"
    seen = (lambda t: t.clamp(min=0)) if in_place else (lambda t: t)  # noqa: E731
    for (keep_prob, block_size), seed in zip(MOVES, (0, 11, 5)):
        spec = replace(base, keep_prob=keep_prob, block_size=block_size)
        sample = M.compute_mask_sample_at(site, spec, seed=seed, n_channels=n)
        run = M.run_regularized(backbone, clean, spec, n_samples=1, seed=seed)
        assert site.site == run.site and sample.site_label == run.site.label
        assert torch.equal(seen(site.before), seen(run.before))
        assert sorted(sample.channels) == list(range(n))  # every channel, each once
        height, width = sample.map_size
        for field in ("seed_mask", "block_mask"):
            assert torch.equal(getattr(sample, field), _full(getattr(run.mask, field), sample.channels, height, width))
        assert torch.equal(seen(sample.before), seen(run.before[0].cpu().float()[list(sample.channels)]))
        assert torch.equal(seen(sample.after), seen(run.after[0].cpu().float()[list(sample.channels)]))
        assert (sample.gamma, sample.target_drop, sample.block) == (run.mask.gamma, run.mask.target_drop,
                                                                     run.mask.block_size)
        assert sample.realised_drop == float(run.mask.drop_fraction[0])
        assert sample.target_quartered is (run.mask.gamma_scale == 0.25)


def test_the_site_input_depends_on_the_placement_only(families):
    """Specs differing in keep_prob, block size and mask options share one site input (the same values);
    another placement has another."""
    backbone, clean = families["resnet50"]
    base = SPECS["in blocks 3+4, quarter, before act"]
    site = M.first_site_input(backbone, clean, base)
    other = replace(base, keep_prob=0.5, block_size=1, per_channel=False, seed_region="everywhere",
                    gamma_mode="calibrated", normalize="batch", group_params=((3, 0.7, 5),))
    again = M.first_site_input(backbone, clean, other)
    assert again.site == site.site and torch.equal(again.before, site.before)
    assert M.first_site_input(backbone, clean, replace(base, groups=(4,))).site.group == 4
    assert M.first_site_input(backbone, clean, replace(base, act_site="after_act")).before.min() >= 0  # after ReLU
    assert site.before.min() < 0  # before ReLU: the BN output itself


def test_quarter_at_group_3_is_the_papers_gamma_over_4(families):
    """γ/4 decided once (the spec's ``mask_args``) and computed once (the sampler): the sample's γ is
    Eq. (1) over 4 at a group-3 site in blocks, and the whole of it without the rule."""
    backbone, clean = families["resnet50"]
    spec = M.RegularizerSpec(keep_prob=0.8, block_size=5, placement="in_blocks", groups=(3,))
    site = M.first_site_input(backbone, clean, spec)
    quarter = M.compute_mask_sample_at(site, spec, seed=1)
    whole = M.compute_mask_sample_at(site, replace(spec, group3_quarter=False), seed=1)
    height, width = quarter.map_size
    assert quarter.gamma == pytest.approx(db.dropblock_gamma(0.8, 5, height, width) / 4, rel=1e-12)
    assert whole.gamma == pytest.approx(db.dropblock_gamma(0.8, 5, height, width), rel=1e-12)
    assert quarter.target_quartered and not whole.target_quartered


def test_different_seeds_draw_different_masks(families):
    backbone, clean = families["lite0"]
    a, b = (M.compute_mask_sample(backbone, clean, SPECS["group 3 output"], seed=s) for s in (0, 1))
    assert not torch.equal(a.block_mask, b.block_mask)


@contextlib.contextmanager
def modules_called():
    """Every nn.Module whose forward runs inside the block (a global forward hook, removed on exit),
    and the model's conv of every BN-folded convolution that runs (the re-runs' ``FoldedConv``)."""
    called: list[torch.nn.Module] = []
    handle = torch.nn.modules.module.register_module_forward_hook(lambda module, args, out: called.append(module))
    folded_call = FoldedConv.__call__

    def recorded(self, x):
        called.append(self.conv)
        return folded_call(self, x)

    FoldedConv.__call__ = recorded
    try:
        yield called
    finally:
        FoldedConv.__call__ = folded_call
        handle.remove()


def test_no_hook_remains_after_an_exception():
    with pytest.raises(RuntimeError), modules_called():
        raise RuntimeError("boom")
    with modules_called() as called:
        pass
    torch.nn.Identity()(torch.zeros(1))
    assert called == []


@pytest.mark.parametrize("name", list(SPECS))
@pytest.mark.parametrize("family", ["lite0", "resnet50"])
def test_the_sample_runs_no_layer_after_the_site(families, family, name):
    backbone, clean = families[family]
    spec = SPECS[name]
    with modules_called() as called:
        sample = M.compute_mask_sample(backbone, clean, spec, seed=0)
    if spec.placement == "after_group" or spec.on_input:
        assert called == []  # the masks on the cached activation (or image): not even the stem runs
        return
    first_block = backbone.groups[min(spec.groups) - 1][0]
    inside = {id(m) for m in first_block.modules()}
    assert called and all(id(m) in inside for m in called), "a layer outside the first block ran"
    # the first site is the first conv branch's output: the block's later convs and its shortcut never run
    later = [getattr(first_block, n, None)
             for n in ("conv2", "conv3", "downsample", "_depthwise_conv", "_project_conv")]  # ResNet, Lite0
    assert not {id(m) for m in called} & {id(m) for part in later if part is not None for m in part.modules()}
    assert sample.site_label.startswith(f"group {min(spec.groups)}, block 0, conv")
    # the outcome runs the whole network (the classifier included)
    with modules_called() as called:
        M.compute_mask_outcome(backbone, clean, spec, seed=0)
    assert any(m is backbone.classifier for m in called)


def test_shown_channels_are_the_most_active_that_were_hit_then_the_most_active_others():
    from models.compute import shown_channels

    before = torch.arange(6, dtype=torch.float32)[:, None, None].expand(6, 4, 4).clone()  # channel c has activity c
    kept = torch.ones(6, 4, 4, dtype=torch.bool)
    kept[1, 0, 0] = kept[3, 2, 2] = False  # only channels 1 and 3 were hit
    assert shown_channels(before, kept, 2) == ((3, 1), 2)
    assert shown_channels(before, kept, 4) == ((3, 1, 5, 4), 2)  # then the most active of the rest
    assert shown_channels(before, torch.ones(6, 4, 4, dtype=torch.bool), 3) == ((5, 4, 3), 0)
    shared = torch.ones(1, 4, 4, dtype=torch.bool)
    shared[0, 1, 1] = False  # one mask for every channel: all were hit
    assert shown_channels(before, shared, 3) == ((5, 4, 3), 6)


def test_a_sample_shows_another_samples_channels_when_asked(lite0, coffee_clean):
    """Two methods compared on the same channels (the lesson's step 3): Dropout on DropBlock's."""
    blocks = M.compute_mask_sample(lite0.backbone, coffee_clean, M.RegularizerSpec(keep_prob=0.8, block_size=7),
                                   seed=3, n_channels=4)
    dropout = M.compute_mask_sample(lite0.backbone, coffee_clean, M.RegularizerSpec(kind="dropout", keep_prob=0.8),
                                    seed=3, n_channels=4, channels=blocks.channels)
    assert dropout.channels == blocks.channels
    torch.testing.assert_close(dropout.before, blocks.before)  # the same feature maps, copied by index
    assert bool((~blocks.block_mask).flatten(1).any(1).all())  # each shown channel was hit by DropBlock
    with pytest.raises(ValueError, match="expected channels"):
        M.compute_mask_sample(lite0.backbone, coffee_clean, M.RegularizerSpec(), n_channels=4, channels=(10_000,))
