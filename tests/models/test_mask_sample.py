"""The mask explorer split in two (issue 9): the masks alone, then what the network makes of them.

``compute_mask_sample`` + ``compute_mask_outcome`` must equal ``compute_mask_view`` field by field
(the same generator draws), and the sample must run no layer after the site it draws at.
"""

from __future__ import annotations

import contextlib
import dataclasses

import pytest
import torch

import models as M
from models.engine import sample_first_site
from models.text import Text

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


def assert_same(a, b, names) -> None:
    for name in names:
        x, y = getattr(a, name), getattr(b, name)
        if isinstance(x, torch.Tensor):
            assert x.dtype == y.dtype and torch.equal(x, y), name
            continue
        assert type(x) is type(y) and x == y, (name, x, y)
        if isinstance(x, Text):  # the formula: the same template and fields, so it translates the same
            assert (x.template, dict(x.fields)) == (y.template, dict(y.fields)), name


@pytest.mark.parametrize("seed", [0, 7])
@pytest.mark.parametrize("name", list(SPECS))
@pytest.mark.parametrize("family", ["lite0", "resnet50"])
def test_sample_and_outcome_equal_the_view(families, family, name, seed):
    backbone, clean = families[family]
    spec = SPECS[name]
    view = M.compute_mask_view(backbone, clean, spec, seed=seed, n_channels=6)
    sample = M.compute_mask_sample(backbone, clean, spec, seed=seed, n_channels=6)
    outcome = M.compute_mask_outcome(backbone, clean, spec, seed=seed)
    assert type(sample) is M.MaskSample and type(outcome) is M.MaskOutcome
    assert_same(sample, view, [f.name for f in dataclasses.fields(M.MaskSample)])
    assert_same(outcome, view, [f.name for f in dataclasses.fields(M.MaskOutcome)])
    assert_same(M.MaskView.of(sample, outcome), view, [f.name for f in dataclasses.fields(M.MaskView)])
    k = 3 if spec.on_input else 6  # the input image has 3 channels
    assert len(sample.channels) == k and sample.block_mask.shape == sample.before.shape == (k, *sample.map_size)


def test_the_first_site_matches_the_full_run(families):
    """In-block placement with the first group given last: the site is the first branch of the lowest group."""
    backbone, clean = families["resnet50"]
    spec = SPECS["in blocks 1+2, no skip, group_params, fc dropout"]
    first = sample_first_site(backbone, clean, spec, seed=3)
    run = M.run_regularized(backbone, clean, spec, n_samples=1, seed=3)
    assert first.site == run.site == M.Site(1, 0, "branch", 1)
    assert torch.equal(first.before, run.before) and torch.equal(first.after, run.after)
    for field in ("seed_mask", "block_mask", "scale", "drop_fraction"):
        assert torch.equal(getattr(first.mask, field), getattr(run.mask, field)), field
    assert (first.mask.gamma, first.mask.target_drop) == (run.mask.gamma, run.mask.target_drop)
    assert first.mask.target_drop == pytest.approx(0.2)  # group 1's own keep_prob 0.8


def test_different_seeds_draw_different_masks(families):
    backbone, clean = families["lite0"]
    a, b = (M.compute_mask_sample(backbone, clean, SPECS["group 3 output"], seed=s) for s in (0, 1))
    assert not torch.equal(a.block_mask, b.block_mask)


@contextlib.contextmanager
def modules_called():
    """Every nn.Module whose forward runs inside the block (a global forward hook, removed on exit)."""
    called: list[torch.nn.Module] = []
    handle = torch.nn.modules.module.register_module_forward_hook(lambda module, args, out: called.append(module))
    try:
        yield called
    finally:
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
    # the full view runs the whole network (the classifier included)
    with modules_called() as called:
        M.compute_mask_view(backbone, clean, spec, seed=0)
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
