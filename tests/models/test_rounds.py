"""Heavy views in rounds (models.rounds): each round is the one-shot result over the samples so far.

Sample ``s`` of a seed draws from its own stream (``models.engine.sample_seed``), so a round draws
only its new samples; the last round equals the one-shot computation (masks exactly, numbers to a
tolerance: the batch shapes differ), every round equals the one-shot computation with as many
samples, and a single draw (sample 0) is the draw a generator seeded ``seed`` gives, as before.
"""

from __future__ import annotations

from dataclasses import fields, replace

import pytest
import torch
from torchvision.models import ResNet50_Weights, resnet18

import dropblock as db
import models as M
from models import engine
from models.backbone import Site, identity_site, resnet_backbone
from models.keepgrid import compute_keep_prob_scan, compute_keep_prob_scan_rounds
from models.rounds import FIRST, Partial, round_progress, round_ranges, round_sizes
from models.setcurve import Cancelled, compute_set_curve, compute_set_curve_rounds, image_seed
from models.theory import (
    compute_depth_contrast,
    compute_depth_contrast_rounds,
    compute_theory_contrasts_rounds,
    compute_mistakes,
    compute_mistakes_rounds,
    compute_tutorial_contrasts,
    compute_tutorial_contrasts_rounds,
)

TOL = {"rtol": 1e-4, "atol": 1e-5}
PAPER = M.RegularizerSpec(placement="in_blocks", groups=(3, 4), keep_prob=0.8, block_size=7)


@pytest.fixture(scope="module")
def resnet18_clean():
    """A small ResNet (BasicBlocks), untrained, seeded, and a random image's clean pass."""
    torch.manual_seed(1)
    bb = resnet_backbone(resnet18(weights=None).eval(), ResNet50_Weights.IMAGENET1K_V1.meta["categories"], "resnet18")
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(3))
    return bb, M.clean_pass(bb, x)


def close(a, b) -> None:
    torch.testing.assert_close(torch.as_tensor(a), torch.as_tensor(b), **TOL)


# Top-1 decisions taken from probabilities (whether a sample keeps the clean top-1): two batch shapes
# round the last bits differently, so one sample on a near-tie may decide otherwise (tests/tolerance.py);
# more than one flipped decision means other masks or other numbers.
DECISIONS = {"top1_agreement", "keeps_top1", "top1_kept"}


def same(got, want, name: str = "", n: int = 1) -> None:
    """Two results (dataclasses, tuples, tensors, numbers, strings) of two code paths: equal, floats to a
    tolerance, top-k lists as the same classes (a class at the k-th place may trade places on a tie)."""
    if name in DECISIONS:
        shares = not (isinstance(want, torch.Tensor) and want.dtype == torch.bool)  # shares of n samples, or each one
        a, b = torch.as_tensor(got).float(), torch.as_tensor(want).float()
        assert a.shape == b.shape and float((a - b).abs().sum()) * (n if shares else 1) <= 1 + 1e-4, name
        return
    if isinstance(want, torch.Tensor):
        assert isinstance(got, torch.Tensor) and got.shape == want.shape and got.dtype == want.dtype, name
        if want.dtype == torch.bool:
            assert torch.equal(got, want), name
        else:
            close(got, want)
    elif hasattr(want, "__dataclass_fields__"):
        assert type(got) is type(want), name
        for f in fields(want):
            same(getattr(got, f.name), getattr(want, f.name), f.name, getattr(want, "n_samples", n) or n)
    elif isinstance(want, (tuple, list)) and want and all(isinstance(x, tuple) and len(x) == 2 and isinstance(x[0], str)
                                                         and isinstance(x[1], float) for x in want):
        a, b = dict(got), dict(want)  # top-k: (class, probability), best first
        assert len(got) == len(want), name
        for cls in a.keys() | b.keys():
            if cls in a and cls in b:
                assert a[cls] == pytest.approx(b[cls], rel=1e-4, abs=1e-6), (name, cls)
            else:  # only at the last place, on a tie with the other side's last
                assert min(a.get(cls, b.get(cls)), got[-1][1], want[-1][1]) == pytest.approx(
                    max(got[-1][1], want[-1][1]), rel=1e-4, abs=1e-6), (name, cls)
    elif isinstance(want, (tuple, list)):
        assert isinstance(got, (tuple, list)) and len(got) == len(want), name
        for x, y in zip(got, want):
            same(x, y, name, n)
    elif isinstance(want, float):
        assert got == pytest.approx(want, rel=1e-4, abs=1e-5, nan_ok=True), name
    else:
        assert got == want, name


def assert_same_result(got, want) -> None:
    same(got, want)


def check_rounds(partials: list[Partial], total: int, one_shot) -> None:
    """``done`` follows round_sizes; every round equals the one-shot result with ``done`` samples."""
    assert [p.done for p in partials] == list(round_sizes(total))
    assert all(p.total == total for p in partials)
    assert [p.final for p in partials] == [False] * (len(partials) - 1) + [True]
    for p in partials:
        assert p.value.n_samples == p.done
        assert_same_result(p.value, one_shot(p.done))


# ---------------------------------------------------------------------------- the rounds API


def test_round_sizes_double_from_the_first_to_the_total():
    assert FIRST == 1  # a first round of one sample per point (issue 19 allows 1-2)
    assert round_sizes(32, most=None) == (1, 2, 4, 8, 16, 32)
    assert round_sizes(32) == (1, 2, 4, 8, 12, 16, 20, 24, 28, 32) and round_sizes(16, most=2)[-3:] == (12, 14, 16)
    assert round_sizes(1) == (1,) and round_sizes(2) == (1, 2) and round_sizes(3) == (1, 2, 3)
    assert round_sizes(12, first=2) == (2, 4, 8, 12) and round_sizes(5) == (1, 2, 4, 5)
    assert round_sizes(12, first=2, most=None) == (2, 4, 8, 12)
    assert round_sizes(4, first=8) == (4,)
    for total in range(1, 40):
        ranges = round_ranges(total)
        assert ranges[0].start == 0 and ranges[-1].stop == total
        assert all(a.stop == b.start and len(a) > 0 for a, b in zip(ranges, ranges[1:]))
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError):
            round_sizes(bad)
    with pytest.raises(ValueError):
        round_sizes(8, first=0)


def test_partial_is_final_once_every_sample_is_in():
    assert not Partial("x", 2, 8).final and Partial("x", 8, 8).final
    seen = []
    report = round_progress(lambda f, t: seen.append((f, t)), range(2, 4), 8)
    report(0.5, "half")
    assert seen == [(0.375, "half")] and round_progress(None, range(0, 2), 8) is None


def test_sample_seeds_start_at_the_seed_and_never_collide():
    assert [M.sample_seed(s, 0) for s in (0, 1, 7, 123456)] == [0, 1, 7, 123456]
    seeds = {M.sample_seed(seed, s) for seed in range(16) for s in range(1, 256)}
    assert len(seeds) == 16 * 255 and not seeds & set(range(1 << 20))  # far from every small seed
    assert all(0 <= x < 1 << 63 for x in seeds)
    assert M.sample_seed(5, 3) == M.sample_seed(5, 3) != M.sample_seed(6, 3)
    for bad in (-1, 1.0, True):
        with pytest.raises(ValueError):
            M.sample_seed(0, bad)


# ---------------------------------------------------------------------------- sample streams


def old_single_draw(backbone, clean, spec, seed):
    """The previous engine's one-sample run, written out: ONE generator seeded ``seed`` drawing every
    site's mask in order. Returns (logits, [masks])."""
    gen = torch.Generator().manual_seed(seed)
    masks = []

    def drop(h, site, quarter=False):
        mask = db.sample_drop_block_mask(h, *spec.params_at(site.group), per_channel=spec.per_channel,
                                         seed_region=spec.seed_region, gamma_scale=0.25 if quarter else 1.0,
                                         gamma_mode=spec.gamma_mode, generator=gen)
        masks.append(mask)
        return db.apply_mask(h, mask)

    def in_block(h, site):
        return h if site.kind == "skip" and not spec.skip else drop(h, site, spec.quarter_at(site.group))

    with torch.inference_mode():
        h = clean.acts[spec.resume_level]
        first = spec.resume_level + 1
        if spec.placement == "after_group":
            h = drop(h, Site(spec.group, -1, "group_output"))
        for g in range(first, 5):
            site_fn = in_block if spec.placement == "in_blocks" and g in spec.groups else identity_site
            h = backbone.run_group(h, g, site_fn)
        logits, _ = backbone.head(h)
    return logits, masks


@pytest.mark.parametrize("spec", [M.RegularizerSpec(keep_prob=0.8, block_size=3), PAPER], ids=["after_group", "paper"])
def test_a_single_draw_is_the_draw_of_a_generator_seeded_seed(resnet18_clean, spec):
    """n=1 (the mask explorer, one draw pictured, a shared link): exactly the masks of before."""
    bb, clean = resnet18_clean
    run = M.run_regularized(bb, clean, spec, n_samples=1, seed=7)
    logits, masks = old_single_draw(bb, clean, spec, 7)
    assert len(run.site_drops) == len(masks)
    assert torch.equal(run.mask.block_mask, masks[0].block_mask) and torch.equal(run.mask.seed_mask, masks[0].seed_mask)
    for (_, got), want in zip(run.site_drops, masks):
        assert torch.equal(got, want.drop_fraction)
    close(run.logits, logits)
    site = engine.first_site_input(bb, clean, spec)  # the mask explorer's draw, on the site's cached input
    first = M.compute_mask_sample_at(site, spec, seed=7, n_channels=site.before.shape[1])
    assert torch.equal(first.block_mask, masks[0].block_mask[0, list(first.channels)].cpu())
    # and it is sample 0 of every longer run with that seed
    longer = M.run_regularized(bb, clean, spec, n_samples=5, seed=7)
    assert torch.equal(longer.mask.block_mask[:1], masks[0].block_mask)
    close(longer.logits[:1], logits)


def test_sample_s_is_a_single_run_seeded_sample_seed(resnet18_clean):
    bb, clean = resnet18_clean
    spec = replace(PAPER, fc_keep_prob=0.5)
    run = M.run_regularized(bb, clean, spec, n_samples=4, seed=2)
    for s in range(4):
        alone = M.run_regularized(bb, clean, spec, n_samples=1, seed=M.sample_seed(2, s))
        assert torch.equal(run.mask.block_mask[s : s + 1], alone.mask.block_mask)
        for (site, got), (_, want) in zip(run.site_drops, alone.site_drops):
            assert torch.equal(got[s : s + 1], want), site
        close(run.logits[s : s + 1], alone.logits)


@pytest.mark.parametrize("kind", ["dropblock", "dropout", "spatial_dropout", "cutout"])
def test_samples_a_to_b_are_those_rows_of_a_run_from_zero(resnet18_clean, kind):
    bb, clean = resnet18_clean
    spec = replace(PAPER, kind=kind) if kind != "cutout" else M.RegularizerSpec(kind="cutout", keep_prob=0.8)
    whole = M.run_regularized(bb, clean, spec, n_samples=6, seed=4)
    parts = engine.run_regularized_many(bb, clean, [(spec, range(0, 2), 4), (spec, range(2, 6), 4)])
    tail = M.run_regularized(bb, clean, spec, n_samples=3, seed=4, start=3)
    assert [p.samples for p in parts] == [range(0, 2), range(2, 6)] and tail.samples == range(3, 6)
    for part in (*parts, tail):
        rows = slice(part.samples.start, part.samples.stop)
        assert torch.equal(part.mask.block_mask, whole.mask.block_mask[rows])
        for (_, got), (_, want) in zip(part.site_drops, whole.site_drops, strict=True):
            assert torch.equal(got, want[rows])
        close(part.logits, whole.logits[rows])
    with pytest.raises(ValueError):
        engine.run_regularized_many(bb, clean, [(spec, range(2, 2), 0)])
    with pytest.raises(ValueError):
        engine.run_regularized_many(bb, clean, [(spec, range(0, 4, 2), 0)])
    with pytest.raises(ValueError):
        M.run_regularized(bb, clean, spec, n_samples=2, start=-1)


# ---------------------------------------------------------------------------- each view in rounds


def test_robustness_curve_in_rounds(resnet18_clean):
    bb, clean = resnet18_clean
    base = replace(PAPER, keep_prob=1.0, block_size=1)
    kwargs = {"keep_probs": (1.0, 0.9, 0.75), "methods": (("dropblock", 1), ("dropblock", 7), ("spatial_dropout", 1)),
              "seed": 4}
    partials = list(M.compute_robustness_curve_rounds(bb, clean, base, n_samples=5, **kwargs))
    check_rounds(partials, 5, lambda n: M.compute_robustness_curve(bb, clean, base, n_samples=n, **kwargs))
    clean_prob = float(clean.probs[0, clean.top1])
    for p in partials:  # keep_prob 1 is the clean pass, copied, at every round
        assert torch.all(p.value.mean_prob[:, 0] == clean_prob) and torch.all(p.value.std_prob[:, 0] == 0)
    # an independent recomputation: mean and population std over exactly the samples so far
    for p in partials:
        run = M.run_regularized(bb, clean, replace(base, kind="dropblock", block_size=7, keep_prob=0.75),
                                n_samples=p.done, seed=4)
        probs = run.probs[:, clean.top1].float()
        close(p.value.mean_prob[1, 2], probs.mean())
        close(p.value.std_prob[1, 2], probs.std(unbiased=False))


def test_cam_shift_in_rounds(lite0, coffee_clean):
    bb, spec = lite0.backbone, M.RegularizerSpec(keep_prob=0.8, block_size=5)
    partials = list(M.compute_cam_shift_rounds(bb, coffee_clean, spec, n_samples=5, seed=3))
    check_rounds(partials, 5, lambda n: M.compute_cam_shift(bb, coffee_clean, spec, n_samples=n, seed=3))
    one = M.compute_mask_outcome(bb, coffee_clean, spec, seed=3)  # the pictured sample is the mask explorer's draw
    assert all(p.value.sample_cam.shape == one.cam_dropped.shape for p in partials)
    close(partials[0].value.sample_cam, one.cam_dropped)
    last = partials[-1].value
    assert last.prob_std == pytest.approx(float(last.sample_probs.std(unbiased=False)))


def test_comparison_in_rounds(lite0, coffee_clean):
    bb, spec = lite0.backbone, M.RegularizerSpec(keep_prob=0.8, block_size=5)
    partials = list(M.compute_comparison_rounds(bb, coffee_clean, spec, seed=2, n_samples=9))
    check_rounds(partials, 9, lambda n: M.compute_comparison(bb, coffee_clean, spec, seed=2, n_samples=n))
    explorer = M.compute_mask_sample(bb, coffee_clean, replace(spec, kind="dropout"), seed=2)
    for p in partials:
        for view, last in zip(p.value, partials[-1].value):  # the pictured draw is draw 0, the same at every round
            assert torch.equal(view.mask, last.mask) and view.sample_drop == last.sample_drop
        dropout = p.value.views[0]
        assert dropout.sample_drop == pytest.approx(explorer.realised_drop)
    first = partials[0].value.views
    assert all(v.drop_std >= 0 for v in first)
    # the first round's draws (one by default): their mean and spread, the first being the pictured one
    n0 = partials[0].done
    assert n0 == FIRST
    for view in first:
        generators = [torch.Generator().manual_seed(M.sample_seed(2, s)) for s in range(n0)]
        start = coffee_clean.x if view.spec.on_input else coffee_clean.acts[3]
        drops = torch.stack([db.sample_mask(start, **view.spec.mask_args(3), generator=generators[s]).drop_fraction[0]
                             for s in range(n0)]).float()
        assert view.realised_drop == pytest.approx(float(drops.mean()), abs=1e-6)
        assert view.drop_std == pytest.approx(float(drops.std(unbiased=False)), abs=1e-6)
        assert float(drops[0]) == pytest.approx(view.sample_drop)


def test_dropblock_dropout_in_rounds(lite0, coffee_clean):
    bb = lite0.backbone
    spec = M.RegularizerSpec(keep_prob=0.8, block_size=3, placement="in_blocks", groups=(3,), skip=False)
    kwargs = {"fc_keep_prob": 0.5, "seed": 1}
    partials = list(M.compute_dropblock_dropout_rounds(bb, coffee_clean, spec, n_samples=6, **kwargs))
    check_rounds(partials, 6, lambda n: M.compute_dropblock_dropout(bb, coffee_clean, spec, n_samples=n, **kwargs))
    clean_prob = float(coffee_clean.probs[0, coffee_clean.top1])
    for p in partials:  # "none" is the clean pass, copied, at every round
        none = p.value.views[0]
        assert none.class_prob == clean_prob and none.prob_std == 0.0 and none.sample_probs.shape == (p.done,)


def test_set_curve_in_rounds(lite0, coffee_clean):
    inputs = [coffee_clean.x, torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(2))]
    kwargs = {"keep_probs": (1.0, 0.8), "seed": 3,
              "methods": (("b=7", M.RegularizerSpec(block_size=7)), ("SD", M.RegularizerSpec(kind="spatial_dropout")))}
    base = M.RegularizerSpec()
    seen: list[float] = []
    partials = list(compute_set_curve_rounds(lite0.backbone, inputs, base, n_samples=3,
                                             progress=lambda f, t: seen.append(f), **kwargs))
    check_rounds(partials, 3, lambda n: compute_set_curve(lite0.backbone, inputs, base, n_samples=n, **kwargs))
    assert seen == sorted(seen) and seen[-1] == 1.0
    for p in partials:  # the summary is the mean and population std over exactly the samples so far
        share = p.value.top1_kept.float().mean(dim=2)
        close(p.value.summary()["unchanged_std"], share.std(dim=-1, unbiased=False))
    # one sample of image i is the draw of a generator seeded image_seed(seed, i)
    run = M.run_regularized(lite0.backbone, coffee_clean, replace(kwargs["methods"][0][1], keep_prob=0.8),
                            n_samples=1, seed=image_seed(3, 0))
    close(partials[0].value.class_prob[0, 1, 0, 0], run.probs[0, coffee_clean.top1])


def test_theory_contrasts_in_rounds(lite0, coffee_clean):
    bb = lite0.backbone
    partials = list(compute_tutorial_contrasts_rounds(bb, coffee_clean, 0.85, n_samples=3, seed=5))
    check_rounds(partials, 3, lambda n: compute_tutorial_contrasts(bb, coffee_clean, 0.85, n_samples=n, seed=5))
    partials = list(compute_depth_contrast_rounds(bb, coffee_clean, (0.9,), n_samples=3, seed=5))
    check_rounds(partials, 3, lambda n: compute_depth_contrast(bb, coffee_clean, (0.9,), n_samples=n, seed=5))


def test_theory_contrasts_in_rounds_are_both_views_together(lite0, coffee_clean):
    """The theory page's one job: each round holds both views' rounds, equal to their one-shot results."""
    bb, asked = lite0.backbone, []

    def middle():
        asked.append(1)
        return 0.95

    partials = list(compute_theory_contrasts_rounds(bb, coffee_clean, 0.85, middle=middle, n_samples=3, seed=5))
    assert [p.done for p in partials] == list(round_sizes(3)) and asked == [1]
    for p in partials:
        assert p.value.middle == 0.95 and p.value.tutorial.n_samples == p.value.depth.n_samples == p.done
        assert_same_result(p.value.tutorial, compute_tutorial_contrasts(bb, coffee_clean, 0.85, n_samples=p.done, seed=5))
        assert_same_result(p.value.depth, compute_depth_contrast(bb, coffee_clean, (0.85, 0.95), n_samples=p.done,
                                                                 seed=5))


def test_mistakes_in_rounds(coffee_clean):
    a = coffee_clean.acts[3]
    partials = list(compute_mistakes_rounds(a, 0.8, 5, n_samples=9, seed=2))
    check_rounds(partials, 9, lambda n: compute_mistakes(a, 0.8, 5, n_samples=n, seed=2))
    # the paper row's drop is the mean over exactly the draws so far
    for p in partials:
        drops = [float(db.sample_drop_block_mask(a.abs(), 0.8, 5, generator=torch.Generator().manual_seed(
            M.sample_seed(2, s))).drop_fraction[0]) for s in range(p.done)]
        assert p.value.rows[0].realised_drop == pytest.approx(sum(drops) / len(drops), abs=1e-6)


def test_keep_prob_scan_in_rounds(lite0, coffee_clean):
    kwargs = {"methods": (("dropblock", 7),), "coarse": (1.0, 0.9, 0.7), "seed": 1}
    partials = list(compute_keep_prob_scan_rounds(lite0.backbone, coffee_clean, PAPER, n_samples=3, **kwargs))
    check_rounds(partials, 3, lambda n: compute_keep_prob_scan(lite0.backbone, coffee_clean, PAPER, n_samples=n,
                                                              **kwargs))


def test_a_scan_round_is_itself_a_curve_on_the_coarse_grid(lite0, coffee_clean):
    """What the curve page shows while the grid is measured: the scan's points as a robustness curve,
    the mean and spread of the scan's draws so far; whole, the one-shot curve on the coarse grid."""
    bb, clean, methods = lite0.backbone, coffee_clean, (("dropblock", 7), ("dropblock", 1))
    coarse = (1.0, 0.95, 0.9, 0.8)
    partials = list(compute_keep_prob_scan_rounds(bb, clean, PAPER, methods=methods, coarse=coarse, n_samples=4,
                                                  seed=2))
    check_rounds([Partial(p.value.curve, p.done, p.total) for p in partials], 4, lambda n: M.compute_robustness_curve(
        bb, clean, PAPER, keep_probs=coarse, methods=methods, n_samples=n, seed=2))
    first = partials[0].value
    close(first.curve.mean_prob / first.curve.clean_prob, first.ratio.float())
    assert float(first.curve.std_prob.abs().max()) == 0.0  # one draw: no spread yet
    assert first.curve.labels == ("DropBlock b=7", "DropBlock b=1")


# ---------------------------------------------------------------------------- cancelling


class Stop(Exception):
    pass


def counting_passes(monkeypatch) -> list[int]:
    """Count the batched passes through the network (each ``run_regularized_many``)."""
    calls: list[int] = []
    real = engine.run_regularized_many

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(engine, "run_regularized_many", counted)
    return calls


def test_a_cancelled_progress_stops_the_curve_within_a_round(resnet18_clean, monkeypatch):
    """A job nobody waits for raises at its next progress call: in the middle of round 2, no pass after."""
    bb, clean = resnet18_clean
    base = replace(PAPER, keep_prob=1.0, block_size=1)
    kwargs = {"keep_probs": (1.0, 0.9, 0.8, 0.75), "n_samples": 8, "seed": 0, "max_samples": 2, "first": 2}
    passes = counting_passes(monkeypatch)
    seen: list[float] = []

    def progress(fraction, text):
        seen.append(fraction)
        if 2 / 8 < fraction:  # past the first round (2 of 8 samples), in the second
            raise Stop

    rounds = M.compute_robustness_curve_rounds(bb, clean, base, progress=progress, **kwargs)
    first = next(rounds)
    assert first.done == 2 and len(passes) == 9  # 9 points, 2 samples each, 2 samples per pass
    with pytest.raises(Stop):
        next(rounds)
    assert len(passes) == 10  # one pass of round 2 ran; it stopped at the progress call after it
    assert seen == sorted(seen)


@pytest.mark.parametrize("view", ["cam_shift", "dropblock_dropout", "tutorial", "depth"])
def test_a_cancelled_progress_stops_every_view_within_a_round(lite0, coffee_clean, monkeypatch, view):
    bb, clean = lite0.backbone, coffee_clean
    passes = counting_passes(monkeypatch)
    calls: list[float] = []

    def progress(fraction, text):
        calls.append(fraction)
        raise Stop

    rounds = {
        "cam_shift": lambda: M.compute_cam_shift_rounds(bb, clean, M.RegularizerSpec(), n_samples=32, progress=progress),
        "dropblock_dropout": lambda: M.compute_dropblock_dropout_rounds(bb, clean, PAPER, n_samples=16,
                                                                        progress=progress),
        "tutorial": lambda: compute_tutorial_contrasts_rounds(bb, clean, n_samples=16, progress=progress),
        "depth": lambda: compute_depth_contrast_rounds(bb, clean, (0.9, 0.8), n_samples=16, progress=progress),
    }[view]()
    with pytest.raises(Stop):
        next(rounds)
    assert len(calls) == 1 and len(passes) == 1  # the first progress call, after the first pass


def test_a_set_curve_stops_within_a_round_when_progress_says_so(lite0, coffee_clean):
    inputs = [coffee_clean.x] * 3
    calls: list[float] = []

    def progress(fraction, text):
        calls.append(fraction)
        return fraction < 0.3  # False once past 30%: in the second round of (2, 4, 8)

    rounds = compute_set_curve_rounds(lite0.backbone, inputs, M.RegularizerSpec(), keep_probs=(1.0, 0.8),
                                      methods=(("b=7", M.RegularizerSpec()),), n_samples=8, progress=progress, first=2)
    assert next(rounds).done == 2
    with pytest.raises(Cancelled):
        next(rounds)
    assert 0.25 < calls[-1] < 0.5  # it stopped inside the second round (samples 2..3 of 8)


def test_mask_only_views_stop_at_their_progress_call(lite0, coffee_clean):
    """Compare's drop draws and the mistakes (masks only) report progress too, and stop there."""
    def progress(fraction, text):
        raise Stop

    with pytest.raises(Stop):
        next(M.compute_comparison_rounds(lite0.backbone, coffee_clean, M.RegularizerSpec(), progress=progress))
    with pytest.raises(Stop):
        next(compute_mistakes_rounds(coffee_clean.acts[3], progress=progress))
