"""Turn tensors into pictures and figures: fast PIL tiles for maps, matplotlib for charts.

Every picture and figure gets a PNG download; figures are closed right after drawing.
"""

from __future__ import annotations

import functools
import hashlib
import io
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import streamlit as st  # noqa: E402
import torch  # noqa: E402
from matplotlib import colormaps, font_manager  # noqa: E402
from streamlit import dataframe_util  # noqa: E402
from PIL import Image, ImageDraw, ImageFont  # noqa: E402

from .i18n import N_, _, language, use_language  # noqa: E402

if TYPE_CHECKING:
    import altair as alt

CELL = 112  # pixels per map in a tile grid
PHONE_CELL = 64  # ... in a grid drawn for phones (about 350 px of screen: a tile is shown at about its own size)
CJK_FONT = "Noto Sans CJK SC"  # Debian/Ubuntu package fonts-noto-cjk


def _cjk_font_path() -> str | None:
    """The CJK font's file, if installed (matplotlib's own font list: no fontconfig call per use)."""
    try:
        return font_manager.findfont(CJK_FONT, fallback_to_default=False)
    except ValueError:
        return None


def _use_cjk_fallback() -> None:
    """Latin text stays in DejaVu Sans; glyphs it lacks (Chinese labels) come from Noto Sans CJK."""
    if _cjk_font_path() is not None:
        matplotlib.rcParams["font.family"] = ["DejaVu Sans", CJK_FONT]  # a fallback list (matplotlib >= 3.6)


_use_cjk_fallback()


@functools.cache
def _label_font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """The grid's label font: Noto Sans CJK SC (it has Latin too) when installed, else Pillow's default."""
    path = _cjk_font_path()
    if path is not None:
        for index in range(8 if path.endswith(".ttc") else 1):  # a .ttc holds JP, KR, SC, TC, ...
            try:
                font = ImageFont.truetype(path, 13, index=index)
            except OSError:
                break
            if font.getname()[0] == CJK_FONT:
                return font
    return ImageFont.load_default()


def colorize(t: torch.Tensor, cmap: str = "viridis", vmin: float | None = None, vmax: float | None = None) -> np.ndarray:
    """(H, W) tensor -> (H, W, 3) uint8 through a matplotlib colormap."""
    a = t.detach().float().cpu().numpy()
    lo = float(np.min(a)) if vmin is None else vmin
    hi = float(np.max(a)) if vmax is None else vmax
    norm = np.clip((a - lo) / (hi - lo), 0, 1) if hi > lo else np.zeros_like(a)
    return (colormaps[cmap](norm)[..., :3] * 255).astype(np.uint8)


def mask_rgb(keep: torch.Tensor, seeds: torch.Tensor | None = None) -> np.ndarray:
    """Kept units light, dropped units dark red, seeds (if given) yellow."""
    keep = keep.cpu().numpy().astype(bool)
    out = np.where(keep[..., None], np.array([235, 235, 235], np.uint8), np.array([150, 20, 40], np.uint8))
    if seeds is not None:
        out[seeds.cpu().numpy().astype(bool)] = (250, 200, 0)
    return out.astype(np.uint8)


def mask_rows(view, rows: Sequence[str], vmax: float | None = None) -> list[list[np.ndarray]]:
    """A ``models.MaskView``'s channels as tile rows for :func:`grid`, one per name in ``rows``:
    "blocks" (block mask M with its seeds), "seeds" (the seed mask), "mask" (M alone), "before" and
    "after" (the feature maps on one colour scale, ``vmax`` or the view's own maximum)."""
    if vmax is None:
        vmax = float(max(view.before.max(), view.after.max()))
    make = {
        "blocks": lambda: [mask_rgb(k, s) for k, s in zip(view.block_mask, view.seed_mask)],
        "seeds": lambda: [mask_rgb(~s) for s in view.seed_mask],
        "mask": lambda: [mask_rgb(k) for k in view.block_mask],
        "before": lambda: [colorize(a, "viridis", 0.0, vmax) for a in view.before],
        "after": lambda: [colorize(a, "viridis", 0.0, vmax) for a in view.after],
    }
    return [make[r]() for r in rows]


def grid(rows: Sequence[Sequence[np.ndarray]], labels: Sequence[str] = (), size: int = CELL) -> Image.Image:
    """Tile (h, w, 3) uint8 maps into one picture with a label column; each map is scaled once to
    size x size with nearest-neighbour, so every unit of a small map stays visible as a square."""
    label_w = 120 if labels else 0
    n_cols = max(len(r) for r in rows)
    canvas = Image.new("RGB", (label_w + n_cols * (size + 4), len(rows) * (size + 4)), "white")
    draw = ImageDraw.Draw(canvas)
    for i, row in enumerate(rows):
        if labels:
            draw.text((4, i * (size + 4) + size // 2 - 8), labels[i], fill="black", font=_label_font())
        for j, rgb in enumerate(row):
            tile = Image.fromarray(rgb).resize((size, size), Image.Resampling.NEAREST)
            canvas.paste(tile, (label_w + j * (size + 4), i * (size + 4)))
    return canvas


def overlay(image: Image.Image, cam: torch.Tensor, vmax: float | None = None, alpha: float = 0.5) -> Image.Image:
    """CAM (224, 224) over the 224 crop, zero and below transparent-ish, shared vmax if given."""
    heat = colorize(cam.clamp_min(0), "jet", 0.0, vmax)
    return Image.blend(image.convert("RGB"), Image.fromarray(heat), alpha)


def diverging(t: torch.Tensor) -> Image.Image:
    """Signed map, blue negative / red positive, symmetric around 0."""
    m = float(t.abs().max()) or 1.0
    return Image.fromarray(colorize(t, "RdBu_r", -m, m))


# PNGs by content, shared by every session: the same picture (a teacher's link, a repeated seed)
# is encoded once. Keyed by a hash of the pixels, so two sessions can never get each other's picture
# unless the pixels are identical.
_PNGS: OrderedDict[bytes, bytes] = OrderedDict()
_PNGS_LOCK = threading.Lock()
_PNGS_MAX_BYTES = 24 * 2**20  # bounded by size: a mask grid is ~100 KB, a CAM overlay ~60 KB
_pngs_bytes = 0


def _png(image: Image.Image) -> bytes:
    global _pngs_bytes
    h = hashlib.blake2b(image.tobytes(), digest_size=20)
    h.update(f"{image.mode}{image.size}".encode())
    key = h.digest()
    with _PNGS_LOCK:
        if key in _PNGS:
            _PNGS.move_to_end(key)
            return _PNGS[key]
    buf = io.BytesIO()
    image.save(buf, "PNG", compress_level=1)  # fast; these are small pictures
    png = buf.getvalue()
    with _PNGS_LOCK:
        if key not in _PNGS:
            _PNGS[key] = png
            _pngs_bytes += len(png)
        while _pngs_bytes > _PNGS_MAX_BYTES and len(_PNGS) > 1:
            _pngs_bytes -= len(_PNGS.popitem(last=False)[1])
    return png


def _show_png(png: bytes, name: str, caption: str | None, width: int | str) -> None:
    # output_format="PNG": left on "auto", Streamlit decodes the bytes and re-encodes them as JPEG
    # on every rerun. The download's bytes are handed over only when clicked, and the click does
    # not rerun the page.
    st.image(png, caption=caption, width=width, output_format="PNG")
    st.download_button(_("Download PNG"), lambda: png, file_name=f"{name}.png", mime="image/png", key=f"dl-{name}",
                       on_click="ignore")


def show_image(image: Image.Image, name: str, caption: str | None = None, width: int | str = "stretch") -> None:
    """Draw a picture with a PNG download under it (encoded once per content, for both)."""
    _show_png(_png(image), name, caption, width)


# Figures by what they show, shared by every session: matplotlib's drawing and savefig cost
# 120-180 ms, more than the rest of a rerun. Keyed by (name, key) where key is the immutable result
# object the figure is drawn from (results are hashed by identity and held here, so an id is never
# reused while its entry lives) or a tuple of the values drawn; bounded by count.
_FIGURES: OrderedDict[tuple, bytes] = OrderedDict()
_FIGURES_LOCK = threading.Lock()
_FIGURES_MAX = 32


def _figure_png(draw: Callable[[], plt.Figure]) -> bytes:
    fig = draw()
    try:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
        return buf.getvalue()
    finally:
        plt.close(fig)  # no figure leaks across reruns


def figure_png(draw: Callable[[], plt.Figure], name: str, key: Hashable) -> bytes:
    """The PNG of the matplotlib figure ``draw()`` makes; drawn once per ``(name, key)`` across
    sessions, where ``key`` determines everything the figure shows."""
    cache_key = (name, key, language())  # the figure's labels are in the session's language
    with _FIGURES_LOCK:
        png = _FIGURES.get(cache_key)
        if png is not None:
            _FIGURES.move_to_end(cache_key)
    if png is None:
        png = _figure_png(draw)
        with _FIGURES_LOCK:
            _FIGURES[cache_key] = png
            while len(_FIGURES) > _FIGURES_MAX:
                _FIGURES.popitem(last=False)
    return png


def show_figure(draw: Callable[[], plt.Figure], name: str, key: Hashable) -> None:
    """Draw the matplotlib figure ``draw()`` makes, with a PNG download (see :func:`figure_png`)."""
    _show_png(figure_png(draw, name, key), name, None, "stretch")


# Vega-Lite specs by what they show and the language, shared by every session: building and
# validating a chart (``to_dict``) costs 20-50 ms, more than the rest of a rerun; the cached spec is
# handed to ``st.vega_lite_chart`` as is (it copies before changing it). Keyed like _FIGURES.
_SPECS: OrderedDict[tuple, tuple[dict, ...]] = OrderedDict()
_SPECS_LOCK = threading.Lock()
_SPECS_MAX = 64


def chart_specs(build: Callable[[], Sequence[alt.TopLevelMixin]], name: str, key: Hashable) -> tuple[dict, ...]:
    """The Vega-Lite specs of the charts ``build()`` makes (``ui/charts.py``), built and validated
    once per ``(name, key, language)`` across sessions, where ``key`` determines everything shown."""
    cache_key = (name, key, language())
    with _SPECS_LOCK:
        specs = _SPECS.get(cache_key)
        if specs is not None:
            _SPECS.move_to_end(cache_key)
            return specs
    specs = tuple(chart.to_dict() for chart in build())  # validates against the Vega-Lite schema
    for spec in specs:
        spec.get("config", {}).pop("view", None)  # Altair's default 300x300 view: Streamlit sizes the chart
        if spec.get("config") == {}:
            del spec["config"]
        # Named datasets as Arrow bytes, which st.vega_lite_chart passes on as they are (what its own
        # Altair path does): 0.2 instead of 1.5 ms per chart and rerun.
        spec["datasets"] = {name: dataframe_util.convert_anything_to_arrow_bytes(rows)
                            for name, rows in spec.get("datasets", {}).items()}
    with _SPECS_LOCK:
        _SPECS[cache_key] = specs
        while len(_SPECS) > _SPECS_MAX:
            _SPECS.popitem(last=False)
    return specs


def show_charts(build: Callable[[], Sequence[alt.TopLevelMixin]], name: str, key: Hashable, *,
                draw: Callable[[], plt.Figure] | None = None) -> None:
    """Interactive charts (hover for values) side by side, stacked on a phone, themed like the app;
    with ``draw``, the matplotlib figure of the same numbers as a PNG download, drawn only when clicked.
    ``build`` runs only when ``(name, key)`` is not cached (see :func:`chart_specs`)."""
    specs = chart_specs(build, name, key)
    for col, spec in zip(st.columns(len(specs)) if len(specs) > 1 else [st.container()], specs):
        col.vega_lite_chart(spec=spec, width="stretch", theme="streamlit")
    if draw is not None:
        lang = language()

        def png() -> bytes:
            with use_language(lang):  # the click may run outside the script run that drew the page
                return figure_png(draw, name, (key, lang))

        st.download_button(_("Download PNG"), png, file_name=f"{name}.png", mime="image/png", key=f"dl-{name}",
                           on_click="ignore", icon=":material/image:")


def curve_axes(axes) -> None:
    """keep_prob falls to the right, as in the paper's Figure 5; a light grid and a small legend."""
    for ax in axes:
        ax.invert_xaxis()
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)


def top_table(rows: Sequence[tuple[str, float]], title: str = N_("class")) -> list[dict[str, object]]:
    return [{_(title): name, _("probability"): f"{p:.3f}"} for name, p in rows]
