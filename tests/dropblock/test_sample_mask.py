"""``dropblock.sample_mask``: the one entry point to the four samplers, with the drop scaled.

DropBlock (arXiv:1810.12890) divides γ by 4 in ResNet group 3 (Sec. 4.1.1); the other kinds get the
same quarter of their drop 1 - keep_prob. The engine's sites and the mask explorer's light route both
draw through this op, so it must be each kind's own sampler, draw for draw.
"""

from __future__ import annotations

import pytest
import torch

import dropblock as db

FIELDS = ("seed_mask", "block_mask", "scale", "drop_fraction")


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def own(kind: str, x: torch.Tensor, keep_prob: float, block_size: int, seed: int, **options) -> db.DropMask:
    """The kind's own sampler, called directly."""
    if kind == "dropblock":
        return db.sample_drop_block_mask(x, keep_prob, block_size, generator=gen(seed), **options)
    if kind == "dropout":
        return db.sample_dropout_mask(x, keep_prob, generator=gen(seed))
    if kind == "spatial_dropout":
        return db.sample_spatial_dropout_mask(x, keep_prob, generator=gen(seed))
    return db.sample_cutout_mask(x, keep_prob, generator=gen(seed), **options)


def assert_same(a: db.DropMask, b: db.DropMask) -> None:
    for field in FIELDS:
        assert torch.equal(getattr(a, field), getattr(b, field)), field
    assert (a.kind, a.gamma, a.target_drop, a.block_size, a.keep_prob, a.gamma_scale) == (
        b.kind, b.gamma, b.target_drop, b.block_size, b.keep_prob, b.gamma_scale)


@pytest.mark.parametrize("seed", [0, 5])
@pytest.mark.parametrize("shape", [(2, 8, 14, 14), (1, 4, 7, 7), (3, 2, 5, 9)])
@pytest.mark.parametrize("kind", db.KINDS)
def test_each_kind_is_its_own_samplers_draw(kind, shape, seed):
    x = torch.randn(*shape)
    got = db.sample_mask(x, kind, 0.8, 3, generator=gen(seed))
    assert_same(got, own(kind, x, 0.8, 3, seed))


@pytest.mark.parametrize("options", [
    {"per_channel": False, "seed_region": "everywhere"},
    {"gamma_mode": "calibrated", "normalize": "batch"},
])
def test_dropblock_options_reach_the_sampler(options):
    x = torch.randn(4, 6, 14, 14)
    assert_same(db.sample_mask(x, "dropblock", 0.7, 5, generator=gen(3), **options),
                own("dropblock", x, 0.7, 5, 3, **options))


def test_cutout_takes_its_seed_region():
    x = torch.randn(3, 3, 32, 32)
    assert_same(db.sample_mask(x, "cutout", 0.8, generator=gen(2), seed_region="everywhere"),
                own("cutout", x, 0.8, 1, 2, seed_region="everywhere"))


@pytest.mark.parametrize("keep_prob", [0.9, 0.6])
def test_a_quarter_of_the_drop_is_gamma_over_4_for_dropblock(keep_prob):
    """Eq. (1): γ/4, the target (1 - keep_prob)/4, and the realised drop near its exact expectation."""
    x = torch.ones(2000, 1, 14, 14)
    quarter = db.sample_mask(x, "dropblock", keep_prob, 5, gamma_scale=0.25, generator=gen(0))
    whole = db.sample_mask(x, "dropblock", keep_prob, 5, generator=gen(0))
    assert quarter.gamma == pytest.approx(db.dropblock_gamma(keep_prob, 5, 14, 14) / 4, rel=1e-12)
    assert quarter.gamma == pytest.approx(whole.gamma / 4, rel=1e-12)
    assert (quarter.keep_prob, quarter.gamma_scale) == (keep_prob, 0.25)
    assert quarter.target_drop == pytest.approx((1 - keep_prob) / 4, rel=1e-12)
    exact = db.expected_drop_fraction(keep_prob, 5, 14, 14, gamma_scale=0.25)
    assert quarter.realised_drop == pytest.approx(exact, abs=0.004)


@pytest.mark.parametrize("kind", ["dropout", "spatial_dropout", "cutout"])
@pytest.mark.parametrize("keep_prob", [0.9, 0.6])
def test_a_quarter_of_the_drop_for_the_other_kinds_is_their_keep_prob_moved(kind, keep_prob):
    """Without a γ, a quarter of the drop is the sampler at keep_prob 1 - (1 - keep_prob)/4, draw for draw."""
    x = torch.ones(400, 16, 14, 14)
    quarter = db.sample_mask(x, kind, keep_prob, gamma_scale=0.25, generator=gen(1))
    moved = 1 - (1 - keep_prob) / 4
    assert_same(quarter, own(kind, x, moved, 1, 1))
    assert quarter.target_drop == pytest.approx((1 - keep_prob) / 4, rel=1e-12)
    if kind == "cutout":  # one whole square per image: its side rounds the budget
        assert quarter.realised_drop == pytest.approx(db.cutout_size(moved, 14, 14) ** 2 / 196, rel=1e-6)
    else:
        assert quarter.realised_drop == pytest.approx((1 - keep_prob) / 4, abs=0.01)


@pytest.mark.parametrize("kind", db.KINDS)
def test_keep_prob_1_keeps_every_unit_and_leaves_x_as_it_is(kind):
    x = torch.randn(2, 5, 9, 7)
    for scale in (1.0, 0.25):
        mask = db.sample_mask(x, kind, 1.0, 3, gamma_scale=scale, generator=gen(4))
        assert mask.gamma == 0.0 and bool(mask.block_mask.all()) and not bool(mask.seed_mask.any())
        assert db.apply_mask(x, mask) is x  # not x times a count/count scale, which floats need not make 1
        out = torch.full_like(x, float("nan"))
        assert db.apply_mask(x, mask, out=out) is out and torch.equal(out, x)


@pytest.mark.parametrize("kind", db.KINDS)
def test_one_generator_per_sample_draws_each_sample_as_alone(kind):
    x = torch.randn(3, 4, 12, 10)
    batch = db.sample_mask(x, kind, 0.7, 3, gamma_scale=0.25, generator=[gen(s) for s in (7, 8, 9)])
    for i, s in enumerate((7, 8, 9)):
        alone = db.sample_mask(x[i:i + 1], kind, 0.7, 3, gamma_scale=0.25, generator=gen(s))
        assert torch.equal(batch.block_mask[i:i + 1], alone.block_mask)


def test_arguments_are_checked_at_the_edge():
    x = torch.randn(1, 2, 8, 8)
    with pytest.raises(ValueError, match="expected kind in"):
        db.sample_mask(x, "dropconnect", 0.9)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="expected keep_prob in"):
        db.sample_mask(x, "dropout", 0.0)
    with pytest.raises(TypeError, match="expected block_size to be an int"):
        db.sample_mask(x, "dropout", 0.9, 2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="expected gamma_scale >= 0"):
        db.sample_mask(x, "dropblock", 0.9, 3, gamma_scale=-0.25)
    with pytest.raises(TypeError, match="expected gamma_scale to be a real number"):
        db.sample_mask(x, "dropblock", 0.9, 3, gamma_scale=True)
    with pytest.raises(ValueError, match=r"gamma_scale \* \(1 - keep_prob\) < 1"):
        db.sample_mask(x, "dropout", 0.5, gamma_scale=2.0)  # would drop every unit
    with pytest.raises(TypeError, match="expected x to be a torch.Tensor"):
        db.sample_mask([[1.0]], "cutout", 0.9)  # type: ignore[arg-type]
    assert db.sample_mask(x, "dropblock", 0.5, 3, gamma_scale=2.0, generator=gen(0)).gamma <= 1.0  # γ is clipped
