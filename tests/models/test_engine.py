"""Engine properties: cache re-runs equal a full forward, no hooks, no mutation, capture, MC."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

import dropblock as db
import models as M
from models.backbone import Site

PLACEMENTS = [
    M.RegularizerSpec(placement="after_group", group=1),
    M.RegularizerSpec(placement="after_group", group=3),
    M.RegularizerSpec(placement="after_group", group=4),
    M.RegularizerSpec(placement="in_blocks", groups=(3, 4)),
    M.RegularizerSpec(placement="in_blocks", groups=(2,)),
    M.RegularizerSpec(kind="cutout"),
]


def _hooks(model: torch.nn.Module) -> int:
    return sum(
        len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
        for m in model.modules()
    )


@pytest.fixture(params=["resnet", "lite0"])
def backbone(request, resnet, lite0):
    return resnet if request.param == "resnet" else lite0.backbone


def test_clean_pass_equals_full_forward(backbone):
    x = torch.randn(1, 3, 224, 224)
    clean = M.clean_pass(backbone, x)
    with torch.no_grad():
        torch.testing.assert_close(clean.logits, backbone.model(x), rtol=1e-4, atol=1e-4)
    assert [a.shape[-1] for a in clean.acts] == [56 if backbone.name == "resnet50" else 112, 56, 28, 14, 7]


@pytest.mark.parametrize("spec", PLACEMENTS, ids=lambda s: f"{s.kind}-{s.placement}-{s.group}-{s.groups}")
def test_rerun_from_cache_without_drop_equals_full_forward(backbone, spec):
    x = torch.randn(1, 3, 224, 224)
    clean = M.clean_pass(backbone, x)
    run = M.run_regularized(backbone, clean, spec.__class__(**{**spec.__dict__, "keep_prob": 1.0}), n_samples=3)
    for i in range(3):
        torch.testing.assert_close(run.logits[i : i + 1], clean.logits, rtol=1e-4, atol=1e-4)


def test_capture_is_the_mask_applied(backbone):
    clean = M.clean_pass(backbone, torch.randn(1, 3, 224, 224))
    run = M.run_regularized(backbone, clean, M.RegularizerSpec(keep_prob=0.7, block_size=3), n_samples=4, seed=2)
    assert run.site == Site(3, -1, "group_output")
    assert torch.equal(run.before, clean.acts[3])
    torch.testing.assert_close(run.after, db.apply_mask(clean.acts[3].expand(4, -1, -1, -1), run.mask))
    assert run.mask.seed_mask.shape == run.after.shape


def test_monte_carlo_samples_are_independent(resnet):
    """Each sample's logits equal running the rest of the network on that sample alone."""
    clean = M.clean_pass(resnet, torch.randn(1, 3, 224, 224))
    run = M.run_regularized(resnet, clean, M.RegularizerSpec(keep_prob=0.8, group=3), n_samples=4, seed=3)
    with torch.inference_mode():
        for i in range(4):
            logits, _ = resnet.head(resnet.run_group(run.after[i : i + 1], 4))
            torch.testing.assert_close(run.logits[i : i + 1], logits, rtol=1e-4, atol=1e-4)
    assert not torch.equal(run.logits[0], run.logits[1])


def test_same_seed_same_result_different_seed_differs(resnet):
    clean = M.clean_pass(resnet, torch.randn(1, 3, 224, 224))
    spec = M.RegularizerSpec(placement="in_blocks")
    a, b = (M.run_regularized(resnet, clean, spec, n_samples=2, seed=5) for _ in range(2))
    c = M.run_regularized(resnet, clean, spec, n_samples=2, seed=6)
    assert torch.equal(a.logits, b.logits) and not torch.equal(a.logits, c.logits)


def test_in_blocks_sites_follow_the_paper(resnet):
    clean = M.clean_pass(resnet, torch.randn(1, 3, 224, 224))
    run = M.run_regularized(resnet, clean, M.RegularizerSpec(placement="in_blocks", groups=(3, 4)), seed=0)
    sites = [s for s, _ in run.site_drops]
    # ResNet-50: 6 blocks in group 3, 3 in group 4; 3 conv branches + the skip in each
    assert len(sites) == (6 + 3) * 4
    assert {s.group for s in sites} == {3, 4} and sum(s.kind == "skip" for s in sites) == 9
    no_skip = M.run_regularized(resnet, clean, M.RegularizerSpec(placement="in_blocks", skip=False), seed=0)
    assert all(s.kind == "branch" for s, _ in no_skip.site_drops) and len(no_skip.site_drops) == 27


def test_group3_gets_a_quarter_of_gamma(resnet):
    h = torch.ones(4000, 1, 14, 14)
    g = torch.Generator().manual_seed(0)
    spec = M.RegularizerSpec(keep_prob=0.8, block_size=5, placement="in_blocks")
    assert spec.mask_args(3)["gamma_scale"] == 0.25 and spec.mask_args(4)["gamma_scale"] == 1.0
    quarter = db.sample_mask(h, **spec.mask_args(3), generator=g)
    full = db.sample_mask(h, **replace(spec, group3_quarter=False).mask_args(3), generator=g)
    assert M.RegularizerSpec(keep_prob=0.8, block_size=5).mask_args(3)["gamma_scale"] == 1.0  # a group output: whole
    assert quarter.gamma == pytest.approx(full.gamma / 4)
    exact = db.expected_drop_fraction(0.8, 5, 14, 14, gamma_scale=0.25)
    assert quarter.realised_drop == pytest.approx(exact, abs=0.003)
    assert quarter.realised_drop < full.realised_drop / 3


def test_no_hooks_and_no_mutation_also_after_an_exception(resnet, monkeypatch):
    model = resnet.model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    clean = M.clean_pass(resnet, torch.randn(1, 3, 224, 224))
    M.run_regularized(resnet, clean, M.RegularizerSpec(placement="in_blocks"), n_samples=2)
    M.compute_cam_shift(resnet, clean, M.RegularizerSpec(), n_samples=2)
    assert _hooks(model) == 0

    calls = {"n": 0}
    real = db.apply_mask

    def failing(x, mask, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise RuntimeError("boom")
        return real(x, mask, **kwargs)

    monkeypatch.setattr(db, "apply_mask", failing)
    with pytest.raises(RuntimeError, match="boom"):
        M.run_regularized(resnet, clean, M.RegularizerSpec(placement="in_blocks"), n_samples=2)
    assert _hooks(model) == 0
    assert not any(m.training for m in model.modules())
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_spec_validation():
    with pytest.raises(ValueError, match="expected kind"):
        M.RegularizerSpec(kind="droppath")
    with pytest.raises(ValueError, match="expected group"):
        M.RegularizerSpec(group=5)
    with pytest.raises(ValueError, match="expected keep_prob"):
        M.RegularizerSpec(keep_prob=0)
    with pytest.raises(ValueError, match="n_samples"):
        M.run_regularized(None, None, M.RegularizerSpec(), n_samples=0)  # type: ignore[arg-type]


# ------------------------------------------------------------------ issue 10: devices, fc Dropout, per group, sites


def test_masks_come_from_a_cpu_generator_whatever_the_model_device(resnet, monkeypatch):
    """A seed gives the same masks on every device: the generator is on the CPU, masks are moved.

    Without CUDA the device path is simulated: the backbone claims to live on "cuda", so a
    generator made on the model's device would fail here; the sampler must still be handed a
    CPU generator and give exactly the masks and logits of the plain CPU run.
    """
    clean = M.clean_pass(resnet, torch.randn(1, 3, 224, 224))
    spec = M.RegularizerSpec(placement="in_blocks", keep_prob=0.8, block_size=5)
    reference = M.run_regularized(resnet, clean, spec, n_samples=2, seed=11)
    seen: list[torch.device] = []
    real = db.sample_mask  # the engine's one entry to the samplers

    def spy(*args, generator=None, **kwargs):  # one generator per sample, or one for the batch
        seen.extend(g.device for g in (generator if isinstance(generator, (list, tuple)) else [generator]))
        return real(*args, generator=generator, **kwargs)

    monkeypatch.setattr(db, "sample_mask", spy)
    monkeypatch.setattr(M.Backbone, "device", property(lambda self: torch.device("cuda")))
    moved = M.run_regularized(resnet, clean, spec, n_samples=2, seed=11)
    assert seen and {d.type for d in seen} == {"cpu"}
    assert torch.equal(moved.mask.block_mask, reference.mask.block_mask)
    assert torch.equal(moved.logits, reference.logits)


def test_dropout_before_fc_keeps_cam_consistent_with_logits(backbone):
    clean = M.clean_pass(backbone, torch.randn(1, 3, 224, 224))
    fc_only = M.RegularizerSpec(keep_prob=1.0, fc_keep_prob=0.5)
    run = M.run_regularized(backbone, clean, fc_only, n_samples=4, seed=1)
    pooled = [s for s, _ in run.site_drops if s.kind == "pooled"]
    assert pooled and pooled[0].label == "pooled features before fc"
    # logits are fc of the (masked) features' mean, so the CAM drawn from them is consistent
    torch.testing.assert_close(run.logits, backbone.classifier(run.features.mean(dim=(2, 3))), rtol=1e-4, atol=1e-4)
    kept = (run.features.abs().sum(dim=(2, 3)) > 0).float()  # (S, K): channels still there
    clean_live = (clean.features.abs().sum(dim=(2, 3)) > 0).float()
    share_dropped = 1 - (kept.sum(dim=1) / clean_live.sum()).mean().item()
    assert 0.4 < share_dropped < 0.6  # about half the pooled channels dropped at fc_keep_prob 0.5
    assert not torch.allclose(run.logits[0], clean.logits[0])
    # with conv keep_prob 1 only the classifier input changes: features are clean ones, masked
    ratio = run.features / clean.features.clamp_min(1e-6).expand_as(run.features)
    on = run.features != 0
    torch.testing.assert_close(ratio[on & (clean.features.expand_as(on) > 1e-3)].mean(), torch.tensor(2.0), rtol=1e-3, atol=1e-3)
    off = M.run_regularized(backbone, clean, M.RegularizerSpec(keep_prob=1.0), n_samples=1)
    torch.testing.assert_close(off.logits, clean.logits, rtol=1e-4, atol=1e-4)


def test_group_params_set_keep_prob_and_block_size_per_group(resnet):
    spec = M.RegularizerSpec(placement="in_blocks", keep_prob=0.9, block_size=7, group3_quarter=False,
                             group_params=((3, 0.8, 3), (4, 0.9, 7)))
    h = torch.ones(2000, 1, 14, 14)
    g = torch.Generator().manual_seed(0)
    at3 = db.sample_mask(h, **spec.mask_args(3), generator=g)
    at4 = db.sample_mask(torch.ones(2000, 1, 7, 7), **spec.mask_args(4), generator=g)
    assert at3.block_size == (3, 3) and at3.target_drop == pytest.approx(0.2)
    assert at4.block_size == (7, 7) and at4.target_drop == pytest.approx(0.1)
    assert at3.realised_drop == pytest.approx(db.expected_drop_fraction(0.8, 3, 14, 14), abs=0.005)
    clean = M.clean_pass(resnet, torch.randn(1, 3, 224, 224))
    run = M.run_regularized(resnet, clean, spec, n_samples=4, seed=0)
    by_group = {gr: torch.cat([d for s, d in run.site_drops if s.group == gr and s.kind == "branch"]).mean().item()
                for gr in (3, 4)}
    assert by_group[3] == pytest.approx(db.expected_drop_fraction(0.8, 3, 14, 14), abs=0.01)
    assert by_group[4] == pytest.approx(0.1, abs=0.01)  # a 7x7 block on a 7x7 map: whole channels
    with pytest.raises(ValueError, match="group_params"):
        M.RegularizerSpec(group_params=((5, 0.9, 3),))
    with pytest.raises(ValueError, match="at most once"):
        M.RegularizerSpec(group_params=((3, 0.9, 3), (3, 0.8, 3)))


def test_site_before_or_after_relu_is_the_same_for_relu_not_for_relu6(resnet, lite0):
    """A positive per-unit scale commutes with ReLU, so the site makes no difference on ResNet;
    EfficientNet-Lite's ReLU6 clips, so there it does."""
    for backbone, same in ((resnet, True), (lite0.backbone, False)):
        clean = M.clean_pass(backbone, torch.randn(1, 3, 224, 224))
        after = M.run_regularized(backbone, clean, M.RegularizerSpec(placement="in_blocks", keep_prob=0.7), n_samples=2, seed=4)
        before = M.run_regularized(backbone, clean, M.RegularizerSpec(placement="in_blocks", keep_prob=0.7,
                                                                        act_site="before_act"), n_samples=2, seed=4)
        assert torch.equal(after.mask.block_mask, before.mask.block_mask)
        close = torch.allclose(after.logits, before.logits, rtol=1e-4, atol=1e-4)
        assert close is same, backbone.name


def test_batch_normalisation_couples_monte_carlo_samples(resnet):
    clean = M.clean_pass(resnet, torch.randn(1, 3, 224, 224))
    run = M.run_regularized(resnet, clean, M.RegularizerSpec(keep_prob=0.7, normalize="batch"), n_samples=4, seed=3)
    assert bool((run.mask.scale == run.mask.scale[0]).all())
    per_sample = M.run_regularized(resnet, clean, M.RegularizerSpec(keep_prob=0.7), n_samples=4, seed=3)
    assert torch.equal(run.mask.block_mask, per_sample.mask.block_mask)
    assert not torch.equal(run.mask.scale, per_sample.mask.scale)
