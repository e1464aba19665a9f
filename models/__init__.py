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
    compute_comparison,
    compute_dropblock_dropout,
    compute_mask_outcome,
    compute_mask_sample,
    compute_robustness_curve,
    gamma_formula,
)
from .engine import KIND_LABELS, KINDS, SITE_ACTS, CleanPass, DropRun, RegularizerSpec, clean_pass, run_regularized
from .images import ImageError, crop_for_display, decode_image, to_input
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
    "compute_comparison",
    "compute_dropblock_dropout",
    "compute_mask_outcome",
    "compute_mask_sample",
    "compute_robustness_curve",
    "crop_for_display",
    "decode_image",
    "gamma_formula",
    "load_model",
    "load_spec",
    "pick_device",
    "run_regularized",
    "to_input",
    "weight_choices",
]
