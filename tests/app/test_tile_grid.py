"""Mask grids drawn by the browser (ui/render.py ``show_mask_grid``): one PNG tile per map at one
pixel per unit, text labels, one HTML element cached across sessions by the result it shows, and
the labelled PNG of the whole grid built only when its download is clicked."""

from __future__ import annotations

import base64
import io
from html.parser import HTMLParser

import numpy as np
import pytest
import torch
from PIL import Image

import models as M
from ui import i18n, render

from .conftest import PAGES, ROOT, assert_clean, new_app

ROWS = ("blocks", "seeds", "before", "after")
LABELS = ["block mask M", "seed mask", "before", "after (scaled)"]


class Figure(HTMLParser):
    """The grid's rows as (label, [(alt, width, height, decoded RGB)]) and its caption."""

    def __init__(self, body: str) -> None:
        super().__init__()
        self.rows: list[tuple[str, list]] = []
        self.caption = ""
        self.style = ""
        self._in: str | None = None
        self.feed(body)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        cls = a.get("class", "")
        if tag == "div" and cls == "dbl-row":
            self.rows.append(("", []))
        elif tag == "div" and cls == "dbl-label":
            self._in = "label"
        elif tag == "figcaption":
            self._in = "caption"
        elif tag == "style":
            self._in = "style"
        elif tag == "img":
            assert cls == "dbl-tile"
            head, data = a["src"].split(",", 1)
            assert head == "data:image/png;base64"
            rgb = np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"))
            self.rows[-1][1].append((a["alt"], int(a["width"]), int(a["height"]), rgb))

    def handle_endtag(self, tag):
        self._in = None

    def handle_data(self, data):
        if self._in == "label":
            self.rows[-1] = (self.rows[-1][0] + data, self.rows[-1][1])
        elif self._in == "caption":
            self.caption += data
        elif self._in == "style":
            self.style += data


@pytest.fixture(scope="module")
def model_and_clean():
    loaded = M.load_model(allow_download=False, device=torch.device("cpu"))
    image = M.decode_image((ROOT / "assets" / "coffee.jpg").read_bytes())
    return loaded, M.clean_pass(loaded.backbone, loaded.preprocess(image)), loaded.preprocess.crop(image)


@pytest.fixture(scope="module")
def view(model_and_clean):
    loaded, clean, _ = model_and_clean
    return M.compute_mask_sample(loaded.backbone, clean, M.RegularizerSpec(keep_prob=0.7, block_size=3), seed=11,
                                 n_channels=8)


@pytest.fixture
def captured(monkeypatch):
    """What render hands to Streamlit: the HTML bodies and the download buttons' data."""
    made = {"html": [], "downloads": {}}
    monkeypatch.setattr(render.st, "html", lambda body, **kw: made["html"].append(body))

    def button(label, data, *, file_name, mime, key, on_click, **kw):
        assert callable(data) and on_click == "ignore"  # built when clicked; the click does not rerun
        made["downloads"][file_name] = data

    monkeypatch.setattr(render.st, "download_button", button)
    return made


@pytest.mark.parametrize("shape", [(14, 14), (7, 10), (3, 1)])
@pytest.mark.parametrize("colours", [3, 256, 400])  # palette PNG up to 256 colours, RGB beyond
def test_tile_png_is_lossless_at_one_pixel_per_unit(shape, colours):
    g = torch.Generator().manual_seed(colours)
    table = torch.randint(0, 256, (colours, 3), generator=g, dtype=torch.uint8).numpy()
    rgb = table[torch.randint(0, colours, shape, generator=g).numpy()]
    png = render.tile_png(rgb)
    with Image.open(io.BytesIO(png)) as im:
        assert im.size == (shape[1], shape[0])
        assert im.mode == ("P" if len(np.unique(rgb.reshape(-1, 3), axis=0)) <= 256 else "RGB")
        np.testing.assert_array_equal(np.asarray(im.convert("RGB")), rgb)


def test_tile_png_rejects_what_is_not_an_rgb_map():
    with pytest.raises(ValueError, match="expected an"):
        render.tile_png(np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="expected an"):
        render.tile_png(np.zeros((4, 4, 3), np.float32))


def test_the_html_holds_each_map_at_one_pixel_per_unit_with_labels_and_alt_text(view):
    rows = render.mask_rows(view, ROWS)
    body = render.tile_grid_html(rows, LABELS, "Seed 11 <b>& co</b>", view.channels)
    fig = Figure(body)
    assert [label for label, _ in fig.rows] == LABELS
    assert fig.caption == "Seed 11 <b>& co</b>" and "<b>" not in body  # text, escaped
    assert "image-rendering: pixelated" in fig.style
    h, w = view.map_size
    for (label, tiles), expected in zip(fig.rows, rows, strict=True):
        assert len(tiles) == len(view.channels) == 8
        for (alt, width, height, rgb), want, channel in zip(tiles, expected, view.channels, strict=True):
            assert (width, height) == (w, h) and rgb.shape == (h, w, 3)
            np.testing.assert_array_equal(rgb, want)  # every unit exactly as mask_rows draws it
            assert alt == f"{label}, channel {channel}"
    blocks = fig.rows[0][1]
    assert any((t[3] == (150, 20, 40)).all(-1).any() for t in blocks)  # this draw dropped units: red shows


def test_unlabelled_rows_and_hostile_labels_are_escaped():
    rgb = np.zeros((2, 2, 3), np.uint8)
    hostile = '"><img src=x onerror=alert(1)>'
    body = render.tile_grid_html([[rgb, rgb]], [hostile], hostile, (5, 6))
    assert body.count("<img") == 2 and "<img src=x" not in body  # the tiles only: the label is text
    fig = Figure(body)
    assert fig.rows[0][0] == hostile == fig.caption
    assert [t[0] for t in fig.rows[0][1]] == [f"{hostile}, channel 5", f"{hostile}, channel 6"]
    unlabelled = Figure(render.tile_grid_html([[rgb], [rgb]], (), None, (9,)))
    assert [label for label, _ in unlabelled.rows] == ["", ""]
    assert [t[0] for _, tiles in unlabelled.rows for t in tiles] == ["Channel 9", "Channel 9"]
    with pytest.raises(ValueError, match="one label per row"):
        render.tile_grid_html([[rgb], [rgb]], ["only one"])


def test_the_grid_is_built_once_per_result_and_the_png_only_when_downloaded(view, captured, monkeypatch):
    render.mask_grid_html.results().clear()
    built, drawn = [], []
    real_html, real_grid = render.tile_grid_html, render.grid
    monkeypatch.setattr(render, "tile_grid_html", lambda *a, **k: built.append(1) or real_html(*a, **k))
    monkeypatch.setattr(render, "grid", lambda *a, **k: drawn.append(1) or real_grid(*a, **k))
    for _ in range(2):  # two sessions showing the same result
        render.show_mask_grid(view, ROWS, LABELS, "mask-explorer", "caption")
    assert built == [1] and drawn == []
    assert captured["html"][0] is captured["html"][1]  # one shared string, not a copy per session
    render.show_mask_grid(view, ROWS[:2], LABELS[:2], "mask-explorer", "caption")  # other rows: another grid
    assert built == [1, 1]
    png = captured["downloads"]["mask-explorer.png"]()  # the click
    assert drawn == [1]
    with Image.open(io.BytesIO(png)) as im:
        expected = real_grid(render.mask_rows(view, ROWS[:2]), LABELS[:2])
        assert im.size == expected.size
        np.testing.assert_array_equal(np.asarray(im.convert("RGB")), np.asarray(expected))


def test_the_grid_is_cached_per_language(view, captured):
    render.mask_grid_html.results().clear()
    render.show_mask_grid(view, ROWS, LABELS, "g", None)
    with i18n.use_language("zh"):
        render.show_mask_grid(view, ROWS, LABELS, "g", None)
    english, chinese = captured["html"]
    assert english is not chinese
    assert "通道" in Figure(chinese).rows[0][1][0][0] and "channel" in Figure(english).rows[0][1][0][0]


def test_cam_overlays_are_blended_once_per_result(model_and_clean, monkeypatch):
    loaded, clean, crop = model_and_clean
    view = M.compute_mask_outcome(loaded.backbone, clean, M.RegularizerSpec(keep_prob=0.7, block_size=3), seed=11)
    blended = []
    real = render.overlay
    monkeypatch.setattr(render, "overlay", lambda *a, **k: blended.append(1) or real(*a, **k))
    vmax = float(view.cam_clean.max())
    first = render.picture_png(render.overlay, crop, view.cam_clean, vmax)
    assert render.picture_png(render.overlay, crop, view.cam_clean, vmax) is first
    assert blended == [1]
    other = render.picture_png(render.overlay, crop, view.cam_dropped, vmax)
    assert blended == [1, 1] and other != first
    with Image.open(io.BytesIO(first)) as im:
        np.testing.assert_array_equal(np.asarray(im), np.asarray(real(crop, view.cam_clean, vmax)))


def _grid_bodies(at) -> list[str]:
    return [h.proto.body for h in at.main.get("html") if 'class="dbl-tiles"' in h.proto.body]


def test_mask_explorer_shares_one_grid_across_sessions_and_translates_it(monkeypatch):
    """Two sessions on the same link: the HTML is built once; in Chinese, labels and alt text are."""
    built = []
    real = render.tile_grid_html
    monkeypatch.setattr(render, "tile_grid_html", lambda *a, **k: built.append(1) or real(*a, **k))

    def open_explorer(lang: str | None = None):
        at = new_app()
        at.query_params["seed"] = "5151"
        if lang:
            at.session_state["lang"] = lang
        return at.run().switch_page(PAGES[0]).run()

    first, second = open_explorer(), open_explorer()
    assert_clean(first)
    assert_clean(second)
    assert len(built) == 1
    (body,) = _grid_bodies(first)
    assert _grid_bodies(second) == [body]
    assert len(Figure(body).rows) == 4
    assert len(first.main.get("image")) == 2  # the two CAMs: the grid is no picture, and there is no phone copy
    assert "dl-mask-explorer" in {b.key for b in first.get("download_button")}
    zh = i18n.catalog("zh")
    with i18n.use_language("zh"):
        chinese = open_explorer("zh")
    assert_clean(chinese)
    fig = Figure(_grid_bodies(chinese)[0])
    assert [label for label, _ in fig.rows] == [zh.gettext(s) for s in LABELS] != LABELS
    assert fig.rows[0][1][0][0].startswith(zh.gettext("block mask M") + "，通道 ")


def test_the_difference_maps_colour_bar_is_the_maps_colours_with_symmetric_ticks():
    assert render._ticks(0.4321) == ["\u22120.432", "\u22120.216", "0.000", "0.216", "0.432"]
    assert render._ticks(12.34) == ["\u221212.3", "\u22126.2", "0.0", "6.2", "12.3"]
    t = torch.linspace(-0.5, 0.25, 64).reshape(8, 8)
    bar = np.asarray(render.diverging_scale(t, "CAM with DropBlock − without"))
    strip = bar[4 + render.BAR_H // 2, render.BAR_PAD:render.BAR_PAD + render.BAR_W]
    table = render._colour_table("RdBu_r")
    # the strip runs through the map's own colours, −max|t| (left) … +max|t| (right), white-ish at 0
    assert (strip[0] == table[0]).all() and (strip[-1] == table[-1]).all()
    assert strip[len(strip) // 2].min() > 230
    left = np.asarray(render.diverging(t))[0, 0]  # t's minimum is −max|t|: the bar's left end
    assert (left == table[0]).all()
    assert render.diverging_scale(t, "x") is render.diverging_scale(t.clone(), "x")  # drawn once per range and label
    ink = (bar[render.BAR_H + 6:] < 128).any(axis=2)  # the ticks' labels and the label under the strip
    assert ink[:, : render.BAR_PAD].any() and ink[:, -render.BAR_PAD:].any()  # the end labels are not cut off
    assert ink[:, 2: render.BAR_PAD].any() and not ink[:, :2].any()


@pytest.mark.parametrize("m", [3e-7, 1.4e-6, 7.62939453125e-06, 0.000999, 99999.0, 1e6, 1e9])
def test_the_colour_bar_of_a_map_that_barely_changes_or_changes_hugely_is_drawn_and_labelled(m):
    # keep_prob 1 on the CAM page: the difference is float noise (~1e-5 on EfficientNet-Lite0). The
    # range was rounded to 6 decimals (3e-7 became 0: log10 raised; 1.4e-6 was labelled 1e-6), and
    # labels of ten digits ran out of the picture at both ends.
    t = torch.full((4, 4), m)
    t[0, 0] = -m / 3
    ticks = render._ticks(float(f"{m:.3g}"))
    assert all(len(text) <= 8 for text in ticks), ticks
    assert float(ticks[-1].replace("\u2212", "-")) == pytest.approx(m, rel=5e-3)
    assert ticks[0] == "\u2212" + ticks[-1] and ticks[1] == "\u2212" + ticks[3]
    bar = np.asarray(render.diverging_scale(t, "x"))
    ink = (bar[render.BAR_H + 6:] < 128).any(axis=2)
    assert not ink[:, :2].any() and not ink[:, -2:].any()  # no label runs out of the picture


def test_the_colour_bar_ignores_values_that_are_not_finite_and_fits_its_label():
    t = torch.tensor([[0.25, float("nan")], [-0.5, float("inf")]])
    assert render.diverging_scale(t, "x") is render.diverging_scale(torch.tensor([[0.5, 0.0]]), "x")  # the finite range
    assert render.diverging_scale(torch.full((2, 2), float("nan")), "x") is render.diverging_scale(torch.zeros(2, 2), "x")
    long = "平均 − 原始类激活图，以类别得分计（与类激活图相同）" * 2
    bar = np.asarray(render.diverging_scale(torch.ones(2, 2), long))
    ink = (bar[render.BAR_H + 30:] < 128).any(axis=2)
    assert ink.any() and not ink[:, :2].any() and not ink[:, -2:].any()  # the whole label, not its middle


def test_a_difference_map_with_non_finite_values_or_two_pixels_wide_is_drawn():
    t = torch.tensor([[float("inf"), -1.0], [float("nan"), 0.5]])
    table = render._colour_table("RdBu_r")
    im = np.asarray(render.diverging(t))
    assert (im[0, 0] == table[-1]).all() and (im[0, 1] == table[0]).all()  # +inf at the red end, −1 = −max at the blue
    assert im[1, 0].min() > 230  # not a number: drawn as 0, white
    assert render.finite_abs_max(t) == 1.0 and render.finite_abs_max(torch.zeros(3)) == 1.0
    picture = render.difference(t, "CAM with DropBlock − without")  # 2 px wide: the bar shrinks to it
    assert picture.width == 2 and picture.height > 2
    viridis = render._colour_table("viridis")
    row = render.colorize(torch.tensor([[float("nan"), 1.0, 2.0, float("inf")]]))[0].tolist()
    assert row == [viridis[0].tolist(), viridis[0].tolist(), viridis[-1].tolist(), viridis[-1].tolist()]


def test_cam_overlays_are_shown_as_jpeg_close_to_the_png_which_waits_for_a_click(model_and_clean, monkeypatch):
    loaded, clean, crop = model_and_clean
    view = M.compute_mask_outcome(loaded.backbone, clean, M.RegularizerSpec(keep_prob=0.7, block_size=3), seed=11)
    vmax = float(view.cam_clean.max())
    jpeg = render.picture_jpeg(render.overlay, crop, view.cam_dropped, vmax)
    assert render.picture_jpeg(render.overlay, crop, view.cam_dropped, vmax) is jpeg  # once per picture
    with Image.open(io.BytesIO(jpeg)) as im:
        assert im.format == "JPEG" and im.size == crop.size
        shown = np.asarray(im.convert("RGB"), dtype=np.float64)
    exact = np.asarray(render.overlay(crop, view.cam_dropped, vmax), dtype=np.float64)
    assert np.abs(shown - exact).mean() < 3.0  # of 255: the same picture to the eye
    # on a page: every overlay a JPEG, each download's PNG encoded only when clicked
    encoded = []
    real = render.picture_png
    monkeypatch.setattr(render, "picture_png", lambda draw, *args: encoded.append(draw) or real(draw, *args))
    at = new_app().run()
    at.switch_page("pages/1_Mask_explorer.py").run()
    assert_clean(at)
    cams = [e for e in at.main.get("image") if any("CAM" in (img.caption or "") for img in e.proto.imgs)]
    assert len(cams) == 2
    assert all(img.url.endswith(".jpg") or "jpeg" in img.url for i in cams for img in i.proto.imgs)
    assert {"dl-cam-clean", "dl-cam-dropped"} <= {b.key for b in at.get("download_button")}
    assert encoded and render.overlay not in encoded  # the grid's and the crop's PNGs; no overlay's before a click
