"""Animations for slides: the mask explorer's picture over seeds, or over a keep_prob / block_size sweep.

DropBlock (Ghiasi et al., NeurIPS 2018, arXiv:1810.12890). Each frame is one
:func:`models.compute.compute_mask_sample` (the same masks and feature maps the mask explorer shows;
the network after the site never runs, as a frame shows no prediction),
drawn by the caller's ``draw`` (the page's own tile grid), with a caption strip saying what changes.
Frames are encoded as an animated GIF (Pillow) or an H.264 MP4 (PyAV, ``av``; yuv420p, even sides,
so browsers play it).

Imports numpy, PIL, ``av`` and this package only (never streamlit). Text shown in frames arrives
already translated from the caller (the worker thread that renders has no session language).
"""

from __future__ import annotations

import dataclasses
import functools
import io
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .backbone import Backbone
from .compute import MaskSample, compute_mask_sample
from .engine import CleanPass, RegularizerSpec

__all__ = [
    "FORMATS",
    "FORMS",
    "MAX_FRAMES",
    "MAX_FRAME_PIXELS",
    "MIN_FRAMES",
    "WIDTHS",
    "Animation",
    "AnimationSpec",
    "compose_frame",
    "encode_gif",
    "encode_mp4",
    "frame_values",
    "max_frames",
    "render_animation",
]


def N_(message: str) -> str:  # marks text for translation; ui/ translates it where shown
    return message


FORMS = {"seeds": N_("Masks over seeds"), "keep_prob": N_("Sweep keep_prob"), "block_size": N_("Sweep block_size")}
FORMATS = {"gif": "image/gif", "mp4": "video/mp4"}
WIDTHS = {"small": 360, "medium": 540, "large": 800}  # frame width in pixels
MIN_FRAMES, MAX_FRAMES = 4, 48
# One export's budget: frames x width x width. Measured on the 2-core server (EfficientNet-Lite0,
# one torch thread): 48 small frames or 16 large ones render and encode in about 2-3 s.
MAX_FRAME_PIXELS = 48 * 540 * 540
MIN_TILE = 64  # pixels per map at least: more channels than fit go on a second band of rows
MAX_TILE = 192  # pixels per map at most: a frame of few channels stays about as tall as a wide one
KEEP_PROB_RANGE = (0.05, 1.0)
BLOCK_SIZE_RANGE = (1, 15)

# Server-side font list (never chosen by a visitor): Noto Sans CJK draws Chinese captions too.
_FONTS = (
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 2),  # index 2: Simplified Chinese
    ("/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc", 2),
    ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", 0),
)


def max_frames(width: int) -> int:
    """The most frames allowed at ``width`` pixels (the cap on frames x pixels)."""
    return max(MIN_FRAMES, min(MAX_FRAMES, MAX_FRAME_PIXELS // (width * width)))


@dataclass(frozen=True)
class AnimationSpec:
    """What to animate and how.

    Attributes:
        form: ``"seeds"`` (seeds 0..frames-1 at fixed settings), ``"keep_prob"`` or ``"block_size"``
            (a sweep over ``[start, stop]``, other settings and the seed fixed).
        frames: number of frames, ``MIN_FRAMES``..:func:`max_frames` of ``width``.
        width: frame width in pixels (one of ``WIDTHS``' values or any even number 128..1024).
        fmt: ``"gif"`` or ``"mp4"``.
        start, stop: the sweep's range (ignored for ``"seeds"``); keep_prob in (0, 1], block_size 1..15.
        frame_ms: how long each frame shows.
    """

    form: str = "seeds"
    frames: int = 8
    width: int = WIDTHS["small"]
    fmt: str = "gif"
    start: float = 0.0
    stop: float = 0.0
    frame_ms: int = 600

    def __post_init__(self) -> None:
        if self.form not in FORMS:
            raise ValueError(f"expected form in {tuple(FORMS)}, but got {self.form!r}")
        if self.fmt not in FORMATS:
            raise ValueError(f"expected fmt in {tuple(FORMATS)}, but got {self.fmt!r}")
        if not isinstance(self.width, int) or not 128 <= self.width <= 1024:
            raise ValueError(f"expected width an int in 128..1024, but got {self.width!r}")
        if not isinstance(self.frames, int) or not MIN_FRAMES <= self.frames <= max_frames(self.width):
            raise ValueError(f"expected frames an int in {MIN_FRAMES}..{max_frames(self.width)} at width "
                             f"{self.width}, but got {self.frames!r}")
        if not isinstance(self.frame_ms, int) or not 50 <= self.frame_ms <= 5000:
            raise ValueError(f"expected frame_ms an int in 50..5000, but got {self.frame_ms!r}")
        lo, hi = KEEP_PROB_RANGE if self.form == "keep_prob" else BLOCK_SIZE_RANGE
        if self.form != "seeds" and not lo <= self.start <= self.stop <= hi:
            raise ValueError(f"expected {lo} <= start <= stop <= {hi} for a {self.form} sweep, "
                             f"but got start={self.start!r}, stop={self.stop!r}")


def frame_values(anim: AnimationSpec) -> tuple[int | float, ...]:
    """What each frame shows: seeds 0..N-1; keep_prob from ``stop`` down to ``start`` (the drop
    grows); block sizes from ``start`` up to ``stop``, each at most once (fewer frames than asked
    when the range has fewer sizes)."""
    if anim.form == "seeds":
        return tuple(range(anim.frames))
    if anim.form == "keep_prob":
        values = np.linspace(anim.stop, anim.start, anim.frames)
        return tuple(dict.fromkeys(round(float(v), 4) for v in values))
    values = np.linspace(anim.start, anim.stop, anim.frames)
    return tuple(dict.fromkeys(int(round(float(v))) for v in values))


@dataclass(frozen=True, eq=False)
class Animation:
    """An encoded animation and what its frames show.

    Attributes:
        data: the GIF or MP4 file's bytes.
        mime: ``"image/gif"`` or ``"video/mp4"``.
        size: (width, height) of every frame, both even.
        values: per frame, the seed, keep_prob or block_size it shows.
        realised_drops: per frame, the fraction of units the mask dropped.
        seconds: wall time to compute, draw and encode.
    """

    spec: AnimationSpec
    data: bytes
    mime: str
    size: tuple[int, int]
    values: tuple[int | float, ...]
    realised_drops: tuple[float, ...]
    seconds: float

    @property
    def frames(self) -> int:
        return len(self.values)


@functools.lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    for path, index in _FONTS:
        if Path(path).is_file():
            try:
                return ImageFont.truetype(path, size, index=index)
            except OSError:
                continue
    return ImageFont.load_default(size)


def _wrapped(draw: ImageDraw.ImageDraw, text: str, size: int, width: int) -> tuple[list[str], ImageFont.ImageFont]:
    """``text`` in lines that fit ``width`` pixels: the font shrinks to at most 3/4 of ``size``,
    then the text wraps (at spaces; between characters where there are none, as in Chinese)."""
    smallest = max(10, size * 3 // 4)
    while size > smallest and draw.textlength(text, font=_font(size)) > width:
        size -= 1
    font = _font(size)
    tokens = re.findall(r"\S+\s*", text) if " " in text.strip() else list(text)
    lines = [""]
    for token in tokens:
        if lines[-1] and draw.textlength(lines[-1] + token.rstrip(), font=font) > width:
            lines.append("")
        lines[-1] += token
    return [line.rstrip() for line in lines], font


def compose_frame(picture: Image.Image, lines: Sequence[str], width: int) -> Image.Image:
    """A frame ``width`` pixels wide: a caption strip (first line large, the others small, wrapped
    to the width) over ``picture`` (shrunk with nearest-neighbour if wider, so mask units stay sharp
    squares), both sides even.

    Args:
        picture: the drawn maps, any size (RGB).
        lines: caption lines, already translated.
        width: frame width in pixels (made even).
    """
    width -= width % 2
    body = picture.convert("RGB")
    if body.width > width:  # shrink to fit; a narrower picture is centred unscaled, pixel for pixel
        body = body.resize((width, max(2, round(body.height * width / body.width))), Image.Resampling.NEAREST)
    big, small = max(14, width // 24), max(11, width // 40)
    pad = max(4, width // 80)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    laid = []  # (text, font, line height, colour)
    for i, text in enumerate(lines):
        size = big if i == 0 else small
        wrapped, font = _wrapped(measure, text, size, width - 2 * pad)
        laid += [(part, font, round(font.size * 1.3), (20, 20, 20) if i == 0 else (90, 90, 90)) for part in wrapped]
    strip = pad + sum(h for _, _, h, _ in laid) + pad // 2
    height = strip + body.height
    height += height % 2
    frame = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(frame)
    y = pad
    for text, font, h, colour in laid:
        draw.text((pad, y), text, fill=colour, font=font)
        y += h
    frame.paste(body, ((width - body.width) // 2, strip))
    return frame


def _pack(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) uint8 -> (...) uint32 0xRRGGBB."""
    rgb = rgb.astype(np.uint32)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def _palette(frames: Sequence[Image.Image]) -> np.ndarray:
    """One 256-colour palette (256, 3) for every frame: the 64 most frequent colours exactly (mask
    colours, background, text), the rest median-cut from a sample of all pixels (the colour-mapped
    features)."""
    step = max(1, len(frames) // 8)
    pixels = np.concatenate([np.asarray(f, dtype=np.uint8).reshape(-1, 3)[::3] for f in frames[::step]])
    packed = _pack(pixels)
    colours, counts = np.unique(packed, return_counts=True)
    exact = colours[np.argsort(-counts, kind="stable")[:64]]
    chosen = [((c >> 16) & 255, (c >> 8) & 255, c & 255) for c in exact.tolist()]
    if len(colours) > len(exact):
        rest = pixels[~np.isin(packed, exact)]
        cut = Image.fromarray(rest[None, :, :]).quantize(256 - len(chosen), method=Image.Quantize.MEDIANCUT,
                                                         dither=Image.Dither.NONE)
        used = sorted(i for _, i in cut.getcolors(256) or [])
        flat = cut.getpalette()
        chosen += [tuple(flat[3 * i : 3 * i + 3]) for i in used]
    chosen += [chosen[0]] * (256 - len(chosen))
    return np.array(chosen[:256], dtype=np.int32)


def _indexer(palette: np.ndarray) -> Callable[[Image.Image], Image.Image]:
    """Frame -> "P" image where every pixel is its exactly nearest palette colour (Pillow's own
    ``quantize(palette=...)`` is approximate and turns the mask's grey into a neighbour). Colours
    are looked up once per animation, in a table over all 2**24 colours filled as they appear."""
    table = np.full(1 << 24, -1, dtype=np.int16)
    flat = palette.astype(np.uint8).ravel().tolist()

    def index(frame: Image.Image) -> Image.Image:
        rgb = np.asarray(frame.convert("RGB"))
        packed = _pack(rgb)
        idx = table[packed]
        new = np.unique(packed[idx < 0])
        if len(new):
            unpacked = np.stack([(new >> 16) & 255, (new >> 8) & 255, new & 255], axis=1).astype(np.int32)
            for i in range(0, len(new), 4096):  # (4096, 256) distances at a time
                d = ((unpacked[i : i + 4096, None, :] - palette[None, :, :]) ** 2).sum(-1)
                table[new[i : i + 4096]] = d.argmin(1)
            idx = table[packed]
        image = Image.fromarray(idx.astype(np.uint8), "P")
        image.putpalette(flat)
        return image

    return index


def encode_gif(frames: Sequence[Image.Image], frame_ms: int) -> bytes:
    """An animated GIF that loops forever, one shared palette, no dithering (flat colours stay flat).

    Raises:
        ValueError: no frames, or frames of different sizes.
    """
    _check_frames(frames)
    palette = _palette(frames)
    index = _indexer(palette)
    indexed = [index(f) for f in frames]
    buf = io.BytesIO()
    indexed[0].save(buf, "GIF", save_all=True, append_images=indexed[1:], duration=frame_ms, loop=0,
                    optimize=True, disposal=1)
    return buf.getvalue()


def encode_mp4(frames: Sequence[Image.Image], frame_ms: int) -> bytes:
    """An H.264 MP4 (yuv420p, even sides) at ``1000 / frame_ms`` frames per second.

    Raises:
        ValueError: no frames, frames of different sizes, or odd sides.
    """
    import av  # imported here: a GIF-only server never loads the codec libraries

    _check_frames(frames)
    width, height = frames[0].size
    if width % 2 or height % 2:
        raise ValueError(f"expected even frame sides for yuv420p, but got {width}x{height}")
    buf = io.BytesIO()
    # no "faststart": it rewrites the file in a second pass that an in-memory buffer can't serve; a
    # browser fetches the index at the end with a range request, and slide software reads it whole
    with av.open(buf, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(1000, frame_ms))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "18", "preset": "veryfast", "tune": "stillimage"}
        for image in frames:
            container.mux(stream.encode(av.VideoFrame.from_image(image.convert("RGB"))))
        container.mux(stream.encode())  # flush the encoder
    return buf.getvalue()


def _check_frames(frames: Sequence[Image.Image]) -> None:
    if not frames:
        raise ValueError("expected at least one frame, but got none")
    sizes = {f.size for f in frames}
    if len(sizes) != 1:
        raise ValueError(f"expected frames of one size, but got {sorted(sizes)}")


def _channels(view: MaskSample, part: slice) -> MaskSample:
    """``view`` restricted to some of its channels (a band of the frame)."""
    return dataclasses.replace(view, channels=view.channels[part], seed_mask=view.seed_mask[part],
                               block_mask=view.block_mask[part], before=view.before[part], after=view.after[part])


def _stacked(pictures: Sequence[Image.Image], gap: int = 10) -> Image.Image:
    """Pictures one under the other, left-aligned, on white."""
    out = Image.new("RGB", (max(p.width for p in pictures), sum(p.height for p in pictures) + gap * (len(pictures) - 1)),
                    "white")
    y = 0
    for p in pictures:
        out.paste(p, (0, y))
        y += p.height + gap
    return out


Draw = Callable[[MaskSample, float, int], Image.Image]  # (view, shared vmax, tile side) -> picture
Caption = Callable[[int | float, MaskSample], Sequence[str]]  # (value, view) -> translated lines


def render_animation(
    backbone: Backbone,
    clean: CleanPass,
    spec: RegularizerSpec,
    anim: AnimationSpec,
    *,
    seed: int,
    n_channels: int,
    draw: Draw,
    caption: Caption,
    progress: Callable[[float, str], None] | None = None,
) -> Animation:
    """Sample one set of masks per frame (:func:`compute_mask_sample`: the network after the site does
    not run), draw each with ``draw``, caption it and encode.

    Args:
        backbone, clean: the live model and this image's clean pass.
        spec: the settings held fixed; a sweep replaces its ``keep_prob`` or ``block_size``.
        anim: form, frame count, width, format.
        seed: the mask seed of a sweep (a seed animation uses seeds 0..frames-1).
        n_channels: channels per frame: the first frame's most active ones its mask hit (as on the page),
            the same channels in every frame.
        draw: ``(view, vmax, tile) -> picture``; ``vmax`` is shared by all frames, so the rescaling
            of kept units compares across frames; ``tile`` is the side of one map in pixels.
        caption: ``(value, view) -> lines`` of translated text for the frame's caption strip.
        progress: ``(fraction, text)`` after each frame (the heavy pool cancels through it).

    Returns:
        The encoded :class:`Animation`.
    """
    t0 = time.perf_counter()
    report = progress or (lambda fraction, text: None)
    values = frame_values(anim)
    views: list[MaskSample] = []
    for i, value in enumerate(values):
        shown = views[0].channels if views else None  # every frame on the first frame's channels
        if anim.form == "seeds":
            view = compute_mask_sample(backbone, clean, spec, seed=int(value), n_channels=n_channels, channels=shown)
        else:
            frame_spec = dataclasses.replace(spec, **{anim.form: value, "group_params": ()})
            view = compute_mask_sample(backbone, clean, frame_spec, seed=seed, n_channels=n_channels, channels=shown)
        views.append(view)
        report(0.7 * (i + 1) / len(values), f"{i + 1}/{len(values)}")
    vmax = max(float(max(v.before.max(), v.after.max())) for v in views) or 1.0
    n_channels = max(len(v.channels) for v in views)
    # channels per band: as many as fit at MIN_TILE pixels each, spread evenly over the bands
    n_bands = -(-n_channels // max(1, anim.width // (MIN_TILE + 4)))
    per_band = -(-n_channels // n_bands)
    tile = max(8, min(MAX_TILE, anim.width // per_band - 4))  # the grid puts 4 px between tiles
    frames = []
    for value, view in zip(values, views):
        bands = [draw(_channels(view, slice(i, i + per_band)), vmax, tile) for i in range(0, n_channels, per_band)]
        frames.append(compose_frame(_stacked(bands), caption(value, view), anim.width))
    report(0.85, f"{len(values)}/{len(values)}")
    data = encode_gif(frames, anim.frame_ms) if anim.fmt == "gif" else encode_mp4(frames, anim.frame_ms)
    report(1.0, f"{len(values)}/{len(values)}")
    return Animation(spec=anim, data=data, mime=FORMATS[anim.fmt], size=frames[0].size, values=values,
                     realised_drops=tuple(v.realised_drop for v in views), seconds=time.perf_counter() - t0)
