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
* DropBlock normalisation ``count(M) / count_ones(M)``: Algorithm 1 (line 8) does not say over
  what M is counted. ``normalize="sample"`` (our default) counts over C, H, W of one sample, so
  a sample's output never depends on the rest of the batch and Monte Carlo samples run as one
  batch stay independent; ``normalize="batch"`` counts over the whole (N, C, H, W) tensor, as
  the TF TPU ResNet, ``torchvision.ops.drop_block2d`` and timm do. A sample (or batch) with
  every unit dropped gets scale 0 (its output is all zeros, never NaN/inf).
* gamma: ``gamma_mode="eq1"`` is the paper's Eq. (1), which ignores overlapping blocks and so
  drops a little less than asked; ``gamma_mode="calibrated"`` solves
  ``expected_drop_fraction(gamma) = target`` numerically (:func:`calibrated_gamma`).
* Masks are drawn on the generator's device and then moved to x's device, so one CPU
  generator seeded alike gives the same masks whatever device the activations live on.
* ``generator`` may also be a sequence of N generators, one per sample: sample i then draws
  from ``generator[i]`` exactly what a batch of one (x[i:i+1]) would draw from it, so a sample's
  masks do not depend on which other samples share its batch (Monte Carlo samples computed in
  rounds equal those of one batch). A sequence of one is that generator itself.
* DropBlock seeds are independent Bernoulli(gamma) draws: one uniform per candidate position,
  or, for gamma <= ``GAP_MAX_GAMMA`` on the CPU, the positions drawn as geometric gaps (about
  gamma * positions random numbers; the same distribution, other masks for a given seed).
* Masks are built in x's memory format (channels last stays channels last), so applying them
  runs over both tensors in memory order; their values never depend on the layout.
"""

from __future__ import annotations

import functools
import math
import numbers
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from .checks import (
    KINDS,
    GammaMode,
    Generators,
    Kind,
    Normalize,
    SeedRegion,
    check_block_size,
    check_gamma_mode,
    check_gamma_scale,
    check_generator,
    check_input,
    check_keep_prob,
    check_kind,
    check_normalize,
    check_seed_region,
)

__all__ = [
    "KINDS",
    "DropMask",
    "GammaMode",
    "Generators",
    "Kind",
    "Normalize",
    "SeedRegion",
    "apply_mask",
    "blocks_from_seeds",
    "calibrated_gamma",
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
    "sample_mask",
    "sample_spatial_dropout_mask",
    "spatial_dropout",
]



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
        target_drop: the drop fraction asked for at this site,
            ``min(1, gamma_scale * (1 - keep_prob))`` (a gamma/4 site of ResNet group 3 targets
            ``(1 - keep_prob) / 4``).
        drop_fraction: (N,) float32; the share of units each sample actually dropped.
        block_size: (bh, bw) after clipping to the feature map.
        keep_prob: the keep_prob the mask was sampled for.
        gamma_scale: the factor on ``1 - keep_prob`` in ``target_drop``: DropBlock's
            ``gamma_scale`` (0.25 at a gamma/4 site), 1 for the other kinds and for an explicit gamma.
    """

    kind: str
    seed_mask: Tensor
    block_mask: Tensor
    scale: Tensor
    gamma: float
    target_drop: float
    drop_fraction: Tensor
    block_size: tuple[int, int]
    keep_prob: float
    gamma_scale: float

    @property
    def realised_drop(self) -> float:
        """Mean realised drop fraction over the batch (synchronises with the device)."""
        return float(self.drop_fraction.mean())

    def to(self, device: torch.device | str) -> DropMask:
        """The same masks on ``device`` (this mask itself when they are there already)."""
        device = torch.device(device)
        if all(t.device == device for t in (self.seed_mask, self.block_mask, self.scale, self.drop_fraction)):
            return self
        return replace(
            self, seed_mask=self.seed_mask.to(device), block_mask=self.block_mask.to(device),
            scale=self.scale.to(device), drop_fraction=self.drop_fraction.to(device),
        )


# --------------------------------------------------------------------------------------
# Validation at the public edge
# --------------------------------------------------------------------------------------


def _draw_device(x: Tensor, generator: Generators) -> torch.device:
    """Masks are drawn where the generator lives (then moved to x's device)."""
    if isinstance(generator, (list, tuple)):
        return generator[0].device if generator else x.device
    return x.device if generator is None else generator.device


def _one_or_many(generator: Generators) -> Generators:
    """A sequence of one generator is that generator (the same draws by construction)."""
    if isinstance(generator, (list, tuple)):
        return generator[0] if len(generator) == 1 else list(generator)
    return generator


def _rand(shape: tuple[int, ...], generator: Generators, device: torch.device,
          dtype: torch.dtype = torch.float32) -> Tensor:
    """Uniforms in [0, 1) of ``shape`` (N, ...): from one generator, or row i from ``generator[i]``
    (exactly what ``torch.rand`` of that row's shape draws from it)."""
    if not isinstance(generator, list):
        return torch.rand(shape, generator=generator, device=device, dtype=dtype)
    u = torch.empty(shape, device=device, dtype=dtype)
    for row, g in zip(u, generator):
        torch.rand(row.shape, generator=g, device=device, dtype=dtype, out=row)
    return u


def _randint(high: int, n: int, generator: Generators, device: torch.device) -> Tensor:
    """(n,) integers in [0, high): from one generator, or entry i from ``generator[i]``."""
    if not isinstance(generator, list):
        return torch.randint(high, (n,), generator=generator, device=device)
    return torch.cat([torch.randint(high, (1,), generator=g, device=device) for g in generator])


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
    block_size = check_block_size(block_size)
    _check_spatial(height, width)
    return min(block_size, height), min(block_size, width)


def dropblock_gamma(keep_prob: float, block_size: int, height: int, width: int) -> float:
    """Seed probability gamma from Eq. (1), generalised to H != W.

    ``gamma = (1 - keep_prob) / (bh * bw) * (H * W) / ((H - bh + 1) * (W - bw + 1))``, with
    (bh, bw) the block clipped to the map and the denominator the size of the valid seed
    region. Clamped to at most 1 (reachable only for very low keep_prob).
    """
    keep_prob = check_keep_prob(keep_prob)
    bh, bw = effective_block_size(block_size, height, width)
    valid = (height - bh + 1) * (width - bw + 1)
    gamma = (1.0 - keep_prob) / (bh * bw) * (height * width) / valid
    return min(gamma, 1.0)


def _scaled_gamma(keep_prob: float, block_size: int, height: int, width: int, gamma_scale: float) -> float:
    """Eq. (1) times ``gamma_scale`` (0.25 for ResNet group 3), clamped to 1."""
    return min(1.0, check_gamma_scale(gamma_scale) * dropblock_gamma(keep_prob, block_size, height, width))


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
    check_seed_region(seed_region)
    bh, bw = effective_block_size(block_size, height, width)
    if gamma is None:
        gamma = _scaled_gamma(keep_prob, block_size, height, width, gamma_scale)
    return float((1.0 - (1.0 - gamma) ** _covered(height, width, bh, bw, seed_region)).mean())


def _covered(height: int, width: int, bh: int, bw: int, seed_region: SeedRegion) -> Tensor:
    """(H, W) float64: how many candidate seeds' blocks cover each unit."""
    return _coverage(height, bh, seed_region)[:, None] * _coverage(width, bw, seed_region)[None, :]


def calibrated_gamma(
    keep_prob: float,
    block_size: int,
    height: int,
    width: int,
    *,
    seed_region: SeedRegion = "valid",
    gamma_scale: float = 1.0,
) -> float:
    """The gamma whose exact expected drop fraction equals the target, overlaps included.

    Eq. (1) is first order in gamma ("only an approximation", Sec. 3), so the realised drop
    sits below ``1 - keep_prob`` (0.0929 instead of 0.1 at 14x14, b=7). This solves
    ``expected_drop_fraction(gamma) = gamma_scale * (1 - keep_prob)`` by bisection: the
    expectation ``mean(1 - (1 - gamma)^n)`` is continuous and increasing in gamma, 0 at 0 and 1
    at 1 (every unit is covered by at least one candidate seed), so the root is unique.

    Returns:
        gamma in [0, 1], to within 1e-12.
    """
    keep_prob = check_keep_prob(keep_prob)
    check_seed_region(seed_region)
    target = min(1.0, check_gamma_scale(gamma_scale) * (1.0 - keep_prob))
    bh, bw = effective_block_size(block_size, height, width)
    return _solve_gamma(target, height, width, bh, bw, seed_region)


@functools.lru_cache(maxsize=1024)
def _solve_gamma(target: float, height: int, width: int, bh: int, bw: int, seed_region: str) -> float:
    if target <= 0.0:
        return 0.0
    if target >= 1.0:
        return 1.0
    covered = _covered(height, width, bh, bw, seed_region)  # type: ignore[arg-type]
    low, high = 0.0, 1.0
    while high - low > 1e-12:
        mid = 0.5 * (low + high)
        if float((1.0 - (1.0 - mid) ** covered).mean()) < target:
            low = mid
        else:
            high = mid
    return 0.5 * (low + high)


def cutout_size(keep_prob: float, height: int, width: int) -> int:
    """Side of the Cutout square whose area is closest to ``(1 - keep_prob) * H * W``."""
    keep_prob = check_keep_prob(keep_prob)
    _check_spatial(height, width)
    return min(round(math.sqrt((1.0 - keep_prob) * height * width)), height, width)


def _dilate(seeds: Tensor, bh: int, bw: int, step_h: int, step_w: int, lead: int = 0) -> Tensor:
    """``out[p] = any(seeds[p - a * step_h - b * step_w] for a < bh, b < bw)`` on a flat bool buffer
    (zeros read before its start): each seed becomes the top-left corner of a (bh, bw) block when
    ``step_h``/``step_w`` are the strides of a row and a column.

    Per dimension, ``|`` of the buffer and itself shifted by the window so far doubles the window
    (then one overlapping pass reaches k), so a block takes about log2(bh) + log2(bw) passes. Every
    pass runs over the whole contiguous buffer at once (all samples and channels, either layout),
    which vectorises; the caller lays the seeds out so that no window reaches across a row or map
    edge into another row's seeds.

    ``seeds`` holds ``lead`` zeros before the map (a multiple of 8; :func:`_dilate_lead` is enough):
    a pass is then one ``|`` that reads those zeros, and the two scratch buffers get the same lead
    (else each pass also copies the first ``shift`` units). ``seeds`` is never written; the result
    (the map, without the lead) is ``seeds`` itself only for a 1x1 block, else a view of a scratch
    buffer at a storage offset that is a multiple of 8.
    """
    size = seeds.numel() - lead
    scratch: list[Tensor] = []
    out = seeds
    for k, step in ((bw, step_w), (bh, step_h)):
        width = 1
        while width < k:  # invariant: out[p] = any over a window of `width` along this dimension
            grow = min(width, k - width)
            shift = grow * step
            if not scratch:
                row = -(-(lead + size) // 8) * 8
                flat = torch.empty(2 * row, dtype=torch.bool, device=seeds.device)
                if lead:
                    flat.as_strided((2, lead), (row, 1)).zero_()
                scratch = [flat[: lead + size], flat[row : row + lead + size]]
            nxt = scratch[0] if out is not scratch[0] else scratch[1]
            if shift <= lead:
                torch.bitwise_or(out[lead:], out[lead - shift : lead + size - shift], out=nxt[lead:])
            else:
                src, dst = out[lead:], nxt[lead:]
                if shift < size:
                    torch.bitwise_or(src[shift:], src[:-shift], out=dst[shift:])
                dst[: min(shift, size)].copy_(src[: min(shift, size)])
            out, width = nxt, width + grow
    return out[lead:]


def _dilate_lead(bh: int, bw: int, step_h: int, step_w: int) -> int:
    """Zeros before the map that let every pass of :func:`_dilate` read shifted without a copy: the
    largest shift, ``k // 2`` steps along a dimension, rounded up to 8 (word-aligned counting)."""
    reach = max(bh // 2 * step_h, bw // 2 * step_w)
    return -(-reach // 8) * 8


def _strides(shape: tuple[int, int, int, int], layout: torch.memory_format) -> tuple[int, int, int, int]:
    """The strides of a dense (N, C, H, W) tensor in ``layout`` (NCHW or channels last)."""
    n, c, h, w = shape
    return (h * w * c, 1, w * c, c) if layout == torch.channels_last else (c * h * w, h * w, w, 1)


def _empty(shape: tuple[int, int, int, int], device: torch.device, layout: torch.memory_format) -> Tensor:
    return torch.empty(shape, dtype=torch.bool, device=device, memory_format=layout)


def _padded_blocks(shape: tuple[int, int, int, int], bh: int, bw: int, device: torch.device,
                   layout: torch.memory_format) -> tuple[Tensor, Tensor]:
    """(buffer, centres): a zeroed flat buffer holding (N, C, H + bh - 1, W + bw - 1) in ``layout``,
    and the (N, C, H, W) view of it where seeds are written at their block centres.

    :func:`_padded_dropped` then gives the block coverage. A centre i covers rows
    ``i - (bh-1)//2 .. i + bh//2``; written bh//2 rows into the padding, it is the top-left corner
    of a block whose bottom-right corner is ``bh - 1`` padded rows below the unit it covers, so the
    map is the bottom-right (H, W) of the dilated buffer, where no window reaches across a row.
    """
    n, c, height, width = shape
    pshape = (n, c, height + bh - 1, width + bw - 1)
    padded = _zeros(pshape, device, layout)
    buf = padded.as_strided((math.prod(pshape),), (1,))  # without the spare byte
    return buf, padded[..., bh // 2 : bh // 2 + height, bw // 2 : bw // 2 + width]


def _padded_dropped(buf: Tensor, shape: tuple[int, int, int, int], bh: int, bw: int,
                    layout: torch.memory_format) -> Tensor:
    """(N, C, H, W) bool view: True where a unit lies in the block of a seed of :func:`_padded_blocks`."""
    n, c, height, width = shape
    pshape = (n, c, height + bh - 1, width + bw - 1)
    strides = _strides(pshape, layout)
    dropped = _dilate(buf, bh, bw, strides[2], strides[3]).as_strided(pshape, strides)
    return dropped[..., bh - 1 :, bw - 1 :]


def blocks_from_seeds(seed_mask: Tensor, block_size: int | tuple[int, int]) -> Tensor:
    """Expand every seed to a (bh, bw) block centred on it; blocks are cut at the border.

    Args:
        seed_mask: (N, C, H, W) bool (or 0/1), True at seeds.
        block_size: int or (bh, bw); clipped to the map.

    Returns:
        (N, C, H, W) bool: True where a unit lies inside some block (in seed_mask's memory format).
    """
    if not isinstance(seed_mask, Tensor) or seed_mask.ndim != 4:
        raise ValueError(f"expected a 4-D seed mask (N, C, H, W), but got {getattr(seed_mask, 'shape', seed_mask)}")
    height, width = seed_mask.shape[-2:]
    if isinstance(block_size, tuple):
        bh, bw = (min(check_block_size(b), s) for b, s in zip(block_size, (height, width)))
    else:
        bh, bw = effective_block_size(block_size, height, width)
    shape = tuple(seed_mask.shape)
    layout = _memory_format(seed_mask)
    buf, centres = _padded_blocks(shape, bh, bw, seed_mask.device, layout)
    centres.copy_(seed_mask if seed_mask.dtype == torch.bool else seed_mask != 0)
    return _empty(shape, seed_mask.device, layout).copy_(_padded_dropped(buf, shape, bh, bw, layout))


def _memory_format(t: Tensor) -> torch.memory_format:
    """channels_last when ``t`` is laid out so (and not also NCHW-contiguous), else contiguous.

    Masks are built in the activation's layout: the elementwise ops that apply them then run
    over both tensors in memory order (Lite0 re-runs in NHWC on the CPU, ``models.engine``), and
    the one transposition happens while writing the bool seeds, the smallest pass.
    """
    if t.ndim == 4 and not t.is_contiguous() and t.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


def _valid_blocks(shape: tuple[int, int, int, int], bh: int, bw: int, gamma: float, generator: Generators,
                  device: torch.device, layout: torch.memory_format) -> tuple[Tensor, Tensor]:
    """(seed_mask, keep) for seeds where the whole block fits (Figure 2a), without padding.

    A seed is drawn for each top-left corner of a block inside the map, (H - bh + 1, W - bw + 1)
    positions, and written at that corner of a dense (N, C, H, W) buffer; dilating it towards the
    bottom right (:func:`_dilate`) gives the dropped units directly in map coordinates. A window
    that runs off a row's (or map's) left or top edge reads the previous row's last bw - 1 columns
    (the previous map's last bh - 1 rows), where no corner lies. The buffer starts with ``lead``
    zeros, the offset from a block's corner to its centre ``((bh-1)//2, (bw-1)//2)``, so the seed
    mask (seeds at block centres, in map coordinates) is the same storage read ``lead`` earlier.
    """
    n, c, height, width = shape
    strides = _strides(shape, layout)
    centre = (bh - 1) // 2 * strides[2] + (bw - 1) // 2 * strides[3]
    lead = max(centre, _dilate_lead(bh, bw, strides[2], strides[3]))
    size = math.prod(shape)
    corners = _zeros(shape, device, layout, lead)
    buf = corners.as_strided((lead + size,), (1,), 0)  # without the spare byte
    _, drawn = _draw_seeds((n, c, height - bh + 1, width - bw + 1), gamma, generator, device,
                        out=corners[..., : height - bh + 1, : width - bw + 1])
    seed = buf.as_strided(shape, strides, lead - centre)
    if not drawn:
        return seed, _empty(shape, device, layout).fill_(True)
    dropped = _dilate(buf, bh, bw, strides[2], strides[3], lead)
    return seed, dropped.logical_not_().as_strided(shape, strides, dropped.storage_offset())


def _everywhere_blocks(shape: tuple[int, int, int, int], bh: int, bw: int, gamma: float, generator: Generators,
                       device: torch.device, layout: torch.memory_format) -> tuple[Tensor, Tensor]:
    """(seed_mask, keep) for seeds anywhere on the map, border blocks cut.

    The seeds are written into the (H, W) window of a zeroed (H + bh - 1, W + bw - 1) map, bh//2 rows
    and bw//2 columns in (:func:`_padded_blocks`); :func:`_sliding_any` then narrows it to the
    (H, W) coverage, one ``|`` of two shifted views per pass. That beat dilating the whole padded
    buffer flat and copying its (H, W) window out (measured on Lite0 and ResNet-50 shapes, 1 to 8
    samples): the passes shrink, and there is no window copy.
    """
    n, c, height, width = shape
    padded = _zeros((n, c, height + bh - 1, width + bw - 1), device, layout)
    seed = padded[..., bh // 2 : bh // 2 + height, bw // 2 : bw // 2 + width]
    if not _draw_seeds(shape, gamma, generator, device, out=seed)[1]:
        return seed, _empty(shape, device, layout).fill_(True)
    return seed, _sliding_any(_sliding_any(padded, bh, 2), bw, 3).logical_not_()


def _sliding_any(t: Tensor, k: int, dim: int) -> Tensor:
    """``out[i] = any(t[i : i + k])`` along ``dim`` (a new tensor k - 1 shorter there, for k > 1), in
    about log2(k) passes of ``|`` on shifted views."""
    out, width = t, 1
    while width * 2 <= k:  # invariant: out[i] = any(t[i : i + width])
        n = out.shape[dim] - width
        out = out.narrow(dim, 0, n) | out.narrow(dim, width, n)
        width *= 2
    if width < k:  # k < 2 * width, so two overlapping windows of `width` cover k
        n = out.shape[dim] - (k - width)
        out = out.narrow(dim, 0, n) | out.narrow(dim, k - width, n)
    return out


# --------------------------------------------------------------------------------------
# Samplers
# --------------------------------------------------------------------------------------


def _normalise(
    kind: str, seed: Tensor, keep: Tensor, gamma: float, block: tuple[int, int],
    normalize: Normalize = "sample", *, keep_prob: float, gamma_scale: float = 1.0,
) -> DropMask:
    """count(M) / count_ones(M) per sample or over the batch, and each sample's realised drop."""
    count = keep[0].numel()
    ones = _count_kept(keep)  # (N,) float32, exact integers
    kept = ones / count
    if normalize == "batch":  # one scale for the whole tensor (TF, torchvision, timm)
        count, ones = count * keep.shape[0], ones.sum().expand(keep.shape[0])
    # count / ones as torch divides a number by a tensor (reciprocal, then times count: the same
    # bits as before), 0 where nothing is kept (1 / 0 = inf): three ops instead of a where of six.
    scale = ones.reciprocal().mul_(count).nan_to_num_(nan=0.0, posinf=0.0)
    target = min(1.0, gamma_scale * (1.0 - keep_prob))
    return DropMask(kind, seed, keep, scale, gamma, target, 1.0 - kept, block, keep_prob, gamma_scale)


def _count_kept(keep: Tensor) -> Tensor:
    """(N,) float32: True units per sample of a bool (N, ...) mask, exact.

    A dense mask (each sample's units one run of storage, NCHW or channels last) is summed 8 units
    at a time: its bytes read as int64 words, 255 words added per byte lane (each lane stays below
    256, so no carry crosses lanes), then the lanes' bytes. That is one read of the mask as words,
    ~30x faster than widening every byte to an integer first; other masks are summed that way.
    """
    n, m = keep.shape[0], keep[0].numel()
    dense = (n == 1 or keep.stride(0) == m) and (
        keep.is_contiguous() or (keep.ndim == 4 and keep.is_contiguous(memory_format=torch.channels_last)))
    if not dense or m % 8 or keep.storage_offset() % 8 or m < 8 * 255 or n == 0:
        wide = torch.int32 if m < 2**31 else torch.int64
        return keep.view(torch.uint8).sum(dim=tuple(range(1, keep.ndim)), dtype=wide).to(torch.float32)
    words = keep.as_strided((n, m), (m, 1)).view(torch.uint8).view(torch.int64)  # (N, m / 8)
    groups = words.shape[1] // 255
    lanes = words.as_strided((n, groups, 255), (words.shape[1], 255, 1)).sum(dim=2)  # (N, groups), bytes < 256
    ones = lanes.view(torch.uint8).sum(dim=1, dtype=torch.int64)
    ones += words[:, groups * 255 :].view(torch.uint8).sum(dim=1, dtype=torch.int64)
    return ones.to(torch.float32)


# Seeds are drawn by geometric gaps up to this gamma (on the CPU), one uniform per unit above it:
# a gap costs about as much as 4 to 5 units of ``rand < gamma``; measured on 8x672x14x14 and
# 8x1152x7x7 (sample + apply), gaps are 1.6-2x faster at gamma 0.05, ~1.15x at 0.2, slower at 0.3.
# The two give the same distribution but not the same masks for a seed; -1 turns gaps off, which
# gives exactly the masks of the sampler before them (one uniform per unit at every gamma, 0 too).
GAP_MAX_GAMMA = 0.2


def _draw_seeds(
    shape: tuple[int, ...], gamma: float, generator: Generators, device: torch.device, *,
    out: Tensor | None = None, layout: torch.memory_format = torch.contiguous_format,
) -> tuple[Tensor, bool]:
    """Independent Bernoulli(gamma) seeds of ``shape`` (N, C, H, W), bool.

    Small gamma on the CPU: the positions of the seeds, drawn as geometric gaps
    (:func:`_bernoulli_rows`, about ``gamma * numel`` random numbers), are set to True.
    Otherwise one uniform per unit, ``rand(shape) < gamma``. Which of the two runs depends only on
    gamma and the generator's device, so a generator gives the same seeds whatever the
    activation's device or layout. With a list of generators, sample i (``shape[0]`` of them) draws
    from the i-th as a batch of one would.

    Args:
        out: a bool view of ``shape`` holding zeros, in a :func:`_zeros` buffer, written in place; else a new tensor (in
            ``layout`` when the seeds are set by position, NCHW when compared, so the one
            transposition is left to a pass over bools).

    Returns:
        (seeds, whether any seed may be set): False only when none can be (no position drawn, or
        gamma 0), so the caller can skip the block expansion.
    """
    if device.type != "cpu" or gamma > GAP_MAX_GAMMA:
        u = _rand(shape, generator, device)
        return (u < gamma, True) if out is None else (torch.lt(u, gamma, out=out), gamma > 0.0)
    seeds = _zeros(shape, device, layout) if out is None else out
    if isinstance(generator, list):  # each sample's positions from its own generator, offset to its rows
        positions = _bernoulli_rows(math.prod(shape[1:]), gamma, generator)
    else:
        return seeds, _set_at(seeds, _bernoulli_positions(math.prod(shape), gamma, generator), skipped=False)
    return seeds, positions.numel() > 0 and _set_at(seeds, positions)


def _bernoulli_positions(m: int, gamma: float, generator: torch.Generator | None, chunk: int | None = None) -> Tensor:
    """Increasing indices in [0, m), float64 holding exact integers: each index independently
    with probability gamma. One generator's draws of :func:`_bernoulli_rows` (the same chunks in
    the same order), trimmed at m instead of marked -1: fewer ops, for a single generator."""
    if gamma <= 0.0 or m == 0:
        return torch.empty(0, dtype=torch.float64)
    log_q = math.log1p(-gamma)  # < 0: gamma < 1 here
    mean = m * gamma
    chunk = chunk or int(mean + 6.0 * math.sqrt(mean) + 16)
    parts, last = [], -1.0  # last: the previous success (-1: before the first unit)
    while True:
        pos = _gaps_to_positions(torch.rand((1, chunk), dtype=torch.float64, generator=generator), log_q)[0]
        pos.add_(last)
        last = float(pos[-1])
        if last >= m:
            parts.append(pos[: int(torch.searchsorted(pos, float(m)))])
            break
        parts.append(pos)
    return parts[0] if len(parts) == 1 else torch.cat(parts)


def _bernoulli_rows(m: int, gamma: float, generators: list[torch.Generator | None], chunk: int | None = None) -> Tensor:
    """Bernoulli(gamma) successes among m positions per generator: row i's indices in [0, m), plus
    ``i * m``; float64 holding exact integers, increasing within a row, and -1 for each draw that
    fell past its row's end (callers skip these: compacting them away cost more than the rest).

    The gap G before each next success is geometric, ``P(G >= k) = (1 - gamma)^k``, drawn by
    inversion: ``G = floor(log(1 - U) / log(1 - gamma))`` with U uniform in [0, 1) (float64,
    so 1 - U is exact and > 0). Each generator draws ``chunk`` gaps at a time (default: the mean
    number of successes plus 6 standard deviations, so almost always once) until they pass m. Only
    the draws are per generator; the gaps of all rows are then turned into positions at once.
    """
    if gamma <= 0.0 or m == 0 or not generators:
        return torch.empty(0, dtype=torch.float64)
    log_q = math.log1p(-gamma)  # < 0: gamma < 1 here
    mean = m * gamma
    chunk = chunk or int(mean + 6.0 * math.sqrt(mean) + 16)
    u = torch.empty((len(generators), chunk), dtype=torch.float64)
    for row, g in zip(u, generators):
        torch.rand(chunk, dtype=torch.float64, generator=g, out=row)
    pos = _gaps_to_positions(u, log_q).add_(-1.0)  # -1: before the first unit
    parts = []
    for i, last in enumerate(pos[:, -1].tolist()):
        while last < m:  # rare: this row's chunk ended before m, so its generator draws another
            more = _gaps_to_positions(torch.rand((1, chunk), dtype=torch.float64, generator=generators[i]), log_q)
            more.add_(last)
            last = float(more[0, -1])
            parts.append(more.add_(i * m).masked_fill_(more >= (i + 1) * m, -1.0).view(-1))
    past = pos >= m
    pos.add_(torch.arange(len(generators), dtype=torch.float64).mul_(m)[:, None]).masked_fill_(past, -1.0)
    return pos.view(-1) if not parts else torch.cat([pos.view(-1), *parts])


def _gaps_to_positions(u: Tensor, log_q: float) -> Tensor:
    """(R, k) uniforms (consumed) -> (R, k) cumulative positions ``sum_j (gap_j + 1)``, exact integers."""
    return torch.log1p(u.neg_()).div_(log_q).floor_().add_(1.0).cumsum_(1)


def _set_at(out: Tensor, positions: Tensor, skipped: bool = True) -> bool:
    """``out.flatten()[positions] = True`` for a view of any strides, in place, skipping negative
    positions (when ``skipped``: positions known to be >= 0 skip that test); whether any was set.

    ``positions`` (float64, exact integers; consumed) are unravelled in (N, C, H, W) order to
    storage offsets in float64, vectorised: per dimension a true division floored (exact: below
    2^52 units ``rest / size`` rounds below the next integer) and ``rest - size * quotient`` (the
    fmod-based remainder and floor division measured ~2x slower). ``out`` is a view of a
    :func:`_zeros` buffer, whose last byte no view covers: the skipped positions are written there
    (cheaper than leaving them out).
    """
    skip = None
    if skipped:
        skip = positions < 0
        if bool(skip.all()):
            return False
    elif positions.numel() == 0:
        return False
    offset = out.storage_offset()
    dims = _coalesced(out)
    rest, offsets = positions, None
    for size, stride in reversed(dims[1:]):
        quotient = torch.div(rest, size).floor_()
        index = rest.add_(quotient, alpha=-size)  # the index along this dimension
        offsets = index.mul_(stride) if offsets is None else offsets.add_(index, alpha=stride)
        rest = quotient
    if dims[0][1] != 1:
        rest = rest.mul_(dims[0][1])
    offsets = rest if offsets is None else offsets.add_(rest)
    if skip is None:
        span = sum((size - 1) * stride for size, stride in dims) + 1
    else:
        span = out.untyped_storage().nbytes() - offset - 1  # up to the spare byte, at index span
        offsets.masked_fill_(skip, span)
        span += 1
    out.as_strided((span,), (1,), offset).index_fill_(0, offsets.to(torch.int64), True)
    return True


def _coalesced(t: Tensor) -> list[tuple[int, int]]:
    """``t``'s (size, stride) per dimension, outer first, with each dimension merged into the one
    outside it where that one steps over it exactly (a dense NCHW map is one run; fewer divisions)."""
    dims: list[tuple[int, int]] = []
    for size, stride in zip(t.shape, t.stride()):
        if size == 1:
            continue
        if dims and dims[-1][1] == size * stride:
            dims[-1] = (dims[-1][0] * size, stride)
        else:
            dims.append((size, stride))
    return dims or [(1, 1)]


def _zeros(shape: tuple[int, int, int, int], device: torch.device, layout: torch.memory_format,
           lead: int = 0) -> Tensor:
    """A dense bool (N, C, H, W) of zeros in ``layout``, ``lead`` zeros into its storage, with one
    spare byte after it (:func:`_set_at` sends skipped positions there)."""
    buf = torch.zeros(lead + math.prod(shape) + 1, dtype=torch.bool, device=device)
    return buf.as_strided(shape, _strides(shape, layout), lead)


def sample_drop_block_mask(
    x: Tensor,
    keep_prob: float,
    block_size: int,
    *,
    per_channel: bool = True,
    seed_region: SeedRegion = "valid",
    gamma_scale: float = 1.0,
    gamma: float | None = None,
    gamma_mode: GammaMode = "eq1",
    normalize: Normalize = "sample",
    generator: Generators = None,
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
        gamma_scale: multiplies the target drop, e.g. 0.25 for ResNet group 3 as in the paper
            (with Eq. (1) that is gamma / 4).
        gamma: explicit seed probability, overriding ``gamma_mode`` (for teaching contrasts).
        gamma_mode: ``"eq1"`` (the paper's Eq. (1)) or ``"calibrated"`` (exact expected drop
            equal to the target, :func:`calibrated_gamma`).
        normalize: count(M)/count_ones(M) per ``"sample"`` (default) or over the ``"batch"``.
        generator: source of randomness, or N of them (sample i draws from the i-th, as a batch of
            one would); masks are drawn on its device, then moved to x's.

    Returns:
        DropMask with seed_mask/block_mask of shape (N, C or 1, H, W), on x's device.
    """
    check_input(x)
    keep_prob = check_keep_prob(keep_prob)
    check_block_size(block_size)
    check_seed_region(seed_region)
    check_generator(generator, x.shape[0])
    generator = _one_or_many(generator)
    check_gamma_mode(gamma_mode)
    check_normalize(normalize)
    gamma_scale = check_gamma_scale(gamma_scale)
    n, c, height, width = x.shape
    bh, bw = effective_block_size(block_size, height, width)
    if gamma is None:
        if gamma_mode == "calibrated":
            gamma = calibrated_gamma(keep_prob, block_size, height, width, seed_region=seed_region,
                                     gamma_scale=gamma_scale)
        else:
            gamma = _scaled_gamma(keep_prob, block_size, height, width, gamma_scale)
    elif not 0.0 <= gamma <= 1.0:
        raise ValueError(f"expected gamma in [0, 1], but got {gamma}")
    else:
        gamma_scale = 1.0  # an explicit gamma: the target is 1 - keep_prob
    shape = (n, c if per_channel else 1, height, width)
    device = _draw_device(x, generator)
    layout = _memory_format(x)
    if (bh, bw) == (1, 1):  # a 1x1 block is its seed, and every position is a candidate in both seed regions
        seed, _ = _draw_seeds(shape, gamma, generator, device, layout=layout)
        keep = torch.logical_not(seed, out=_empty(shape, device, layout))
    elif seed_region == "valid":
        seed, keep = _valid_blocks(shape, bh, bw, gamma, generator, device, layout)
    else:
        seed, keep = _everywhere_blocks(shape, bh, bw, gamma, generator, device, layout)
    return _normalise("dropblock", seed, keep, gamma, (bh, bw), normalize, keep_prob=keep_prob,
                      gamma_scale=gamma_scale).to(x.device)


def sample_dropout_mask(x: Tensor, keep_prob: float, *, generator: Generators = None) -> DropMask:
    """Element-wise dropout masks (Srivastava et al. 2014): DropBlock with block_size 1.

    Scale is the usual inverted-dropout ``1 / keep_prob``. ``generator``: one, or one per sample.
    """
    check_input(x)
    keep_prob = check_keep_prob(keep_prob)
    check_generator(generator, x.shape[0])
    generator = _one_or_many(generator)
    shape, device = tuple(x.shape), _draw_device(x, generator)
    # Uniforms in NCHW order (what the generator draws), the mask written in x's layout.
    keep = torch.lt(_rand(shape, generator, device), keep_prob, out=_empty(shape, device, _memory_format(x)))
    return _constant_scale("dropout", keep, keep_prob, (1, 1)).to(x.device)


def sample_spatial_dropout_mask(
    x: Tensor, keep_prob: float, *, generator: Generators = None
) -> DropMask:
    """SpatialDropout masks (Tompson et al. 2015): whole channels, shape (N, C, 1, 1).
    ``generator``: one, or one per sample."""
    check_input(x)
    keep_prob = check_keep_prob(keep_prob)
    check_generator(generator, x.shape[0])
    generator = _one_or_many(generator)
    n, c, height, width = x.shape
    keep = _rand((n, c, 1, 1), generator, _draw_device(x, generator)) < keep_prob
    return _constant_scale("spatial_dropout", keep, keep_prob, (height, width)).to(x.device)


def _constant_scale(kind: str, keep: Tensor, keep_prob: float, block: tuple[int, int]) -> DropMask:
    n = keep.shape[0]
    kept = _count_kept(keep) / keep[0].numel()
    scale = torch.full((n,), 1.0 / keep_prob, dtype=torch.float32, device=keep.device)
    return DropMask(kind, ~keep, keep, scale, 1.0 - keep_prob, 1.0 - keep_prob, 1.0 - kept, block, keep_prob, 1.0)


def sample_cutout_mask(
    x: Tensor,
    keep_prob: float,
    *,
    size: int | None = None,
    seed_region: SeedRegion = "valid",
    generator: Generators = None,
) -> DropMask:
    """Cutout masks (DeVries & Taylor 2017): one square per image, shared by all channels.

    Args:
        x: (N, C, H, W), normally the input images.
        keep_prob: ``1 - keep_prob`` is the drop budget the square's area is chosen from.
        size: explicit side of the square, overriding the budget.
        seed_region: ``"valid"`` keeps the square inside the image (exact budget);
            ``"everywhere"`` centres it anywhere and cuts it at the border (the original).
        generator: source of randomness, or N of them (sample i draws from the i-th); the square
            is drawn on its device, then moved to x's.

    Returns:
        DropMask with masks of shape (N, 1, H, W) and scale 1 (Cutout does not rescale).
    """
    check_input(x)
    keep_prob = check_keep_prob(keep_prob)
    check_seed_region(seed_region)
    check_generator(generator, x.shape[0])
    generator = _one_or_many(generator)
    n, _, height, width = x.shape
    _check_spatial(height, width)
    device = _draw_device(x, generator)
    side = cutout_size(keep_prob, height, width) if size is None else min(check_block_size(size, "size"), height, width)
    if side == 0:  # budget too small for a single pixel: nothing to cut
        none = torch.zeros((n, 1, height, width), dtype=torch.bool, device=x.device)
        return _unscaled(_normalise("cutout", none, ~none, 0.0, (0, 0), keep_prob=keep_prob))
    if seed_region == "valid":
        rows, cols = height - side + 1, width - side + 1
    else:
        rows, cols = height, width
    index = _randint(rows * cols, n, generator, device)  # (N,) the centre's position among the candidates
    c0 = (side - 1) // 2  # a centre i covers rows i - c0 .. i - c0 + side - 1 (cut at the border)
    row, col = index.div(cols, rounding_mode="floor"), index.remainder(cols)
    if seed_region == "valid":  # candidate (0, 0) is the centre of the square in the top-left corner
        row, col = row + c0, col + c0
    seed = torch.zeros((n, 1, height, width), dtype=torch.bool, device=device)
    seed.view(n, height * width).scatter_(1, (row * width + col)[:, None], True)
    # One square per sample: a unit is kept where its row or its column lies outside the square, so
    # the (N, 1, H, W) mask is one broadcast of an (N, H) and an (N, W) test, without expanding seeds.
    out_rows = _outside(torch.arange(height, device=device), row - c0, side)  # (N, H)
    out_cols = _outside(torch.arange(width, device=device), col - c0, side)  # (N, W)
    keep = out_rows[:, None, :, None] | out_cols[:, None, None, :]
    return _unscaled(_normalise("cutout", seed, keep, 1.0 / (rows * cols), (side, side), keep_prob=keep_prob)).to(x.device)


def _outside(index: Tensor, start: Tensor, size: int) -> Tensor:
    """(N, L) bool: whether each of ``index`` (L,) lies outside ``start[i] .. start[i] + size - 1``."""
    offset = index[None, :] - start[:, None]
    return (offset < 0) | (offset >= size)


def _unscaled(mask: DropMask) -> DropMask:
    """Cutout is data augmentation: it zeroes pixels but does not rescale the rest."""
    return replace(mask, scale=torch.ones_like(mask.scale))


def sample_mask(
    x: Tensor,
    kind: Kind,
    keep_prob: float,
    block_size: int = 1,
    *,
    gamma_scale: float = 1.0,
    per_channel: bool = True,
    seed_region: SeedRegion = "valid",
    gamma_mode: GammaMode = "eq1",
    normalize: Normalize = "sample",
    generator: Generators = None,
) -> DropMask:
    """The mask of op ``kind`` for ``x``: one entry point for a site that may hold any of the four.

    ``gamma_scale`` scales the drop asked for, ``1 - keep_prob``, for every kind alike: DropBlock
    scales its γ (with Eq. (1) the paper's γ/4 at 0.25, in ResNet group 3; calibrated: its target);
    Dropout, SpatialDropout and Cutout drop ``gamma_scale * (1 - keep_prob)``, i.e. they are sampled
    with keep_prob ``1 - gamma_scale * (1 - keep_prob)`` (their mask records that keep_prob, with
    ``gamma_scale`` 1). The draws are those of the kind's own sampler with these arguments.

    Args:
        x: (N, C, H, W); only its shape, dtype and device are used.
        kind: ``"dropblock"``, ``"dropout"``, ``"spatial_dropout"`` or ``"cutout"``.
        keep_prob: in (0, 1].
        block_size: DropBlock's block side (clipped to the map); the other kinds ignore it.
        gamma_scale: >= 0, the factor on the drop (0.25: a quarter of it).
        per_channel, gamma_mode, normalize: DropBlock's (:func:`sample_drop_block_mask`).
        seed_region: DropBlock's and Cutout's.
        generator: one, or one per sample (sample i draws from the i-th).

    Returns:
        The kind's :class:`DropMask`, on x's device.

    Raises:
        TypeError, ValueError: on invalid arguments, or a ``gamma_scale`` that would drop every
        unit of a kind without a γ (``gamma_scale * (1 - keep_prob) >= 1``).
    """
    check_kind(kind)
    keep_prob = check_keep_prob(keep_prob)
    check_block_size(block_size)
    gamma_scale = check_gamma_scale(gamma_scale)
    if kind == "dropblock":
        return sample_drop_block_mask(
            x, keep_prob, block_size, per_channel=per_channel, seed_region=seed_region, gamma_scale=gamma_scale,
            gamma_mode=gamma_mode, normalize=normalize, generator=generator,
        )
    if gamma_scale != 1.0:  # 1 - 1 * (1 - keep_prob) need not be keep_prob in floating point: only when scaled
        drop = gamma_scale * (1.0 - keep_prob)
        if drop >= 1.0:
            raise ValueError(f"expected gamma_scale * (1 - keep_prob) < 1 for {kind}, but got {drop}")
        keep_prob = 1.0 - drop
    if kind == "dropout":
        return sample_dropout_mask(x, keep_prob, generator=generator)
    if kind == "spatial_dropout":
        return sample_spatial_dropout_mask(x, keep_prob, generator=generator)
    return sample_cutout_mask(x, keep_prob, seed_region=seed_region, generator=generator)


# --------------------------------------------------------------------------------------
# Ops
# --------------------------------------------------------------------------------------


def apply_mask(x: Tensor, mask: DropMask, *, out: Tensor | None = None) -> Tensor:
    """Algorithm 1, lines 7-8: ``A * M * scale``, with the per-sample scale of ``mask``.

    Args:
        x: (N, C, H, W).
        mask: a DropMask sampled for a tensor of x's shape.
        out: where to write the result (x's shape and dtype), e.g. some rows of a batch; else a new tensor.

    Returns:
        (N, C, H, W) tensor of x's dtype (``out`` when given); x itself (or x copied into ``out``)
        for a mask that drops nothing (γ = 0: keep_prob 1, a Cutout budget below one unit).
    """
    check_input(x)
    if mask.block_mask.shape[0] != x.shape[0] or mask.block_mask.shape[-2:] not in (x.shape[-2:], (1, 1)):
        raise ValueError(
            f"expected a mask for input of shape {tuple(x.shape)}, but got block_mask of shape "
            f"{tuple(mask.block_mask.shape)}"
        )
    if out is not None and (out.shape != x.shape or out.dtype != x.dtype):
        raise ValueError(f"expected out of shape {tuple(x.shape)} and dtype {x.dtype}, but got "
                         f"{tuple(out.shape)} and {out.dtype}")
    if mask.gamma == 0.0:  # every unit kept with scale count/count: x as it is (1 / n * n need not be 1 in floats)
        return x if out is None else out.copy_(x)
    scale = mask.scale.to(x.dtype).view(-1, 1, 1, 1)
    keep = mask.block_mask
    # A dropped unit is x * 0 (Algorithm 1's A x M): 0, or -0.0 for a negative x (equal to 0), NaN
    # only where x itself is not finite (or x * scale overflows, for a full-size mask).
    if 4 * keep.numel() <= x.numel():
        # A mask broadcast over channels or positions (shared DropBlock, SpatialDropout, Cutout): the
        # scale folded into the small mask, M * scale, then one pass over x.
        return torch.mul(x, keep.to(x.dtype).mul_(scale), out=out)
    if x.device.type == "cpu" and x.numel() >= _APPLY_SLICE_MIN and keep.shape == x.shape and _dense_rows(x) and _dense_rows(keep) and (
            out is None or _dense_rows(out)) and _memory_format(keep) == _memory_format(x):
        return _apply_in_slices(x, keep, scale, out)
    # Two passes, x * scale then times M in place. M is multiplied as its bytes (0/1): the float x
    # uint8 kernel measured ~3x faster than float x bool, and this avoids the negated copy a
    # masked_fill(~M, 0) needs.
    return torch.mul(x, scale, out=out).mul_(keep.view(torch.uint8))


# Columns of the (N, units) view that _apply_in_slices converts at a time: N x 16384 floats, 512 KB
# for 8 samples, stays in a core's L2 cache (measured on 8x1024x14x14: 1.6x faster than 1,024 or
# converting the whole mask; 65,536 lost the gain again).
_APPLY_SLICE = 16384
# Below this many units the two whole-tensor passes are faster (x, M and the result stay in cache, and
# the slices' small ops cost more): measured 1x480x14x14 25 vs 84 us, 2x1024x14x14 even,
# 4x672x14x14 (527k units) 1.15x slower than slices, 8x1024x14x14 1.3x slower.
_APPLY_SLICE_MIN = 1 << 19


def _dense_rows(t: Tensor) -> bool:
    """Whether each sample of ``t`` (N, ...) is one run of storage, in the same order for every tensor
    of its shape and layout (NCHW or channels last, dense)."""
    return (t.shape[0] == 1 or t.stride(0) == t[0].numel()) and (
        t.is_contiguous() or (t.ndim == 4 and t.is_contiguous(memory_format=torch.channels_last)))


def _apply_in_slices(x: Tensor, keep: Tensor, scale: Tensor, out: Tensor | None) -> Tensor:
    """``x * (M * scale)`` for a full-size mask, a slice of columns of the (N, units) storage view at a
    time: M's bytes converted to floats and scaled in a small buffer that stays in cache, then one
    multiply, so x is read and the result written once (the whole-tensor way also wrote and read a
    float copy of M as large as x). Same values as ``x * scale * M``: ``M * scale`` is 0 or scale."""
    n, m = x.shape[0], x[0].numel()
    result = torch.empty_like(x) if out is None else out
    x2, k2, o2 = (t.as_strided((n, m), (m, 1)) for t in (x, keep.view(torch.uint8), result))
    s2 = scale.view(n, 1)
    width = min(m, _APPLY_SLICE)
    factor = torch.empty((n, width), dtype=x.dtype, device=x.device)
    for start in range(0, m, width):
        stop = min(start + width, m)
        f = factor[:, : stop - start]
        f.copy_(k2[:, start:stop]).mul_(s2)
        torch.mul(x2[:, start:stop], f, out=o2[:, start:stop])
    return result


def drop_block2d(
    x: Tensor,
    keep_prob: float,
    block_size: int,
    *,
    training: bool = True,
    generator: Generators = None,
    per_channel: bool = True,
    seed_region: SeedRegion = "valid",
    gamma_scale: float = 1.0,
    gamma_mode: GammaMode = "eq1",
    normalize: Normalize = "sample",
) -> Tensor:
    """DropBlock (Algorithm 1): drop contiguous block_size x block_size regions.

    Args:
        x: (N, C, H, W) activations.
        keep_prob: target probability of keeping a unit, in (0, 1].
        block_size: side of the block; clipped to the map.
        training: identity when False (the paper applies no DropBlock at inference).
        generator: source of randomness, or one per sample; masks are drawn on its device, then
            moved to x's.
        per_channel: an independent mask per channel (default, the paper's Algorithm 1).
        seed_region: ``"valid"`` (paper) or ``"everywhere"`` (truncated border blocks).
        gamma_scale: multiplies the target drop (0.25 for ResNet group 3 in the paper).
        gamma_mode: ``"eq1"`` (paper) or ``"calibrated"`` (exact expected drop = target).
        normalize: count(M)/count_ones(M) per ``"sample"`` (default) or over the ``"batch"``.

    Returns:
        (N, C, H, W): ``x * M * count(M) / count_ones(M)``, or x itself when not training or
        keep_prob == 1.

    Raises:
        TypeError, ValueError: on invalid arguments.
    """
    check_input(x)
    keep_prob = check_keep_prob(keep_prob)
    check_block_size(block_size)
    check_seed_region(seed_region)
    check_generator(generator)
    check_gamma_scale(gamma_scale)
    check_gamma_mode(gamma_mode)
    check_normalize(normalize)
    if not training or keep_prob == 1.0 or x.numel() == 0:
        return x
    mask = sample_drop_block_mask(
        x, keep_prob, block_size, per_channel=per_channel, seed_region=seed_region,
        gamma_scale=gamma_scale, gamma_mode=gamma_mode, normalize=normalize, generator=generator,
    )
    return apply_mask(x, mask)


def _drop_with(
    sampler, x: Tensor, keep_prob: float, training: bool, generator: Generators
) -> Tensor:
    """Validate, return x when nothing is to be dropped, else apply ``sampler``'s mask."""
    check_input(x)
    keep_prob = check_keep_prob(keep_prob)
    check_generator(generator)
    if not training or keep_prob == 1.0 or x.numel() == 0:
        return x
    return apply_mask(x, sampler(x, keep_prob, generator=generator))


def dropout(x: Tensor, keep_prob: float, *, training: bool = True, generator: Generators = None) -> Tensor:
    """Element-wise dropout on (N, C, H, W), scaled by ``1 / keep_prob``."""
    return _drop_with(sample_dropout_mask, x, keep_prob, training, generator)


def spatial_dropout(
    x: Tensor, keep_prob: float, *, training: bool = True, generator: Generators = None
) -> Tensor:
    """SpatialDropout on (N, C, H, W): whole channels, scaled by ``1 / keep_prob``."""
    return _drop_with(sample_spatial_dropout_mask, x, keep_prob, training, generator)


def cutout(
    x: Tensor,
    keep_prob: float,
    *,
    size: int | None = None,
    training: bool = True,
    generator: Generators = None,
    seed_region: SeedRegion = "valid",
) -> Tensor:
    """Cutout on images (N, C, H, W): zero one square per image, no rescaling."""
    check_input(x)
    keep_prob = check_keep_prob(keep_prob)
    check_seed_region(seed_region)
    check_generator(generator)
    if size is not None:
        check_block_size(size, "size")
    if not training or (keep_prob == 1.0 and size is None) or x.numel() == 0:
        return x
    return apply_mask(x, sample_cutout_mask(x, keep_prob, size=size, seed_region=seed_region, generator=generator))


def linear_keep_prob(step: int, total_steps: int, target: float, start: float = 1.0) -> float:
    """The paper's linear schedule: ``start`` at step 0 to ``target`` at ``total_steps``.

    Clamped to ``target`` after ``total_steps``; ``total_steps == 0`` gives the target at once.
    """
    target = check_keep_prob(target)
    start = check_keep_prob(start)
    if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 0:
        raise ValueError(f"expected step to be an int >= 0, but got {step!r}")
    if isinstance(total_steps, bool) or not isinstance(total_steps, numbers.Integral) or total_steps < 0:
        raise ValueError(f"expected total_steps to be an int >= 0, but got {total_steps!r}")
    if step >= total_steps:
        return target
    return start + (target - start) * (step / total_steps)
