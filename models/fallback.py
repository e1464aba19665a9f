"""Keep a view working when the GPU runs out of memory: retry it on the CPU and say so.

The shared model is never moved (``module.to`` works in place); a CPU copy is made once, under
a lock, and reused by every session that needs it.
"""

from __future__ import annotations

import copy
import threading
import weakref
from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar

import torch

from .backbone import Backbone, efficientnet_lite0_backbone, resnet_backbone
from .engine import CleanPass, clean_pass
from .jobs import SingleFlight
from .loading import LoadedModel
from .text import N_

__all__ = ["CPU_FALLBACK_NOTE", "cached_clean_pass", "clean_pass_with_fallback", "compute_with_fallback", "cpu_copy"]

T = TypeVar("T")
CPU_FALLBACK_NOTE = N_("The GPU ran out of memory for this view, so it was computed on the CPU (slower, same result).")
# Keyed by the model itself, weakly: an evicted model takes its copy with it, and a new model can
# never be handed the copy of an old one (as an id() key could after garbage collection).
_COPIES: weakref.WeakKeyDictionary[LoadedModel, LoadedModel] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def cpu_copy(loaded: LoadedModel) -> LoadedModel:
    """A CPU twin of ``loaded`` (deep copy; the original stays where it is), made once."""
    with _LOCK:
        twin = _COPIES.get(loaded)
        if twin is None:
            model = copy.deepcopy(loaded.backbone.model).to("cpu").eval()
            name, categories = loaded.backbone.name, loaded.backbone.categories
            backbone: Backbone = (efficientnet_lite0_backbone(model, categories) if name == "efficientnet_lite0"
                                  else resnet_backbone(model, categories, name))
            twin = replace(loaded, backbone=backbone, device=torch.device("cpu"))
            _COPIES[loaded] = twin
        return twin


def _clean_on_cpu(clean: CleanPass) -> CleanPass:
    return CleanPass(clean.x.cpu(), tuple(a.cpu() for a in clean.acts), clean.logits.cpu(), clean.features.cpu())


def _with_cpu_retry(loaded: LoadedModel, attempt: Callable[[LoadedModel], T]) -> tuple[T, str | None]:
    """``attempt(loaded)``; on CUDA out-of-memory, ``attempt`` again with the CPU copy."""
    try:
        return attempt(loaded), None
    except torch.OutOfMemoryError:
        if loaded.device.type != "cuda":
            raise
        torch.cuda.empty_cache()
    return attempt(cpu_copy(loaded)), CPU_FALLBACK_NOTE


def compute_with_fallback(
    compute: Callable[..., T], loaded: LoadedModel, clean: CleanPass, *args, **kwargs
) -> tuple[T, str | None]:
    """Run ``compute(backbone, clean, *args, **kwargs)``; on CUDA OOM, run it on a CPU copy.

    Returns:
        (result, note): ``note`` is None normally, or a sentence for the user after a fallback.
    """
    return _with_cpu_retry(
        loaded, lambda m: compute(m.backbone, clean if m is loaded else _clean_on_cpu(clean), *args, **kwargs)
    )


def clean_pass_with_fallback(loaded: LoadedModel, x: torch.Tensor) -> tuple[LoadedModel, CleanPass, str | None]:
    """:func:`clean_pass` of ``x``; on CUDA OOM, on the CPU copy, which then serves this image.

    Returns:
        (model used, clean pass, note): as for :func:`compute_with_fallback`, plus the model to keep
        using with this clean pass.
    """
    (used, clean), note = _with_cpu_retry(loaded, lambda m: (m, clean_pass(m.backbone, x)))
    return used, clean, note


# Each model's clean passes live with the model, weakly keyed like the CPU copies: when the shared
# model cache lets a model go, its clean passes go with it (a cache of clean passes that held its
# model would keep every model a session ever chose alive). The entries hold no model themselves.
_CLEAN: weakref.WeakKeyDictionary[LoadedModel, SingleFlight] = weakref.WeakKeyDictionary()
CLEAN_PASSES_PER_MODEL = 8


def cached_clean_pass(loaded: LoadedModel, image_key: str, make_input: Callable[[], torch.Tensor]
                      ) -> tuple[LoadedModel, CleanPass, str | None]:
    """:func:`clean_pass_with_fallback` of ``make_input()``, computed once per (model, image) for all
    sessions at once and kept with ``loaded`` (the last :data:`CLEAN_PASSES_PER_MODEL` images).

    Returns:
        (model to use with it, clean pass, note), as :func:`clean_pass_with_fallback`.
    """
    with _LOCK:
        passes = _CLEAN.get(loaded)
        if passes is None:
            passes = _CLEAN[loaded] = SingleFlight(max_entries=CLEAN_PASSES_PER_MODEL)

    def compute() -> tuple[CleanPass, str | None]:
        _used, clean, note = clean_pass_with_fallback(loaded, make_input())
        return clean, note  # the model used is not kept: a note means the CPU copy, found again below

    clean, note = passes.get(image_key, compute)
    return (cpu_copy(loaded) if note else loaded), clean, note
