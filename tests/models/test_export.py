"""Raw data out: each download parses back to the computed result and says how it was made."""

from __future__ import annotations

import csv
import io
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import models as M
from models import export as E


@pytest.fixture
def downloads(monkeypatch):
    """The bytes each data button would hand over when clicked, by file name."""
    import ui.export

    made: dict[str, object] = {}

    def button(label, data, *, file_name, mime, key, on_click, icon):
        assert callable(data) and on_click == "ignore"  # built only when clicked; the click does not rerun
        made[file_name] = data

    monkeypatch.setattr(ui.export.st, "download_button", button)
    return made


def fake_ctx(lite0, clean, spec, seed):
    return SimpleNamespace(loaded=lite0, image_label="Coffee cup", image_key="0123456789abcdef", spec=spec, seed=seed,
                           clean=clean)


def test_mask_view_npz_round_trips_with_meta(lite0, coffee_clean, downloads):
    import ui.export

    spec = M.RegularizerSpec(keep_prob=0.8, block_size=3)
    view = M.compute_mask_sample(lite0.backbone, coffee_clean, spec, seed=4, n_channels=5)
    ui.export.mask_view(fake_ctx(lite0, coffee_clean, spec, 4), view)
    data = downloads["mask-explorer.npz"]()
    with np.load(io.BytesIO(data), allow_pickle=False) as z:  # no pickle needed
        arrays = {k: z[k] for k in z.files}
    assert arrays["seed_mask"].dtype == np.bool_ and arrays["block_mask"].dtype == np.bool_
    assert arrays["before"].dtype == np.float32
    for name in ("seed_mask", "block_mask", "before", "after"):
        np.testing.assert_array_equal(arrays[name], getattr(view, name).numpy())
    assert tuple(arrays["channels"]) == view.channels
    meta = json.loads(str(arrays["meta"][0]))
    assert meta["seed"] == 4 and meta["image_sha256_prefix"] == "0123456789abcdef"
    assert meta["model"] == lite0.summary and meta["weights"] == lite0.weights
    assert meta["spec"]["keep_prob"] == 0.8 and meta["spec"]["block_size"] == 3 and meta["spec"]["kind"] == "dropblock"
    assert meta["gamma"] == view.gamma and meta["site"] == view.site_label
    # the metadata reproduces the result
    again = M.compute_mask_sample(lite0.backbone, coffee_clean, M.RegularizerSpec(**{
        k: tuple(v) if isinstance(v, list) else v for k, v in meta["spec"].items()}), seed=meta["seed"], n_channels=5)
    assert torch.equal(again.block_mask, view.block_mask)


def test_cam_npz_is_raw_with_the_scale_used(lite0, coffee_clean, downloads):
    import ui.export

    shift = M.compute_cam_shift(lite0.backbone, coffee_clean, M.RegularizerSpec(), n_samples=2, seed=1)
    ctx = fake_ctx(lite0, coffee_clean, M.RegularizerSpec(), 1)
    ui.export.cams(ctx, "cam-mc-mean", 3.5, shift.class_name, cam_mc_mean=shift.mean_cam)
    ui.export.cams(ctx, "cam-difference", None, shift.class_name, diverging=True, cam_difference=shift.difference)
    arrays, meta = E.read_npz(downloads["cam-mc-mean.npz"]())
    np.testing.assert_array_equal(arrays["cam_mc_mean"], shift.mean_cam.numpy())  # raw: not clipped at 0
    assert meta["colour_scale"]["vmax"] == 3.5 and meta["colour_scale"]["vmin"] == 0.0
    _, meta = E.read_npz(downloads["cam-difference.npz"]())
    m = float(shift.difference.abs().max())
    assert meta["colour_scale"]["vmin"] == -m and meta["colour_scale"]["vmax"] == m


def test_curve_csv_round_trips_exactly(lite0, coffee_clean, downloads):
    import ui.export

    spec = M.RegularizerSpec(keep_prob=0.9)
    curve = M.compute_robustness_curve(lite0.backbone, coffee_clean, spec, keep_probs=(1.0, 0.7), n_samples=3, seed=2)
    ui.export.curve(fake_ctx(lite0, coffee_clean, spec, 2), curve, n_samples=3)
    text = downloads["robustness-curve.csv"]().decode("utf-8")
    records = list(csv.reader(io.StringIO(text, newline="")))  # comment lines are one (quoted) cell
    comments = [r[0] for r in records if len(r) == 1 and r[0].startswith("# ")]
    meta = {line[2:].split(": ", 1)[0]: json.loads(line[2:].split(": ", 1)[1]) for line in comments}
    rows = list(csv.DictReader(io.StringIO("".join(line for line in text.splitlines(keepends=True)
                                                   if not line.startswith(("#", '"#'))), newline="")))
    assert meta["seed"] == 2 and meta["n_samples"] == 3 and meta["class_idx"] == curve.class_idx
    assert meta["spec"]["keep_prob"] == 0.9 and meta["model"] == lite0.summary
    assert len(rows) == len(curve.labels) * 2
    for row in rows:
        m, k = curve.labels.index(row["method"]), curve.keep_probs.index(float(row["keep_prob"]))
        assert float(row["prob_mean"]) == float(curve.mean_prob[m, k])  # repr floats: exact
        assert float(row["prob_std"]) == float(curve.std_prob[m, k])
        assert float(row["top1_unchanged_share"]) == float(curve.top1_agreement[m, k])
        assert row["class"] == curve.class_name
    assert E.read_csv(text.encode()) == (rows, meta)


def test_top5_csv_round_trips(lite0, coffee_clean, downloads):
    import ui.export

    top = M.engine.topk(coffee_clean.probs[0], lite0.backbone.categories)
    ui.export.top(fake_ctx(lite0, coffee_clean, M.RegularizerSpec(), 0), "top5", clean=top)
    rows, meta = E.read_csv(downloads["top5.csv"]())
    assert [(r["clean_class"], float(r["clean_probability"])) for r in rows] == top
    assert [int(r["rank"]) for r in rows] == [1, 2, 3, 4, 5] and rows[0]["clean_class"] == "espresso"


def test_set_curve_exports(lite0, coffee_clean):
    from models.setcurve import compute_set_curve

    curve = compute_set_curve(lite0.backbone, [coffee_clean.x], M.RegularizerSpec(), keep_probs=(1.0, 0.8), n_samples=2)
    arrays, meta = E.read_npz(E.npz_bytes(E.set_curve_arrays(curve), {"seed": 0}))
    assert arrays["top1_kept"].dtype == np.bool_ and arrays["top1_kept"].shape == (4, 2, 1, 2)
    np.testing.assert_array_equal(arrays["class_prob"], curve.class_prob.numpy())
    rows, _ = E.read_csv(E.csv_bytes(E.set_curve_rows(curve), {"seed": 0}))
    s = curve.summary()
    assert [float(r["unchanged_share_mean"]) for r in rows] == s["unchanged_mean"].flatten().tolist()
    assert [float(r["clean_top1_prob_std"]) for r in rows] == s["prob_std"].flatten().tolist()


def test_csv_cells_never_run_as_formulas_and_comments_stay_one_line():
    data = E.csv_bytes([{"name": "=HYPERLINK(\"x\")", "value": 1.5, "n": 2}], {"image": "a\nb\x1b.png"})
    text = data.decode()
    assert text.splitlines()[0] == '"# image: ""a\\nb\\u001b.png"""'  # one quoted cell on one line
    rows, meta = E.read_csv(data)
    assert rows == [{"name": "'=HYPERLINK(\"x\")", "value": "1.5", "n": "2"}]
    assert meta == {"image": "a\nb\x1b.png"}


def test_builders_check_their_input():
    with pytest.raises(ValueError, match="expected array names"):
        E.npz_bytes({"meta": np.zeros(1)}, {})
    with pytest.raises(ValueError, match="expected array names"):
        E.npz_bytes({"../x": np.zeros(1)}, {})
    with pytest.raises(ValueError, match="expected every row"):
        E.csv_bytes([{"a": 1}, {"b": 2}], {})
    with pytest.raises(TypeError, match="JSON"):
        E.npz_bytes({"x": np.zeros(1)}, {"bad": object()})


HOSTILE = "x,=1+1,=cmd|' /C calc'!A0,@SUM(1),+2.png"
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cells(data: bytes) -> list[str]:
    """Every cell a spreadsheet would see: the whole file parsed by the csv module, comment lines too."""
    return [cell for row in csv.reader(io.StringIO(data.decode("utf-8"), newline="")) for cell in row]


def _assert_no_formula_cell(data: bytes) -> None:
    bad = [cell for cell in _cells(data) if cell.startswith(FORMULA_START)]
    assert not bad, f"cells a spreadsheet would run as formulas: {bad}"


def test_csv_downloads_with_hostile_names_have_no_formula_cells(lite0, coffee_clean, downloads):
    """Issue 22 §4: upload and zip member names land in the metadata; no cell may start a formula."""
    import ui.export
    from models.imageset import read_files
    from models.setcurve import compute_set_curve

    from .test_imageset import png

    spec = M.RegularizerSpec(keep_prob=0.9)
    ctx = SimpleNamespace(**{**vars(fake_ctx(lite0, coffee_clean, spec, 2)), "image_label": HOSTILE})
    curve = M.compute_robustness_curve(lite0.backbone, coffee_clean, spec, keep_probs=(1.0, 0.7), n_samples=2, seed=2)
    ui.export.curve(ctx, curve, n_samples=2)
    top = M.engine.topk(coffee_clean.probs[0], lite0.backbone.categories)
    ui.export.top(ctx, "top5", clean=[("=" + name, p) for name, p in top])
    imageset = read_files([(HOSTILE, png((200, 10, 10))), ("a,=1+1,b.png", png((10, 200, 10)))], HOSTILE)
    set_curve = compute_set_curve(lite0.backbone, [coffee_clean.x] * 2, spec, keep_probs=(1.0, 0.8), n_samples=2)
    ui.export.rows(ctx, "image-set-curves", "set", lambda: E.set_curve_rows(set_curve),
                   **E.set_meta(imageset, set_curve))
    ui.export.rows(ctx, "numbers", "hostile text cells", lambda: [
        {"name": name, "value": 0.5} for name in ("=1+1", "+2", "-3", "@SUM(1)", "\tx", "\rx", "-0.5")])
    for name in ("robustness-curve.csv", "top5.csv", "image-set-curves.csv", "numbers.csv"):
        data = downloads[name]()
        _assert_no_formula_cell(data)
        rows, meta = E.read_csv(data)  # and it still reads back: names, numbers, metadata
        assert meta["image"] == HOSTILE
    rows, meta = E.read_csv(downloads["image-set-curves.csv"]())
    assert meta["set"] == HOSTILE and meta["image_names"] == [HOSTILE, "a,=1+1,b.png"]
    assert [float(r["unchanged_share_mean"]) for r in rows] == set_curve.summary()["unchanged_mean"].flatten().tolist()
    rows, _ = E.read_csv(downloads["top5.csv"]())
    assert rows[0]["clean_class"] == "'=" + top[0][0]  # the OWASP quote prefix, kept on reading


def test_negative_numbers_never_reach_a_csv_cell_as_a_formula():
    """Downloads hold no negative numbers (probabilities, shares, spreads, counts); should one appear it
    is escaped like text, never written as a cell that starts with '-'."""
    data = E.csv_bytes([{"value": -1.5, "n": -2, "tiny": -0.0, "ok": 0.25}], {"offset": -3})
    _assert_no_formula_cell(data)
    rows, meta = E.read_csv(data)
    assert rows == [{"value": "'-1.5", "n": "'-2", "tiny": "'-0.0", "ok": "0.25"}] and meta == {"offset": -3}
