"""The torchvision ResNet family through the functional backbone, and each weights' own transform
(issue 11, parts 1 and 2). Random (seeded) weights: nothing is downloaded."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch
from PIL import Image
from torchvision.models import get_model_builder, get_model_weights

import models as M
from models.backbone import Site, resnet_backbone
from models.loading import cached_weights_path, preprocess_for
from models.preprocess import LITE0_PREPROCESS

from .conftest import load_asset

ARCHS = list(M.ARCHITECTURES)
ENUMS = [(arch, w) for arch in ARCHS for w in get_model_weights(arch)]


@pytest.fixture(scope="module")
def built():
    """arch -> (torchvision model, our backbone), weights=None, seeded, eval mode."""
    out = {}
    for i, arch in enumerate(ARCHS):
        torch.manual_seed(100 + i)
        model = get_model_builder(arch)(weights=None).eval()
        out[arch] = (model, resnet_backbone(model, [str(k) for k in range(1000)], arch))
    return out


def _x(size: int = 64) -> torch.Tensor:
    return torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(7))


def test_the_family_is_complete_and_each_offers_every_enum_version():
    assert ARCHS == ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "wide_resnet50_2",
                     "resnext50_32x4d"]
    for arch in ARCHS:
        versions = [w.name for w in get_model_weights(arch)]
        assert sorted(M.weight_choices(arch)) == sorted([*versions, "untrained"])
        assert M.weight_choices(arch)[0] == get_model_weights(arch).DEFAULT.name  # newest first
    assert M.weight_choices("resnet50")[0] == "IMAGENET1K_V2" == M.DEFAULT_WEIGHTS  # the default stays
    with pytest.raises(ValueError, match="expected arch"):
        M.weight_choices("vgg16")


@pytest.mark.parametrize("arch", ARCHS)
def test_clean_pass_equals_torchvision_forward(built, arch):
    model, backbone = built[arch]
    x = _x()  # the check does not depend on the size; 64x64 keeps ResNet-152 fast on 2 cores
    with torch.no_grad():
        expected = model(x)
    clean = M.clean_pass(backbone, x)
    torch.testing.assert_close(clean.logits, expected, rtol=1e-4, atol=1e-4)
    with torch.no_grad():  # every group's output is torchvision's layer output
        h = model.maxpool(model.relu(model.bn1(model.conv1(x))))
        for g, layer in enumerate((model.layer1, model.layer2, model.layer3, model.layer4), start=1):
            h = layer(h)
            torch.testing.assert_close(clean.acts[g], h, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("arch", ARCHS)
def test_sites_sit_where_the_paper_places_them(built, arch):
    """After every conv's BN (+ReLU) in the residual branch, and on the skip (paper Sec. 4.1.1)."""
    model, backbone = built[arch]
    bottleneck = hasattr(model.layer1[0], "conv3")
    per_block = ["branch1", "branch2", "branch3", "skip"] if bottleneck else ["branch1", "branch2", "skip"]
    seen: list[tuple[Site, torch.Tensor]] = []

    def record(h, site):
        seen.append((site, h))
        return h

    with torch.no_grad():
        h = backbone.stem(_x())
        for g, layer in enumerate((model.layer1, model.layer2, model.layer3, model.layer4), start=1):
            seen.clear()
            h_in = h
            h = backbone.run_group(h, g, record)
            assert len(seen) == len(layer) * len(per_block)
            for b in range(len(layer)):
                sites = [s for s, _ in seen[b * len(per_block):(b + 1) * len(per_block)]]
                assert [s.kind + (str(s.index) if s.kind == "branch" else "") for s in sites] == per_block
                assert {(s.group, s.block) for s in sites} == {(g, b)}
            # values: every branch site but the last follows a ReLU; the last branch and the skip are
            # summed, so they have the block's output shape; the skip is torchvision's shortcut
            first = [t for _, t in seen[: len(per_block)]]
            assert all(bool((t >= 0).all()) for t in first[:-2])
            assert bool((first[-2] < 0).any())  # BN output before the residual addition: not ReLU'd
            block = layer[0]
            shortcut = h_in if block.downsample is None else block.downsample(h_in)
            torch.testing.assert_close(first[-1], shortcut)
            assert first[-2].shape == shortcut.shape
            torch.testing.assert_close(torch.relu(first[-2] + shortcut), block(h_in))


@pytest.mark.parametrize("arch", ["resnet18", "resnet50"])
def test_dropping_the_skip_site_acts_on_the_shortcut_only(built, arch):
    model, backbone = built[arch]
    with torch.no_grad():
        h = backbone.stem(_x())
        block = model.layer1[0]
        zero_skip = backbone.block_fn(block, h, 1, 0, lambda t, s: t * 0 if s.kind == "skip" else t)
        zero_branch = backbone.block_fn(
            block, h, 1, 0, lambda t, s: t * 0 if s.kind == "branch" and s.index == (3 if hasattr(block, "conv3") else 2)
            else t)
        shortcut = h if block.downsample is None else block.downsample(h)
    torch.testing.assert_close(zero_branch, torch.relu(shortcut))
    assert not torch.equal(zero_skip, block(h))


def test_the_shared_model_is_never_mutated(built):
    model, backbone = built["resnet34"]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    M.run_regularized(backbone, M.clean_pass(backbone, _x()), M.RegularizerSpec(placement="in_blocks"), seed=0)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())
    assert not model.training


def _images() -> list[Image.Image]:
    gen = torch.Generator().manual_seed(0)

    def noise(w, h):
        return Image.fromarray(torch.randint(0, 256, (h, w, 3), generator=gen, dtype=torch.uint8).numpy())

    return [load_asset("coffee"), noise(300, 700), noise(900, 250), noise(5, 3), noise(232, 232)]


@pytest.mark.parametrize(("arch", "weights"), ENUMS, ids=[f"{a}-{w.name}" for a, w in ENUMS])
def test_preprocess_is_the_weights_own_transform(arch, weights):
    pre = preprocess_for(arch, weights.name)
    assert pre == M.Preprocess.from_weights(weights)
    for image in _images():
        expected = weights.transforms()(image).unsqueeze(0)
        x = pre(image)
        assert x.dtype == expected.dtype and torch.equal(x, expected)
        crop = pre.crop(image)  # the display crop is exactly what the network saw
        assert crop.size == (pre.crop_size, pre.crop_size) and torch.equal(pre.to_tensor(crop), expected)


def test_v1_and_v2_differ_where_torchvision_says():
    v1, v2 = (preprocess_for("resnet50", v) for v in ("IMAGENET1K_V1", "IMAGENET1K_V2"))
    tv1, tv2 = (get_model_weights("resnet50")[v].transforms() for v in ("IMAGENET1K_V1", "IMAGENET1K_V2"))
    assert (v1.resize_size, v2.resize_size) == (tv1.resize_size[0], tv2.resize_size[0])
    assert v1.resize_size != v2.resize_size
    image = load_asset("coffee")
    assert not torch.equal(v1(image), v2(image))
    assert preprocess_for("resnet50", "untrained") == v1  # files and untrained weights: the classic recipe


@pytest.fixture
def hub(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv("DROPBLOCK_LAB_WEIGHTS", raising=False)
    return tmp_path / "hub"


@pytest.mark.parametrize(("arch", "version"), [("resnet18", "IMAGENET1K_V1"), ("resnet34", "IMAGENET1K_V1"),
                                               ("resnext50_32x4d", "IMAGENET1K_V2")])
def test_each_arch_loads_through_its_own_enum_from_the_hub_cache(hub, arch, version, tmp_path):
    torch.manual_seed(9)
    model = get_model_builder(arch)(weights=None).eval()
    weights = get_model_weights(arch)[version]
    path = cached_weights_path(weights)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    assert hashlib.sha256(path.read_bytes()).hexdigest()  # a real file at torchvision's own name
    loaded = M.load_model(version, arch=arch, allow_download=False, device=torch.device("cpu"))
    assert not loaded.is_fallback and loaded.backbone.name == arch
    assert loaded.weights == str(weights) and loaded.source == "torch hub cache"
    assert loaded.network == M.ARCHITECTURES[arch] and M.ARCHITECTURES[arch] in loaded.summary
    assert loaded.backbone.categories == tuple(weights.meta["categories"])
    assert loaded.preprocess == M.Preprocess.from_weights(weights)
    image = load_asset("chelsea")
    x = loaded.preprocess(image)
    torch.testing.assert_close(x, weights.transforms()(image).unsqueeze(0), rtol=0, atol=0)
    with torch.no_grad():
        torch.testing.assert_close(M.clean_pass(loaded.backbone, x).logits, model(x), rtol=1e-4, atol=1e-4)


def test_missing_arch_weights_fall_back_with_the_lite0_transform(hub):
    loaded = M.load_model(arch="resnet101", allow_download=False, device=torch.device("cpu"))
    assert loaded.is_fallback and "ResNet101_Weights.IMAGENET1K_V2" in loaded.fallback_reason
    assert loaded.preprocess == LITE0_PREPROCESS and loaded.preprocess.mean == (0.5, 0.5, 0.5)
    for image in _images():  # the documented transform, and the display crop is what the network saw
        expected = M.to_input(image, (0.5,) * 3, (0.5,) * 3)
        assert torch.equal(loaded.preprocess(image), expected)
        assert torch.equal(loaded.preprocess.to_tensor(loaded.preprocess.crop(image)), expected)
