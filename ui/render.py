"""Turn tensors into pictures: fast PIL tiles and browser-drawn tile grids for maps, CAM overlays,
a colour bar (matplotlib). Charts are ``ui/charts.py`` (what) and ``ui/chartview.py`` (how).

Every picture gets a PNG download.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import html
import io
import struct
import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence

import matplotlib
import numpy as np
import streamlit as st
import torch
from matplotlib import colormaps
from matplotlib.figure import Figure
from PIL import Image, ImageDraw, ImageFont

from models.jobs import SingleFlight

from .chartpng import CJK_FONT, cjk_font_path, figure_png
from .i18n import N_, _, language
from . import layout
from .layout import NARROW_MAX_PX

CELL = 112  # pixels per map in a tile grid


@functools.cache
def _label_font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """The grid's label font: Noto Sans CJK SC (it has Latin too) when installed, else Pillow's default."""
    path = cjk_font_path()
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
    """A ``models.MaskSample``'s channels as tile rows for :func:`grid`, one per name in ``rows``:
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


# CAM overlays by what they show, shared by every session: colorizing and blending 224x224 and
# hashing the pixels cost 2-3 ms per picture and rerun. Keyed like chartpng's figures (the immutable result
# object the CAM comes from, which also determines the image it was computed on).
_OVERLAYS: SingleFlight[bytes] = SingleFlight(max_entries=32)  # ~60 KB each; entries hold their result objects


def overlay_png(image: Image.Image, cam: torch.Tensor, vmax: float | None, key: Hashable) -> bytes:
    """The PNG of :func:`overlay`, blended and encoded once per ``(key, vmax)`` across sessions,
    where ``key`` determines both the CAM and the image under it (e.g. ``(mask_outcome, "clean")``)."""
    return _OVERLAYS.get((key, vmax), lambda: _png(overlay(image, cam, vmax)))


def show_overlay(image: Image.Image, cam: torch.Tensor, vmax: float | None, name: str, caption: str | None,
                 key: Hashable) -> None:
    """A CAM over its image with a PNG download, drawn once per ``(key, vmax)`` (see :func:`overlay_png`)."""
    _show_png(overlay_png(image, cam, vmax, key), name, caption, "stretch")


def diverging(t: torch.Tensor) -> Image.Image:
    """Signed map, blue negative / red positive, symmetric around 0."""
    m = float(t.abs().max()) or 1.0
    return Image.fromarray(colorize(t, "RdBu_r", -m, m))


def diverging_scale(t: torch.Tensor, label: str) -> bytes:
    """The colour bar of :func:`diverging` for ``t`` (−max|t| … 0 … +max|t|), ``label`` under it: a
    PNG, drawn once per (range, label) across sessions."""
    m = float(t.abs().max()) or 1.0

    def draw() -> Figure:
        fig = Figure(figsize=(2.6, 0.5))
        ax = fig.subplots()
        bar = fig.colorbar(matplotlib.cm.ScalarMappable(matplotlib.colors.Normalize(-m, m), "RdBu_r"), cax=ax,
                           orientation="horizontal")
        bar.set_ticks([-m, -m / 2, 0, m / 2, m])
        bar.ax.tick_params(labelsize=8)
        bar.set_label(label, fontsize=8)
        return fig

    return figure_png(draw, "diverging-scale", (round(m, 6), label))


def with_scale(picture: Image.Image, t: torch.Tensor, label: str) -> Image.Image:
    """``picture`` with :func:`diverging_scale` under its right end (one picture, one download)."""
    bar = Image.open(io.BytesIO(diverging_scale(t, label))).convert("RGB")
    if bar.width > picture.width:
        bar = bar.resize((picture.width, round(bar.height * picture.width / bar.width)), Image.LANCZOS)
    out = Image.new("RGB", (picture.width, picture.height + bar.height), "white")
    out.paste(picture.convert("RGB"), (0, 0))
    out.paste(bar, (picture.width - bar.width, picture.height))
    return out


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
    if layout.drafting():  # a round to be replaced: its downloads come with the final one
        return
    st.download_button(_("Download PNG"), lambda: png, file_name=f"{name}.png", mime="image/png", key=f"dl-{name}",
                       on_click="ignore")


def show_image(image: Image.Image, name: str, caption: str | None = None, width: int | str = "stretch") -> None:
    """Draw a picture with a PNG download under it (encoded once per content, for both)."""
    _show_png(_png(image), name, caption, width)


# ------------------------------------------------------------------ tile grids as HTML
#
# A grid of small maps drawn by the browser instead of one big PNG: each map is a PNG at one pixel
# per unit (a 14x14 map is a 14x14 PNG of a few hundred bytes, encoded in microseconds) inlined as a
# data: URI and scaled up by CSS with ``image-rendering: pixelated``, so every unit stays a crisp
# square at any size; the row labels are text. One element serves every screen: on a laptop or a
# projector each row is one line with its label at the left; on a phone (<= layout.NARROW_MAX_PX)
# the grid is regrouped per channel (CSS grid placement, the same HTML): one line per channel with its
# rows side by side (mask, before, after…), the row labels above, so that "before" and "after" of one
# channel sit next to each other. Presenter mode (ui/layout.py) sets
# ``--tile`` so that the whole grid fits the screen's height.
#
# Streamlit 1.67 draws ``st.html`` in the page itself (no iframe), after DOMPurify with its HTML
# profile (FORCE_BODY): <style>, <figure>, class and style attributes and data: URIs on <img> stay;
# scripts and event handlers go. React replaces the element's innerHTML only when the body string
# changes, so an identical grid on a rerun is not redrawn at all.

TILE_MAX = 160  # CSS px: the widest a tile is drawn outside presenter mode
_GRID_CSS = f"""<style>
.dbl-tiles {{ margin: 0 0 0.5rem 0; --gap: 4px; }}
.dbl-tiles .dbl-row {{ display: flex; align-items: center; gap: 0.5rem; margin: 0 0 var(--gap) 0; }}
.dbl-tiles .dbl-label {{ flex: 0 0 7.5rem; font-size: 0.875rem; line-height: 1.25; overflow-wrap: anywhere; }}
.dbl-tiles .dbl-cells {{ flex: 1 1 auto; min-width: 0; display: grid; gap: var(--gap);
  grid-template-columns: repeat(var(--cols), minmax(0, 1fr));
  max-width: calc(var(--cols) * (var(--tile) + var(--gap))); }}
.dbl-tiles img.dbl-tile {{ display: block; width: 100%; height: auto; margin: 0;
  image-rendering: crisp-edges; image-rendering: pixelated; }}
.dbl-tiles figcaption {{ font-size: 0.875rem; opacity: 0.6; margin: 0.25rem 0 0 0; }}
@media (max-width: {NARROW_MAX_PX}px) {{
  .dbl-tiles {{ display: grid; gap: var(--gap); align-items: end;
    grid-template-columns: repeat(var(--rows), minmax(0, 1fr));
    max-width: calc(var(--rows) * (2 * var(--tile-max) + var(--gap))); }}
  .dbl-tiles .dbl-row, .dbl-tiles .dbl-cells {{ display: contents; }}
  .dbl-tiles .dbl-label {{ grid-row: 1; grid-column: var(--kind); font-size: 0.75rem; }}
  .dbl-tiles img.dbl-tile {{ grid-row: var(--channel); grid-column: var(--kind); }}
  .dbl-tiles figcaption {{ grid-row: var(--caption-row); grid-column: 1 / -1; }}
}}
</style>"""


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def tile_png(rgb: np.ndarray) -> bytes:
    """(h, w, 3) uint8 -> PNG at one pixel per unit, lossless: 8-bit palette when the map has at
    most 256 colours (every mask; a feature map of up to 256 units), else RGB. Written directly
    (chunks + one zlib call, ~20 us for a 14x14 map; Pillow's encoder costs 3-8x that per tile)."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an (h, w, 3) uint8 array, but got {rgb.dtype} of shape {rgb.shape}")
    h, w = rgb.shape[:2]
    packed = (rgb[..., 0].astype(np.uint32) << 16) | (rgb[..., 1].astype(np.uint32) << 8) | rgb[..., 2]
    colours, index = np.unique(packed.ravel(), return_inverse=True)
    if len(colours) <= 256:  # colour type 3: one byte per unit, the colours in PLTE
        pixels, colour_type = index.astype(np.uint8).reshape(h, w), 3
        palette = np.stack([colours >> 16, (colours >> 8) & 255, colours & 255], 1).astype(np.uint8).tobytes()
    else:  # colour type 2: RGB
        pixels, colour_type, palette = np.ascontiguousarray(rgb).reshape(h, w * 3), 2, b""
    raw = np.zeros((h, pixels.shape[1] + 1), np.uint8)  # each scanline: filter type 0 (None), then the bytes
    raw[:, 1:] = pixels
    return b"".join((
        b"\x89PNG\r\n\x1a\n",
        _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, colour_type, 0, 0, 0)),
        _chunk(b"PLTE", palette) if palette else b"",
        _chunk(b"IDAT", zlib.compress(raw.tobytes(), 1)),
        _chunk(b"IEND", b""),
    ))


def tile_grid_html(rows: Sequence[Sequence[np.ndarray]], labels: Sequence[str] = (), caption: str | None = None,
                   channels: Sequence[int] = (), tile: int = TILE_MAX) -> str:
    """The HTML of a tile grid (see above): ``rows`` of (h, w, 3) uint8 maps, one label per row (or
    none), ``channels`` naming each column in the tiles' alt text, ``tile`` the widest a tile is drawn
    (CSS px). Every text is escaped."""
    if labels and len(labels) != len(rows):
        raise ValueError(f"expected one label per row ({len(rows)}), but got {len(labels)}")
    n_cols = max((len(r) for r in rows), default=0)
    aspect = max((rgb.shape[0] / rgb.shape[1] for r in rows for rgb in r), default=1.0)  # height / width
    out = [_GRID_CSS, f'<figure class="dbl-tiles" style="--cols: {n_cols}; '
                      f'--rows: {len(rows)}; --aspect: {aspect:.4f}; '
                      f'--tile: {int(tile)}px; --tile-max: {int(tile)}px; --caption-row: {n_cols + 2}">']
    for i, row in enumerate(rows):
        label = labels[i] if labels else ""
        out.append('<div class="dbl-row">')
        if labels:
            out.append(f'<div class="dbl-label" style="--kind: {i + 1}">{html.escape(label)}</div>')
        out.append('<div class="dbl-cells">')
        for j, rgb in enumerate(row):
            channel = channels[j] if j < len(channels) else j
            alt = (_("{row}, channel {channel}").format(row=label, channel=channel) if label
                   else _("Channel {channel}").format(channel=channel))
            uri = base64.b64encode(tile_png(rgb)).decode("ascii")
            out.append(f'<img class="dbl-tile" src="data:image/png;base64,{uri}" width="{rgb.shape[1]}" '
                       f'height="{rgb.shape[0]}" alt="{html.escape(alt)}" style="--kind: {i + 1}; --channel: {j + 2}">')
        out.append("</div></div>")
    if caption:
        out.append(f"<figcaption>{html.escape(caption)}</figcaption>")
    out.append("</figure>")
    return "".join(out)


# Tile grids by what they show, shared by every session: keyed by the immutable result object(s)
# the rows come from (held here, so an id is never reused while its entry lives), the rows, labels,
# caption, size and language; bounded by count (an 8-channel grid is ~20 KB of HTML).
_GRIDS: SingleFlight[str] = SingleFlight(max_entries=32)


def grid_html(build: Callable[[], Sequence[Sequence[np.ndarray]]], key: Hashable, labels: Sequence[str] = (),
              caption: str | None = None, channels: Sequence[int] = (), tile: int = TILE_MAX) -> str:
    """:func:`tile_grid_html` of ``build()``, built once per what it shows across sessions, where
    ``key`` determines ``build()``'s rows (e.g. ``(mask_sample, ("blocks", "after"))``)."""
    cache_key = (key, tuple(labels), caption, tuple(channels), tile, language())
    return _GRIDS.get(cache_key, lambda: tile_grid_html(build(), labels, caption, channels, tile))


def show_tile_grid(build: Callable[[], Sequence[Sequence[np.ndarray]]], labels: Sequence[str], name: str,
                   caption: str | None, *, key: Hashable, channels: Sequence[int] = (), tile: int = TILE_MAX,
                   size: int = CELL) -> None:
    """A grid of maps drawn by the browser (see :func:`grid_html`; ``build`` runs only on a cache
    miss), with a download of the same grid as one labelled PNG (:func:`grid`, ``size`` px per map),
    drawn only when clicked."""
    st.html(grid_html(build, key, labels, caption, channels, tile))
    labels = list(labels)  # already translated: the click may come after the session changed language

    def png() -> bytes:
        return _png(grid(build(), labels, size))

    if layout.drafting():
        return
    st.download_button(_("Download PNG"), png, file_name=f"{name}.png", mime="image/png", key=f"dl-{name}",
                       on_click="ignore")


def channels_note(view) -> str:
    """How a ``models.MaskSample``'s channels were chosen, with how many the mask hit (translated)."""
    shown, hit, total = len(view.channels), view.hit_channels, view.total_channels
    if hit >= shown:
        return _("The {k} most active channels that were hit; {hit} of {total} channels were hit.").format(
            k=shown, hit=hit, total=total)
    if hit == 0:
        return _("No channel was hit in this draw: the {k} most active channels.").format(k=shown)
    return _("The {hit} channels that were hit, then the {rest} most active of the others; {hit} of {total} "
             "channels were hit.").format(hit=hit, rest=shown - hit, total=total)


def show_mask_grid(view, rows: Sequence[str], labels: Sequence[str], name: str, caption: str | None, *,
                   vmax: float | None = None, tile: int = TILE_MAX, size: int = CELL) -> None:
    """A ``models.MaskSample``'s :func:`mask_rows` as a tile grid (:func:`show_tile_grid`), cached per view."""
    rows = tuple(rows)
    show_tile_grid(lambda: mask_rows(view, rows, vmax), labels, name, caption, key=(view, rows, vmax),
                   channels=view.channels, tile=tile, size=size)


def top_table(rows: Sequence[tuple[str, float]], title: str = N_("class")) -> list[dict[str, object]]:
    return [{_(title): name, _("probability"): f"{p:.3f}"} for name, p in rows]
