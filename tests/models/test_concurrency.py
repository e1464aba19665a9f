"""A classroom at once: many threads share one model; each result equals its serial twin."""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor

import torch

import models as M

from .conftest import load_asset


def test_parallel_sessions_match_serial_runs(lite0):
    bb = lite0.backbone
    cleans = {name: M.clean_pass(bb, M.to_input(load_asset(name), bb.mean, bb.std)) for name in ("coffee", "chelsea")}
    jobs = [
        (image, M.RegularizerSpec(keep_prob=kp, block_size=b, group=g, placement=place), seed)
        for (image, kp, b, g, place), seed in zip(
            itertools.product(("coffee", "chelsea"), (0.9, 0.7), (3, 7), (3,), ("after_group", "in_blocks")),
            itertools.count(100),
        )
    ]
    assert len(jobs) >= 16

    def work(job):
        image, spec, seed = job
        view = M.compute_mask_sample(bb, cleans[image], spec, seed=seed)
        outcome = M.compute_mask_outcome(bb, cleans[image], spec, seed=seed)
        shift = M.compute_cam_shift(bb, cleans[image], spec, n_samples=4, seed=seed)
        return view, outcome, shift

    # The serial reference runs in a worker thread too: torch fixes a thread's intra-op thread count
    # when it first computes, and the app (jobs.configure_process, called by earlier app tests) may
    # have changed the default since the main thread started, which moves the last bits of a reduction.
    with ThreadPoolExecutor(max_workers=1) as one:
        serial = list(one.map(work, jobs))
    with ThreadPoolExecutor(max_workers=8) as pool:
        parallel = list(pool.map(work, jobs * 2))  # each job twice, interleaved with the others
    for i, (view, outcome, shift) in enumerate(parallel):
        ref_view, ref_outcome, ref_shift = serial[i % len(jobs)]
        assert torch.equal(view.seed_mask, ref_view.seed_mask) and torch.equal(view.block_mask, ref_view.block_mask)
        assert view.site_label == ref_view.site_label and outcome.top5_dropped == ref_outcome.top5_dropped
        torch.testing.assert_close(view.after, ref_view.after)
        torch.testing.assert_close(shift.sample_probs, ref_shift.sample_probs)
        torch.testing.assert_close(shift.mean_cam, ref_shift.mean_cam)
    # different seeds and parameters really gave different masks (no session saw another's)
    assert len({view.seed_mask.sum().item() for view, _, _ in serial}) > 4
