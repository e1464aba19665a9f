"""Decode user images safely and turn them into network inputs.

Everything a browser upload can throw at us is handled here, with a clear ``ImageError`` whose
message is ours (never the decoder's text, which can carry file content): non-images, formats
outside PNG/JPEG/WebP/GIF/BMP/TIFF, corrupt or truncated files, decompression bombs, thin strips,
palette/RGBA/LA/grayscale/1-bit/16-bit/CMYK modes, EXIF orientation, animated images (first
frame), and tiny images (1x1 is upscaled like any other). Nothing is written to disk.

Memory, not only pixel count, bounds a decode (issue 13): the header is read first, then

* ``Image.draft`` lets a JPEG decode at 1/2, 1/4 or 1/8 scale, straight to about ``max_side``;
* the raster the decoder must hold (pixels x Pillow's bytes per pixel, plus a progressive
  JPEG's coefficient buffer and the copies WebP and TIFF decoders make) must fit
  ``MAX_DECODE_BYTES``;
* right after decoding, the image is shrunk by an integer factor (``Image.reduce``) in its own
  mode, before any mode conversion, so conversions work on at most about 2 x ``max_side``;
* at most ``MAX_CONCURRENT_DECODES`` decodes run at once in the process (a semaphore), so a
  room full of students cannot multiply the peak.
"""

from __future__ import annotations

import io
import logging
import struct
import threading
import warnings
from collections.abc import Callable

import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from .text import N_, Text

__all__ = [
    "ImageError",
    "MAX_ASPECT",
    "MAX_CONCURRENT_DECODES",
    "MAX_DECODE_BYTES",
    "MAX_PIXELS",
    "MAX_SIDE",
    "decode_image",
    "to_input",
    "crop_for_display",
]

MAX_PIXELS = 40_000_000  # refuse before decoding anything bigger (decompression bombs)
MAX_SIDE = 1024  # larger images are downscaled right after decoding
MAX_ASPECT = 20  # long side / short side; thinner strips are refused from the header
MAX_DECODE_BYTES = 64 * 2**20  # what one decode may hold (see _decode_cost)
MAX_CONCURRENT_DECODES = 2  # per process; others wait up to DECODE_WAIT_S
DECODE_WAIT_S = 30.0
FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")  # what Image.open may try (JPEG covers MPO)
INPUT_SIZE = 224
RESIZE_SIZE = 256

_DECODE_SLOTS = threading.BoundedSemaphore(MAX_CONCURRENT_DECODES)
_LOG = logging.getLogger("dropblock_lab.images")
# EXIF orientation -> the transpose that makes the picture upright (as ImageOps.exif_transpose)
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# decoders that hold more full-size copies while decoding (libwebp: its frame, a bytes copy and
# the image; libtiff: a strip buffer up to the whole image)
_FORMAT_COPIES = {"WEBP": 4, "TIFF": 2}


class ImageError(ValueError):
    """An upload that cannot be used; the message is meant for the user."""


def decode_image(
    data: bytes,
    *,
    max_pixels: int = MAX_PIXELS,
    max_side: int = MAX_SIDE,
    max_bytes: int = MAX_DECODE_BYTES,
    wait_s: float = DECODE_WAIT_S,
    before_decode: Callable[[int], None] | None = None,
) -> Image.Image:
    """Decode bytes into an 8-bit RGB PIL image, upright, at most ``max_side`` on its long side.

    Args:
        data: the file's bytes, as uploaded.
        max_pixels: refuse images with more pixels (read from the header, before decoding).
        max_side: the long side of the result.
        max_bytes: refuse images whose decode would hold more memory (see ``_decode_cost``).
        wait_s: how long to wait for one of the ``MAX_CONCURRENT_DECODES`` slots.
        before_decode: called with the number of pixels the decoder is about to produce (after a
            JPEG's draft scale), once the header is checked and before any pixel is decoded; it
            may raise ``ImageError`` to refuse (an image set's pixel budget).

    Raises:
        ImageError: empty, not an image of an accepted format, corrupt, too many pixels, thinner
            than 1:``MAX_ASPECT``, too much memory to decode, or the server is busy.
    """
    if not data:
        raise ImageError(N_("The file is empty."))
    if not _DECODE_SLOTS.acquire(timeout=wait_s):
        raise ImageError(N_("The server is busy decoding other uploads. Please try again in a moment."))
    try:
        image, orientation = _decode_small(data, max_pixels, max_side, max_bytes, before_decode)
        image = _to_rgb(image)  # at most about 2 x max_side here: conversions are cheap
    finally:
        _DECODE_SLOTS.release()
    if max(image.size) > max_side:
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    if orientation in _UPRIGHT:
        image = image.transpose(_UPRIGHT[orientation])
    return image


def _decode_small(data: bytes, max_pixels: int, max_side: int, max_bytes: int,
                  before_decode: Callable[[int], None] | None = None) -> tuple[Image.Image, int]:
    """Check the header, decode within the memory budget, shrink by an integer factor in the
    image's own mode. Returns (image, EXIF orientation)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=FORMATS)
            width, height = image.size
            if width * height > max_pixels:
                raise ImageError(Text(
                    N_("The image is {width}x{height} pixels ({mp:.0f} MP); the limit is {limit:.0f} MP. "
                       "Please upload a smaller image."),
                    width=width, height=height, mp=width * height / 1e6, limit=max_pixels / 1e6,
                ))
            if max(width, height) > MAX_ASPECT * min(width, height):
                raise ImageError(Text(
                    N_("The image is {width}x{height} pixels: one side is more than {aspect} times the other, "
                       "and the network would see only a sliver of it. Please crop it to at most {aspect}:1."),
                    width=width, height=height, aspect=MAX_ASPECT,
                ))
            coefficients = _progressive_jpeg_bytes(image)
            scale = min(1.0, max_side / max(width, height))
            image.draft("RGB", (max(1, round(width * scale)), max(1, round(height * scale))))  # JPEG only
            cost = _decode_cost(image) + coefficients
            if cost > max_bytes:
                raise ImageError(Text(
                    N_("The image is {width}x{height} pixels and would take too much memory to decode "
                       "(about {mb:.0f} MB; the limit is {limit:.0f} MB). Please upload a smaller image, "
                       "or save it as JPEG."),
                    width=width, height=height, mb=cost / 2**20, limit=max_bytes / 2**20,
                ))
            if before_decode is not None:
                before_decode(image.size[0] * image.size[1])
            image.load()
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageError(N_("The image is too large to decode safely (decompression bomb guard).")) from err
    except UnidentifiedImageError as err:
        raise ImageError(N_("This file is not an image that can be read (try PNG, JPEG, WebP, GIF, BMP or TIFF).")) from err
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, KeyError, ZeroDivisionError) as err:
        _LOG.info("upload failed to decode: %s: %s", type(err).__name__, err)
        raise ImageError(N_("The image file is damaged or truncated and cannot be decoded.")) from err
    orientation = _orientation(image)
    factor = max(image.size) // max_side
    return _shrink(image, factor), orientation


def _bytes_per_pixel(mode: str) -> int:
    """Pillow's in-memory size of one pixel, twice for modes that shrinking copies first: "1" is
    widened to "L", and alpha is premultiplied (RGBA -> RGBa) before ``reduce``."""
    if mode in ("L", "P"):
        return 1
    if mode == "1" or mode.startswith("I;16"):
        return 2
    if mode in ("RGBA", "LA", "PA"):
        return 8
    return 4  # RGB, CMYK, YCbCr, LAB, HSV, I, F are stored 4 bytes a pixel


def _decode_cost(image: Image.Image) -> int:
    """Bytes a decode of ``image`` (after any draft) holds at its peak: the raster, times the
    full-size copies its decoder makes."""
    width, height = image.size
    return width * height * _bytes_per_pixel(image.mode) * _FORMAT_COPIES.get(image.format or "", 1)


def _progressive_jpeg_bytes(image: Image.Image) -> int:
    """libjpeg keeps every DCT coefficient of a progressive JPEG (2 bytes each) at full
    resolution, whatever the draft scale."""
    if image.format not in ("JPEG", "MPO") or not image.info.get("progressive"):
        return 0
    layers = getattr(image, "layer", None) or [("", 1, 1, 0)] * len(image.getbands())
    h_max = max(h for _, h, _, _ in layers) or 1
    v_max = max(v for _, _, v, _ in layers) or 1
    width, height = image.size
    return int(sum(2 * width * height * h * v / (h_max * v_max) for _, h, v, _ in layers))


def _orientation(image: Image.Image) -> int:
    try:
        return int(image.getexif().get(0x0112, 1))
    except Exception:  # a broken EXIF block must not lose the picture  # noqa: BLE001
        return 1


def _shrink(image: Image.Image, factor: int) -> Image.Image:
    """Integer downscale in the image's own mode; the result keeps at least ``factor`` x smaller
    sides, so a later LANCZOS thumbnail works from at most about twice its target."""
    if factor < 2:
        return image
    if image.mode == "1":
        image = image.convert("L")
    try:
        return image.reduce(factor)
    except ValueError:  # palette and 16-bit modes have no box reduce
        size = (max(1, image.width // factor), max(1, image.height // factor))
        resample = Image.Resampling.NEAREST if image.mode == "P" else Image.Resampling.BOX
        return image.resize(size, resample)


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode to 8-bit RGB; transparency is composited on white."""
    if image.mode in ("I", "F") or image.mode.startswith("I;16"):
        # 16-bit / 32-bit / float grayscale: stretch the actual range to 0..255
        image = image.convert("F")
        lo, hi = image.getextrema()
        scale = 255.0 / (hi - lo) if hi > lo else 0.0
        image = image.point(lambda v: v * scale - lo * scale).convert("L")
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGB", image.size, (255, 255, 255))
        rgba = image.convert("RGBA")
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV, RGB


def crop_for_display(image: Image.Image) -> Image.Image:
    """The 224x224 view the network sees: resize the short side to 256, centre-crop 224.

    Only the source region under the crop is resampled (``resize(box=...)``), so a long strip
    costs no more than a square."""
    width, height = image.size
    scale = RESIZE_SIZE / min(width, height)
    new_w, new_h = max(INPUT_SIZE, round(width * scale)), max(INPUT_SIZE, round(height * scale))
    left, top = (new_w - INPUT_SIZE) // 2, (new_h - INPUT_SIZE) // 2
    sx, sy = width / new_w, height / new_h  # source pixels per resized pixel
    box = (left * sx, top * sy, (left + INPUT_SIZE) * sx, (top + INPUT_SIZE) * sy)
    return image.resize((INPUT_SIZE, INPUT_SIZE), Image.Resampling.BILINEAR, box=box)


def to_input(image: Image.Image, mean: tuple[float, float, float], std: tuple[float, float, float]) -> Tensor:
    """(1, 3, 224, 224) float32 network input from an RGB image (ImageNet-style eval transform)."""
    crop = crop_for_display(image)
    pixels = torch.frombuffer(bytearray(crop.tobytes()), dtype=torch.uint8).view(INPUT_SIZE, INPUT_SIZE, 3)
    x = pixels.permute(2, 0, 1).float().div_(255.0)
    x = (x - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)
    return x.unsqueeze(0)
