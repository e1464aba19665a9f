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


# ------------------------------------------------------------------ batched draws, every case


def _bench_module(name: str):
    """A module of bench/ (the mask code before the batched-masks round, kept there as a baseline)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "bench" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cases():
    for region in ("valid", "everywhere"):
        for b, kp, scale in ((1, 0.9, 1.0), (3, 0.9, 0.25), (5, 0.7, 1.0), (7, 0.9, 1.0), (7, 0.5, 1.0), (20, 0.9, 1.0)):
            for per_channel in (True, False):
                yield (f"dropblock {region} b={b} kp={kp} gs={scale} {'per-channel' if per_channel else 'shared'}",
                       "sample_drop_block_mask", (kp, b),
                       {"seed_region": region, "gamma_scale": scale, "per_channel": per_channel})
        yield f"cutout {region}", "sample_cutout_mask", (0.8,), {"seed_region": region}
    yield "dropblock batch-normalised", "sample_drop_block_mask", (0.8, 3), {"normalize": "batch"}
    yield "dropout", "sample_dropout_mask", (0.8,), {}
    yield "spatial dropout", "sample_spatial_dropout_mask", (0.8,), {}


CASES = {name: rest for name, *rest in _cases()}


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("shape", [(5, 16, 14, 14), (3, 24, 7, 7), (2, 8, 9, 6)], ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "nhwc"])
def test_a_batch_of_n_generators_equals_n_single_draws_and_the_unbatched_code(name, shape, channels_last):
    """Sample i of a batch drawn with N generators: the seed mask, block mask, scale and drop fraction
    of a batch of one drawn from generator i alone, with the generator left in the same state (so the
    next site's draws match too); and the whole batch equals the mask code before batching
    (bench/unbatched_masks.py), which drew sample by sample."""
    sampler_name, args, kwargs = CASES[name]
    sampler = getattr(db, sampler_name)
    old = getattr(_bench_module("unbatched_masks"), sampler_name)
    x = torch.randn(shape)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    seeds = [101 + 7 * i for i in range(shape[0])]
    batch_gens = gens(seeds)
    batch = sampler(x, *args, generator=batch_gens, **kwargs)
    for i, g in enumerate(gens(seeds)):
        alone = sampler(x[i : i + 1], *args, generator=g, **kwargs)
        for field in ("seed_mask", "block_mask", "scale", "drop_fraction"):
            if field == "scale" and kwargs.get("normalize") == "batch":
                continue  # the batch's scale depends on every sample, by definition
            assert torch.equal(getattr(batch, field)[i : i + 1], getattr(alone, field)), (field, i)
        assert torch.equal(batch_gens[i].get_state(), g.get_state()), i
    before = old(x, *args, generator=gens(seeds), **kwargs)
    for field in ("seed_mask", "block_mask", "scale", "drop_fraction"):
        assert torch.equal(getattr(batch, field), getattr(before, field)), field
    assert batch.block_mask.shape == before.block_mask.shape and batch.gamma == before.gamma
    assert torch.equal(db.apply_mask(x, batch), old.__globals__["apply_mask"](x, before))


@pytest.mark.parametrize("chunk", [None, 3])  # 3: most rows need more chunks, drawn row by row
def test_batched_gap_positions_are_each_generators_own(chunk):
    from dropblock import functional as dbf

    m, gamma, seeds = 50, 0.2, (4, 9, 2, 30)
    batch = dbf._bernoulli_rows(m, gamma, gens(seeds), chunk)
    got = batch[batch >= 0].sort().values
    want = torch.cat([dbf._bernoulli_positions(m, gamma, g, chunk) + i * m for i, g in enumerate(gens(seeds))])
    assert want.numel() > 10 and torch.equal(got, want)
