"""The charts (ui/charts.py): their data are the results' numbers, every point has a tooltip, the
specs validate against Vega-Lite's schema, every title goes through ``_()``; and the pages show them
(AppTest), built once per result, with the PNG of the same description drawn only on click.
tests/app/test_chart_png.py checks that the PNG shows what the interactive chart shows."""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path

import pytest
import torch

import models as M
from models.setcurve import SetCurve
from models.theory import compute_mistakes, compute_schedule, compute_tutorial_contrasts
from ui import charts, chartspec, chartview, views, waiting

from .test_browser import browser  # noqa: F401 -- the shared headless Chromium fixture
from .conftest import ROOT, assert_clean, new_app, until_final

PO = ROOT / "locale" / "zh_CN" / "LC_MESSAGES" / "dropblock_lab.po"


def lum(colour: str) -> float:
    rgb = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    rgb = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2]


def contrast(a: str, b: str) -> float:
    hi, lo = sorted([lum(a), lum(b)], reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def layers(spec: dict) -> list[dict]:
    """Every unit (single-mark) spec inside a layered/concatenated one."""
    out = []
    for key in ("layer", "hconcat", "vconcat", "concat"):
        for sub in spec.get(key, []):
            out += layers(sub)
    if "mark" in spec:
        out.append(spec)
    return out


def dataset(spec: dict, unit: dict) -> list[dict]:
    name = (unit.get("data") or spec.get("data"))["name"]
    return spec["datasets"][name]


def to_dict(chart: chartspec.Chart) -> dict:
    """The chart's Vega-Lite spec with its rows as JSON, validated against Vega-Lite's schema (Altair's
    copy of it; raises on a spec the schema rejects)."""
    from altair.utils.schemapi import validate_jsonschema
    from altair.vegalite.v6.schema import SCHEMA_URL, core

    spec = chartview.vega_lite_dict(chart)
    assert spec["$schema"] == SCHEMA_URL
    validate_jsonschema(spec, core.load_schema())
    return spec


def tooltip_titles(unit: dict) -> list[str]:
    return [t.get("title") for t in unit.get("encoding", {}).get("tooltip", [])]


def titles(spec) -> list[str]:
    """Every title a visitor sees: the chart's, the axes' and legends' (from encodings), tooltips'."""
    found = []
    if isinstance(spec, dict):
        for key, value in spec.items():
            if key == "title" and isinstance(value, str) and value.strip():
                found.append(value)
            elif key not in ("datasets", "data"):
                found += titles(value)
    elif isinstance(spec, list):
        for value in spec:
            found += titles(value)
    return found


# ------------------------------------------------------------------ results on the hermetic model


@pytest.fixture(scope="module")
def lite0():
    return M.load_model(allow_download=False, device=torch.device("cpu"))


@pytest.fixture(scope="module")
def coffee(lite0):
    bb = lite0.backbone
    image = M.decode_image((ROOT / "assets" / "coffee.jpg").read_bytes())
    return bb, M.clean_pass(bb, M.to_input(image, bb.mean, bb.std))


@pytest.fixture(scope="module")
def curve(coffee):
    bb, clean = coffee
    spec = M.RegularizerSpec(placement="in_blocks", groups=(3, 4), group3_quarter=True, skip=True)
    return M.compute_robustness_curve(bb, clean, spec, keep_probs=(1.0, 0.85, 0.7), n_samples=3, seed=0)


@pytest.fixture(scope="module")
def shift(coffee):
    bb, clean = coffee
    return M.compute_cam_shift(bb, clean, M.RegularizerSpec(keep_prob=0.8, block_size=5), n_samples=16, seed=1)


def small_set_curve() -> SetCurve:
    """A small synthetic set: 2 methods, 3 keep_probs, 5 images, 4 samples (seeded)."""
    g = torch.Generator().manual_seed(0)
    kept = torch.rand(2, 3, 5, 4, generator=g) > 0.3
    prob = torch.rand(2, 3, 5, 4, generator=g)
    return SetCurve(keep_probs=(1.0, 0.9, 0.8), labels=("DropBlock b=1", "SpatialDropout"),
                    specs=(M.RegularizerSpec(), M.RegularizerSpec(kind="spatial_dropout")), n_samples=4, seed=0,
                    clean_top1=(1, 2, 3, 4, 5), clean_prob=torch.ones(5), top1_kept=kept, class_prob=prob)


@pytest.fixture(scope="module")
def results(coffee, curve, shift):
    """One of every result a chart is drawn from."""
    bb, clean = coffee
    strategy = M.RegularizerSpec(placement="in_blocks", groups=(2, 3), skip=False, group3_quarter=False,
                                 group_params=((2, 0.9, 3), (3, 0.9, 3)))
    return {
        "curve": curve, "shift": shift, "set": small_set_curve(),
        "comparison": M.compute_comparison(bb, clean, M.RegularizerSpec(keep_prob=0.8, block_size=5), seed=0),
        "strategy": M.compute_dropblock_dropout(bb, clean, strategy, fc_keep_prob=0.5, n_samples=4, seed=0),
        "mistakes": compute_mistakes(clean.acts[3], 0.85, 5, n_samples=8, seed=0),
        "contrasts": compute_tutorial_contrasts(bb, clean, 0.85, n_samples=2, seed=0),
        "schedule": compute_schedule(0.9, 10_000),
    }


def every_chart(r) -> dict[str, list[chartspec.Chart]]:
    """Every chart the app draws, described from ``results`` (in the session's language)."""
    return {
        "curve": list(charts.describe_robustness_curve(r["curve"], 3)),
        "set": list(charts.describe_set_curves(r["set"])),
        "histogram": [charts.describe_stability_histogram(r["shift"])],
        "strategy": [charts.describe_strategy_stability(r["strategy"])],
        "comparison": [charts.describe_comparison_drops(r["comparison"])],
        "mistakes": [charts.describe_mistakes_drops(r["mistakes"])],
        "contrasts": [charts.describe_contrasts(r["contrasts"])],
        "schedule": [charts.describe_schedule(r["schedule"], at=(5000, 0.95))],
        "gains": [charts.describe_gains([(m.name, m) for m in r["mistakes"].rows])],
    }


# ------------------------------------------------------------------ the charts' data are the results'


def test_curve_chart_shows_the_curve_numbers_with_spread_block_size_and_samples(curve):
    prob, top1 = charts.describe_robustness_curve(curve, 3)
    spec = to_dict(prob)
    units = layers(spec)
    rows = dataset(spec, units[0])
    assert len(rows) == len(curve.labels) * len(curve.keep_probs) == 9
    for row in rows:
        m, k = curve.labels.index(row["method"]), curve.keep_probs.index(row["keep_prob"])
        assert row["prob"] == pytest.approx(float(curve.mean_prob[m, k]), abs=1e-7)
        assert row["prob_std"] == pytest.approx(float(curve.std_prob[m, k]), abs=1e-7)
        assert row["top1"] == pytest.approx(float(curve.top1_agreement[m, k]), abs=1e-7)
        assert row["prob_lo"] == pytest.approx(max(0.0, row["prob"] - row["prob_std"]))
        assert row["prob_hi"] == pytest.approx(min(1.0, row["prob"] + row["prob_std"]))
        assert row["n_samples"] == 3
    # the b=7 curve's block size is 7, SpatialDropout's the whole channel, at keep_prob 1 nothing spreads
    assert {r["method"]: r["block_size"] for r in rows} == {"DropBlock b=1": "1", "DropBlock b=7": "7",
                                                           "SpatialDropout": "whole channel"}
    assert all(r["prob_std"] == 0 for r in rows if r["keep_prob"] == 1.0)

    marks = {u["mark"]["type"]: u for u in units}
    assert set(marks) == {"line", "rule", "point"}
    point = marks["point"]["encoding"]
    assert point["x"]["field"] == "keep_prob" and point["x"]["scale"]["reverse"] is True  # Figure 5: falls right
    assert point["y"]["field"] == "prob" and marks["rule"]["encoding"]["y"]["field"] == "prob_lo"
    assert marks["rule"]["encoding"]["y2"]["field"] == "prob_hi"  # the Monte Carlo spread, mean ± std
    fields = [t["field"] for t in point["tooltip"]]
    assert fields[:5] == ["method", "keep_prob", "block_size", "prob", "prob_std"] and "n_samples" in fields
    assert point["color"]["scale"]["range"] == list(chartspec.PALETTE[:3])
    assert point["shape"]["scale"]["range"] == list(chartspec.SHAPES[:3])
    assert to_dict(top1)["layer"][-1]["encoding"]["y"]["field"] == "top1"


def test_histogram_counts_are_the_samples(shift):
    spec = to_dict(charts.describe_stability_histogram(shift))
    bars, rules = layers(spec)
    probs = shift.sample_probs.numpy()
    bins = charts.stability_bins(shift.n_samples)
    rows = dataset(spec, bars)
    assert len(rows) == bins == 16 and sum(r["count"] for r in rows) == shift.n_samples
    for row in rows:
        inside = ((probs >= row["start"]) & ((probs < row["end"]) | ((row["end"] == 1.0) & (probs <= 1.0))))
        assert row["count"] == int(inside.sum())
    assert bars["encoding"]["x"]["bin"] == "binned" and bars["encoding"]["x2"]["field"] == "end"
    assert [t["field"] for t in bars["encoding"]["tooltip"]] == ["start", "end", "count"]
    clean, mean = dataset(spec, rules)
    assert clean["p"] == pytest.approx(shift.clean_prob) and mean["p"] == pytest.approx(float(probs.mean()))
    assert mean["std"] == pytest.approx(float(probs.std())) and mean["n_samples"] == shift.n_samples
    assert rules["encoding"]["color"]["scale"]["range"] == [chartspec.REFERENCE, chartspec.PALETTE[1]]


def test_strategy_strip_has_every_sample_and_the_arms_spread(results):
    result = results["strategy"]
    spec = to_dict(charts.describe_strategy_stability(result))
    ticks, spread, mean, clean = layers(spec)
    samples = dataset(spec, ticks)
    assert len(samples) == len(result.views) * result.n_samples
    for v in result.views:
        assert [r["p"] for r in samples if r["method"] == v.label] == pytest.approx(v.sample_probs.tolist())
    summary = {r["method"]: r for r in dataset(spec, spread)}
    for v in result.views:
        assert summary[v.label]["mean"] == pytest.approx(v.class_prob)
        assert summary[v.label]["std"] == pytest.approx(v.prob_std)
        assert summary[v.label]["mean_hi"] - summary[v.label]["mean_lo"] <= 2 * v.prob_std + 1e-9
    assert dataset(spec, clean)[0]["p"] == pytest.approx(result.clean_prob)
    assert spread["encoding"]["x2"]["field"] == "mean_hi" and "tooltip" in mean["encoding"]
    assert mean["mark"]["shape"] == "diamond" and ticks["mark"]["type"] == "tick"


def test_drop_rate_bars_show_the_numbers_as_text_and_the_target(results):
    comparison = results["comparison"]
    spec = to_dict(charts.describe_comparison_drops(comparison))
    bars, text, target = layers(spec)
    rows = dataset(spec, bars)
    assert [r["name"] for r in rows] == [v.label for v in comparison.views]
    assert [r["realised_drop"] for r in rows] == pytest.approx([v.realised_drop for v in comparison.views])
    assert [r["sample_drop"] for r in rows] == pytest.approx([v.sample_drop for v in comparison.views])
    assert text["mark"]["type"] == "text" and text["encoding"]["text"] == {
        "field": "realised_drop", "format": ".3f", "type": "quantitative"}  # the exact number on the bar
    assert dataset(spec, target) == [{"target": pytest.approx(1 - 0.8)}]

    report = results["mistakes"]
    spec = to_dict(charts.describe_mistakes_drops(report))
    bars, text, target = layers(spec)
    assert [r["realised_drop"] for r in dataset(spec, bars)] == pytest.approx([m.realised_drop for m in report.rows])
    assert dataset(spec, bars)[0]["name"].startswith("✓")  # the paper's recipe first, as in the table
    assert all(r["name"].startswith("✗") for r in dataset(spec, bars)[1:])
    assert dataset(spec, target)[0]["target"] == pytest.approx(0.15)

    c = results["contrasts"]
    spec = to_dict(charts.describe_contrasts(c))
    rows = dataset(spec, layers(spec)[0])
    assert [r["contrast"] for r in rows] == ["Site", "Site", "block_size", "block_size"]
    assert [r["prob"] for r in rows] == pytest.approx([x.class_prob for x in (*c.site, *c.block_size)])
    assert [r["realised_drop"] for r in rows] == pytest.approx([x.realised_drop for x in (*c.site, *c.block_size)])


def test_schedule_and_gains_show_the_schedule_and_the_recipes_means(results):
    sched = results["schedule"]
    spec = to_dict(charts.describe_schedule(sched, at=(5000, 0.95)))
    line, hover, total, half = layers(spec)
    rows = dataset(spec, line)
    assert [r["step"] for r in rows] == sched.steps.tolist()
    assert [r["keep_prob"] for r in rows] == pytest.approx(sched.keep_probs.tolist())
    assert rows[0]["keep_prob"] == 1.0 and rows[-1]["keep_prob"] == pytest.approx(0.9)
    assert hover["mark"]["opacity"] == 0 and tooltip_titles(hover)  # the line's values on hover
    assert dataset(spec, total)[0]["step"] == 10_000 and dataset(spec, half) == [{"step": 5000, "keep_prob": 0.95}]

    report = results["mistakes"]
    spec = to_dict(charts.describe_gains([(m.name, m) for m in report.rows]))
    bars, one = layers(spec)
    rows = dataset(spec, bars)
    assert len(rows) == 2 * len(report.rows)
    assert [r["gain"] for r in rows[::2]] == pytest.approx([m.train_mean for m in report.rows])
    assert [r["gain"] for r in rows[1::2]] == pytest.approx([m.eval_mean for m in report.rows])
    assert bars["encoding"]["x"]["scale"]["type"] == "log" and bars["encoding"]["x2"]["field"] == "one"
    assert bars["encoding"]["yOffset"]["field"] == "phase"  # training and inference side by side
    assert dataset(spec, one) == [{"gain": 1.0}]


def test_every_chart_validates_and_every_mark_with_data_has_tooltips(results):
    for name, chart_list in every_chart(results).items():
        for chart in chart_list:
            spec = to_dict(chart)  # raises on a spec Vega-Lite's schema rejects
            assert spec["$schema"].startswith("https://vega.github.io/schema/vega-lite/v")
            for unit in layers(spec):
                if unit["mark"]["type"] == "line":
                    continue  # the points on it carry the values
                assert tooltip_titles(unit), (name, unit["mark"])


def test_the_schema_check_rejects_a_broken_spec_and_layers_name_their_own_data(results, monkeypatch):
    from jsonschema import ValidationError

    chart = every_chart(results)["curve"][0]
    good = chartview._unit
    monkeypatch.setattr(chartview, "_unit", lambda c, layer: {**good(c, layer), "mark": {"type": "pointy"}})
    with pytest.raises(ValidationError):
        to_dict(chart)
    monkeypatch.undo()
    spec = to_dict(chart)
    assert "data" in spec and all("data" not in unit for unit in spec["layer"])  # one rows object: lifted
    other = chartspec.Layer("rule", ({"keep_prob": 0.9, "prob": 0.5},), x="keep_prob")
    two = to_dict(dataclasses.replace(chart, layers=(*chart.layers, other)))
    assert "data" not in two and {u["data"]["name"] for u in two["layer"]} <= set(two["datasets"])
    assert len(two["datasets"]) == 2 and two["datasets"][two["layer"][-1]["data"]["name"]] == [dict(other.rows[0])]


def test_series_colours_read_on_light_and_dark_backgrounds():
    for colour in (*chartspec.PALETTE, chartspec.REFERENCE):
        assert contrast(colour, "#ffffff") >= 3.0, colour  # Streamlit's light background
        assert contrast(colour, "#0e1117") >= 3.0, colour  # Streamlit's dark background


def po_msgids() -> set[str]:
    text = PO.read_text(encoding="utf-8")
    ids, current, in_id = set(), [], False
    for line in text.splitlines():
        if line.startswith("msgid "):
            current, in_id = [ast.literal_eval(line[6:])], True
        elif line.startswith('"') and in_id:
            current.append(ast.literal_eval(line))
        else:
            if in_id:
                ids.add("".join(current))
            in_id = False
    if in_id:
        ids.add("".join(current))
    return ids - {""}


def test_every_title_goes_through_gettext_and_has_a_chinese_translation(results, monkeypatch):
    asked = []

    def marked(message: str) -> str:
        asked.append(message)
        return f"⟦{message}⟧"

    monkeypatch.setattr(charts, "_", marked)
    shown = [t for chart_list in every_chart(results).values() for chart in chart_list for t in titles(to_dict(chart))]
    assert shown
    untranslated = [t for t in shown if t != " " and not re.fullmatch(r"⟦.*⟧", t)]
    assert not untranslated, untranslated  # axis, legend, chart and tooltip titles all through _()
    missing = sorted(set(asked) - po_msgids())
    assert not missing, f"no zh_CN entry for {missing}"


# ------------------------------------------------------------------ the pages


def vega_charts(at) -> list:
    """The Vega-Lite chart elements (``vega_lite_chart`` since Streamlit 1.50, ``arrow_vega_lite_chart`` before)."""
    return list(at.get("vega_lite_chart")) or list(at.get("arrow_vega_lite_chart"))


@pytest.mark.parametrize("page, pngs", [
    ("pages/2_Compare_methods.py", ["dl-compare-drops"]),
    ("pages/3_CAM_shift.py", ["dl-cam-stability"]),
    ("pages/5_Theory_and_schedule.py", ["dl-schedule", "dl-mistakes-drops", "dl-contrasts"]),
    ("pages/6_DropBlock_and_Dropout.py", ["dl-strategy-stability"]),
])
def test_pages_show_interactive_charts_each_with_its_png(page, pngs):
    at = new_app().run()
    until_final(at.switch_page(page).run())
    assert_clean(at)
    shown = vega_charts(at)
    assert len(shown) == len(pngs), page  # one chart per PNG here: none of these pages draws a pair
    for element in shown:
        assert '"tooltip"' in element.proto.spec and element.proto.theme == "streamlit"
    keys = [b.key for b in at.get("download_button")]
    assert [k for k in keys if k in pngs] == pngs  # each chart's PNG, in the page's order


def test_robustness_page_builds_the_chart_once_and_draws_the_png_only_on_click(monkeypatch):
    built = []
    real = charts.describe_robustness_curve
    monkeypatch.setattr(charts, "describe_robustness_curve", lambda *a, **k: built.append(1) or real(*a, **k))
    chartview.chart_specs.results().clear()
    chartview.chart_png.results().clear()
    at = new_app().run()
    until_final(at.switch_page("pages/4_Robustness_curve.py").run())
    assert_clean(at)
    prob, top1 = vega_charts(at)
    assert "keep_prob" in prob.proto.spec and '"reverse": true' in prob.proto.spec
    assert "dl-robustness-curve" in {b.key for b in at.get("download_button")}
    drawn = len(built)  # once per round drawn (the curve refines in place), then the final's
    assert drawn >= 1
    at.run()  # a rerun: the final result cached, its spec too: no rebuild, no matplotlib
    assert_clean(at)
    assert len(vega_charts(at)) == 2 and len(built) == drawn
    assert len(chartview.chart_png.results()) == 0  # the PNG waits for a click


def test_robustness_page_answers_with_the_scans_provisional_curve_then_the_measured_grid():
    """The first answer is the keep_prob scan's own first draw (no waiting for the whole scan), said to be
    provisional; once the scan is whole the page runs again and refines the curve on the measured grid."""
    views.keep_prob_scan.results().clear()  # measured once per model and image for every session: not yet here
    waiting.pool().cache.clear()  # the pool's own last final
    at = new_app(fewest_samples=True).run()
    at.switch_page("pages/4_Robustness_curve.py").run()
    assert_clean(at)
    captions = [c.value for c in at.caption]
    assert any(c.startswith("Provisional: the grid") and "1 draws each so far" in c for c in captions), captions
    assert any("1 of 4 samples" in c for c in captions), captions  # the scan's rounds
    rows = curve_rows(at)
    assert len(rows) == 12  # the scan's coarse keep_probs, 1 down to 0.5
    until_final(at)
    assert_clean(at)
    captions = [c.value for c in at.caption]
    assert not any(c.startswith("Provisional") for c in captions)
    assert any(c.startswith("keep_prob grid measured for this model") for c in captions)
    assert any("4 of 4 samples" in c for c in captions), captions  # the curve's, on the measured grid
    rows = curve_rows(at)
    assert 2 <= len(rows) < 12 and rows[0]["keep_prob"] == "1"


def curve_rows(at) -> list[dict]:
    """The curve's table (not the paper's results): one row per keep_prob."""
    return next(rows for rows in (t.value.to_dict("records") for t in at.table) if rows and "DropBlock b=7" in rows[0])


def test_set_curves_show_the_summary_with_its_spread_images_and_samples():
    curve = small_set_curve()
    kept, prob = curve.top1_kept, curve.class_prob
    unchanged, mean_prob = charts.describe_set_curves(curve, curve.summary())
    spec = to_dict(unchanged)
    units = layers(spec)
    rows = dataset(spec, units[0])
    assert len(rows) == 6
    for row in rows:
        m, k = curve.labels.index(row["method"]), curve.keep_probs.index(row["keep_prob"])
        share = kept[m, k].float().mean(dim=0)  # (S,) share of the 5 images per sample
        assert row["unchanged"] == pytest.approx(float(share.mean()))
        assert row["unchanged_std"] == pytest.approx(float(share.std(unbiased=False)))
        assert row["prob"] == pytest.approx(float(prob[m, k].mean(dim=0).mean()))
        assert (row["n_images"], row["n_samples"]) == (5, 4)
    assert {r["method"]: r["block_size"] for r in rows} == {"DropBlock b=1": str(M.RegularizerSpec().block_size),
                                                           "SpatialDropout": "whole channel"}
    fields = [t["field"] for t in units[-1]["encoding"]["tooltip"]]
    assert {"keep_prob", "block_size", "unchanged", "unchanged_std", "n_images", "n_samples"} <= set(fields)
    assert layers(to_dict(mean_prob))[-1]["encoding"]["y"]["field"] == "prob"


def test_image_set_page_draws_its_curves_as_charts():
    at = new_app().run()
    at.switch_page("pages/7_Image_set.py").run()
    at.select_slider(key="set_samples").set_value(2)
    at.select_slider(key="set_points").set_value(2)
    until_final(at.button(key="set_compute").click().run())
    assert_clean(at)
    unchanged, prob = vega_charts(at)
    assert '"n_images"' in unchanged.proto.spec and '"unchanged_std"' in unchanged.proto.spec
    assert "dl-image-set-curves" in {b.key for b in at.get("download_button")}


# ------------------------------------------------------------------ the real browser, light and dark


def rgb(css: str) -> str:
    """'rgb(r, g, b)' or 'rgba(...)' -> '#rrggbb'."""
    r, g, b = (int(float(v)) for v in re.findall(r"[\d.]+", css)[:3])
    return f"#{r:02x}{g:02x}{b:02x}"


@pytest.fixture(scope="module")
def themed_server(request, tmp_path_factory):
    """``streamlit run app.py --theme.base <light|dark>``: the project's config pins light."""
    import contextlib

    from .appserver import app_server
    from .test_browser import CHROMIUM

    if CHROMIUM is None:
        pytest.skip("no Chromium installed (apt-get install chromium)")
    servers: dict[str, str] = {}

    with contextlib.ExitStack() as stack:
        def start(theme: str) -> str:
            if theme not in servers:
                servers[theme] = stack.enter_context(app_server(tmp_path_factory, "--theme.base", theme)).url
            return servers[theme]

        yield start


def tooltip(text: str) -> dict[str, str]:
    """Vega's tooltip table as {title: value}."""
    cells = [c.strip() for c in text.split("\n") if c.strip()]
    return dict(zip(cells[::2], cells[1::2]))


def hover_shot(page, chart_index: int, marks: str, nth: int, shots: Path | None, name: str) -> str:
    """Hover the ``nth`` mark of a chart; return the tooltip's text; save the charts with it."""
    chart = page.locator('[data-testid="stVegaLiteChart"]').nth(chart_index)
    chart.scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    chart.locator(marks).nth(nth).hover(force=True)
    tooltip = page.locator("#vg-tooltip-element")
    tooltip.wait_for(state="visible", timeout=10_000)
    if shots is not None:
        boxes = [page.locator('[data-testid="stVegaLiteChart"]').nth(i).bounding_box()
                 for i in range(page.locator('[data-testid="stVegaLiteChart"]').count())]
        boxes = [b for b in boxes if b and abs(b["y"] - chart.bounding_box()["y"]) < 50] + [tooltip.bounding_box()]
        x0, y0 = min(b["x"] for b in boxes) - 16, min(b["y"] for b in boxes) - 16
        x1, y1 = max(b["x"] + b["width"] for b in boxes) + 16, max(b["y"] + b["height"] for b in boxes) + 16
        page.screenshot(path=str(shots / f"{name}.png"), clip={"x": max(0, x0), "y": max(0, y0),
                                                              "width": x1 - max(0, x0), "height": y1 - max(0, y0)})
    return tooltip.inner_text()


@pytest.mark.browser
@pytest.mark.parametrize("theme", ["light", "dark"])
def test_charts_hover_values_and_stay_legible_in_both_themes(theme, themed_server, browser):
    import os

    from .test_browser import assert_no_exception, wait_count, wait_ready, wait_until

    shots = Path(os.environ["DROPBLOCK_LAB_SCREENSHOTS"]) if os.environ.get("DROPBLOCK_LAB_SCREENSHOTS") else None
    url = themed_server(theme)
    page = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page.goto(f"{url}/Robustness_curve")
    wait_ready(page, "Robustness curve", "Download PNG")
    assert_no_exception(page)
    charts = page.locator('[data-testid="stVegaLiteChart"]')
    wait_count(charts, 2)  # the chart component loads lazily: on a busy machine after the run ends
    assert charts.count() == 2
    tables = page.locator('[data-testid="stTable"] table').evaluate_all(
        "ts => ts.map(t => Array.from(t.rows).map(r => Array.from(r.cells).map(c => c.innerText.trim())))")
    header, *rows = next(t for t in tables if t and t[0][0] == "keep_prob")  # the curve's (not the paper's)
    table = {row[0]: dict(zip(header, row)) for row in rows}
    lowest = rows[-1][0]  # the grid is measured for the model (models/keepgrid.py): its lowest keep_prob
    wait_count(charts.first.locator("g.mark-symbol path"), 2 * len(rows))
    # the b=7 curve's point at the lowest keep_prob (points are drawn method by method, one per keep_prob)
    shown = tooltip(hover_shot(page, 0, "g.mark-symbol path", 2 * len(rows) - 1, shots, f"chart-{theme}"))
    assert shown["keep_prob"] == lowest and shown["Monte Carlo samples"] == "8"
    assert shown["block_size"] == {"DropBlock b=1": "1", "DropBlock b=7": "7"}.get(shown["method"], "whole channel")
    assert shown["p(espresso)"] == table[lowest][shown["method"]]  # the hover value is the table's number

    background = rgb(page.evaluate(
        "() => getComputedStyle(document.querySelector('[data-testid=stApp]')).backgroundColor"))
    assert (lum(background) < 0.05) == (theme == "dark")
    labels = page.locator('[data-testid="stVegaLiteChart"] g.role-axis-label text').first
    fill = rgb(labels.evaluate("e => getComputedStyle(e).fill"))
    assert contrast(fill, background) >= 3.0, (fill, background)  # axis labels follow the theme
    line = page.locator('[data-testid="stVegaLiteChart"] g.mark-symbol path').nth(11)
    assert contrast(rgb(line.evaluate("e => getComputedStyle(e).fill")), background) >= 3.0

    with page.expect_download(timeout=60_000) as download:  # the matplotlib figure, drawn on this click
        page.get_by_role("button", name="Download PNG").last.click()
    assert download.value.suggested_filename == "robustness-curve.png"
    assert Path(download.value.path()).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    page.goto(f"{url}/CAM_shift")
    wait_ready(page, "CAM shift", "Download PNG")
    histogram = page.locator('[data-testid="stVegaLiteChart"]').first
    histogram.locator("g.mark-rect path").first.wait_for(state="attached", timeout=90_000)
    histogram.scroll_into_view_if_needed()
    bars = histogram.locator("g.mark-rect path")
    counts: list[int] = []

    def drawn() -> bool:
        counts[:] = [i for i in range(bars.count()) if (bars.nth(i).bounding_box() or {}).get("height", 0) > 1]
        return bool(counts)

    wait_until(drawn, "a histogram bar drawn", page=page)
    shown = tooltip(hover_shot(page, 0, "g.mark-rect path", counts[-1], shots, f"chart-histogram-{theme}"))
    assert 1 <= int(shown["samples"]) <= 16 and 0 <= float(shown["from"]) < float(shown["to"]) <= 1
    page.close()
