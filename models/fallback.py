"""Keep a view working when the GPU runs out of memory: retry it on the CPU and say so.

The shared model is never moved (``module.to`` works in place); a CPU copy is made once, under
a lock, and reused by every session that needs it.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar

import torch

from .backbone import Backbone, efficientnet_lite0_backbone, resnet50_backbone
from .engine import CleanPass
from .loading import LoadedModel

__all__ = ["CPU_FALLBACK_NOTE", "compute_with_fallback", "cpu_copy"]

T = TypeVar("T")
CPU_FALLBACK_NOTE = "The GPU ran out of memory for this view, so it was computed on the CPU (slower, same result)."
_BUILDERS = {"resnet50": resnet50_backbone, "efficientnet_lite0": efficientnet_lite0_backbone}
_COPIES: dict[int, LoadedModel] = {}
_LOCK = threading.Lock()


def cpu_copy(loaded: LoadedModel) -> LoadedModel:
    """A CPU twin of ``loaded`` (deep copy; the original stays where it is), made once."""
    with _LOCK:
        twin = _COPIES.get(id(loaded))
        if twin is None:
            model = copy.deepcopy(loaded.backbone.model).to("cpu").eval()
            backbone: Backbone = _BUILDERS[loaded.backbone.name](model, loaded.backbone.categories)
            twin = replace(loaded, backbone=backbone, device=torch.device("cpu"))
            _COPIES[id(loaded)] = twin
        return twin


def _clean_on_cpu(clean: CleanPass) -> CleanPass:
    return CleanPass(clean.x.cpu(), tuple(a.cpu() for a in clean.acts), clean.logits.cpu(), clean.features.cpu())


def compute_with_fallback(
    compute: Callable[..., T], loaded: LoadedModel, clean: CleanPass, *args, **kwargs
) -> tuple[T, str | None]:
    """Run ``compute(backbone, clean, *args, **kwargs)``; on CUDA OOM, run it on a CPU copy.

    Returns:
        (result, note): ``note`` is None normally, or a sentence for the user after a fallback.
    """
    try:
        return compute(loaded.backbone, clean, *args, **kwargs), None
    except torch.OutOfMemoryError:
        if loaded.device.type != "cuda":
            raise
        torch.cuda.empty_cache()
    twin = cpu_copy(loaded)
    return compute(twin.backbone, _clean_on_cpu(clean), *args, **kwargs), CPU_FALLBACK_NOTE
