"""Turn tensors into pictures: fast PIL tiles and browser-drawn tile grids for maps, CAM overlays,
a colour bar (matplotlib). Charts are ``ui/charts.py`` (what) and ``ui/chartview.py`` (how).

Every picture gets a PNG download.
"""

from __future__ import annotations

import base64
import functools
import html
import io
import math
import struct
import zlib
from collections.abc import Callable, Sequence

import numpy as np
import streamlit as st
import torch
from matplotlib import colormaps
from PIL import Image, ImageDraw, ImageFont


from .chartpng import CJK_FONT, cjk_font_path
from .i18n import N_, _, language
from . import layout
from .layout import NARROW_MAX_PX
from .view import view

CELL = 112  # pixels per map in a tile grid


def _label_font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """The grid's label font (:func:`_font`, 13 px)."""
    return _font(13)


@functools.cache
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Noto Sans CJK SC (it has Latin too) at ``size`` px when installed, else Pillow's default."""
    path = cjk_font_path()
    if path is not None:
        for index in range(8 if path.endswith(".ttc") else 1):  # a .ttc holds JP, KR, SC, TC, ...
            try:
                font = ImageFont.truetype(path, size, index=index)
            except OSError:
                break
            if font.getname()[0] == CJK_FONT:
                return font
    return ImageFont.load_default(size)


def colorize(t: torch.Tensor, cmap: str = "viridis", vmin: float | None = None, vmax: float | None = None) -> np.ndarray:
    """(H, W) tensor -> (H, W, 3) uint8 through a matplotlib colormap."""
    a = t.detach().float().cpu().numpy()
    if vmin is None or vmax is None:  # the range of the finite values; not a number: the lowest colour
        finite = a[np.isfinite(a)]
        vmin = vmin if vmin is not None else float(finite.min()) if finite.size else 0.0
        vmax = vmax if vmax is not None else float(finite.max()) if finite.size else 0.0
    lo, hi = vmin, vmax
    norm = np.nan_to_num(np.clip((a - lo) / (hi - lo), 0, 1), nan=0.0) if hi > lo else np.zeros_like(a)
    table = _colour_table(cmap)  # the colormap's own 256 colours, indexed as matplotlib does
    return table[np.minimum((norm * len(table)).astype(np.intp), len(table) - 1)]


@functools.cache
def _colour_table(cmap: str) -> np.ndarray:
    """(N, 3) uint8: a colormap's N colours (a constant per name; 5-10x faster than calling it per map)."""
    table = colormaps[cmap]
    return (table(np.arange(table.N))[:, :3] * 255).astype(np.uint8)


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


def show_overlay(image: Image.Image, cam: torch.Tensor, vmax: float | None, name: str, caption: str | None) -> None:
    """A CAM over its image with a PNG download (:func:`overlay`, drawn once per picture, CAM and scale;
    shown as a photograph, :func:`show_picture`)."""
    show_picture(overlay, image, cam, vmax, name=name, caption=caption, photo=True)


def diverging(t: torch.Tensor) -> Image.Image:
    """Signed map, blue negative / red positive, symmetric around 0 (:func:`finite_abs_max`); a value
    that is not a number is drawn as 0, an infinite one at its end of the scale."""
    m = finite_abs_max(t)
    return Image.fromarray(colorize(torch.nan_to_num(t.detach().float(), nan=0.0, posinf=m, neginf=-m), "RdBu_r", -m, m))


def finite_abs_max(t: torch.Tensor) -> float:
    """max |t| over ``t``'s finite values; 1 when there are none or it is 0."""
    a = t.detach().abs()
    a = a[torch.isfinite(a)]
    return (float(a.max()) if a.numel() else 0.0) or 1.0


def difference(t: torch.Tensor, label: str) -> Image.Image:
    """A signed map (:func:`diverging`) with its colour bar under it, ``label`` under the bar."""
    return with_scale(diverging(t), t, label)


def method_tiles(method) -> Image.Image:
    """Compare's picture of one ``models.MethodView``: its mask, then the channel (or the image) after the drop."""
    if method.site_label == "input image":
        dropped = colorize(method.dropped, "gray")
    else:
        dropped = colorize(method.dropped, "viridis", 0.0)
    return grid([[mask_rgb(method.mask), dropped]], size=160)


def algorithm_tiles(steps) -> Image.Image:
    """Algorithm 1 on a toy map (``models.AlgorithmSteps``): where seeds may fall, the seeds, the block
    mask, the input and the output, the last two on one colour scale."""
    vmax = float(steps.output.max())
    return grid([[mask_rgb(~steps.valid_region), mask_rgb(~steps.seed_mask), mask_rgb(steps.block_mask),
                  colorize(steps.activation, "viridis", 0.0, vmax), colorize(steps.output, "viridis", 0.0, vmax)]],
                size=160)


BAR_W, BAR_H, BAR_PAD = 290, 26, 26  # the colour bar's strip, in pixels, and the margin around it


def _ticks(m: float) -> list[str]:
    """The bar's five tick labels, −m … 0 … +m, with a true minus: three significant digits, as fixed
    decimals from 0.001 to 99999 (the decimals that tell them apart), else as 7.63e−6 (a map that
    barely changes, e.g. float noise at keep_prob 1, would need ten digits of zeros)."""
    if 1e-3 <= m < 1e5:
        decimals = max(0, 2 - math.floor(math.log10(m)))
        return [f"{v:.{decimals}f}".replace("-", "\u2212") for v in (-m, -m / 2, 0.0, m / 2, m)]

    def short(v: float) -> str:
        mantissa, exponent = f"{v:.2e}".split("e")
        return f"{mantissa}e{int(exponent)}".replace("-", "\u2212")

    return [short(v) for v in (-m, -m / 2)] + ["0"] + [short(v) for v in (m / 2, m)]


@functools.lru_cache(maxsize=64)
def _diverging_bar(m: float, label: str) -> Image.Image:
    """The colour bar of :func:`diverging` (−m … 0 … +m), five ticks, ``label`` under it: drawn with
    Pillow (under 1 ms; matplotlib's colour bar took 30 ms, once per range, and the range changes
    with every image, sample and round)."""
    small, font = _font(11), _font(12)
    # a label wider than the strip and its margins widens the picture (the strip stays centred)
    pad = max(BAR_PAD, math.ceil(font.getlength(label) - BAR_W) // 2 + 4)
    out = Image.new("RGB", (BAR_W + 2 * pad, BAR_H + 52), "white")
    strip = _colour_table("RdBu_r")[np.linspace(0, 255, BAR_W).round().astype(np.intp)]
    out.paste(Image.fromarray(np.repeat(strip[None], BAR_H, axis=0)), (pad, 4))
    draw = ImageDraw.Draw(out)
    draw.rectangle((pad - 1, 3, pad + BAR_W, 4 + BAR_H), outline="black")
    for i, text in enumerate(_ticks(m)):
        x = pad + round(i * (BAR_W - 1) / 4)
        draw.line((x, 5 + BAR_H, x, 9 + BAR_H), fill="black")
        half = small.getlength(text) / 2  # an end label longer than the margin moves in, not out of the picture
        draw.text((min(max(x, half + 2), out.width - half - 2), 11 + BAR_H), text, fill="black", font=small, anchor="mt")
    draw.text((out.width // 2, 31 + BAR_H), label, fill="black", font=font, anchor="mt")
    return out


def diverging_scale(t: torch.Tensor, label: str) -> Image.Image:
    """The colour bar of :func:`diverging` for ``t`` (−max|t| … 0 … +max|t|), ``label`` under it.
    The range is keyed to the three significant digits the ticks show (rounding to decimal places made
    a range under 5e-7 zero, and 1.4e-6 one of 1e-6); over ``t``'s finite values (1 when none or 0)."""
    return _diverging_bar(float(f"{finite_abs_max(t):.3g}"), label)


def with_scale(picture: Image.Image, t: torch.Tensor, label: str) -> Image.Image:
    """``picture`` with :func:`diverging_scale` under its right end (one picture, one download)."""
    bar = diverging_scale(t, label)
    if bar.width > picture.width:
        bar = bar.resize((picture.width, max(1, round(bar.height * picture.width / bar.width))), Image.LANCZOS)
    out = Image.new("RGB", (picture.width, picture.height + bar.height), "white")
    out.paste(picture.convert("RGB"), (0, 0))
    out.paste(bar, (picture.width - bar.width, picture.height))
    return out


def encode_png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG", compress_level=1)  # fast; these are small pictures
    return buf.getvalue()


@view(depends=(), keep=64)
def picture_png(draw: Callable[..., Image.Image], *args) -> bytes:
    """The PNG of ``draw(*args)``, drawn and encoded once for every session (``ui/view.py``: keyed by
    ``draw`` and its arguments; pictures, tensors and result objects count by identity)."""
    return encode_png(draw(*args))


JPEG_QUALITY = 92


@view(depends=(), keep=64)
def picture_jpeg(draw: Callable[..., Image.Image], *args) -> bytes:
    """The JPEG of ``draw(*args)`` for the page, once for every session (as :func:`picture_png`): for a
    photograph (a CAM over its image) 0.3 ms and ~40 KB against the PNG's 6 ms and ~100-150 KB, on
    every round of a view that refines and every move of the mask explorer's slider."""
    buf = io.BytesIO()
    draw(*args).convert("RGB").save(buf, "JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()


def show_picture(draw: Callable[..., Image.Image], *args, name: str, caption: str | None = None,
                 width: int | str = "stretch", photo: bool = False) -> None:
    """The picture ``draw(*args)`` with a PNG download under it (:func:`picture_png`). ``photo``: shown
    as a JPEG (:func:`picture_jpeg`), the lossless PNG encoded only when the download is clicked."""
    if photo:
        _show(picture_jpeg(draw, *args), "JPEG", lambda: picture_png(draw, *args), name, caption, width)
    else:
        png = picture_png(draw, *args)
        _show(png, "PNG", lambda: png, name, caption, width)


def _same(image: Image.Image) -> Image.Image:
    return image


def _show(shown: bytes, kind: str, png: Callable[[], bytes], name: str, caption: str | None,
          width: int | str) -> None:
    # output_format given: left on "auto", Streamlit decodes the bytes and re-encodes them on every
    # rerun. The download's bytes are made and handed over only when clicked, and the click does not
    # rerun the page.
    st.image(shown, caption=caption, width=width, output_format=kind)
    if layout.drafting():  # a round to be replaced: its downloads come with the final one
        return
    st.download_button(_("Download PNG"), png, file_name=f"{name}.png", mime="image/png", key=f"dl-{name}",
                       on_click="ignore")


def show_image(image: Image.Image, name: str, caption: str | None = None, width: int | str = "stretch") -> None:
    """A picture the page holds (e.g. the input crop) with a PNG download, encoded once per picture."""
    show_picture(_same, image, name=name, caption=caption, width=width)


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


@view(depends=(), keep=32)
def mask_grid_html(samples: tuple, rows: tuple[str, ...], vmax: float | None, labels: tuple[str, ...],
                   caption: str | None, tile: int, lang: str) -> str:
    """:func:`tile_grid_html` of ``models.MaskSample`` ``samples``' :func:`mask_rows` one after another,
    on the last sample's channels; built once for every session (``lang``: the tiles' alt text)."""
    return tile_grid_html(_sample_rows(samples, rows, vmax), labels, caption, samples[-1].channels, tile)


def mask_grid_picture(samples: tuple, rows: tuple[str, ...], vmax: float | None, labels: tuple[str, ...],
                      size: int) -> Image.Image:
    """The same grid as one labelled picture (:func:`grid`, ``size`` px per map), for its PNG download."""
    return grid(_sample_rows(samples, rows, vmax), labels, size)


def _sample_rows(samples: tuple, rows: tuple[str, ...], vmax: float | None) -> list[list[np.ndarray]]:
    return [row for sample in samples for row in mask_rows(sample, rows, vmax)]


def show_mask_grid(samples, rows: Sequence[str], labels: Sequence[str], name: str, caption: str | None, *,
                   vmax: float | None = None, tile: int = TILE_MAX, size: int = CELL) -> None:
    """``models.MaskSample`` ``samples``' (one or a tuple) :func:`mask_rows` as one tile grid drawn by
    the browser (see above), with a download of the same grid as one labelled PNG, drawn only when clicked."""
    samples = samples if isinstance(samples, tuple) else (samples,)
    rows, labels = tuple(rows), tuple(labels)  # already translated: the click may come after a language change
    st.html(mask_grid_html(samples, rows, vmax, labels, caption, tile, language()))
    if layout.drafting():
        return
    st.download_button(_("Download PNG"), lambda: picture_png(mask_grid_picture, samples, rows, vmax, labels, size),
                       file_name=f"{name}.png", mime="image/png", key=f"dl-{name}", on_click="ignore")


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


def top_table(rows: Sequence[tuple[str, float]], title: str = N_("class")) -> list[dict[str, object]]:
    return [{_(title): name, _("probability"): f"{p:.3f}"} for name, p in rows]
