"""The pass-saving mask code equals a straightforward formulation written out here, mask for mask,
and the geometric-gap seed sampler draws independent Bernoulli(gamma) seeds.

The oracle takes the seeds the sampler drew (their distribution is tested below, their region
here) and does the rest the plain way: seeds only where allowed, blocks by max pooling (a
different algorithm from the library's shifted ORs) or, on small maps, by a per-seed loop,
negated, counted as floats, applied as ``(x * scale).masked_fill(~M, 0)``. Every layout of the
input (NCHW, channels last, a strided view) must give the very same masks for one generator.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

import dropblock as db
from dropblock import functional as dbf


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def reference(seed, x, block_size, *, normalize="sample"):
    """(keep, scale, drop_fraction) that the seed mask ``seed`` (N, C or 1, H, W) gives on ``x``."""
    n, _, h, w = x.shape
    bh, bw = min(block_size, h), min(block_size, w)
    # unit r is covered by seeds r - bh//2 .. r + (bh-1)//2: a bh x bw max pool over the padded seeds
    padded = F.pad(seed.float(), (bw // 2, bw - 1 - bw // 2, bh // 2, bh - 1 - bh // 2))
    keep = F.max_pool2d(padded, (bh, bw), stride=1) == 0
    ones = keep.float().sum(dim=(1, 2, 3))
    count = keep[0].numel()
    kept = ones / count
    if normalize == "batch":
        count, ones = count * n, ones.sum().expand(n)
    scale = torch.where(ones > 0, count / ones.clamp_min(1.0), torch.zeros_like(ones))
    return keep, scale, 1.0 - kept


def allowed(shape, block_size, seed_region):
    """(H, W) bool: where a seed may be drawn (Figure 2a: where the whole block fits, for "valid")."""
    h, w = shape[-2:]
    bh, bw = min(block_size, h), min(block_size, w)
    where = torch.zeros(h, w, dtype=torch.bool)
    if seed_region == "valid":
        r0, c0 = (bh - 1) // 2, (bw - 1) // 2
        where[r0 : r0 + h - bh + 1, c0 : c0 + w - bw + 1] = True
    else:
        where[:] = True
    return where


def layouts(shape):
    """The same values as NCHW, channels last, and a strided (non-contiguous) view."""
    x = torch.randn(shape, generator=gen(sum(shape)))
    wide = torch.randn(shape[0], shape[1], shape[2], 2 * shape[3])
    wide[..., ::2] = x
    return {"nchw": x, "channels_last": x.contiguous(memory_format=torch.channels_last), "strided": wide[..., ::2]}


SHAPES = [(4, 6, 14, 14), (3, 5, 7, 7), (2, 3, 16, 8), (2, 4, 1, 7), (1, 2, 5, 4), (3, 16, 1, 1)]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("block_size", [1, 2, 3, 4, 7, 20])  # 20: larger than every map here
@pytest.mark.parametrize("seed_region", ["valid", "everywhere"])
def test_sampler_equals_the_straightforward_formulation(shape, block_size, seed_region):
    where = allowed(shape, block_size, seed_region)
    for per_channel, normalize in itertools.product((True, False), ("sample", "batch")):
        kw = {"per_channel": per_channel, "seed_region": seed_region, "normalize": normalize}
        for keep_prob, gamma_scale, gamma in ((0.8, 1.0, None), (0.6, 0.25, None), (0.9, 1.0, 0.3), (0.9, 1.0, 0.02)):
            case = (per_channel, normalize, keep_prob, gamma)
            masks = {layout: db.sample_drop_block_mask(x, keep_prob, block_size, gamma_scale=gamma_scale, gamma=gamma,
                                                       generator=gen(block_size), **kw)
                     for layout, x in layouts(shape).items()}
            first = masks["nchw"]
            want_gamma = gamma if gamma is not None else min(1.0, gamma_scale * db.dropblock_gamma(
                keep_prob, block_size, *shape[-2:]))
            assert first.gamma == pytest.approx(want_gamma, rel=1e-12), case
            assert first.seed_mask.shape == (shape[0], shape[1] if per_channel else 1, *shape[-2:]), case
            assert not (first.seed_mask & ~where).any(), case  # seeds only where allowed
            for layout, x in layouts(shape).items():
                got = masks[layout]
                assert got.seed_mask.dtype == got.block_mask.dtype == torch.bool, case
                assert torch.equal(got.seed_mask, first.seed_mask), (layout, case)  # one generator, one draw
                keep, scale, drop = reference(got.seed_mask, x, block_size, normalize=normalize)
                assert torch.equal(got.block_mask, keep), (layout, case)
                assert torch.equal(got.scale, scale) and torch.equal(got.drop_fraction, drop), (layout, case)
                y = db.apply_mask(x, got)
                old = (x * scale.view(-1, 1, 1, 1)).masked_fill(~keep, 0)
                assert torch.equal(y, old) and y.shape == x.shape, (layout, case)


@pytest.mark.parametrize("block_size", [1, 2, 3, 5, 9])
@pytest.mark.parametrize("seed_region", ["valid", "everywhere"])
def test_each_seed_drops_its_block_one_seed_at_a_time(block_size, seed_region):
    """A per-seed loop: every seed zeroes the block_size x block_size square centred on it (rows
    i - (b-1)//2 .. i + b//2), cut at the border, and nothing else is dropped."""
    x = torch.ones(3, 4, 9, 8)
    mask = db.sample_drop_block_mask(x, 0.7, block_size, seed_region=seed_region, generator=gen(block_size))
    bh, bw = min(block_size, 9), min(block_size, 8)
    keep = torch.ones(3, 4, 9, 8, dtype=torch.bool)
    for n, c, i, j in mask.seed_mask.nonzero().tolist():
        keep[n, c, max(i - (bh - 1) // 2, 0) : i + bh // 2 + 1, max(j - (bw - 1) // 2, 0) : j + bw // 2 + 1] = False
    assert mask.seed_mask.any() and torch.equal(mask.block_mask, keep)
    assert torch.equal(mask.drop_fraction, 1 - keep.float().mean(dim=(1, 2, 3)))


def test_masks_follow_the_activation_layout():
    x = torch.randn(2, 8, 14, 14).contiguous(memory_format=torch.channels_last)
    for mask in (db.sample_drop_block_mask(x, 0.8, 5, generator=gen(0)),
                 db.sample_drop_block_mask(x, 0.8, 1, generator=gen(0)),  # gamma 0.2: uniform draws
                 db.sample_drop_block_mask(x, 0.95, 1, generator=gen(0))):  # gamma 0.05: gaps
        assert mask.block_mask.is_contiguous(memory_format=torch.channels_last)
        y = db.apply_mask(x, mask)
        assert y.is_contiguous(memory_format=torch.channels_last)
    nchw = db.sample_drop_block_mask(x.contiguous(), 0.8, 5, generator=gen(0))
    assert nchw.block_mask.is_contiguous()


@pytest.mark.parametrize("layout", ["nchw", "channels_last", "strided"])
def test_siblings_equal_the_previous_formulation(layout):
    x = layouts((6, 5, 9, 11))[layout]
    drop = db.sample_dropout_mask(x, 0.7, generator=gen(3))
    keep = torch.rand(x.shape, generator=gen(3)) < 0.7
    assert torch.equal(drop.block_mask, keep) and torch.equal(drop.seed_mask, ~keep)
    torch.testing.assert_close(drop.drop_fraction, 1 - keep.float().mean(dim=(1, 2, 3)), rtol=0, atol=0)
    assert torch.equal(db.apply_mask(x, drop), (x * torch.tensor(1 / 0.7)).masked_fill(~keep, 0))
    spatial = db.sample_spatial_dropout_mask(x, 0.7, generator=gen(4))
    assert torch.equal(spatial.block_mask, torch.rand((6, 5, 1, 1), generator=gen(4)) < 0.7)
    for region in ("valid", "everywhere"):
        cut = db.sample_cutout_mask(x, 0.8, seed_region=region, generator=gen(5))
        side = db.cutout_size(0.8, 9, 11)
        rows, cols = (9 - side + 1, 11 - side + 1) if region == "valid" else (9, 11)
        index = torch.randint(rows * cols, (6,), generator=gen(5))
        r, c = index // cols, index % cols
        if region == "valid":
            r, c = r + (side - 1) // 2, c + (side - 1) // 2
        want = torch.ones(6, 1, 9, 11, dtype=torch.bool)
        for k in range(6):
            top, left = int(r[k]) - (side - 1) // 2, int(c[k]) - (side - 1) // 2
            want[k, 0, max(top, 0) : top + side, max(left, 0) : left + side] = False
        assert torch.equal(cut.block_mask, want), region


def test_blocks_from_seeds_accepts_any_layout_and_zero_one_masks():
    seeds = torch.rand(3, 4, 10, 9, generator=gen(6)) < 0.05
    want = db.blocks_from_seeds(seeds, 3)
    for variant in (seeds.contiguous(memory_format=torch.channels_last), seeds.to(torch.uint8), seeds.float(),
                    torch.cat([seeds, seeds], dim=3)[..., :9]):
        assert torch.equal(db.blocks_from_seeds(variant, 3), want)
    assert torch.equal(db.blocks_from_seeds(seeds, (3, 5)), db.blocks_from_seeds(seeds, (3, 5)).bool())


def test_keep_prob_one_keeps_every_unit_and_scale_one():
    x = torch.randn(2, 3, 8, 8).contiguous(memory_format=torch.channels_last)
    for b in (1, 3):
        mask = db.sample_drop_block_mask(x, 1.0, b, generator=gen(0))
        assert mask.gamma == 0 and bool(mask.block_mask.all()) and not mask.seed_mask.any()
        assert torch.equal(mask.scale, torch.ones(2)) and torch.equal(db.apply_mask(x, mask), x)


# ------------------------------------------------------------------ the geometric-gap seed sampler


@pytest.mark.parametrize("gamma", [0.002, 0.03, 0.2])
@pytest.mark.parametrize("chunk", [None, 3])  # 3: many refills, so the chunk boundaries are exercised
def test_gap_positions_are_independent_bernoulli(gamma, chunk):
    m, runs = 37, 4000  # short sequences: every position, the first and the last included
    hits = torch.zeros(runs, m)
    g = gen(int(gamma * 1000) + (chunk or 0))
    for r in range(runs):
        p = dbf._bernoulli_positions(m, gamma, g, chunk)
        assert bool((p == p.round()).all())
        p = p.long()
        assert bool((p[1:] > p[:-1]).all()) and (p.numel() == 0 or 0 <= p[0] <= p[-1] < m)
        hits[r, p] = 1
    sd = math.sqrt(gamma * (1 - gamma) / runs)
    assert (hits.mean(dim=0) - gamma).abs().max() < 5 * sd + 1e-12  # every position, P = gamma
    counts = hits.sum(dim=1)  # Binomial(m, gamma): mean and variance
    assert abs(counts.mean() - m * gamma) < 5 * math.sqrt(m * gamma * (1 - gamma) / runs)
    assert abs(counts.var() / (m * gamma * (1 - gamma)) - 1) < 0.15
    both = (hits[:, 1:] * hits[:, :-1]).mean()  # neighbours independent: P(both) = gamma^2
    assert abs(both - gamma**2) < 5 * math.sqrt(gamma**2 / (runs * (m - 1))) + 1e-12


@pytest.mark.parametrize("gamma", [0.001, 0.05, 0.2])
def test_gaps_between_seeds_are_geometric(gamma):
    p = dbf._bernoulli_positions(2_000_000, gamma, gen(3)).long()
    gaps = (p[1:] - p[:-1] - 1).double()  # failures between successes
    n = gaps.numel()
    assert abs(n - 2e6 * gamma) < 5 * math.sqrt(2e6 * gamma)
    q = 1 - gamma
    for k in (1, round(0.5 / gamma), round(1 / gamma), round(3 / gamma)):
        want = q**k  # P(G >= k)
        assert abs((gaps >= k).double().mean() - want) < 5 * math.sqrt(want * (1 - want) / n) + 1e-12, k


def test_gap_and_uniform_samplers_agree_in_distribution(monkeypatch):
    """Just below and above GAP_MAX_GAMMA the two draws give the same per-position drop map."""
    monkeypatch.setattr(dbf, "GAP_MAX_GAMMA", 0.1)
    x = torch.ones(400, 50, 9, 9)
    lo = db.sample_drop_block_mask(x, 0.9, 3, gamma=0.1, generator=gen(1))
    hi = db.sample_drop_block_mask(x, 0.9, 3, gamma=math.nextafter(0.1, 1), generator=gen(1))
    tol = 5 * math.sqrt(0.25 / 20_000)
    for m in (lo, hi):
        freq = m.seed_mask.float().mean(dim=(0, 1))[1:-1, 1:-1]  # the valid region
        assert (freq - 0.1).abs().max() < tol
    drop_lo, drop_hi = (~lo.block_mask).float().mean(dim=(0, 1)), (~hi.block_mask).float().mean(dim=(0, 1))
    assert (drop_lo - drop_hi).abs().max() < 2 * tol


def test_gaps_off_gives_exactly_the_previous_masks(monkeypatch):
    """GAP_MAX_GAMMA = -1: one uniform per unit at every gamma, 0 included, as before the gaps."""
    monkeypatch.setattr(dbf, "GAP_MAX_GAMMA", -1.0)
    x = torch.randn(3, 6, 14, 14).contiguous(memory_format=torch.channels_last)
    for keep_prob, block_size in ((0.9, 7), (0.95, 1), (1.0, 3)):
        g_new, g_old = gen(2), gen(2)
        got = db.sample_drop_block_mask(x, keep_prob, block_size, gamma_scale=0.25, generator=g_new)
        bh = min(block_size, 14)
        gamma = 0.25 * db.dropblock_gamma(keep_prob, block_size, 14, 14)
        valid = torch.rand((3, 6, 15 - bh, 15 - bh), generator=g_old) < gamma
        c0 = (bh - 1) // 2
        want = F.pad(valid.float(), (c0, bh - 1 - c0, c0, bh - 1 - c0)) > 0
        assert torch.equal(got.seed_mask, want) and torch.equal(g_new.get_state(), g_old.get_state())


def test_no_random_numbers_are_drawn_for_gamma_zero():
    g = gen(0)
    state = g.get_state()
    mask = db.sample_drop_block_mask(torch.ones(2, 3, 8, 8), 1.0, 3, generator=g)
    assert torch.equal(g.get_state(), state) and bool(mask.block_mask.all())


def test_apply_mask_into_out_writes_the_same_values_there():
    """``out=``: a batch part's rows written in place (models/engine.py), equal to a new result."""
    x = torch.randn(3, 8, 14, 14).contiguous(memory_format=torch.channels_last)
    mask = db.sample_drop_block_mask(x, 0.7, 5, generator=torch.Generator().manual_seed(3))
    batch = torch.full((5, 8, 14, 14), float("nan")).contiguous(memory_format=torch.channels_last)
    y = db.apply_mask(x, mask, out=batch[1:4])
    assert y.data_ptr() == batch[1:4].data_ptr()
    torch.testing.assert_close(batch[1:4], db.apply_mask(x, mask))
    assert batch[0].isnan().all() and batch[4].isnan().all()  # the other rows untouched
    with pytest.raises(ValueError, match="expected out of shape"):
        db.apply_mask(x, mask, out=torch.empty(2, 8, 14, 14))
    with pytest.raises(ValueError, match="dtype"):
        db.apply_mask(x, mask, out=torch.empty(3, 8, 14, 14, dtype=torch.float64))
