"""The real loading paths: torch hub cache through torchvision's weights API, an operator's file,
a download with progress (from a loopback server), and the EfficientNet-Lite0 fallback. What the
app shows about a model never holds a server path."""

from __future__ import annotations

import hashlib
import http.server
import threading
from pathlib import Path

import pytest
import torch
from torchvision.models import ResNet50_Weights, resnet50

import models as M
from models.loading import cached_weights_path, download_to_cache


@pytest.fixture(scope="module")
def state_dict_file(tmp_path_factory) -> Path:
    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("weights") / "resnet50-test.pth"
    torch.save(resnet50(weights=None).state_dict(), path)
    return path


@pytest.fixture
def hub(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv("DROPBLOCK_LAB_WEIGHTS", raising=False)
    assert Path(torch.hub.get_dir()) == tmp_path / "hub"
    return tmp_path / "hub"


def _reference_logits(path: Path, x: torch.Tensor) -> torch.Tensor:
    model = resnet50(weights=None).eval()
    model.load_state_dict(torch.load(path, weights_only=True))
    with torch.no_grad():
        return model(x)


@pytest.mark.parametrize("choice", ["IMAGENET1K_V1", "IMAGENET1K_V2"])
def test_loads_resnet50_from_torch_hub_cache(hub, state_dict_file, choice):
    weights = ResNet50_Weights[choice]
    cached = cached_weights_path(weights)
    assert cached.parent == hub / "checkpoints" and cached.name in weights.url
    cached.parent.mkdir(parents=True)
    cached.write_bytes(state_dict_file.read_bytes())
    loaded = M.load_model(choice, allow_download=False, device=torch.device("cpu"))
    assert loaded.backbone.name == "resnet50" and not loaded.is_fallback
    assert loaded.weights == f"ResNet50_Weights.{choice}" and loaded.source == "torch hub cache"
    x = torch.randn(1, 3, 224, 224)
    clean = M.clean_pass(loaded.backbone, x)
    torch.testing.assert_close(clean.logits, _reference_logits(state_dict_file, x))
    assert len(loaded.backbone.categories) == 1000 and loaded.backbone.categories[967] == "espresso"


def test_loads_resnet50_from_named_file_and_env_var(hub, state_dict_file, monkeypatch):
    x = torch.randn(1, 3, 224, 224)
    direct = M.load_model(weights_file=state_dict_file, allow_download=False)
    assert direct.backbone.name == "resnet50" and direct.source == f"operator file {state_dict_file.name}"
    assert str(state_dict_file.parent) not in direct.source + direct.weights
    monkeypatch.setenv("DROPBLOCK_LAB_WEIGHTS", str(state_dict_file))
    via_env = M.load_model(allow_download=False)
    assert via_env.backbone.name == "resnet50" and not via_env.is_fallback
    torch.testing.assert_close(M.clean_pass(via_env.backbone, x).logits, _reference_logits(state_dict_file, x))


def test_loads_wrapped_and_dataparallel_checkpoints(hub, state_dict_file, tmp_path):
    state = torch.load(state_dict_file, weights_only=True)
    wrapped = tmp_path / "wrapped.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, wrapped)
    assert M.load_model(weights_file=wrapped, allow_download=False).backbone.name == "resnet50"


@pytest.mark.parametrize("content", [b"not a checkpoint", None], ids=["corrupt", "wrong-architecture"])
def test_bad_weights_file_falls_back_and_says_why(hub, tmp_path, content):
    path = tmp_path / "bad.pth"
    if content is None:
        torch.save(torch.nn.Linear(3, 3).state_dict(), path)
    else:
        path.write_bytes(content)
    loaded = M.load_model(weights_file=path, allow_download=False)
    assert loaded.is_fallback and loaded.backbone.name == "efficientnet_lite0"
    reason = "not a state dict" if content else "does not match the architecture"
    assert f"could not load bad.pth: {reason}" in loaded.fallback_reason
    assert loaded.notice == f"could not load bad.pth: {reason}"
    assert str(tmp_path) not in loaded.fallback_reason and "not a checkpoint" not in loaded.fallback_reason


def test_nothing_available_falls_back_to_efficientnet_lite0(hub):
    loaded = M.load_model("IMAGENET1K_V2", allow_download=False)
    assert loaded.is_fallback and loaded.backbone.name == "efficientnet_lite0"
    assert "IMAGENET1K_V2" in loaded.fallback_reason and "cache" in loaded.fallback_reason
    assert str(hub) not in loaded.fallback_reason and "/" not in loaded.fallback_reason
    assert "EfficientNet-Lite0" in loaded.summary and loaded.backbone.mean == (0.5, 0.5, 0.5)


def test_offline_download_failure_falls_back(hub, monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr("models.loading.download_to_cache", refuse)
    loaded = M.load_model("IMAGENET1K_V1", allow_download=True)
    assert loaded.is_fallback and "could not be downloaded" in loaded.fallback_reason


def test_untrained_only_when_asked(hub):
    loaded = M.load_model("untrained", allow_download=False)
    assert loaded.backbone.name == "resnet50" and "untrained" in loaded.weights and not loaded.is_fallback
    with pytest.raises(ValueError, match="expected choice"):
        M.load_model("IMAGENET1K_V3")


@pytest.fixture
def served_file(state_dict_file):
    """Serve the checkpoint from a loopback HTTP server (no other network is touched)."""
    directory = state_dict_file.parent

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(directory), **kw)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/{state_dict_file.name}"
    server.shutdown()


def test_download_reports_progress_and_checks_hash(hub, served_file, state_dict_file):
    digest = hashlib.sha256(state_dict_file.read_bytes()).hexdigest()
    dst = hub / "checkpoints" / f"resnet50-{digest[:8]}.pth"
    seen: list[tuple[int, int]] = []
    download_to_cache(served_file, dst, progress=lambda done, total: seen.append((done, total)))
    size = state_dict_file.stat().st_size
    assert dst.read_bytes() == state_dict_file.read_bytes()
    assert len(seen) > 10 and seen[-1] == (size, size)
    assert all(a[0] < b[0] for a, b in zip(seen, seen[1:]))  # monotone

    wrong = hub / "checkpoints" / "resnet50-00000000.pth"
    with pytest.raises(OSError, match="hash"):
        download_to_cache(served_file, wrong)
    assert not wrong.exists() and not list(wrong.parent.glob("*.partial"))


def test_download_then_load_through_weights_api(hub, served_file, state_dict_file, monkeypatch):
    """load_model downloads into the hub cache (progress reported), then torchvision loads it."""
    digest = hashlib.sha256(state_dict_file.read_bytes()).hexdigest()[:8]
    real = download_to_cache
    calls = []

    def to_loopback(url, dst, progress=None, timeout=20.0):
        calls.append(url)
        fake_dst = dst.with_name(f"resnet50-{digest}.pth")
        real(served_file, fake_dst, progress)
        fake_dst.rename(dst)  # torchvision looks for its own file name
        return dst

    monkeypatch.setattr("models.loading.download_to_cache", to_loopback)
    seen = []
    loaded = M.load_model("IMAGENET1K_V2", allow_download=True, progress=lambda d, t: seen.append(d))
    assert calls == [ResNet50_Weights.IMAGENET1K_V2.url]
    assert loaded.backbone.name == "resnet50" and seen


@pytest.mark.parametrize("kind", ["nan", "evil-pickle", "fifo"])
def test_hub_cache_checkpoint_is_read_as_carefully_as_an_operator_file(hub, state_dict_file, tmp_path, kind):
    """torchvision's own loader would unpickle the cached file with weights_only=False."""
    import os

    cached = cached_weights_path(ResNet50_Weights.IMAGENET1K_V2)
    cached.parent.mkdir(parents=True)
    marker = tmp_path / "pwned"
    if kind == "nan":
        state = torch.load(state_dict_file, weights_only=True)
        state["fc.bias"] = torch.full_like(state["fc.bias"], float("inf"))
        torch.save(state, cached)
    elif kind == "evil-pickle":
        class Evil:
            def __reduce__(self):
                return (os.mkdir, (str(marker),))

        torch.save({"fc.bias": Evil()}, cached)
    else:
        os.mkfifo(cached)
    loaded = M.load_model("IMAGENET1K_V2", allow_download=False)
    reason = {"nan": "non-finite values", "evil-pickle": "not a state dict", "fifo": "not a regular file"}[kind]
    assert loaded.is_fallback and loaded.fallback_reason == (
        f"the cached checkpoint of ResNet50_Weights.IMAGENET1K_V2 in the torch hub cache was refused ({reason})")
    assert not marker.exists()


def test_other_networks_download_through_their_own_enum(hub, tmp_path, monkeypatch):
    """ResNet-34's IMAGENET1K_V1 is fetched (from loopback) to its own hub-cache name, then loaded."""
    from torchvision.models import ResNet34_Weights, resnet34

    torch.manual_seed(4)
    model = resnet34(weights=None).eval()
    served = tmp_path / "served"
    served.mkdir()
    torch.save(model.state_dict(), served / "r34.pth")
    digest = hashlib.sha256((served / "r34.pth").read_bytes()).hexdigest()[:8]

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(served), **kw)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    real, calls = download_to_cache, []

    def to_loopback(url, dst, progress=None, timeout=20.0):
        calls.append((url, dst.name))
        fake = dst.with_name(f"r34-{digest}.pth")
        real(f"http://127.0.0.1:{server.server_address[1]}/r34.pth", fake, progress)
        fake.rename(dst)
        return dst

    monkeypatch.setattr("models.loading.download_to_cache", to_loopback)
    try:
        loaded = M.load_model(arch="resnet34", allow_download=True, device=torch.device("cpu"))
    finally:
        server.shutdown()
    weights = ResNet34_Weights.IMAGENET1K_V1
    assert calls == [(weights.url, cached_weights_path(weights).name)]
    assert loaded.backbone.name == "resnet34" and loaded.weights == str(weights) and not loaded.is_fallback
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(M.clean_pass(loaded.backbone, x).logits, model(x), rtol=1e-4, atol=1e-4)
