"""Structured dropout as pure functions: DropBlock, Dropout, SpatialDropout and Cutout.

DropBlock follows Ghiasi, Lin & Le, "DropBlock: A regularization method for convolutional
networks", NeurIPS 2018 (arXiv:1810.12890): Algorithm 1, Figure 2 and Eq. (1).

Every op is split in two so that masks are first-class:

* a sampler ``sample_*_mask(x, ...) -> DropMask`` draws the random masks (seed mask, block
  mask, gamma, scale, realised drop fraction) through an explicit ``torch.Generator``;
* ``apply_mask(x, mask)`` multiplies the input by the block mask and the normalisation.

The ops themselves (``drop_block2d``, ``dropout``, ``spatial_dropout``, ``cutout``) validate
their arguments, return ``x`` unchanged when not training or when nothing is to be dropped,
and otherwise call the sampler and ``apply_mask``.

Conventions shared by all masks:

* masks are bool tensors (cheap to expand and to keep for display);
* ``block_mask`` is the paper's M: True where a unit is kept, False where it is dropped;
* ``seed_mask`` is True where a drop is centred (a DropBlock seed, a Cutout centre, a dropped
  unit or channel for the Dropout family);
* a block of size (bh, bw) "centred" on row i covers rows ``i - (bh-1)//2 .. i + bh//2``,
  so odd and even sizes both give exact bh x bw blocks;
* DropBlock normalisation ``count(M) / count_ones(M)`` is computed **per sample** (over C, H,
  W of one sample), so a sample's output never depends on the rest of the batch; a sample
  with every unit dropped gets scale 0 (its output is all zeros, never NaN/inf).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, replace
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "DropMask",
    "SeedRegion",
    "apply_mask",
    "blocks_from_seeds",
    "cutout",
    "cutout_size",
    "drop_block2d",
    "dropblock_gamma",
    "dropout",
    "effective_block_size",
    "expected_drop_fraction",
    "linear_keep_prob",
    "sample_cutout_mask",
    "sample_drop_block_mask",
    "sample_dropout_mask",
    "sample_spatial_dropout_mask",
    "spatial_dropout",
]

SeedRegion = Literal["valid", "everywhere"]
_SEED_REGIONS = ("valid", "everywhere")


@dataclass(frozen=True)
class DropMask:
    """Masks sampled for one call of a structured-dropout op.

    Attributes:
        kind: ``"dropblock"``, ``"dropout"``, ``"spatial_dropout"`` or ``"cutout"``.
        seed_mask: bool (N, C or 1, H, W), or (N, C, 1, 1) for SpatialDropout; True where a
            drop is centred.
        block_mask: bool, same shape as ``seed_mask`` and broadcastable to x; the paper's M,
            True where a unit is kept and False where it is dropped.
        scale: (N,) float32; kept units are multiplied by it (per-sample normalisation).
        gamma: probability that a candidate position becomes a seed.
        target_drop: the drop fraction asked for, ``1 - keep_prob``.
        drop_fraction: (N,) float32; the share of units each sample actually dropped.
        block_size: (bh, bw) after clipping to the feature map.
    """

    kind: str
    seed_mask: Tensor
    block_mask: Tensor
    scale: Tensor
    gamma: float
    target_drop: float
    drop_fraction: Tensor
    block_size: tuple[int, int]

    @property
    def realised_drop(self) -> float:
        """Mean realised drop fraction over the batch (synchronises with the device)."""
        return float(self.drop_fraction.mean())


# --------------------------------------------------------------------------------------
# Validation at the public edge
# --------------------------------------------------------------------------------------


def _check_input(x: object) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"expected x to be a torch.Tensor, but got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(
            f"expected a 4-D input (N, C, H, W), but got {x.ndim}-D with shape {tuple(x.shape)}"
        )
    if not x.is_floating_point():
        raise TypeError(f"expected a floating-point input, but got dtype {x.dtype}")


def _check_keep_prob(keep_prob: object) -> float:
    if isinstance(keep_prob, bool) or not isinstance(keep_prob, numbers.Real):
        raise TypeError(f"expected keep_prob to be a real number, but got {type(keep_prob).__name__}")
    keep_prob = float(keep_prob)
    if not 0.0 < keep_prob <= 1.0:  # also rejects NaN
        raise ValueError(f"expected keep_prob in (0, 1], but got {keep_prob}")
    return keep_prob


def _check_block_size(block_size: object, name: str = "block_size") -> int:
    if isinstance(block_size, bool) or not isinstance(block_size, numbers.Integral):
        raise TypeError(f"expected {name} to be an int, but got {type(block_size).__name__}")
    if block_size < 1:
        raise ValueError(f"expected {name} >= 1, but got {block_size}")
    return int(block_size)


def _check_seed_region(seed_region: object) -> None:
    if seed_region not in _SEED_REGIONS:
        raise ValueError(f"expected seed_region in {_SEED_REGIONS}, but got {seed_region!r}")


def _check_generator(generator: object) -> None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"expected generator to be a torch.Generator or None, but got {type(generator).__name__}")


def _check_gamma_scale(gamma_scale: object) -> float:
    if isinstance(gamma_scale, bool) or not isinstance(gamma_scale, numbers.Real):
        raise TypeError(f"expected gamma_scale to be a real number, but got {type(gamma_scale).__name__}")
    if not 0.0 <= float(gamma_scale):
        raise ValueError(f"expected gamma_scale >= 0, but got {gamma_scale}")
    return float(gamma_scale)


def _check_spatial(height: int, width: int) -> None:
    if height < 1 or width < 1:
        raise ValueError(f"expected a feature map of at least 1x1, but got {height}x{width}")


# --------------------------------------------------------------------------------------
# Geometry and gamma
# --------------------------------------------------------------------------------------


def effective_block_size(block_size: int, height: int, width: int) -> tuple[int, int]:
    """Clip ``block_size`` to the feature map, per dimension.

    A block as large as the map (or larger) drops the whole channel, as in SpatialDropout.

    Returns:
        (bh, bw) with ``bh = min(block_size, height)`` and ``bw = min(block_size, width)``.
    """
    block_size = _check_block_size(block_size)
    _check_spatial(height, width)
    return min(block_size, height), min(block_size, width)


def dropblock_gamma(keep_prob: float, block_size: int, height: int, width: int) -> float:
    """Seed probability gamma from Eq. (1), generalised to H != W.

    ``gamma = (1 - keep_prob) / (bh * bw) * (H * W) / ((H - bh + 1) * (W - bw + 1))``, with
    (bh, bw) the block clipped to the map and the denominator the size of the valid seed
    region. Clamped to at most 1 (reachable only for very low keep_prob).
    """
    keep_prob = _check_keep_prob(keep_prob)
    bh, bw = effective_block_size(block_size, height, width)
    valid = (height - bh + 1) * (width - bw + 1)
    gamma = (1.0 - keep_prob) / (bh * bw) * (height * width) / valid
    return min(gamma, 1.0)


def _scaled_gamma(keep_prob: float, block_size: int, height: int, width: int, gamma_scale: float) -> float:
    """Eq. (1) times ``gamma_scale`` (0.25 for ResNet group 3), clamped to 1."""
    return min(1.0, _check_gamma_scale(gamma_scale) * dropblock_gamma(keep_prob, block_size, height, width))


def _coverage(size: int, block: int, seed_region: SeedRegion) -> Tensor:
    """(size,) float64: how many candidate seed positions' blocks cover each row."""
    centre = (block - 1) // 2
    if seed_region == "valid":
        seeds = torch.arange(centre, size - block + centre + 1, dtype=torch.float64)
    else:
        seeds = torch.arange(size, dtype=torch.float64)
    rows = torch.arange(size, dtype=torch.float64)[:, None]
    top = seeds[None, :] - centre  # first row each seed's block covers
    return ((rows >= top) & (rows <= top + block - 1)).sum(dim=1).to(torch.float64)


def expected_drop_fraction(
    keep_prob: float,
    block_size: int,
    height: int,
    width: int,
    *,
    seed_region: SeedRegion = "valid",
    gamma: float | None = None,
    gamma_scale: float = 1.0,
) -> float:
    """Exact expected drop fraction of DropBlock, overlaps included.

    A unit covered by ``n`` candidate seed positions stays with probability ``(1-gamma)^n``,
    so the expected drop fraction is ``mean over units of 1 - (1 - gamma)^n``. Eq. (1) keeps
    only the first-order term, which is why the realised rate sits slightly below
    ``1 - keep_prob`` in "valid" mode; in "everywhere" mode the extra border seeds make it
    over-drop on small maps.
    """
    _check_seed_region(seed_region)
    bh, bw = effective_block_size(block_size, height, width)
    if gamma is None:
        gamma = _scaled_gamma(keep_prob, block_size, height, width, gamma_scale)
    covered = _coverage(height, bh, seed_region)[:, None] * _coverage(width, bw, seed_region)[None, :]
    return float((1.0 - (1.0 - gamma) ** covered).mean())


def cutout_size(keep_prob: float, height: int, width: int) -> int:
    """Side of the Cutout square whose area is closest to ``(1 - keep_prob) * H * W``."""
    keep_prob = _check_keep_prob(keep_prob)
    _check_spatial(height, width)
    return min(round(math.sqrt((1.0 - keep_prob) * height * width)), height, width)


def _sliding_any(t: Tensor, k: int, dim: int) -> Tensor:
    """``out[i] = any(t[i : i + k])`` along ``dim``, in log2(k) passes of ``|`` on shifted views."""
    out, width = t, 1
    while width * 2 <= k:  # invariant: out[i] = any(t[i : i + width])
        n = out.shape[dim] - width
        out = out.narrow(dim, 0, n) | out.narrow(dim, width, n)
        width *= 2
    if width < k:  # k < 2 * width, so two overlapping windows of `width` cover k
        n = out.shape[dim] - (k - width)
        out = out.narrow(dim, 0, n) | out.narrow(dim, k - width, n)
    return out


def _expand(padded: Tensor, bh: int, bw: int) -> Tensor:
    """Block coverage from seeds padded by (bh - 1, bw - 1) around a (H, W) window."""
    return _sliding_any(_sliding_any(padded, bh, 2), bw, 3)


def blocks_from_seeds(seed_mask: Tensor, block_size: int | tuple[int, int]) -> Tensor:
    """Expand every seed to a (bh, bw) block centred on it; blocks are cut at the border.

    Args:
        seed_mask: (N, C, H, W) bool (or 0/1), True at seeds.
        block_size: int or (bh, bw); clipped to the map.

    Returns:
        (N, C, H, W) bool: True where a unit lies inside some block.
    """
    if not isinstance(seed_mask, Tensor) or seed_mask.ndim != 4:
        raise ValueError(f"expected a 4-D seed mask (N, C, H, W), but got {getattr(seed_mask, 'shape', seed_mask)}")
    height, width = seed_mask.shape[-2:]
    if isinstance(block_size, tuple):
        bh, bw = (min(_check_block_size(b), s) for b, s in zip(block_size, (height, width)))
    else:
        bh, bw = effective_block_size(block_size, height, width)
    # Unit r is covered by seeds i with i - (bh-1)//2 <= r <= i + bh//2, i.e. by the window of
    # bh seeds starting at r - bh//2: pad bh//2 before and bh-1-bh//2 after, then slide.
    pad = (bw // 2, bw - 1 - bw // 2, bh // 2, bh - 1 - bh // 2)
    padded = F.pad((seed_mask != 0).view(torch.uint8), pad).view(torch.bool)
    return _expand(padded, bh, bw)


# --------------------------------------------------------------------------------------
# Samplers
# --------------------------------------------------------------------------------------


def _normalise(kind: str, seed: Tensor, keep: Tensor, gamma: float, target: float, block: tuple[int, int]) -> DropMask:
    """Per-sample count(M) / count_ones(M) and realised drop fraction for a keep mask."""
    count = keep[0].numel()
    ones = keep.sum(dim=(1, 2, 3), dtype=torch.float32)  # (N,)
    kept = ones / count
    scale = torch.where(ones > 0, count / ones.clamp_min(1.0), torch.zeros_like(ones))
    return DropMask(kind, seed, keep, scale, gamma, target, 1.0 - kept, block)


def sample_drop_block_mask(
    x: Tensor,
    keep_prob: float,
    block_size: int,
    *,
    per_channel: bool = True,
    seed_region: SeedRegion = "valid",
    gamma_scale: float = 1.0,
    gamma: float | None = None,
    generator: torch.Generator | None = None,
) -> DropMask:
    """Sample DropBlock masks for ``x`` (Algorithm 1, lines 5-6; Figure 2).

    Args:
        x: (N, C, H, W); only its shape, dtype and device are used.
        keep_prob: target probability of keeping a unit, in (0, 1].
        block_size: side of the square block; clipped to the map per dimension.
        per_channel: one mask per channel (the paper's default) or one shared by all channels.
        seed_region: ``"valid"`` samples seeds only where the whole block fits in the map
            (the paper); ``"everywhere"`` samples them on the whole map and truncates border
            blocks (the tutorial's and timm's behaviour), which over-drops on small maps.
        gamma_scale: multiplies gamma, e.g. 0.25 for ResNet group 3 as in the paper.
        gamma: explicit seed probability, overriding Eq. (1) (for teaching contrasts).
        generator: source of randomness; must live on x's device.

    Returns:
        DropMask with seed_mask/block_mask of shape (N, C or 1, H, W).
    """
    _check_input(x)
    keep_prob = _check_keep_prob(keep_prob)
    _check_block_size(block_size)
    _check_seed_region(seed_region)
    _check_generator(generator)
    n, c, height, width = x.shape
    bh, bw = effective_block_size(block_size, height, width)
    if gamma is None:
        gamma = _scaled_gamma(keep_prob, block_size, height, width, gamma_scale)
    elif not 0.0 <= gamma <= 1.0:
        raise ValueError(f"expected gamma in [0, 1], but got {gamma}")
    channels = c if per_channel else 1
    if seed_region == "valid":
        # Seeds on the (H-bh+1, W-bw+1) valid region (Figure 2a). Padding it by bh-1, bw-1
        # gives the window the expansion slides over; the seed mask in map coordinates, with
        # each seed at its block centre, is a view into the same tensor.
        valid = torch.rand((n, channels, height - bh + 1, width - bw + 1), generator=generator, device=x.device) < gamma
        padded = F.pad(valid.view(torch.uint8), (bw - 1,) * 2 + (bh - 1,) * 2).view(torch.bool)
        top, left = bh - 1 - (bh - 1) // 2, bw - 1 - (bw - 1) // 2
        seed = padded[..., top : top + height, left : left + width]
        keep = ~_expand(padded, bh, bw)
    else:
        seed = torch.rand((n, channels, height, width), generator=generator, device=x.device) < gamma
        keep = ~blocks_from_seeds(seed, (bh, bw))
    return _normalise("dropblock", seed, keep, gamma, 1.0 - keep_prob, (bh, bw))


def sample_dropout_mask(x: Tensor, keep_prob: float, *, generator: torch.Generator | None = None) -> DropMask:
    """Element-wise dropout masks (Srivastava et al. 2014): DropBlock with block_size 1.

    Scale is the usual inverted-dropout ``1 / keep_prob``.
    """
    _check_input(x)
    keep_prob = _check_keep_prob(keep_prob)
    _check_generator(generator)
    keep = torch.rand(x.shape, generator=generator, device=x.device) < keep_prob
    return _constant_scale("dropout", keep, keep_prob, (1, 1))


def sample_spatial_dropout_mask(
    x: Tensor, keep_prob: float, *, generator: torch.Generator | None = None
) -> DropMask:
    """SpatialDropout masks (Tompson et al. 2015): whole channels, shape (N, C, 1, 1)."""
    _check_input(x)
    keep_prob = _check_keep_prob(keep_prob)
    _check_generator(generator)
    n, c, height, width = x.shape
    keep = torch.rand((n, c, 1, 1), generator=generator, device=x.device) < keep_prob
    return _constant_scale("spatial_dropout", keep, keep_prob, (height, width))


def _constant_scale(kind: str, keep: Tensor, keep_prob: float, block: tuple[int, int]) -> DropMask:
    n = keep.shape[0]
    kept = keep.sum(dim=(1, 2, 3), dtype=torch.float32) / keep[0].numel()
    scale = torch.full((n,), 1.0 / keep_prob, dtype=torch.float32, device=keep.device)
    return DropMask(kind, ~keep, keep, scale, 1.0 - keep_prob, 1.0 - keep_prob, 1.0 - kept, block)


def sample_cutout_mask(
    x: Tensor,
    keep_prob: float,
    *,
    size: int | None = None,
    seed_region: SeedRegion = "valid",
    generator: torch.Generator | None = None,
) -> DropMask:
    """Cutout masks (DeVries & Taylor 2017): one square per image, shared by all channels.

    Args:
        x: (N, C, H, W), normally the input images.
        keep_prob: ``1 - keep_prob`` is the drop budget the square's area is chosen from.
        size: explicit side of the square, overriding the budget.
        seed_region: ``"valid"`` keeps the square inside the image (exact budget);
            ``"everywhere"`` centres it anywhere and cuts it at the border (the original).
        generator: source of randomness; must live on x's device.

    Returns:
        DropMask with masks of shape (N, 1, H, W) and scale 1 (Cutout does not rescale).
    """
    _check_input(x)
    keep_prob = _check_keep_prob(keep_prob)
    _check_seed_region(seed_region)
    _check_generator(generator)
    n, _, height, width = x.shape
    _check_spatial(height, width)
    side = cutout_size(keep_prob, height, width) if size is None else min(_check_block_size(size, "size"), height, width)
    if side == 0:  # budget too small for a single pixel: nothing to cut
        none = torch.zeros((n, 1, height, width), dtype=torch.bool, device=x.device)
        return _unscaled(_normalise("cutout", none, ~none, 0.0, 1.0 - keep_prob, (0, 0)))
    if seed_region == "valid":
        rows, cols = height - side + 1, width - side + 1
    else:
        rows, cols = height, width
    index = torch.randint(rows * cols, (n,), generator=generator, device=x.device)
    seed = torch.zeros((n, rows * cols), dtype=torch.bool, device=x.device)
    seed.scatter_(1, index[:, None], True)
    seed = seed.view(n, 1, rows, cols)
    if seed_region == "valid":  # place each centre in map coordinates
        c0 = (side - 1) // 2
        seed = F.pad(seed.view(torch.uint8), (c0, side - 1 - c0, c0, side - 1 - c0)).view(torch.bool)
    keep = ~blocks_from_seeds(seed, (side, side))
    return _unscaled(_normalise("cutout", seed, keep, 1.0 / (rows * cols), 1.0 - keep_prob, (side, side)))


def _unscaled(mask: DropMask) -> DropMask:
    """Cutout is data augmentation: it zeroes pixels but does not rescale the rest."""
    return replace(mask, scale=torch.ones_like(mask.scale))


# --------------------------------------------------------------------------------------
# Ops
# --------------------------------------------------------------------------------------


def apply_mask(x: Tensor, mask: DropMask) -> Tensor:
    """Algorithm 1, lines 7-8: ``A * M * scale``, with the per-sample scale of ``mask``.

    Args:
        x: (N, C, H, W).
        mask: a DropMask sampled for a tensor of x's shape.

    Returns:
        (N, C, H, W) tensor of x's dtype.
    """
    _check_input(x)
    if mask.block_mask.shape[0] != x.shape[0] or mask.block_mask.shape[-2:] not in (x.shape[-2:], (1, 1)):
        raise ValueError(
            f"expected a mask for input of shape {tuple(x.shape)}, but got block_mask of shape "
            f"{tuple(mask.block_mask.shape)}"
        )
    scale = mask.scale.to(x.dtype).view(-1, 1, 1, 1)
    return x * (mask.block_mask * scale)  # bool * scale -> x's dtype


def drop_block2d(
    x: Tensor,
    keep_prob: float,
    block_size: int,
    *,
    training: bool = True,
    generator: torch.Generator | None = None,
    per_channel: bool = True,
    seed_region: SeedRegion = "valid",
    gamma_scale: float = 1.0,
) -> Tensor:
    """DropBlock (Algorithm 1): drop contiguous block_size x block_size regions.

    Args:
        x: (N, C, H, W) activations.
        keep_prob: target probability of keeping a unit, in (0, 1].
        block_size: side of the block; clipped to the map.
        training: identity when False (the paper applies no DropBlock at inference).
        generator: source of randomness; must live on x's device.
        per_channel: an independent mask per channel (default, the paper's Algorithm 1).
        seed_region: ``"valid"`` (paper) or ``"everywhere"`` (truncated border blocks).
        gamma_scale: multiplies gamma (0.25 for ResNet group 3 in the paper).

    Returns:
        (N, C, H, W): ``x * M * count(M) / count_ones(M)`` per sample, or x itself when not
        training or keep_prob == 1.

    Raises:
        TypeError, ValueError: on invalid arguments.
    """
    _check_input(x)
    keep_prob = _check_keep_prob(keep_prob)
    _check_block_size(block_size)
    _check_seed_region(seed_region)
    _check_generator(generator)
    _check_gamma_scale(gamma_scale)
    if not training or keep_prob == 1.0 or x.numel() == 0:
        return x
    mask = sample_drop_block_mask(
        x, keep_prob, block_size, per_channel=per_channel, seed_region=seed_region,
        gamma_scale=gamma_scale, generator=generator,
    )
    return apply_mask(x, mask)


def _drop_with(
    sampler, x: Tensor, keep_prob: float, training: bool, generator: torch.Generator | None
) -> Tensor:
    """Validate, return x when nothing is to be dropped, else apply ``sampler``'s mask."""
    _check_input(x)
    keep_prob = _check_keep_prob(keep_prob)
    _check_generator(generator)
    if not training or keep_prob == 1.0 or x.numel() == 0:
        return x
    return apply_mask(x, sampler(x, keep_prob, generator=generator))


def dropout(x: Tensor, keep_prob: float, *, training: bool = True, generator: torch.Generator | None = None) -> Tensor:
    """Element-wise dropout on (N, C, H, W), scaled by ``1 / keep_prob``."""
    return _drop_with(sample_dropout_mask, x, keep_prob, training, generator)


def spatial_dropout(
    x: Tensor, keep_prob: float, *, training: bool = True, generator: torch.Generator | None = None
) -> Tensor:
    """SpatialDropout on (N, C, H, W): whole channels, scaled by ``1 / keep_prob``."""
    return _drop_with(sample_spatial_dropout_mask, x, keep_prob, training, generator)


def cutout(
    x: Tensor,
    keep_prob: float,
    *,
    size: int | None = None,
    training: bool = True,
    generator: torch.Generator | None = None,
    seed_region: SeedRegion = "valid",
) -> Tensor:
    """Cutout on images (N, C, H, W): zero one square per image, no rescaling."""
    _check_input(x)
    keep_prob = _check_keep_prob(keep_prob)
    _check_seed_region(seed_region)
    _check_generator(generator)
    if size is not None:
        _check_block_size(size, "size")
    if not training or (keep_prob == 1.0 and size is None) or x.numel() == 0:
        return x
    return apply_mask(x, sample_cutout_mask(x, keep_prob, size=size, seed_region=seed_region, generator=generator))


def linear_keep_prob(step: int, total_steps: int, target: float, start: float = 1.0) -> float:
    """The paper's linear schedule: ``start`` at step 0 to ``target`` at ``total_steps``.

    Clamped to ``target`` after ``total_steps``; ``total_steps == 0`` gives the target at once.
    """
    target = _check_keep_prob(target)
    start = _check_keep_prob(start)
    if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 0:
        raise ValueError(f"expected step to be an int >= 0, but got {step!r}")
    if isinstance(total_steps, bool) or not isinstance(total_steps, numbers.Integral) or total_steps < 0:
        raise ValueError(f"expected total_steps to be an int >= 0, but got {total_steps!r}")
    if step >= total_steps:
        return target
    return start + (target - start) * (step / total_steps)
