"""Two checkpoints side by side: the paper's Figure 5(a) against (b) and its Figure 6.

Figure 5(b) and Figure 6 of DropBlock (arXiv:1810.12890, Sec. 4.2) compare a ResNet-50 trained without
DropBlock with one trained with it. No such model ships here; an operator puts two state dicts in the
weights directory (or two torchvision weights versions are cached). This module measures what the
figures show on one image: both models' robustness curves in one result, and each model's CAM (Zhou
et al. 2016) with a measure of how spread out it is -- the paper's claim is that the model trained
with DropBlock "tends to focus on several spatially distributed regions".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .backbone import Backbone
from .compute import RobustnessCurve
from .engine import CleanPass, class_activation_map, upsample_cam

__all__ = ["CamSpread", "ModelCam", "cam_spread", "compute_model_cam", "merge_curves"]


@dataclass(frozen=True)
class CamSpread:
    """How spread out a CAM is, over its (H, W) pixels after clipping at 0.

    entropy: Shannon entropy of the CAM normalised to sum 1, divided by log(H·W): 1 = flat, 0 = one pixel.
    area_half_max: share of the pixels at or above half the CAM's maximum.
    """

    entropy: float
    area_half_max: float


def cam_spread(cam: Tensor) -> CamSpread:
    """``cam``: (H, W). A CAM that is nowhere positive (no evidence for the class) has entropy NaN and area 0."""
    if cam.dim() != 2:
        raise ValueError(f"expected a CAM of shape (H, W), but got {tuple(cam.shape)}")
    c = cam.detach().double().clamp_min(0)
    total = float(c.sum())
    if not total > 0:
        return CamSpread(entropy=float("nan"), area_half_max=0.0)
    p = (c / total).flatten()
    nz = p[p > 0]
    entropy = float(-(nz * nz.log()).sum()) / math.log(p.numel())
    return CamSpread(entropy=entropy, area_half_max=float((c >= 0.5 * float(c.max())).double().mean()))


@dataclass(frozen=True, eq=False)
class ModelCam:
    """One model's clean CAM for one class and its spread."""

    class_idx: int
    class_name: str
    prob: float  # the model's probability of the class, clean
    top1_name: str  # the model's own clean top-1
    cam: Tensor  # (224, 224)
    spread: CamSpread


def compute_model_cam(backbone: Backbone, clean: CleanPass, class_idx: int) -> ModelCam:
    """The clean CAM of ``class_idx`` (the same class for both models, as in Figure 6)."""
    if not 0 <= class_idx < len(backbone.categories):
        raise ValueError(f"expected class_idx in 0..{len(backbone.categories) - 1}, but got {class_idx}")
    cam = upsample_cam(class_activation_map(clean.features, backbone.classifier, class_idx))[0].detach().cpu().float()
    return ModelCam(class_idx=class_idx, class_name=backbone.categories[class_idx],
                    prob=float(clean.probs[0, class_idx]), top1_name=backbone.categories[clean.top1], cam=cam,
                    spread=cam_spread(cam))


def merge_curves(first: RobustnessCurve, second: RobustnessCurve, names: tuple[str, str]) -> RobustnessCurve:
    """Both models' curves as one result (labels "name: method"), for one chart and one table.

    Both must sweep the same keep_probs for the same class; ``clean_prob`` is the first model's.
    """
    if first.keep_probs != second.keep_probs or first.class_idx != second.class_idx:
        raise ValueError(f"expected curves over the same keep_probs and class, but got {first.keep_probs} / "
                         f"{first.class_idx} and {second.keep_probs} / {second.class_idx}")
    labels = tuple(f"{names[0]}: {x}" for x in first.labels) + tuple(f"{names[1]}: {x}" for x in second.labels)
    return RobustnessCurve(
        keep_probs=first.keep_probs, class_idx=first.class_idx, class_name=first.class_name,
        clean_prob=first.clean_prob, labels=labels,
        mean_prob=torch.cat([first.mean_prob, second.mean_prob]),
        std_prob=torch.cat([first.std_prob, second.std_prob]),
        top1_agreement=torch.cat([first.top1_agreement, second.top1_agreement]),
        n_samples=min(first.n_samples, second.n_samples),
    )
