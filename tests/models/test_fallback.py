"""CUDA out-of-memory is simulated: the view is recomputed on a CPU copy, the shared model untouched."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

import models as M
from models.fallback import CPU_FALLBACK_NOTE, compute_with_fallback, cpu_copy


def oom_on(backbone_to_fail):
    calls = []

    def compute(backbone, clean, *args, **kwargs):
        calls.append(backbone)
        if backbone is backbone_to_fail:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return M.compute_mask_outcome(backbone, clean, *args, **kwargs)

    return compute, calls


def test_oom_on_gpu_retries_on_cpu_and_says_so(lite0, coffee_clean):
    gpu = replace(lite0, device=torch.device("cuda"))  # what a CUDA machine would hand us
    before = {k: v.clone() for k, v in gpu.backbone.model.state_dict().items()}
    compute, calls = oom_on(gpu.backbone)
    view, note = compute_with_fallback(compute, gpu, coffee_clean, M.RegularizerSpec(), seed=3)
    assert note == CPU_FALLBACK_NOTE
    assert calls[0] is gpu.backbone and calls[1] is not gpu.backbone
    assert calls[1].device.type == "cpu" and calls[1].model is not gpu.backbone.model
    reference = M.compute_mask_outcome(lite0.backbone, coffee_clean, M.RegularizerSpec(), seed=3)
    assert view.top5_dropped == reference.top5_dropped
    torch.testing.assert_close(view.cam_dropped, reference.cam_dropped)
    after = gpu.backbone.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert cpu_copy(gpu) is cpu_copy(gpu)  # made once, shared


def test_no_fallback_needed_no_note(lite0, coffee_clean):
    view, note = compute_with_fallback(M.compute_mask_sample, lite0, coffee_clean, M.RegularizerSpec(), seed=0)
    assert note is None and view.gamma > 0


def test_oom_on_cpu_is_not_hidden(lite0, coffee_clean):
    compute, _ = oom_on(lite0.backbone)
    with pytest.raises(torch.OutOfMemoryError):
        compute_with_fallback(compute, lite0, coffee_clean, M.RegularizerSpec())


def test_clean_pass_oom_on_gpu_moves_this_image_to_the_cpu_copy(lite0, monkeypatch):
    from models import fallback

    gpu = replace(lite0, device=torch.device("cuda"))
    real = fallback.clean_pass

    def oom_on_gpu(backbone, x):
        if backbone is gpu.backbone:
            raise torch.OutOfMemoryError("CUDA out of memory")
        return real(backbone, x)

    monkeypatch.setattr(fallback, "clean_pass", oom_on_gpu)
    x = torch.randn(1, 3, 224, 224)
    used, clean, note = fallback.clean_pass_with_fallback(gpu, x)
    assert note == CPU_FALLBACK_NOTE and used is cpu_copy(gpu) and used.device.type == "cpu"
    torch.testing.assert_close(clean.logits, real(lite0.backbone, x).logits)
    monkeypatch.undo()
    assert fallback.clean_pass_with_fallback(lite0, x)[2] is None


def test_cpu_copies_go_with_their_model(lite0):
    import gc

    from models import fallback

    alive = len(fallback._COPIES)  # other tests may hold models (and so copies) of their own
    gpu = replace(lite0, device=torch.device("cuda"))
    cpu_copy(gpu)
    assert gpu in fallback._COPIES and len(fallback._COPIES) == alive + 1
    del gpu
    gc.collect()
    assert len(fallback._COPIES) == alive
