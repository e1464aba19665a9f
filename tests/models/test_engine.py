"""Engine properties: cache re-runs equal a full forward, no hooks, no mutation, capture, MC."""

from __future__ import annotations

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
    spec = M.RegularizerSpec(keep_prob=0.8, block_size=5)
    quarter = M.engine.sample_site_mask(h, spec, g, quarter=True)
    full = M.engine.sample_site_mask(h, spec, g)
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

    def failing(x, mask):
        calls["n"] += 1
        if calls["n"] == 5:
            raise RuntimeError("boom")
        return real(x, mask)

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
