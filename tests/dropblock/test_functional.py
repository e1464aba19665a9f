"""Property tests for dropblock.functional (DropBlock, arXiv:1810.12890, and its siblings)."""

from __future__ import annotations

import math

import pytest
import torch
from torchvision.ops import drop_block2d as tv_drop_block2d

import dropblock as db
from dropblock import functional as F

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA"))]


def gen(seed: int = 0, device: str = "cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def maps_for(h: int, w: int, total: int | None = None) -> torch.Tensor:
    """(N, C, H, W) of ones holding at least 10^4 maps, more for small maps (less noise)."""
    total = total or max(10_000, 4_000_000 // (h * w) // 100 * 100)
    return torch.ones(100, total // 100, h, w)


def per_map_drop(mask: db.DropMask) -> torch.Tensor:
    return 1.0 - mask.block_mask.float().mean(dim=(2, 3)).flatten()


# ------------------------------------------------------------------ drop rate and Eq. (1)

SIZES = [(56, 56), (28, 28), (14, 14), (7, 7), (16, 8), (4, 5)]


# Eq. (1) is first order in gamma; overlaps make it an approximation whose shortfall grows with
# the drop budget: within 10% of 1 - keep_prob at 0.9, within 20% at 0.75 (16.6% at 14x14, b=7).
EQ1_TOLERANCE = {0.9: 0.10, 0.75: 0.20}


@pytest.mark.parametrize("block_size", [1, 3, 5, 7])
@pytest.mark.parametrize("hw", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("keep_prob", [0.9, 0.75])
def test_drop_rate_near_target_valid_region(keep_prob, hw, block_size, record_bias):
    h, w = hw
    mask = db.sample_drop_block_mask(maps_for(h, w), keep_prob, block_size, generator=gen(h * 100 + block_size))
    drops = per_map_drop(mask)
    realised = drops.mean().item()
    exact = db.expected_drop_fraction(keep_prob, block_size, h, w)
    record_bias(f"kp={keep_prob:g} {h}x{w} b={block_size}", 1 - keep_prob, exact, realised)
    assert abs(realised - (1 - keep_prob)) / (1 - keep_prob) < EQ1_TOLERANCE[keep_prob]
    # ... and the sampler matches the exact overlap-aware expectation within 5 standard errors.
    stderr = drops.std().item() / math.sqrt(drops.numel())
    assert abs(realised - exact) < 5 * stderr + 1e-4
    # realised drop fraction reported by the mask is what the mask really drops
    torch.testing.assert_close(mask.drop_fraction, 1 - mask.block_mask.float().mean(dim=(1, 2, 3)))


@pytest.mark.parametrize("keep_prob", [0.75, 0.95])
@pytest.mark.parametrize("seed_region", ["valid", "everywhere"])
@pytest.mark.parametrize("hw,block_size", [((14, 14), 7), ((28, 28), 5), ((16, 8), 4)])
def test_sampler_matches_exact_expectation(hw, block_size, seed_region, keep_prob):
    h, w = hw
    mask = db.sample_drop_block_mask(
        maps_for(h, w), keep_prob, block_size, seed_region=seed_region, generator=gen(7)
    )
    drops = per_map_drop(mask)
    exact = db.expected_drop_fraction(keep_prob, block_size, h, w, seed_region=seed_region)
    assert abs(drops.mean().item() - exact) < 5 * drops.std().item() / math.sqrt(drops.numel()) + 1e-4


def test_everywhere_mode_over_drops_on_small_maps_like_timm():
    mask = db.sample_drop_block_mask(maps_for(14, 14), 0.9, 7, seed_region="everywhere", generator=gen(1))
    assert 0.19 < mask.realised_drop < 0.23  # about double the 0.10 asked for
    valid = db.sample_drop_block_mask(maps_for(14, 14), 0.9, 7, generator=gen(1))
    assert 0.085 < valid.realised_drop < 0.10


@pytest.mark.parametrize(
    "keep_prob,block_size,h,w,expected",
    [
        (0.9, 7, 14, 14, 0.1 / 49 * 196 / 64),
        (0.9, 1, 10, 10, 0.1),
        (0.9, 7, 7, 7, 0.1),
        (0.8, 3, 16, 8, 0.2 / 9 * 128 / (14 * 6)),
        (0.9, 9, 16, 8, 0.1 / (9 * 8) * 128 / (8 * 1)),  # clipped per dimension to 9x8
        (0.01, 7, 7, 7, 0.99),  # whole-map block: gamma = 1 - keep_prob
    ],
)
def test_gamma_eq1(keep_prob, block_size, h, w, expected):
    assert db.dropblock_gamma(keep_prob, block_size, h, w) == pytest.approx(min(expected, 1.0))


# ------------------------------------------------------------------ calibrated gamma, target_drop


@pytest.mark.parametrize("gamma_scale", [1.0, 0.25])
@pytest.mark.parametrize("seed_region", ["valid", "everywhere"])
@pytest.mark.parametrize("keep_prob", [0.95, 0.9, 0.75, 0.5])
def test_calibrated_gamma_expected_drop_equals_target(keep_prob, seed_region, gamma_scale):
    """For maps 56..7 and b 1..7 the calibrated gamma's exact expected drop is the target within 0.5%."""
    target = gamma_scale * (1 - keep_prob)
    worst_eq1 = 0.0
    for size in (56, 28, 14, 7):
        for b in range(1, 8):
            g = db.calibrated_gamma(keep_prob, b, size, size, seed_region=seed_region, gamma_scale=gamma_scale)
            expected = db.expected_drop_fraction(keep_prob, b, size, size, seed_region=seed_region, gamma=g)
            assert abs(expected - target) / target < 0.005, (size, b, g, expected)
            eq1 = db.expected_drop_fraction(keep_prob, b, size, size, seed_region=seed_region, gamma_scale=gamma_scale)
            worst_eq1 = max(worst_eq1, abs(eq1 - target) / target)
            if seed_region == "valid":  # overlaps make Eq. (1) under-drop, so calibration raises gamma
                assert g >= db.dropblock_gamma(keep_prob, b, size, size) * gamma_scale - 1e-12
    assert worst_eq1 > 0.005  # ... which Eq. (1) misses somewhere (the test can tell them apart)


@pytest.mark.parametrize("keep_prob", [0.9, 0.75])
@pytest.mark.parametrize("hw,block_size", [((14, 14), 7), ((56, 56), 7), ((7, 7), 3), ((28, 28), 5)])
def test_calibrated_sampler_realises_the_target(hw, block_size, keep_prob, record_bias):
    h, w = hw
    mask = db.sample_drop_block_mask(maps_for(h, w), keep_prob, block_size, gamma_mode="calibrated",
                                     generator=gen(11 + block_size))
    drops = per_map_drop(mask)
    target = 1 - keep_prob
    assert mask.gamma == pytest.approx(db.calibrated_gamma(keep_prob, block_size, h, w))
    record_bias(f"kp={keep_prob:g} {h}x{w} b={block_size} calibrated", target, target, drops.mean().item())
    assert abs(drops.mean().item() - target) < 5 * drops.std().item() / math.sqrt(drops.numel()) + 1e-4
    module = db.DropBlock2d(keep_prob, block_size, gamma_mode="calibrated")
    assert module.sample_mask(maps_for(h, w), gen(11 + block_size)).gamma == mask.gamma
    assert "gamma_mode='calibrated'" in repr(module)


def test_target_drop_honours_gamma_scale():
    x = torch.ones(2, 3, 14, 14)
    assert db.sample_drop_block_mask(x, 0.8, 3, generator=gen()).target_drop == pytest.approx(0.2)
    assert db.sample_drop_block_mask(x, 0.8, 3, gamma_scale=0.25, generator=gen()).target_drop == pytest.approx(0.05)
    quarter = db.sample_drop_block_mask(maps_for(14, 14), 0.8, 3, gamma_scale=0.25, gamma_mode="calibrated",
                                        generator=gen(1))
    assert quarter.realised_drop == pytest.approx(quarter.target_drop, rel=0.03)


# ------------------------------------------------------------------ normalisation: per sample or batch


def test_per_sample_normalisation_keeps_samples_independent_batch_does_not():
    x = torch.ones(6, 4, 14, 14)
    sample = db.sample_drop_block_mask(x, 0.7, 5, generator=gen(4))
    batch = db.sample_drop_block_mask(x, 0.7, 5, normalize="batch", generator=gen(4))
    assert torch.equal(sample.block_mask, batch.block_mask)  # same draw, only the scale differs
    # per sample: every sample's mean is exactly preserved; batch: only the batch mean is
    torch.testing.assert_close(db.apply_mask(x, sample).mean(dim=(1, 2, 3)), torch.ones(6))
    torch.testing.assert_close(db.apply_mask(x, batch).mean(), torch.tensor(1.0))
    kept = batch.block_mask.float()
    assert torch.allclose(batch.scale, torch.full((6,), kept.numel() / kept.sum().item()))
    assert sample.scale.std() > 0 and bool((batch.scale == batch.scale[0]).all())
    # batch: sample 0's scale changes when only sample 5's mask changes; per sample it does not
    other = sample.block_mask.clone()
    other[5] = False
    for normalize, depends in (("sample", False), ("batch", True)):
        a = F._normalise("dropblock", sample.seed_mask, sample.block_mask, 0.1, (5, 5), normalize, keep_prob=0.7)
        b = F._normalise("dropblock", sample.seed_mask, other, 0.1, (5, 5), normalize, keep_prob=0.7)
        assert bool(a.scale[0] != b.scale[0]) is depends


def test_batch_normalisation_matches_torchvision_scale():
    """torchvision.ops.drop_block2d scales by numel / sum over the whole tensor: so does "batch"."""
    x = torch.rand(8, 16, 14, 14) + 0.5
    mask = db.sample_drop_block_mask(x, 0.8, 3, normalize="batch", generator=gen(2))
    kept = mask.block_mask.float()
    torch.testing.assert_close(db.apply_mask(x, mask), x * kept * (kept.numel() / kept.sum()))


# ------------------------------------------------------------------ device independence


def test_masks_drawn_on_the_generator_device_are_the_same_for_any_activation_device():
    x = torch.randn(3, 5, 14, 14)
    meta = torch.empty(3, 5, 14, 14, device="meta")
    for sample in (
        lambda t: db.sample_drop_block_mask(t, 0.8, 3, generator=gen(9)),
        lambda t: db.sample_drop_block_mask(t, 0.8, 3, seed_region="everywhere", gamma_mode="calibrated", generator=gen(9)),
        lambda t: db.sample_dropout_mask(t, 0.8, generator=gen(9)),
        lambda t: db.sample_spatial_dropout_mask(t, 0.8, generator=gen(9)),
        lambda t: db.sample_cutout_mask(t, 0.8, generator=gen(9)),
    ):
        on_cpu, on_meta = sample(x), sample(meta)
        assert on_meta.block_mask.device.type == "meta" and on_meta.scale.device.type == "meta"
        assert on_cpu.block_mask.device.type == "cpu"
        assert on_meta.block_mask.shape == on_cpu.block_mask.shape
    if torch.cuda.is_available():
        cuda = x.cuda()
        for kw in ({}, {"normalize": "batch"}):
            a = db.sample_drop_block_mask(x, 0.8, 3, generator=gen(9), **kw)
            b = db.sample_drop_block_mask(cuda, 0.8, 3, generator=gen(9), **kw)
            assert b.block_mask.is_cuda and torch.equal(a.block_mask, b.block_mask.cpu())
            torch.testing.assert_close(db.apply_mask(x, a), db.apply_mask(cuda, b).cpu())


def test_drop_mask_to_moves_every_tensor():
    mask = db.sample_drop_block_mask(torch.ones(2, 3, 8, 8), 0.8, 3, generator=gen(0)).to("meta")
    assert {t.device.type for t in (mask.seed_mask, mask.block_mask, mask.scale, mask.drop_fraction)} == {"meta"}


def test_gamma_scale_quarter_for_group3():
    x = maps_for(14, 14)
    full = db.sample_drop_block_mask(x, 0.9, 7, generator=gen(3))
    quarter = db.sample_drop_block_mask(x, 0.9, 7, gamma_scale=0.25, generator=gen(3))
    assert quarter.gamma == pytest.approx(full.gamma / 4)
    assert quarter.realised_drop == pytest.approx(
        db.expected_drop_fraction(0.9, 7, 14, 14, gamma_scale=0.25), abs=0.003
    )


# ------------------------------------------------------------------ block geometry


@pytest.mark.parametrize("block_size", [3, 4, 5, 7])
@pytest.mark.parametrize("hw", [(14, 14), (16, 8), (7, 9)])
def test_valid_mode_seeds_only_in_valid_region(hw, block_size):
    h, w = hw
    mask = db.sample_drop_block_mask(torch.ones(64, 16, h, w), 0.5, block_size, generator=gen(2))
    bh, bw = min(block_size, h), min(block_size, w)
    ch, cw = (bh - 1) // 2, (bw - 1) // 2
    inside = torch.zeros(h, w, dtype=torch.bool)
    inside[ch : h - bh + ch + 1, cw : w - bw + cw + 1] = True
    seeds = mask.seed_mask.any(dim=(0, 1))
    assert not (seeds & ~inside).any()
    assert seeds[inside].all()  # with gamma this high every valid position was used somewhere


def _bbox(dropped: torch.Tensor) -> tuple[int, int, int, int]:
    rows = dropped.any(dim=1).nonzero().flatten()
    cols = dropped.any(dim=0).nonzero().flatten()
    return rows.min().item(), rows.max().item(), cols.min().item(), cols.max().item()


@pytest.mark.parametrize("block_size", [1, 2, 3, 4, 5, 6, 7])
def test_single_forced_seed_gives_one_block_inside_map(block_size):
    h, w = 14, 11
    ch = (block_size - 1) // 2
    for r, c in [(ch, ch), (h - block_size + ch, w - block_size + ch), (6, 5)]:
        seed = torch.zeros(1, 1, h, w, dtype=torch.bool)
        seed[0, 0, r, c] = True
        dropped = db.blocks_from_seeds(seed, block_size)[0, 0]
        assert dropped.sum().item() == block_size**2
        top, bottom, left, right = _bbox(dropped)
        assert (bottom - top + 1, right - left + 1) == (block_size, block_size)  # contiguous square
        assert (top, left) == (r - ch, c - ch)
        assert 0 <= top and bottom < h and 0 <= left and right < w


@pytest.mark.parametrize("block_size", [3, 4, 7])
def test_sampled_single_seeds_give_exact_blocks(block_size):
    h, w = 14, 14
    mask = db.sample_drop_block_mask(torch.ones(200, 50, h, w), 0.9, block_size, gamma=0.01, generator=gen(5))
    seeds = mask.seed_mask.flatten(0, 1)
    dropped = ~mask.block_mask.flatten(0, 1)
    single = seeds.sum(dim=(1, 2)) == 1
    assert single.sum() > 100
    for m in dropped[single][:100]:
        top, bottom, left, right = _bbox(m)
        assert m.sum().item() == block_size**2
        assert (bottom - top + 1, right - left + 1) == (block_size, block_size)


def test_everywhere_mode_truncates_border_blocks():
    seed = torch.zeros(1, 1, 10, 10, dtype=torch.bool)
    seed[0, 0, 0, 0] = True
    dropped = db.blocks_from_seeds(seed, 5)
    assert dropped.sum().item() == 9  # 3x3 corner of a 5x5 block centred at (0, 0)


# ------------------------------------------------------------------ shapes, mean, channels


@pytest.mark.parametrize("block_size", [1, 2, 3, 7, 8, 20])
@pytest.mark.parametrize("hw", [(1, 1), (1, 7), (7, 7), (4, 5), (16, 8), (13, 29)])
@pytest.mark.parametrize("seed_region", ["valid", "everywhere"])
def test_shapes_preserved_for_every_size(hw, block_size, seed_region):
    x = torch.randn(2, 3, *hw)
    y = db.drop_block2d(x, 0.8, block_size, generator=gen(0), seed_region=seed_region)
    assert y.shape == x.shape and y.dtype == x.dtype
    mask = db.sample_drop_block_mask(x, 0.8, block_size, seed_region=seed_region, generator=gen(0))
    assert mask.seed_mask.shape == mask.block_mask.shape == x.shape
    assert mask.block_size == (min(block_size, hw[0]), min(block_size, hw[1]))


@pytest.mark.parametrize("per_channel", [True, False])
@pytest.mark.parametrize("hw,block_size", [((14, 14), 7), ((7, 7), 3), ((16, 8), 5)])
def test_mean_preserved_per_sample_for_constant_input(hw, block_size, per_channel):
    x = torch.full((64, 32, *hw), 3.0)
    mask = db.sample_drop_block_mask(x, 0.8, block_size, per_channel=per_channel, generator=gen(4))
    y = db.apply_mask(x, mask)
    kept_any = mask.drop_fraction < 1
    torch.testing.assert_close(y.mean(dim=(1, 2, 3))[kept_any], torch.full((int(kept_any.sum()),), 3.0))


def test_everything_dropped_gives_zeros_not_nan():
    x = torch.randn(256, 1, 7, 7)
    mask = db.sample_drop_block_mask(x, 0.01, 7, generator=gen(0))
    assert (mask.drop_fraction == 1).any()
    y = db.apply_mask(x, mask)
    assert torch.isfinite(y).all()
    assert (y[mask.drop_fraction == 1] == 0).all()
    assert (mask.scale[mask.drop_fraction == 1] == 0).all()


def test_per_channel_masks_uncorrelated_shared_masks_identical():
    x = torch.ones(20_000, 2, 14, 14)
    per = db.sample_drop_block_mask(x, 0.7, 5, generator=gen(8))
    dropped = (~per.block_mask).float()
    # centre each position by its own mean: the valid region makes the marginal a pyramid
    centred = dropped - dropped.mean(dim=0, keepdim=True)
    a, b = centred[:, 0].flatten(), centred[:, 1].flatten()
    corr = (a @ b / (a.norm() * b.norm())).item()
    assert abs(corr) < 0.01
    counts = dropped.sum(dim=(2, 3))
    assert abs(torch.corrcoef(counts.T)[0, 1].item()) < 0.03  # per-map amounts independent too
    same_map = dropped[:, 0].sum(dim=(1, 2))
    assert torch.corrcoef(torch.stack([same_map, same_map]))[0, 1] > 0.99  # the check can see correlation
    shared = db.sample_drop_block_mask(torch.ones(50, 8, 14, 14), 0.7, 5, per_channel=False, generator=gen(8))
    assert shared.block_mask.shape[1] == 1
    y = db.apply_mask(torch.ones(50, 8, 14, 14), shared)
    assert (y == y[:, :1]).all()  # every channel sees the same mask


@pytest.mark.parametrize("hw", [(7, 7), (4, 5), (16, 8)])
def test_block_as_large_as_map_drops_whole_channels(hw):
    mask = db.sample_drop_block_mask(torch.ones(200, 100, *hw), 0.9, max(hw), generator=gen(9))
    per_map = (~mask.block_mask).float().mean(dim=(2, 3))
    assert ((per_map == 0) | (per_map == 1)).all()  # all or nothing per channel
    assert abs(per_map.mean().item() - 0.1) < 0.01


def test_block_size_one_matches_elementwise_dropout():
    x = torch.ones(200, 50, 14, 14)
    blk = db.sample_drop_block_mask(x, 0.8, 1, generator=gen(10))
    drp = db.sample_dropout_mask(x, 0.8, generator=gen(11))
    assert blk.gamma == pytest.approx(0.2)
    for m in (blk, drp):
        d = (~m.block_mask).float()
        assert abs(d.mean().item() - 0.2) < 0.003
        # independent neighbours: P(both dropped) = 0.2^2
        both = (d[..., :, 1:] * d[..., :, :-1]).mean().item()
        assert abs(both - 0.04) < 0.002
    assert torch.equal(blk.seed_mask, ~blk.block_mask)


# ------------------------------------------------------------------ randomness, identity


@pytest.mark.parametrize("device", DEVICES)
def test_same_generator_seed_same_mask(device):
    x = torch.randn(4, 8, 14, 14, device=device)
    a = db.sample_drop_block_mask(x, 0.8, 5, generator=gen(42, device))
    b = db.sample_drop_block_mask(x, 0.8, 5, generator=gen(42, device))
    c = db.sample_drop_block_mask(x, 0.8, 5, generator=gen(43, device))
    assert torch.equal(a.block_mask, b.block_mask) and torch.equal(a.seed_mask, b.seed_mask)
    assert not torch.equal(a.block_mask, c.block_mask)
    torch.testing.assert_close(
        db.drop_block2d(x, 0.8, 5, generator=gen(42, device)), db.apply_mask(x, a)
    )


@pytest.mark.parametrize(
    "op",
    [
        lambda x, **kw: db.drop_block2d(x, 0.7, 3, **kw),
        lambda x, **kw: db.dropout(x, 0.7, **kw),
        lambda x, **kw: db.spatial_dropout(x, 0.7, **kw),
        lambda x, **kw: db.cutout(x, 0.7, **kw),
    ],
    ids=["dropblock", "dropout", "spatial", "cutout"],
)
def test_identity_in_eval_and_at_keep_prob_one(op):
    x = torch.randn(2, 3, 8, 8)
    assert op(x, training=False) is x
    assert db.drop_block2d(x, 1.0, 3) is x
    assert db.dropout(x, 1.0) is x and db.spatial_dropout(x, 1.0) is x and db.cutout(x, 1.0) is x
    assert not torch.equal(op(x, training=True, generator=gen(0)), x)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_low_precision_dtypes(dtype, device):
    x = torch.ones(32, 16, 14, 14, dtype=dtype, device=device)
    mask = db.sample_drop_block_mask(x, 0.9, 7, generator=gen(0, device))
    assert mask.gamma == db.dropblock_gamma(0.9, 7, 14, 14)
    assert mask.scale.dtype == torch.float32
    y = db.drop_block2d(x, 0.9, 7, generator=gen(0, device))
    assert y.dtype == dtype and torch.isfinite(y).all()
    assert abs(y.float().mean().item() - 1.0) < 0.02


# ------------------------------------------------------------------ torchvision reference


@pytest.mark.parametrize("hw,block_size", [((14, 14), 5), ((16, 8), 3), ((7, 7), 7), ((28, 28), 7)])
def test_agrees_with_torchvision_drop_block2d(hw, block_size):
    """Same Eq. (1) and valid seed region: drop rate and per-position drop map agree."""
    h, w = hw
    n, c = 100, 100
    torch.manual_seed(0)
    tv = (tv_drop_block2d(torch.ones(n, c, h, w), p=0.2, block_size=block_size) == 0).float()
    ours = (~db.sample_drop_block_mask(torch.ones(n, c, h, w), 0.8, block_size, generator=gen(0)).block_mask).float()
    assert abs(tv.mean().item() - ours.mean().item()) < 0.01
    # block geometry: the probability of dropping each position (a pyramid in valid mode)
    freq_tv, freq_ours = tv.mean(dim=(0, 1)), ours.mean(dim=(0, 1))
    tol = 5 * math.sqrt(0.25 / (n * c))
    assert (freq_tv - freq_ours).abs().max().item() < tol
    # ... and the joint probability of two positions 2 apart both dropped (block extent)
    pair = lambda d: (d[..., :, 2:] * d[..., :, :-2]).mean().item()  # noqa: E731
    assert abs(pair(tv) - pair(ours)) < 0.01


# ------------------------------------------------------------------ siblings


def test_spatial_dropout_drops_whole_channels():
    x = torch.ones(200, 100, 6, 6)
    m = db.sample_spatial_dropout_mask(x, 0.7, generator=gen(0))
    assert m.block_mask.shape == (200, 100, 1, 1)
    y = db.apply_mask(x, m)
    per_channel = y.flatten(2)
    assert (per_channel.amin(2) == per_channel.amax(2)).all()
    assert abs(m.realised_drop - 0.3) < 0.01
    assert abs(y.mean().item() - 1) < 0.02


@pytest.mark.parametrize("hw", [(32, 32), (40, 24)])
def test_cutout_one_square_per_image_at_budget(hw):
    h, w = hw
    x = torch.ones(64, 3, h, w)
    m = db.sample_cutout_mask(x, 0.75, generator=gen(0))
    side = db.cutout_size(0.75, h, w)
    assert side == round(math.sqrt(0.25 * h * w))
    assert m.block_mask.shape == (64, 1, h, w)
    assert (m.seed_mask.sum(dim=(1, 2, 3)) == 1).all()
    for k in range(64):
        top, bottom, left, right = _bbox(~m.block_mask[k, 0])
        assert (bottom - top + 1, right - left + 1) == (side, side)
    torch.testing.assert_close(m.drop_fraction, torch.full((64,), side * side / (h * w)))
    y = db.apply_mask(x, m)
    assert set(y.unique().tolist()) == {0.0, 1.0}  # no rescaling


def test_cutout_everywhere_truncates_and_explicit_size():
    x = torch.ones(500, 1, 20, 20)
    m = db.sample_cutout_mask(x, 0.9, size=8, seed_region="everywhere", generator=gen(1))
    assert (m.drop_fraction <= 64 / 400 + 1e-6).all() and (m.drop_fraction < 0.9 * 64 / 400).any()
    assert db.sample_cutout_mask(x, 0.9999, generator=gen(1)).realised_drop == 0


def test_dropout_scale_is_inverse_keep_prob():
    x = torch.ones(10, 10, 20, 20)
    y = db.dropout(x, 0.8, generator=gen(0))
    assert set(y.unique().tolist()) <= {0.0, 1.25}


# ------------------------------------------------------------------ argument checks


@pytest.mark.parametrize(
    "call,exc,msg",
    [
        (lambda: db.drop_block2d(torch.ones(2, 3, 4, 4), 0.0, 3), ValueError, "keep_prob in (0, 1]"),
        (lambda: db.drop_block2d(torch.ones(2, 3, 4, 4), 1.5, 3), ValueError, "keep_prob"),
        (lambda: db.drop_block2d(torch.ones(2, 3, 4, 4), float("nan"), 3), ValueError, "keep_prob"),
        (lambda: db.drop_block2d(torch.ones(2, 3, 4, 4), "0.9", 3), TypeError, "real number"),
        (lambda: db.drop_block2d(torch.ones(2, 3, 4, 4), True, 3), TypeError, "real number"),
        (lambda: db.drop_block2d(torch.ones(2, 3, 4, 4), 0.9, 0), ValueError, "block_size >= 1"),
        (lambda: db.drop_block2d(torch.ones(2, 3, 4, 4), 0.9, 2.5), TypeError, "block_size to be an int"),
        (lambda: db.drop_block2d(torch.ones(3, 4, 4), 0.9, 3), ValueError, "4-D input"),
        (lambda: db.drop_block2d([[1.0]], 0.9, 3), TypeError, "torch.Tensor"),
        (lambda: db.drop_block2d(torch.ones(2, 3, 4, 4, dtype=torch.long), 0.9, 3), TypeError, "floating-point"),
        (lambda: db.drop_block2d(torch.ones(2, 3, 4, 4), 0.9, 3, seed_region="edge"), ValueError, "seed_region"),
        (lambda: db.drop_block2d(torch.ones(2, 3, 4, 4), 0.9, 3, generator=0), TypeError, "Generator"),
        (lambda: db.drop_block2d(torch.ones(2, 3, 4, 4), 0.9, 3, gamma_scale=-1), ValueError, "gamma_scale"),
        (lambda: db.drop_block2d(torch.ones(2, 3, 4, 4), 0.9, 3, normalize="tensor"), ValueError, "normalize"),
        (lambda: db.drop_block2d(torch.ones(2, 3, 4, 4), 0.9, 3, gamma_mode="exact"), ValueError, "gamma_mode"),
        (lambda: db.DropBlock2d(0.9, 3, normalize="x"), ValueError, "normalize"),
        (lambda: db.cutout(torch.ones(2, 3, 4, 4), 0.9, size=0), ValueError, "size >= 1"),
        (lambda: db.linear_keep_prob(-1, 10, 0.9), ValueError, "step"),
        (lambda: db.sample_drop_block_mask(torch.ones(2, 3, 4, 4), 0.9, 3, gamma=2.0), ValueError, "gamma in [0, 1]"),
    ],
)
def test_bad_arguments_raise_clear_errors(call, exc, msg):
    with pytest.raises(exc, match="expected") as info:
        call()
    assert msg in str(info.value)


def test_validation_happens_before_early_return():
    with pytest.raises(ValueError):
        db.drop_block2d(torch.ones(2, 3, 4, 4), 0.0, 3, training=False)
    with pytest.raises(ValueError):
        db.drop_block2d(torch.ones(2, 3, 4, 4), 1.0, -1)


def test_apply_mask_rejects_mismatched_mask():
    mask = db.sample_drop_block_mask(torch.ones(2, 3, 8, 8), 0.9, 3, generator=gen(0))
    with pytest.raises(ValueError, match="expected a mask"):
        db.apply_mask(torch.ones(2, 3, 9, 9), mask)


def test_linear_keep_prob_endpoints():
    assert db.linear_keep_prob(0, 100, 0.9) == 1.0
    assert db.linear_keep_prob(50, 100, 0.9) == pytest.approx(0.95)
    assert db.linear_keep_prob(100, 100, 0.9) == 0.9
    assert db.linear_keep_prob(1000, 100, 0.9) == 0.9
    assert db.linear_keep_prob(0, 0, 0.9) == 0.9
