"""Compute engine of DropBlock Lab: pretrained classifier, regulariser placement, features, CAM.

Imports torch, torchvision and ``dropblock``; never streamlit.
"""

from .backbone import Backbone, Site
from .compute import (
    CamShift,
    Comparison,
    MaskOutcome,
    MaskSample,
    MethodView,
    RobustnessCurve,
    StrategyComparison,
    compute_cam_shift,
    compute_cam_shift_rounds,
    compute_comparison,
    compute_comparison_rounds,
    compute_dropblock_dropout,
    compute_dropblock_dropout_rounds,
    compute_mask_outcome,
    compute_mask_sample,
    compute_robustness_curve,
    compute_robustness_curve_rounds,
    gamma_formula,
)
from .engine import (
    KIND_LABELS,
    KINDS,
    SITE_ACTS,
    CleanPass,
    DropRun,
    RegularizerSpec,
    clean_pass,
    run_regularized,
    sample_seed,
)
from .images import ImageError, crop_for_display, decode_image, to_input
from .keepgrid import compute_keep_prob_scan_rounds
from .loading import (
    ARCHITECTURES,
    DEFAULT_ARCH,
    DEFAULT_WEIGHTS,
    WEIGHT_CHOICES,
    LoadedModel,
    ModelSpec,
    load_model,
    load_spec,
    pick_device,
    weight_choices,
)
from .preprocess import Preprocess
from .rounds import Partial, round_sizes
from .setcurve import compute_set_curve_rounds
from .theory import compute_depth_contrast_rounds, compute_mistakes_rounds, compute_tutorial_contrasts_rounds
from .weights_files import WeightsFileError

__all__ = [
    "ARCHITECTURES",
    "Backbone",
    "CamShift",
    "CleanPass",
    "DEFAULT_ARCH",
    "DEFAULT_WEIGHTS",
    "Comparison",
    "DropRun",
    "ImageError",
    "KINDS",
    "KIND_LABELS",
    "LoadedModel",
    "MaskOutcome",
    "MaskSample",
    "MethodView",
    "ModelSpec",
    "Partial",
    "Preprocess",
    "RegularizerSpec",
    "RobustnessCurve",
    "SITE_ACTS",
    "StrategyComparison",
    "Site",
    "WEIGHT_CHOICES",
    "WeightsFileError",
    "clean_pass",
    "compute_cam_shift",
    "compute_cam_shift_rounds",
    "compute_comparison",
    "compute_comparison_rounds",
    "compute_depth_contrast_rounds",
    "compute_dropblock_dropout",
    "compute_dropblock_dropout_rounds",
    "compute_keep_prob_scan_rounds",
    "compute_mask_outcome",
    "compute_mask_sample",
    "compute_mistakes_rounds",
    "compute_robustness_curve",
    "compute_robustness_curve_rounds",
    "compute_set_curve_rounds",
    "compute_tutorial_contrasts_rounds",
    "crop_for_display",
    "decode_image",
    "gamma_formula",
    "load_model",
    "load_spec",
    "pick_device",
    "round_sizes",
    "run_regularized",
    "sample_seed",
    "to_input",
    "weight_choices",
]
