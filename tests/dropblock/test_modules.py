"""Tests for the nn.Module wrappers and the linear keep_prob schedule."""

from __future__ import annotations

import pytest
import torch

import dropblock as db


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize(
    "module",
    [
        db.DropBlock2d(0.8, 3),
        db.DropBlock2d(0.8, 4, per_channel=False, seed_region="everywhere", gamma_scale=0.25),
        db.Dropout(0.8),
        db.SpatialDropout(0.8),
        db.Cutout(0.8),
        db.Cutout(0.8, size=3, seed_region="everywhere"),
    ],
    ids=repr,
)
def test_module_forward_matches_sample_mask_and_eval_is_identity(module):
    x = torch.randn(4, 6, 10, 10)
    module.train()
    module.generator = gen(5)
    y = module(x)
    mask = module.sample_mask(x, generator=gen(5))
    torch.testing.assert_close(y, db.apply_mask(x, mask))
    module.eval()
    assert module(x) is x
    module.generator = None


def test_extra_repr_shows_settings():
    r = repr(db.DropBlock2d(0.85, 5, gamma_scale=0.25))
    assert "keep_prob=0.85" in r and "block_size=5" in r and "gamma_scale=0.25" in r and "'valid'" in r
    assert "keep_prob=0.7" in repr(db.SpatialDropout(0.7))


def test_modules_validate_settings():
    with pytest.raises(ValueError, match="expected keep_prob"):
        db.DropBlock2d(0.0, 3)
    with pytest.raises(TypeError, match="expected block_size"):
        db.DropBlock2d(0.9, 3.0)
    with pytest.raises(ValueError, match="expected seed_region"):
        db.DropBlock2d(0.9, 3, seed_region="middle")


def test_linear_scheduler_from_one_to_target_saved_in_state_dict():
    block = db.DropBlock2d(0.9, 7)
    sched = db.LinearScheduler(block, target=0.8, total_steps=4)
    assert sched.keep_prob == 1.0 and block.keep_prob == 1.0  # exactly 1 at step 0
    seen = [sched.step() for _ in range(6)]
    assert seen[:4] == pytest.approx([0.95, 0.9, 0.85, 0.8])
    assert seen[3] == 0.8 and seen[4:] == [0.8, 0.8]  # the target at the end, clamped after
    assert block.keep_prob == 0.8
    state = sched.state_dict()

    fresh_block = db.DropBlock2d(0.9, 7)
    fresh = db.LinearScheduler(fresh_block, target=0.8, total_steps=4)
    fresh.load_state_dict(state)
    assert fresh.steps_taken == 6 and fresh_block.keep_prob == 0.8

    half = db.LinearScheduler(db.DropBlock2d(), target=0.8, total_steps=4)
    half.step()
    half.step()
    resumed = db.LinearScheduler(db.DropBlock2d(), target=0.8, total_steps=4)
    resumed.load_state_dict(half.state_dict())
    assert resumed.keep_prob == pytest.approx(0.9) and resumed.module.keep_prob == pytest.approx(0.9)


def test_scheduler_forward_uses_current_keep_prob():
    x = torch.ones(8, 4, 14, 14)
    sched = db.LinearScheduler(db.DropBlock2d(0.5, 3, generator=gen(0)), target=0.5, total_steps=2).train()
    assert torch.equal(sched(x), x)  # keep_prob 1 at step 0: identity
    sched.step()
    sched.step()
    assert not torch.equal(sched(x), x)


def test_scheduler_rejects_module_without_keep_prob():
    with pytest.raises(TypeError, match="keep_prob"):
        db.LinearScheduler(torch.nn.ReLU(), 0.9, 10)
