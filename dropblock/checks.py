"""Argument checks for the structured-dropout ops, public for the code that builds their settings.

DropBlock: Ghiasi, Lin & Le, NeurIPS 2018 (arXiv:1810.12890). The ops in
:mod:`dropblock.functional` and the modules in :mod:`dropblock.modules` validate with these at
their public edge, before any early return; callers that store settings for later calls (a config
dataclass such as ``models.RegularizerSpec``) validate with the same functions, so a bad value is
refused where it is written, with the same message the op would give.

Each check raises ``TypeError`` for a value of the wrong type and ``ValueError`` for one out of
range, with an "expected X, but got Y" message; those that normalise (``check_keep_prob``,
``check_block_size``, ``check_gamma_scale``) return the value as the ops use it.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Literal, Union

import torch
from torch import Tensor

__all__ = [
    "GAMMA_MODES",
    "KINDS",
    "NORMALIZE",
    "SEED_REGIONS",
    "GammaMode",
    "Generators",
    "Kind",
    "Normalize",
    "SeedRegion",
    "check_block_size",
    "check_gamma_mode",
    "check_gamma_scale",
    "check_generator",
    "check_input",
    "check_keep_prob",
    "check_kind",
    "check_normalize",
    "check_seed_region",
]

SeedRegion = Literal["valid", "everywhere"]
SEED_REGIONS: tuple[str, ...] = ("valid", "everywhere")
Normalize = Literal["sample", "batch"]
NORMALIZE: tuple[str, ...] = ("sample", "batch")
GammaMode = Literal["eq1", "calibrated"]
GAMMA_MODES: tuple[str, ...] = ("eq1", "calibrated")
Kind = Literal["dropblock", "dropout", "spatial_dropout", "cutout"]
KINDS: tuple[str, ...] = ("dropblock", "dropout", "spatial_dropout", "cutout")  # the ops with a mask sampler
# One generator for the batch, or one per sample (sample i draws from the i-th), or None (torch's default).
Generators = Union[torch.Generator, Sequence[torch.Generator], None]


def check_input(x: object) -> None:
    """Check that ``x`` is a floating-point (N, C, H, W) tensor.

    Raises:
        TypeError: not a tensor, or not floating point.
        ValueError: not 4-D.
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"expected x to be a torch.Tensor, but got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(
            f"expected a 4-D input (N, C, H, W), but got {x.ndim}-D with shape {tuple(x.shape)}"
        )
    if not x.is_floating_point():
        raise TypeError(f"expected a floating-point input, but got dtype {x.dtype}")


def check_keep_prob(keep_prob: object, name: str = "keep_prob") -> float:
    """Check a keep probability: a real number in (0, 1] (bools and NaN refused).

    Args:
        keep_prob: the value to check.
        name: how the message names it (e.g. ``"fc_keep_prob"``).

    Returns:
        ``keep_prob`` as a float.

    Raises:
        TypeError: not a real number.
        ValueError: outside (0, 1].
    """
    if isinstance(keep_prob, bool) or not isinstance(keep_prob, numbers.Real):
        raise TypeError(f"expected {name} to be a real number, but got {type(keep_prob).__name__}")
    keep_prob = float(keep_prob)
    if not 0.0 < keep_prob <= 1.0:  # also rejects NaN
        raise ValueError(f"expected {name} in (0, 1], but got {keep_prob}")
    return keep_prob


def check_block_size(block_size: object, name: str = "block_size") -> int:
    """Check a block side (or Cutout square side): an int >= 1 (bools refused).

    Returns:
        ``block_size`` as an int.

    Raises:
        TypeError: not an integer.
        ValueError: below 1.
    """
    if isinstance(block_size, bool) or not isinstance(block_size, numbers.Integral):
        raise TypeError(f"expected {name} to be an int, but got {type(block_size).__name__}")
    if block_size < 1:
        raise ValueError(f"expected {name} >= 1, but got {block_size}")
    return int(block_size)


def _check_choice(value: object, name: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"expected {name} in {choices}, but got {value!r}")


def check_seed_region(seed_region: object) -> None:
    """Check a DropBlock/Cutout seed region: one of :data:`SEED_REGIONS`.

    Raises:
        ValueError: any other value.
    """
    _check_choice(seed_region, "seed_region", SEED_REGIONS)


def check_normalize(normalize: object) -> None:
    """Check a DropBlock normalisation: one of :data:`NORMALIZE`.

    Raises:
        ValueError: any other value.
    """
    _check_choice(normalize, "normalize", NORMALIZE)


def check_gamma_mode(gamma_mode: object) -> None:
    """Check how DropBlock's gamma is chosen: one of :data:`GAMMA_MODES`.

    Raises:
        ValueError: any other value.
    """
    _check_choice(gamma_mode, "gamma_mode", GAMMA_MODES)


def check_kind(kind: object) -> None:
    """Check which op a mask is for: one of :data:`KINDS`.

    Raises:
        ValueError: any other value.
    """
    _check_choice(kind, "kind", KINDS)


def check_generator(generator: object, n: int | None = None) -> None:
    """Check a source of randomness: a ``torch.Generator``, None, or a list or tuple of generators on
    one device, one per sample (``n`` of them when ``n`` is given).

    Raises:
        TypeError: anything else (e.g. an int seed), or a sequence holding something else.
        ValueError: a sequence of another length than ``n``, or of generators on several devices.
    """
    if generator is None or isinstance(generator, torch.Generator):
        return
    if not isinstance(generator, (list, tuple)):
        raise TypeError(f"expected generator to be a torch.Generator, a sequence of them or None, but got "
                        f"{type(generator).__name__}")
    for g in generator:
        if not isinstance(g, torch.Generator):
            raise TypeError(f"expected a sequence of torch.Generator, but got one holding {type(g).__name__}")
    if n is not None and len(generator) != n:
        raise ValueError(f"expected one generator per sample ({n}), but got {len(generator)}")
    if len({g.device for g in generator}) > 1:
        raise ValueError(f"expected every generator on one device, but got {sorted({str(g.device) for g in generator})}")


def check_gamma_scale(gamma_scale: object) -> float:
    """Check a factor on DropBlock's target drop (0.25 for ResNet group 3): a real number >= 0.

    Returns:
        ``gamma_scale`` as a float.

    Raises:
        TypeError: not a real number.
        ValueError: negative or NaN.
    """
    if isinstance(gamma_scale, bool) or not isinstance(gamma_scale, numbers.Real):
        raise TypeError(f"expected gamma_scale to be a real number, but got {type(gamma_scale).__name__}")
    if not 0.0 <= float(gamma_scale):
        raise ValueError(f"expected gamma_scale >= 0, but got {gamma_scale}")
    return float(gamma_scale)
