"""Batched passes after the masksfast round: parts written into one batch tensor, keep_prob-1 sites.

Checked against separate runs (each its own pass), which the batching tests check against the
previous engine written out.
"""

from __future__ import annotations

from dataclasses import replace

import torch

import models as M
from models.engine import run_regularized_many

TOL = {"rtol": 1e-4, "atol": 1e-4}
PAPER = M.RegularizerSpec(placement="in_blocks", groups=(3, 4), keep_prob=0.8, block_size=7)


def test_parts_with_keep_prob_one_sites_equal_their_separate_runs(lite0, coffee_clean):
    bb = lite0.backbone
    runs = [
        (replace(PAPER, group_params=((3, 1.0, 3),)), 2, 0),  # nothing dropped in group 3
        (replace(PAPER, block_size=1, keep_prob=0.95), 3, 1),  # gamma 0.05 / 0.0125: gap-drawn seeds
        (replace(PAPER, kind="dropout", keep_prob=1.0, skip=False), 2, 2),  # nothing dropped anywhere
        (replace(PAPER, keep_prob=0.75), 2, 3),
    ]
    batched = run_regularized_many(bb, coffee_clean, runs)
    for (spec, n, seed), run in zip(runs, batched):
        alone = M.run_regularized(bb, coffee_clean, spec, n_samples=n, seed=seed)
        torch.testing.assert_close(run.logits, alone.logits, **TOL)
        assert len(run.site_drops) == len(alone.site_drops)
        for (site, got), (_, want) in zip(run.site_drops, alone.site_drops):
            assert torch.equal(got, want), site
    first, _, nothing, _ = batched
    assert all(float(d.max()) == 0.0 for site, d in first.site_drops if site.group == 3)
    assert any(float(d.max()) > 0.0 for site, d in first.site_drops if site.group == 4)
    assert torch.equal(first.after, first.before.expand_as(first.after))  # the first site is in group 3
    torch.testing.assert_close(nothing.logits, coffee_clean.logits.expand(2, -1), **TOL)


def test_a_batch_of_parts_keeps_the_activation_layout(lite0, coffee_clean):
    """Lite0 re-runs in NHWC on the CPU: the batch tensor the parts write into is NHWC too."""
    bb = lite0.backbone
    runs = [(PAPER, 2, 0), (replace(PAPER, keep_prob=0.9), 2, 1)]
    batched = run_regularized_many(bb, coffee_clean, runs)
    for run in batched:
        assert run.after.is_contiguous(memory_format=torch.channels_last)
        assert run.mask.block_mask.dtype == torch.bool and run.mask.block_mask.shape == run.after.shape
