"""DropBlock and its siblings (Dropout, SpatialDropout, Cutout), with their masks.

DropBlock: Ghiasi, Lin & Le, "DropBlock: A regularization method for convolutional networks",
NeurIPS 2018, arXiv:1810.12890. This package imports only torch.

Modules: :mod:`~dropblock.functional` (the ops and their mask samplers), :mod:`~dropblock.modules`
(``nn.Module`` wrappers), :mod:`~dropblock.checks` (the argument checks, ``check_*``, for code that
stores settings for the ops and wants them refused where they are written).
"""

from .checks import (
    KINDS,
    Kind,
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
from .functional import (
    DropMask,
    GammaMode,
    Generators,
    Normalize,
    SeedRegion,
    apply_mask,
    blocks_from_seeds,
    calibrated_gamma,
    cutout,
    cutout_size,
    drop_block2d,
    dropblock_gamma,
    dropout,
    effective_block_size,
    expected_drop_fraction,
    linear_keep_prob,
    sample_cutout_mask,
    sample_drop_block_mask,
    sample_dropout_mask,
    sample_mask,
    sample_spatial_dropout_mask,
    spatial_dropout,
)
from .modules import Cutout, DropBlock2d, Dropout, LinearScheduler, SpatialDropout

__all__ = [
    "KINDS",
    "Cutout",
    "DropBlock2d",
    "DropMask",
    "Dropout",
    "GammaMode",
    "Generators",
    "Kind",
    "LinearScheduler",
    "Normalize",
    "SeedRegion",
    "SpatialDropout",
    "apply_mask",
    "blocks_from_seeds",
    "calibrated_gamma",
    "check_block_size",
    "check_gamma_mode",
    "check_gamma_scale",
    "check_generator",
    "check_input",
    "check_keep_prob",
    "check_kind",
    "check_normalize",
    "check_seed_region",
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
