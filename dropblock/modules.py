"""Thin ``nn.Module`` wrappers around :mod:`dropblock.functional`, and the keep_prob schedule.

DropBlock: Ghiasi, Lin & Le, NeurIPS 2018 (arXiv:1810.12890). Each module stores its settings,
its ``forward`` is one call to the functional op passing ``self.training`` (identity in eval
mode), and ``sample_mask(x)`` returns the :class:`~dropblock.functional.DropMask` the op would
apply, so callers can look at the masks without a flag that changes ``forward``'s return type.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from . import functional as F
from .checks import (
    check_block_size,
    check_gamma_mode,
    check_gamma_scale,
    check_generator,
    check_keep_prob,
    check_normalize,
    check_seed_region,
)
from .functional import DropMask, GammaMode, Normalize, SeedRegion

__all__ = ["Cutout", "DropBlock2d", "Dropout", "LinearScheduler", "SpatialDropout"]


class _MaskedDrop(nn.Module):
    """Shared settings: ``keep_prob`` and an optional default generator."""

    def __init__(self, keep_prob: float, generator: torch.Generator | None) -> None:
        super().__init__()
        self.keep_prob = check_keep_prob(keep_prob)
        check_generator(generator)
        self.generator = generator

    def _gen(self, generator: torch.Generator | None) -> torch.Generator | None:
        return self.generator if generator is None else generator


class DropBlock2d(_MaskedDrop):
    """DropBlock on (N, C, H, W) activations; see :func:`dropblock.functional.drop_block2d`."""

    def __init__(
        self,
        keep_prob: float = 0.9,
        block_size: int = 7,
        *,
        per_channel: bool = True,
        seed_region: SeedRegion = "valid",
        gamma_scale: float = 1.0,
        gamma_mode: GammaMode = "eq1",
        normalize: Normalize = "sample",
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(keep_prob, generator)
        self.block_size = check_block_size(block_size)
        check_seed_region(seed_region)
        check_gamma_mode(gamma_mode)
        check_normalize(normalize)
        self.per_channel = per_channel
        self.seed_region = seed_region
        self.gamma_scale = check_gamma_scale(gamma_scale)
        self.gamma_mode = gamma_mode
        self.normalize = normalize

    def forward(self, x: Tensor) -> Tensor:
        return F.drop_block2d(
            x, self.keep_prob, self.block_size, training=self.training, generator=self.generator,
            per_channel=self.per_channel, seed_region=self.seed_region, gamma_scale=self.gamma_scale,
            gamma_mode=self.gamma_mode, normalize=self.normalize,
        )

    def sample_mask(self, x: Tensor, generator: torch.Generator | None = None) -> DropMask:
        """The masks a training-mode forward on ``x`` would apply."""
        return F.sample_drop_block_mask(
            x, self.keep_prob, self.block_size, per_channel=self.per_channel,
            seed_region=self.seed_region, gamma_scale=self.gamma_scale, gamma_mode=self.gamma_mode,
            normalize=self.normalize, generator=self._gen(generator),
        )

    def extra_repr(self) -> str:
        return (
            f"keep_prob={self.keep_prob}, block_size={self.block_size}, per_channel={self.per_channel}, "
            f"seed_region={self.seed_region!r}, gamma_scale={self.gamma_scale}, gamma_mode={self.gamma_mode!r}, "
            f"normalize={self.normalize!r}"
        )


class _KeepProbOnly(_MaskedDrop):
    """Modules whose only setting is keep_prob: one functional op and its sampler."""

    _op = staticmethod(F.dropout)
    _sampler = staticmethod(F.sample_dropout_mask)

    def __init__(self, keep_prob: float = 0.9, *, generator: torch.Generator | None = None) -> None:
        super().__init__(keep_prob, generator)

    def forward(self, x: Tensor) -> Tensor:
        return self._op(x, self.keep_prob, training=self.training, generator=self.generator)

    def sample_mask(self, x: Tensor, generator: torch.Generator | None = None) -> DropMask:
        return self._sampler(x, self.keep_prob, generator=self._gen(generator))

    def extra_repr(self) -> str:
        return f"keep_prob={self.keep_prob}"


class Dropout(_KeepProbOnly):
    """Element-wise dropout on (N, C, H, W); see :func:`dropblock.functional.dropout`."""


class SpatialDropout(_KeepProbOnly):
    """Whole-channel dropout on (N, C, H, W); see :func:`dropblock.functional.spatial_dropout`."""

    _op = staticmethod(F.spatial_dropout)
    _sampler = staticmethod(F.sample_spatial_dropout_mask)


class Cutout(_MaskedDrop):
    """Cutout on images (N, C, H, W); see :func:`dropblock.functional.cutout`."""

    def __init__(
        self,
        keep_prob: float = 0.9,
        *,
        size: int | None = None,
        seed_region: SeedRegion = "valid",
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(keep_prob, generator)
        if size is not None:
            check_block_size(size, "size")
        check_seed_region(seed_region)
        self.size = size
        self.seed_region = seed_region

    def forward(self, x: Tensor) -> Tensor:
        return F.cutout(
            x, self.keep_prob, size=self.size, training=self.training, generator=self.generator,
            seed_region=self.seed_region,
        )

    def sample_mask(self, x: Tensor, generator: torch.Generator | None = None) -> DropMask:
        return F.sample_cutout_mask(
            x, self.keep_prob, size=self.size, seed_region=self.seed_region, generator=self._gen(generator)
        )

    def extra_repr(self) -> str:
        return f"keep_prob={self.keep_prob}, size={self.size}, seed_region={self.seed_region!r}"


class LinearScheduler(nn.Module):
    """Linearly lowers a wrapped module's ``keep_prob`` from ``start`` to ``target`` (Sec. 3).

    ``keep_prob`` is exactly ``start`` at step 0, ``target`` at ``total_steps`` and stays there
    afterwards. The step count is saved in ``state_dict`` (as extra state), so a resumed run
    continues the schedule.

    Args:
        module: a module with a ``keep_prob`` attribute, e.g. :class:`DropBlock2d`.
        target: final keep_prob, in (0, 1].
        total_steps: number of ``step()`` calls to reach the target.
        start: initial keep_prob (1.0 in the paper).
    """

    def __init__(self, module: nn.Module, target: float, total_steps: int, start: float = 1.0) -> None:
        super().__init__()
        if not hasattr(module, "keep_prob"):
            raise TypeError(f"expected a module with a keep_prob attribute, but got {type(module).__name__}")
        F.linear_keep_prob(0, total_steps, target, start)  # validates the arguments
        self.module = module
        self.target = float(target)
        self.start = float(start)
        self.total_steps = int(total_steps)
        self._step = 0
        self._sync()

    @property
    def steps_taken(self) -> int:
        return self._step

    @property
    def keep_prob(self) -> float:
        return F.linear_keep_prob(self._step, self.total_steps, self.target, self.start)

    def step(self) -> float:
        """Advance one step and return the new keep_prob."""
        self._step += 1
        self._sync()
        return self.keep_prob

    def _sync(self) -> None:
        self.module.keep_prob = self.keep_prob

    def forward(self, x: Tensor) -> Tensor:
        return self.module(x)

    def get_extra_state(self) -> dict[str, Any]:
        return {"step": self._step}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self._step = int(state["step"])
        self._sync()

    def extra_repr(self) -> str:
        return f"start={self.start}, target={self.target}, total_steps={self.total_steps}, step={self._step}"
