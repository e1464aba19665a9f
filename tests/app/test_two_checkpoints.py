"""Two checkpoints side by side (issue 21, item 12): Figure 5(a) against (b) and Figure 6 from two
state-dict files the test writes into the operator's weights directory (ResNet-18, seeded, so the
two models differ); and the plain message when only one model is available."""

from __future__ import annotations

import io
import re

import pytest
import torch
from torchvision.models import resnet18

import models as M
from models.checkpoints import compute_model_cam
from models.compute import DEFAULT_CURVE_METHODS

from .conftest import ROOT, assert_clean, new_app

CURVE, CAM = "pages/4_Robustness_curve.py", "pages/3_CAM_shift.py"


@pytest.fixture
def two_files(tmp_path, monkeypatch):
    wdir = tmp_path / "weights"
    wdir.mkdir()
    for name, seed in (("a18.pth", 1), ("b18.pth", 2)):
        torch.manual_seed(seed)
        buf = io.BytesIO()
        torch.save(resnet18(weights=None).state_dict(), buf)
        (wdir / name).write_bytes(buf.getvalue())
    monkeypatch.setenv("DROPBLOCK_LAB_WEIGHTS_DIR", str(wdir))
    return wdir


def loaded_clean(path):
    loaded = M.load_spec(M.ModelSpec("resnet18", "file", str(path), path.name))
    image = M.decode_image((ROOT / "assets" / "coffee.jpg").read_bytes())
    return loaded, M.clean_pass(loaded.backbone, loaded.preprocess(image))


def on_model_a(page: str):
    at = new_app().run()
    at.sidebar.selectbox(key="arch").set_value("resnet18").run()
    at.sidebar.selectbox(key="weights").set_value("dir:a18.pth").run()
    at.switch_page(page).run()
    assert_clean(at)
    return at


def test_robustness_curve_draws_both_models_from_two_state_dicts(two_files):
    at = on_model_a(CURVE)
    assert "dir:b18.pth" in at.selectbox(key="curve_model").options or any(
        "b18.pth" in o for o in at.selectbox(key="curve_model").options)
    at.selectbox(key="curve_model").set_value("dir:b18.pth").run()
    assert_clean(at)
    table = at.table[0].value
    kps = tuple(float(k) for k in table["keep_prob"])
    a_cols = [f"A: {c}" for c in ("DropBlock b=1", "DropBlock b=7", "SpatialDropout")]
    b_cols = [f"B: {c}" for c in ("DropBlock b=1", "DropBlock b=7", "SpatialDropout")]
    assert list(table.columns) == ["keep_prob", *a_cols, *b_cols]
    spec = M.RegularizerSpec(kind="dropblock", keep_prob=1.0, block_size=1, placement="in_blocks", groups=(3, 4))
    (la, ca), (lb, cb) = loaded_clean(two_files / "a18.pth"), loaded_clean(two_files / "b18.pth")
    curve_a = M.compute_robustness_curve(la.backbone, ca, spec, keep_probs=kps, n_samples=8, seed=0)
    curve_b = M.compute_robustness_curve(lb.backbone, cb, spec, keep_probs=kps, n_samples=8, seed=0,
                                         class_idx=ca.top1)
    for cols, curve in ((a_cols, curve_a), (b_cols, curve_b)):
        for m, col in enumerate(cols):
            shown = [float(v) for v in table[col]]
            assert shown == pytest.approx(curve.mean_prob[m].tolist(), abs=1.5e-3), col
    assert [table[a].tolist() for a in a_cols] != [table[b].tolist() for b in b_cols]  # two state dicts, two curves
    assert "A: ResNet-18 · file a18.pth" in " ".join(c.value for c in at.caption)


def test_cam_page_shows_both_cams_and_their_measured_spread(two_files):
    at = on_model_a(CAM)
    at.selectbox(key="cam_model").set_value("dir:b18.pth").run()
    assert_clean(at)
    (la, ca), (lb, cb) = loaded_clean(two_files / "a18.pth"), loaded_clean(two_files / "b18.pth")
    cams = [compute_model_cam(la.backbone, ca, ca.top1), compute_model_cam(lb.backbone, cb, ca.top1)]
    shown = [m.value for m in at.markdown if m.value.startswith("CAM entropy")]
    assert len(shown) == 2
    for text, cam in zip(shown, cams):
        entropy, area = re.match(r"CAM entropy \*\*([0-9.]+)\*\* .* half its maximum \*\*([0-9.]+)%\*\*", text).groups()
        assert float(entropy) == pytest.approx(cam.spread.entropy, abs=2e-3)
        assert float(area) == pytest.approx(100 * cam.spread.area_half_max, abs=0.15)
    assert not torch.allclose(cams[0].cam, cams[1].cam)  # two different state dicts, two different CAMs
    assert shown[0] != shown[1]


@pytest.mark.parametrize("page,key", [(CURVE, "curve_model"), (CAM, "cam_model")])
def test_only_one_model_is_said_plainly(page, key):
    at = new_app().run().switch_page(page).run()  # offline: the EfficientNet-Lite0 fallback, nothing else
    assert_clean(at)
    assert not [s for s in at.selectbox if s.key == key]
    assert any(i.value.startswith("Only one model is available here") and "DROPBLOCK_LAB_WEIGHTS_DIR" in i.value
               for i in at.info)


def test_default_curve_methods_label_order():
    assert [m for m, _b in DEFAULT_CURVE_METHODS] == ["dropblock", "dropblock", "spatial_dropout"]
