"""The mask code as it was before the masksfast round, kept as a same-run baseline for the benches.

Copied from ``dropblock/functional.py`` (samplers, block expansion, normalisation, ``apply_mask``);
the argument checks are shared with the library (they did not change). ``install()`` swaps these
in for ``dropblock``'s public samplers and ``apply_mask`` (what ``models.engine`` calls), so a
bench can time the application with the old mask code; it is not used by the app or the tests'
assertions. The old samplers took one generator; the engine now passes one per sample
(``models.engine.sample_generators``), so ``install()`` wraps them in :func:`per_sample`, which
runs the old algorithm once per sample on that sample's generator.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools

import torch
import torch.nn.functional as F
from torch import Tensor

import dropblock as db
from dropblock import functional as fn


def _sliding_any(t: Tensor, k: int, dim: int) -> Tensor:
    out, width = t, 1
    while width * 2 <= k:
        n = out.shape[dim] - width
        out = out.narrow(dim, 0, n) | out.narrow(dim, width, n)
        width *= 2
    if width < k:
        n = out.shape[dim] - (k - width)
        out = out.narrow(dim, 0, n) | out.narrow(dim, k - width, n)
    return out


def _expand(padded: Tensor, bh: int, bw: int) -> Tensor:
    return _sliding_any(_sliding_any(padded, bh, 2), bw, 3)


def blocks_from_seeds(seed_mask: Tensor, block_size: tuple[int, int]) -> Tensor:
    bh, bw = block_size
    pad = (bw // 2, bw - 1 - bw // 2, bh // 2, bh - 1 - bh // 2)
    padded = F.pad((seed_mask != 0).view(torch.uint8), pad).view(torch.bool)
    return _expand(padded, bh, bw)


def _normalise(kind, seed, keep, gamma, target, block, normalize="sample", keep_prob=1.0, gamma_scale=1.0) -> db.DropMask:
    count = keep[0].numel()
    ones = keep.sum(dim=(1, 2, 3), dtype=torch.float32)
    kept = ones / count
    if normalize == "batch":
        count, ones = count * keep.shape[0], ones.sum().expand(keep.shape[0])
    scale = torch.where(ones > 0, count / ones.clamp_min(1.0), torch.zeros_like(ones))
    return db.DropMask(kind, seed, keep, scale, gamma, target, 1.0 - kept, block, keep_prob, gamma_scale)


def sample_drop_block_mask(x, keep_prob, block_size, *, per_channel=True, seed_region="valid", gamma_scale=1.0,
                           gamma=None, gamma_mode="eq1", normalize="sample", generator=None) -> db.DropMask:
    db.check_input(x)
    keep_prob = db.check_keep_prob(keep_prob)
    db.check_block_size(block_size)
    db.check_seed_region(seed_region)
    db.check_generator(generator)
    db.check_gamma_mode(gamma_mode)
    db.check_normalize(normalize)
    gamma_scale = db.check_gamma_scale(gamma_scale)
    n, c, height, width = x.shape
    bh, bw = fn.effective_block_size(block_size, height, width)
    if gamma is None:
        if gamma_mode == "calibrated":
            gamma = fn.calibrated_gamma(keep_prob, block_size, height, width, seed_region=seed_region,
                                        gamma_scale=gamma_scale)
        else:
            gamma = fn._scaled_gamma(keep_prob, block_size, height, width, gamma_scale)
        target = min(1.0, gamma_scale * (1.0 - keep_prob))
    else:
        target, gamma_scale = 1.0 - keep_prob, 1.0
    channels = c if per_channel else 1
    device = fn._draw_device(x, generator)
    if seed_region == "valid":
        valid = torch.rand((n, channels, height - bh + 1, width - bw + 1), generator=generator, device=device) < gamma
        padded = F.pad(valid.view(torch.uint8), (bw - 1,) * 2 + (bh - 1,) * 2).view(torch.bool)
        top, left = bh - 1 - (bh - 1) // 2, bw - 1 - (bw - 1) // 2
        seed = padded[..., top : top + height, left : left + width]
        keep = ~_expand(padded, bh, bw)
    else:
        seed = torch.rand((n, channels, height, width), generator=generator, device=device) < gamma
        keep = ~blocks_from_seeds(seed, (bh, bw))
    return _normalise("dropblock", seed, keep, gamma, target, (bh, bw), normalize, keep_prob, gamma_scale).to(x.device)


def _constant_scale(kind, keep, keep_prob, block) -> db.DropMask:
    n = keep.shape[0]
    kept = keep.sum(dim=(1, 2, 3), dtype=torch.float32) / keep[0].numel()
    scale = torch.full((n,), 1.0 / keep_prob, dtype=torch.float32, device=keep.device)
    return db.DropMask(kind, ~keep, keep, scale, 1.0 - keep_prob, 1.0 - keep_prob, 1.0 - kept, block, keep_prob, 1.0)


def sample_dropout_mask(x, keep_prob, *, generator=None) -> db.DropMask:
    keep = torch.rand(x.shape, generator=generator, device=fn._draw_device(x, generator)) < keep_prob
    return _constant_scale("dropout", keep, keep_prob, (1, 1)).to(x.device)


def sample_spatial_dropout_mask(x, keep_prob, *, generator=None) -> db.DropMask:
    n, c, height, width = x.shape
    keep = torch.rand((n, c, 1, 1), generator=generator, device=fn._draw_device(x, generator)) < keep_prob
    return _constant_scale("spatial_dropout", keep, keep_prob, (height, width)).to(x.device)


def sample_cutout_mask(x, keep_prob, *, size=None, seed_region="valid", generator=None) -> db.DropMask:
    n, _, height, width = x.shape
    device = fn._draw_device(x, generator)
    side = fn.cutout_size(keep_prob, height, width) if size is None else min(size, height, width)
    if side == 0:
        none = torch.zeros((n, 1, height, width), dtype=torch.bool, device=x.device)
        m = _normalise("cutout", none, ~none, 0.0, 1.0 - keep_prob, (0, 0), keep_prob=keep_prob)
        return db.DropMask(**{**m.__dict__, "scale": torch.ones_like(m.scale)})
    rows, cols = (height - side + 1, width - side + 1) if seed_region == "valid" else (height, width)
    index = torch.randint(rows * cols, (n,), generator=generator, device=device)
    seed = torch.zeros((n, rows * cols), dtype=torch.bool, device=device)
    seed.scatter_(1, index[:, None], True)
    seed = seed.view(n, 1, rows, cols)
    if seed_region == "valid":
        c0 = (side - 1) // 2
        seed = F.pad(seed.view(torch.uint8), (c0, side - 1 - c0, c0, side - 1 - c0)).view(torch.bool)
    keep = ~blocks_from_seeds(seed, (side, side))
    m = _normalise("cutout", seed, keep, 1.0 / (rows * cols), 1.0 - keep_prob, (side, side), keep_prob=keep_prob)
    return db.DropMask(**{**m.__dict__, "scale": torch.ones_like(m.scale)}).to(x.device)


def apply_mask(x: Tensor, mask: db.DropMask) -> Tensor:
    scale = mask.scale.to(x.dtype).view(-1, 1, 1, 1)
    return (x * scale).masked_fill_(~mask.block_mask, 0)


def concatenated(apply):
    """``apply`` as ``db.apply_mask`` is called, with what a batch part's ``out`` cost before: a new
    tensor, then a copy into the batch (the engine concatenated the parts' outputs at every site)."""
    return lambda x, mask, *, out=None: apply(x, mask) if out is None else out.copy_(apply(x, mask))


def per_sample(sampler):
    """``sampler`` (one of the old ones above) as the engine calls it now: given a list of generators,
    one per sample, sample i is drawn alone from ``generator[i]`` (the old algorithm on x[i:i+1]) and
    the masks are stacked; with ``normalize="batch"`` the scale is then taken over the whole batch.
    One generator or None: the old sampler as it was."""

    @functools.wraps(sampler)
    def sample(x, *args, generator=None, **kwargs):
        if not isinstance(generator, (list, tuple)):
            return sampler(x, *args, generator=generator, **kwargs)
        db.check_generator(generator, x.shape[0])
        batch = kwargs.get("normalize") == "batch"
        if batch:
            kwargs["normalize"] = "sample"
        masks = [sampler(x[i : i + 1], *args, generator=g, **kwargs) for i, g in enumerate(generator)]
        stacked = {name: torch.cat([getattr(m, name) for m in masks])
                   for name in ("seed_mask", "block_mask", "scale", "drop_fraction")}
        m = dataclasses.replace(masks[0], **stacked)
        if batch:
            return _normalise(m.kind, m.seed_mask, m.block_mask, m.gamma, m.target_drop, m.block_size, "batch",
                              m.keep_prob, m.gamma_scale)
        return m

    return sample


_SAMPLERS = ("sample_drop_block_mask", "sample_dropout_mask", "sample_spatial_dropout_mask", "sample_cutout_mask")


@contextlib.contextmanager
def install(apply: bool = True):
    """Swap the old samplers (:func:`per_sample`, so they take the engine's generator per sample) and,
    with ``apply``, the old ``apply_mask`` (also for batch parts) into ``dropblock``, which
    ``models.engine`` calls."""
    saved = {name: getattr(db, name) for name in (*_SAMPLERS, "apply_mask")}
    for name in _SAMPLERS:
        setattr(db, name, per_sample(globals()[name]))
    if apply:
        db.apply_mask = concatenated(apply_mask)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(db, name, value)


