from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torchvision.models import ResNet50_Weights, resnet50

import models as M
from models.backbone import resnet50_backbone

ASSETS = Path(__file__).resolve().parents[2] / "assets"


@pytest.fixture(scope="session")
def lite0() -> M.LoadedModel:
    """The real-weights fallback: EfficientNet-Lite0 (nothing else can be had offline)."""
    return M.load_model(allow_download=False, device=torch.device("cpu"))


@pytest.fixture(scope="session")
def resnet() -> M.Backbone:
    """ResNet-50 with random (seeded) weights: architecture tests that need no semantics."""
    torch.manual_seed(0)
    model = resnet50(weights=None).eval()
    return resnet50_backbone(model, ResNet50_Weights.IMAGENET1K_V1.meta["categories"])


def load_asset(name: str):
    return M.decode_image((ASSETS / f"{name}.jpg").read_bytes())


@pytest.fixture(scope="session")
def coffee_clean(lite0) -> M.CleanPass:
    bb = lite0.backbone
    return M.clean_pass(bb, M.to_input(load_asset("coffee"), bb.mean, bb.std))
