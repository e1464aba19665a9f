"""BatchNorm folded into the convolutions for the Monte Carlo re-runs (models/backbone.py).

The re-runs go through the same sites with the same activations as the model's own modules, up to
float rounding; the model is never changed; a model the fold cannot describe runs its own modules.
Random weights with random BatchNorm statistics (a fresh torchvision model's are the identity, which
would hide a wrong fold); Lite0 is the real fallback model.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn
from torchvision.models import resnet18, resnet50, resnext50_32x4d

import dropblock as db
import models as M
from models.backbone import FoldedConv, efficientnet_lite0_backbone, fold_bn, resnet_backbone

CATEGORIES = [str(k) for k in range(1000)]


def _random_bn_stats(model: nn.Module, seed: int) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.running_mean.copy_(torch.randn(c, generator=g) * 0.2)
                m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
                m.weight.copy_(torch.rand(c, generator=g) + 0.5)
                m.bias.copy_(torch.randn(c, generator=g) * 0.1)
    return model.eval()


@pytest.fixture(scope="module")
def resnets():
    torch.manual_seed(3)
    out = {}
    for name, build in (("resnet18", resnet18), ("resnet50", resnet50), ("resnext50_32x4d", resnext50_32x4d)):
        model = _random_bn_stats(build(weights=None), 11)
        out[name] = resnet_backbone(model, CATEGORIES, name)
    return out


@pytest.fixture(scope="module")
def backbones(resnets, lite0):
    return {**resnets, "lite0": lite0.backbone}


def _recorded(backbone: M.Backbone, h: torch.Tensor, folded: bool, before_act: bool):
    """Group 3-4 and the head, every site's input recorded (and half of each site's units zeroed, so a
    wrong activation order or an in-place write to what a site returned would show)."""
    offered, kept = [], []

    def site_fn(t, site):
        offered.append((site, t.clone()))
        out = t.clone()
        out[:, ::2] = 0
        kept.append((site, t, t.clone()))  # what a caller keeps (DropRun.before/after, SiteInput.before)
        kept.append((site, out, out.clone()))
        return out

    with torch.inference_mode():
        for g in (3, 4):
            h = backbone.run_group(h, g, site_fn, before_act=before_act, folded=folded)
        logits, feats = backbone.head(h, folded=folded)
    for site, t, copy in kept:  # the same tensor and its copy: equal unless something wrote into it later
        assert torch.equal(t, copy), f"{site}: changed in place after the site"
    return offered, logits, feats


@pytest.mark.parametrize("before_act", [False, True], ids=["after act", "before act"])
@pytest.mark.parametrize("name", ["resnet18", "resnet50", "resnext50_32x4d", "lite0"])  # BasicBlock, Bottleneck, grouped
def test_folded_blocks_offer_the_same_sites_the_same_activations(backbones, name, before_act):
    backbone = backbones[name]
    assert backbone.folded_groups and len(backbone.folded_groups) == 4
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(5))
    clean = M.clean_pass(backbone, x)
    h = clean.acts[2].expand(2, -1, -1, -1)  # a batch expanded from one image, as the re-runs start
    exact = _recorded(backbone, h, False, before_act)
    folded = _recorded(backbone, h, True, before_act)
    assert [s for s, _ in folded[0]] == [s for s, _ in exact[0]]
    assert len(exact[0]) > 10
    for (site, a), (_, b) in zip(exact[0], folded[0]):
        scale = a.abs().max().item() + 1e-6
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4 * scale, msg=lambda m: f"{site}: {m}")
    torch.testing.assert_close(folded[1], exact[1], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(folded[2], exact[2], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ["resnet50", "lite0"])
def test_building_and_running_the_folded_path_never_changes_the_model(backbones, name):
    backbone = backbones[name]
    before = {k: v.clone() for k, v in backbone.model.state_dict().items()}
    rebuilt = efficientnet_lite0_backbone(backbone.model, CATEGORIES) if name == "lite0" else \
        resnet_backbone(backbone.model, CATEGORIES, name)
    clean = M.clean_pass(rebuilt, torch.randn(1, 3, 224, 224))
    M.run_regularized(rebuilt, clean, M.RegularizerSpec(placement="in_blocks", keep_prob=0.8), n_samples=2)
    after = backbone.model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)


def test_fold_bn_is_bn_of_conv_with_bias_groups_and_asymmetric_same_padding(lite0):
    g = torch.Generator().manual_seed(2)
    conv = nn.Conv2d(6, 9, 3, stride=2, padding=1, groups=3, bias=True)
    bn = _random_bn_stats(nn.Sequential(nn.BatchNorm2d(9)), 4)[0]
    x = torch.randn(2, 6, 11, 11, generator=g)
    with torch.no_grad():
        torch.testing.assert_close(fold_bn(conv, bn)(x), bn(conv(x)), rtol=1e-5, atol=1e-5)
    # EfficientNet's TF "SAME" padding: symmetric ones become the conv's own, (0, 1) / (1, 2) stay a pad
    pads = set()
    for block in lite0.backbone.model._blocks:
        folded = fold_bn(block._depthwise_conv, block._bn1)
        pads.add(folded.pad)
        x = torch.randn(1, block._depthwise_conv.in_channels, 28, 28, generator=g)
        with torch.no_grad():
            torch.testing.assert_close(folded(x), block._bn1(block._depthwise_conv(x)), rtol=1e-4, atol=1e-4)
    assert None in pads and len(pads) > 1  # both kinds were checked


def test_a_bn_without_running_statistics_or_a_model_in_training_mode_runs_the_models_own_modules():
    with pytest.raises(ValueError, match="running statistics"):
        fold_bn(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4, track_running_stats=False))
    with pytest.raises(ValueError, match="zero padding"):
        fold_bn(nn.Conv2d(3, 4, 3, padding="same"), nn.BatchNorm2d(4))
    torch.manual_seed(0)
    training = resnet_backbone(resnet18(weights=None), CATEGORIES, "resnet18")  # not put in eval mode
    assert training.folded_groups == ()
    model = resnet18(weights=None)
    model.layer3[0].bn1 = nn.BatchNorm2d(256, track_running_stats=False)
    no_stats = resnet_backbone(model.eval(), CATEGORIES, "resnet18")
    assert no_stats.folded_groups == ()
    x = torch.randn(1, 3, 64, 64)
    clean = M.clean_pass(no_stats, x)
    run = M.run_regularized(no_stats, clean, M.RegularizerSpec(keep_prob=1.0), n_samples=1)
    torch.testing.assert_close(run.logits, clean.logits, rtol=1e-4, atol=1e-4)


def test_the_runs_use_the_folded_blocks_and_their_results_are_the_models(lite0, resnets):
    """keep_prob 1 everywhere in the blocks: the folded re-run gives the clean pass's logits."""
    calls = []
    original = FoldedConv.__call__

    def counted(self, x):
        calls.append(self)
        return original(self, x)

    for backbone in (lite0.backbone, resnets["resnet50"]):
        clean = M.clean_pass(backbone, torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(9)))
        spec = M.RegularizerSpec(placement="in_blocks", groups=(3, 4), keep_prob=1.0)
        FoldedConv.__call__ = counted
        try:
            run = M.run_regularized(backbone, clean, spec, n_samples=3, seed=1)
        finally:
            FoldedConv.__call__ = original
        assert calls
        calls.clear()
        for i in range(3):
            torch.testing.assert_close(run.logits[i : i + 1], clean.logits, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("keep_prob", [1.0, 0.8])
def test_resnet_drops_before_relu_with_several_samples(resnets, keep_prob):
    """The site between BN and ReLU: keep_prob 1 with several samples ran an in-place ReLU on a batch
    expanded from one image (an error), and below 1 it overwrote the dropped activation the page shows
    with its ReLU. Both paths now leave what a site returned as it was."""
    backbone = resnets["resnet50"]
    clean = M.clean_pass(backbone, torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(4)))
    spec = M.RegularizerSpec(placement="in_blocks", groups=(3, 4), keep_prob=keep_prob, block_size=3,
                             act_site="before_act")
    run = M.run_regularized(backbone, clean, spec, n_samples=4, seed=2)
    assert run.before.min() < 0  # BN's output, before the ReLU
    torch.testing.assert_close(run.after, db.apply_mask(run.before.expand(4, -1, -1, -1), run.mask))
    def expand_and_drop(t, site):  # as the re-runs do: one image until the first site, a batch after it
        t = t.expand(4, *t.shape[1:])
        return db.apply_mask(t, db.sample_mask(t, "dropblock", keep_prob, 3))

    for folded in (False, True):  # the model's own modules (the clean pass's path) too
        with torch.inference_mode():
            out = backbone.run_group(clean.acts[2], 3, expand_and_drop, before_act=True, folded=folded)
        assert out.shape == (4, 1024, 14, 14)


def test_a_conv_block_or_head_the_fold_cannot_describe_runs_the_models_own_modules(lite0):
    """A conv whose padding depends on its input (efficientnet's dynamic SAME padding) or a block with
    Swish instead of Lite's ReLU6 cannot be folded as it runs: refused, so the model's own modules run."""
    from efficientnet_lite_pytorch.utils import Conv2dDynamicSamePadding, MemoryEfficientSwish

    conv = Conv2dDynamicSamePadding(4, 4, 3, stride=2, bias=False)
    bn = _random_bn_stats(nn.Sequential(nn.BatchNorm2d(4)), 6)[0]
    with torch.no_grad():
        assert bn(conv(torch.randn(1, 4, 9, 9))).shape[-1] == 5  # padded to ceil(9 / 2)
    with pytest.raises(ValueError, match="static SAME"):
        fold_bn(conv, bn)
    import copy

    model = copy.deepcopy(lite0.backbone.model)
    model._blocks[7]._swish = MemoryEfficientSwish()
    assert efficientnet_lite0_backbone(model.eval(), CATEGORIES).folded_groups == ()
    model = copy.deepcopy(lite0.backbone.model)
    model._bn1 = nn.BatchNorm2d(model._bn1.num_features, track_running_stats=False)  # the head's BN
    backbone = efficientnet_lite0_backbone(model.eval(), CATEGORIES)  # built (it raised), the blocks folded
    assert backbone.folded_groups and backbone.folded_features is None


@pytest.mark.parametrize("spec", [
    M.RegularizerSpec(placement="after_group", group=1, keep_prob=0.8, block_size=3),
    M.RegularizerSpec(placement="after_group", group=4, keep_prob=0.8, block_size=3),
    M.RegularizerSpec(placement="in_blocks", groups=(1, 2), keep_prob=0.85, block_size=3, skip=False),
    M.RegularizerSpec(placement="in_blocks", groups=(2, 4), keep_prob=0.85, block_size=3, act_site="before_act"),
    M.RegularizerSpec(kind="cutout", keep_prob=0.8, block_size=16, cutout_on="input"),
    M.RegularizerSpec(placement="in_blocks", groups=(3, 4), keep_prob=0.9, block_size=3, fc_keep_prob=0.7),
], ids=["after group 1", "after group 4", "in groups 1-2 no skip", "in groups 2+4 before act", "cutout on input",
        "dropout before fc"])
@pytest.mark.parametrize("name", ["resnet18", "lite0"])
def test_whole_runs_folded_are_the_runs_through_the_models_own_modules(backbones, name, spec):
    """Every placement, through the engine: the same masks drawn at the same sites, the same numbers up to
    float rounding (the groups and sites the block-level test above leaves out)."""
    backbone = backbones[name]
    exact = dataclasses.replace(backbone, folded_groups=(), folded_features=None)
    clean = M.clean_pass(backbone, torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(8)))
    folded_run = M.run_regularized(backbone, clean, spec, n_samples=3, seed=5)
    exact_run = M.run_regularized(exact, clean, spec, n_samples=3, seed=5)
    assert [s for s, _ in folded_run.site_drops] == [s for s, _ in exact_run.site_drops]
    assert torch.equal(folded_run.mask.block_mask, exact_run.mask.block_mask)  # drawn before any layer differs
    for a, b in ((folded_run.logits, exact_run.logits), (folded_run.after, exact_run.after)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4 * (b.abs().max().item() + 1e-6))
