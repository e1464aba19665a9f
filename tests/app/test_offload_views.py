"""Every view in rounds that runs in a helper process (``offload=True``, models/offload.py) gives
the same partials there as in the app's process: same number of rounds, same done/total, the same
values to a tolerance (another process, the same function and inputs). The real model (Lite0)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from PIL import Image

import models as M
from models import offload
from ui import views
from ui.inputs import Context

from .conftest import ROOT


def assert_same(got, want, where: str = "value") -> None:
    assert type(got) is type(want), (where, type(got), type(want))
    if dataclasses.is_dataclass(want) and not isinstance(want, type):
        for f in dataclasses.fields(want):
            assert_same(getattr(got, f.name), getattr(want, f.name), f"{where}.{f.name}")
    elif isinstance(want, torch.Tensor):
        assert got.dtype == want.dtype and got.shape == want.shape, where
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4, equal_nan=True, msg=where)
    elif isinstance(want, np.ndarray):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4, err_msg=where)
    elif isinstance(want, float):
        assert math.isclose(got, want, rel_tol=1e-4, abs_tol=1e-5) or (math.isnan(got) and math.isnan(want)), where
    elif isinstance(want, (tuple, list)):
        assert len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want)):
            assert_same(g, w, f"{where}[{i}]")
    elif isinstance(want, dict):
        assert got.keys() == want.keys(), where
        for k in want:
            assert_same(got[k], want[k], f"{where}[{k!r}]")
    else:
        assert got == want, where


@pytest.fixture(scope="module")
def ctx():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the app's process and its helpers run (models.jobs.configure_process)
    loaded = M.load_model(allow_download=False, device=torch.device("cpu"))
    bb = loaded.backbone
    image = M.decode_image((ROOT / "assets" / "coffee.jpg").read_bytes())
    clean = M.clean_pass(bb, M.to_input(image, bb.mean, bb.std))
    yield Context(loaded, "lite0", Image.new("RGB", (224, 224)), "coffee", "coffee", clean,
                  M.RegularizerSpec(keep_prob=0.8, block_size=5), 7)
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def helpers():
    h = offload.Helpers(1)
    h.start(preload=("ui.views",))
    assert h.wait_ready(120)
    yield h
    h.stop()


def cases(ctx):
    strategy = M.RegularizerSpec(kind="dropblock", placement="in_blocks", groups=(2, 3), skip=False,
                                 group3_quarter=False, group_params=((2, 0.8, 3), (3, 0.8, 3)))
    return {
        "comparison": (views.comparison, (ctx, ctx.spec), {}),
        "dropblock_dropout": (views.dropblock_dropout, (ctx, strategy, 0.5, 4), {}),
        "cam_shift": (views.cam_shift, (ctx, 8, None), {}),
        "robustness_curve": (views.robustness_curve, (ctx, ctx.spec, 4, (1.0, 0.9, 0.7)), {}),
        "keep_prob_scan": (views.keep_prob_scan, (ctx, views.DEEP, views.DEEP_METHODS), {}),
        "tutorial_contrasts": (views.tutorial_contrasts, (ctx,), {}),
        "depth_contrast": (views.depth_contrast, (ctx, (0.9, 0.8)), {}),
        "theory_rounds": (views._theory_rounds, (ctx, 0.85), {}),
    }


@pytest.mark.parametrize("name", ["comparison", "dropblock_dropout", "cam_shift", "robustness_curve", "keep_prob_scan",
                                  "tutorial_contrasts", "depth_contrast", "theory_rounds"])
def test_a_view_in_rounds_gives_the_same_partials_in_a_helper(name, ctx, helpers):
    fn, args, kwargs = cases(ctx)[name]
    from ui.view import View

    if isinstance(fn, View):
        assert fn.offload  # the page's view runs there
        ref, local = fn.ref, fn.fn
    else:
        ref, local = f"ui.views:{fn.__name__}", fn
    reports = []
    remote = list(helpers.rounds(ref, args, kwargs, lambda f, t: reports.append(f)))
    assert helpers.in_process == 0  # it ran there
    here = list(local(*args, **kwargs))
    assert [(p.done, p.total) for p in remote] == [(p.done, p.total) for p in here]
    assert remote[-1].final and len(remote) >= 2  # in rounds: a first answer, then refinement
    for r, h in zip(remote, here):
        assert_same(r.value, h.value)
    assert all(0.0 <= f <= 1.0 for f in reports)


def test_the_views_that_run_in_a_helper_are_the_heavy_ones_in_rounds():
    from ui.view import View

    offloaded = {v.__name__ for v in vars(views).values() if isinstance(v, View) and v.offload}
    assert offloaded == {"comparison", "dropblock_dropout", "cam_shift", "robustness_curve", "keep_prob_scan",
                         "tutorial_contrasts", "depth_contrast"}
    assert all(getattr(views, n).rounds for n in offloaded)
