"""One generator per sample: sample i draws from generator i exactly what a batch of one would."""

from __future__ import annotations

import pytest
import torch

import dropblock as db

SEEDS = (3, 7, 11, 5)


def gens(seeds=SEEDS) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(s) for s in seeds]


SAMPLERS = {
    "dropblock b=7 (gaps)": lambda x, g: db.sample_drop_block_mask(x, 0.9, 7, generator=g),
    "dropblock b=3 gamma/4": lambda x, g: db.sample_drop_block_mask(x, 0.8, 3, gamma_scale=0.25, generator=g),
    "dropblock b=1 (one uniform per unit)": lambda x, g: db.sample_drop_block_mask(x, 0.5, 1, generator=g),
    "dropblock shared, everywhere": lambda x, g: db.sample_drop_block_mask(
        x, 0.85, 3, per_channel=False, seed_region="everywhere", generator=g),
    "dropblock calibrated": lambda x, g: db.sample_drop_block_mask(x, 0.75, 5, gamma_mode="calibrated", generator=g),
    "dropout": lambda x, g: db.sample_dropout_mask(x, 0.8, generator=g),
    "spatial dropout": lambda x, g: db.sample_spatial_dropout_mask(x, 0.8, generator=g),
    "cutout": lambda x, g: db.sample_cutout_mask(x, 0.8, generator=g),
}


@pytest.mark.parametrize("name", list(SAMPLERS))
@pytest.mark.parametrize("shape", [(4, 16, 14, 14), (4, 8, 7, 9)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_each_sample_draws_from_its_own_generator_as_alone(name, shape, channels_last):
    sampler = SAMPLERS[name]
    x = torch.randn(shape)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    batch = sampler(x, gens())
    for i, g in enumerate(gens()):
        alone = sampler(x[i : i + 1], g)
        assert torch.equal(batch.seed_mask[i : i + 1], alone.seed_mask), i
        assert torch.equal(batch.block_mask[i : i + 1], alone.block_mask), i
        assert torch.equal(batch.scale[i : i + 1], alone.scale) and torch.equal(batch.drop_fraction[i : i + 1],
                                                                                alone.drop_fraction)
    assert any(not torch.equal(batch.block_mask[0], batch.block_mask[i]) for i in range(1, 4))  # other streams


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_a_sequence_of_one_is_that_generator(name):
    x = torch.randn(1, 8, 14, 14)
    assert torch.equal(SAMPLERS[name](x, gens((9,))).block_mask, SAMPLERS[name](x, gens((9,))[0]).block_mask)
    assert torch.equal(SAMPLERS[name](x, (torch.Generator().manual_seed(9),)).block_mask,
                       SAMPLERS[name](x, torch.Generator().manual_seed(9)).block_mask)


@pytest.mark.parametrize("op, args", [(db.drop_block2d, (0.8, 3)), (db.dropout, (0.8,)), (db.spatial_dropout, (0.8,)),
                                      (db.cutout, (0.8,))], ids=["drop_block2d", "dropout", "spatial_dropout", "cutout"])
def test_ops_take_one_generator_per_sample(op, args):
    x = torch.rand(4, 8, 14, 14)
    out = op(x, *args, generator=gens())
    for i, g in enumerate(gens()):
        assert torch.equal(out[i : i + 1], op(x[i : i + 1], *args, generator=g))


def test_generators_are_checked_at_the_edge():
    x = torch.rand(3, 4, 8, 8)
    with pytest.raises(ValueError, match="one generator per sample"):
        db.sample_drop_block_mask(x, 0.9, 3, generator=gens((1, 2)))
    with pytest.raises(TypeError, match="torch.Generator"):
        db.sample_dropout_mask(x, 0.9, generator=[torch.Generator(), 3, torch.Generator()])
    with pytest.raises(TypeError, match="torch.Generator"):
        db.sample_cutout_mask(x, 0.9, generator=iter(gens((1, 2, 3))))
    with pytest.raises(ValueError, match="one generator per sample"):
        db.drop_block2d(x, 0.9, 3, generator=gens((1,)) * 2)
