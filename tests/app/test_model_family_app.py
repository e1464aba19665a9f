"""The sidebar's model family and each weights' own transform, in the running app (issue 11, parts 1-2).

The hub cache holds random (seeded) checkpoints under torchvision's own file names, so the app loads
ResNets through the weights API offline; every tensor fed to the network is recorded."""

from __future__ import annotations

import os

import pytest
import torch
from torchvision.models import get_model_builder, get_model_weights

import models as M
import models.fallback
import ui.inputs
from models.loading import cached_weights_path
from models.preprocess import LITE0_PREPROCESS

from .conftest import PAGES, ROOT, assert_clean, new_app


@pytest.fixture
def hub_with_resnets(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    for arch, versions in (("resnet50", ("IMAGENET1K_V2", "IMAGENET1K_V1")), ("resnet18", ("IMAGENET1K_V1",))):
        torch.manual_seed(1)
        state = get_model_builder(arch)(weights=None).state_dict()
        first = None
        for version in versions:
            path = cached_weights_path(get_model_weights(arch)[version])
            path.parent.mkdir(parents=True, exist_ok=True)
            if first is None:
                torch.save(state, path)
                first = path
            else:
                os.link(first, path)
    ui.inputs.models.clear()  # models loaded by earlier tests came from another hub cache
    models.fallback._CLEAN.clear()  # clean passes computed by earlier tests
    yield tmp_path
    ui.inputs.models.clear()
    models.fallback._CLEAN.clear()  # clean passes computed by earlier tests


@pytest.fixture
def fed(monkeypatch) -> list[torch.Tensor]:
    """Every input the app feeds the network for a clean pass."""
    seen: list[torch.Tensor] = []
    real = models.fallback.clean_pass

    def recording(backbone, x):
        seen.append(x.detach().cpu().clone())
        return real(backbone, x)

    monkeypatch.setattr(models.fallback, "clean_pass", recording)
    return seen


def test_the_app_feeds_each_weights_own_transform_and_names_the_network(hub_with_resnets, fed):
    image = M.decode_image((ROOT / "assets" / "coffee.jpg").read_bytes())
    at = new_app().run()
    assert_clean(at)
    assert at.sidebar.selectbox(key="arch").value == "resnet50"
    assert at.sidebar.selectbox(key="weights").value == "IMAGENET1K_V2"  # the default stays
    checks = [("resnet50", "IMAGENET1K_V2"), ("resnet50", "IMAGENET1K_V1"), ("resnet18", "IMAGENET1K_V1")]
    for arch, version in checks:
        at.sidebar.selectbox(key="arch").set_value(arch).run()
        at.sidebar.selectbox(key="weights").set_value(version).run()
        assert_clean(at)
        weights = get_model_weights(arch)[version]
        assert fed and torch.equal(fed[-1], weights.transforms()(image).unsqueeze(0)), (arch, version)
        caption = " ".join(c.value for c in at.caption)
        assert M.ARCHITECTURES[arch] in caption and str(weights) in caption and "CPU" in caption
        assert not at.warning  # a ResNet is live: no fallback notice
        assert str(hub_with_resnets) not in caption
    at.switch_page(PAGES[0]).run()  # a page with the regulariser runs on ResNet-18's BasicBlocks
    assert_clean(at)
    at.sidebar.radio(key="placement").set_value("in_blocks").run()
    assert_clean(at)


def test_network_without_weights_falls_back_and_says_which_network(fed):
    models.fallback._CLEAN.clear()  # clean passes computed by earlier tests
    at = new_app().run()
    at.sidebar.selectbox(key="arch").set_value("wide_resnet50_2").run()
    assert not at.exception and not at.error
    assert at.sidebar.selectbox(key="weights").value == "IMAGENET1K_V2"
    warning = " ".join(w.value for w in at.warning)
    assert "No Wide ResNet-50-2 weights could be loaded" in warning and "EfficientNet-Lite0" in warning
    image = M.decode_image((ROOT / "assets" / "coffee.jpg").read_bytes())
    assert fed  # the fallback's own documented transform (mean = std = 0.5)
    torch.testing.assert_close(fed[-1], LITE0_PREPROCESS(image), rtol=0, atol=0)
