"""Uploads of every awkward kind decode to upright 8-bit RGB, or fail with a clear ImageError."""

from __future__ import annotations

import io

import pytest
import torch
from PIL import Image

from models.images import ImageError, crop_for_display, decode_image, to_input


def encode(image: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kw)
    return buf.getvalue()


def gradient16() -> Image.Image:
    data = torch.arange(600, dtype=torch.int32).reshape(20, 30) * 100
    return Image.frombytes("I;16", (30, 20), data.to(torch.int16).numpy().tobytes())


def exif_rotated(orientation: int) -> bytes:
    image = Image.new("RGB", (40, 20), (255, 0, 0))
    image.paste((0, 0, 255), (0, 0, 10, 20))  # a blue stripe on the left
    exif = image.getexif()
    exif[0x0112] = orientation
    return encode(image, "JPEG", exif=exif)


GOOD = {
    "rgba": (encode(Image.new("RGBA", (30, 20), (255, 0, 0, 0))), (30, 20)),
    "la": (encode(Image.new("LA", (30, 20), (10, 255))), (30, 20)),
    "grayscale": (encode(Image.new("L", (30, 20), 100)), (30, 20)),
    "palette": (encode(Image.new("P", (30, 20), 3)), (30, 20)),
    "1bit": (encode(Image.new("1", (30, 20), 1)), (30, 20)),
    "16bit": (encode(gradient16()), (30, 20)),
    "cmyk-jpeg": (encode(Image.new("CMYK", (30, 20), (0, 255, 0, 0)), "JPEG"), (30, 20)),
    "1x1": (encode(Image.new("RGB", (1, 1), (1, 2, 3))), (1, 1)),
    "gif-animated": (
        encode(Image.new("P", (30, 20), 1), "GIF", save_all=True, append_images=[Image.new("P", (30, 20), 2)]),
        (30, 20),
    ),
    "webp": (encode(Image.new("RGB", (30, 20), (5, 6, 7)), "WEBP"), (30, 20)),
    "bmp": (encode(Image.new("RGB", (30, 20)), "BMP"), (30, 20)),
    "tiff": (encode(Image.new("RGB", (30, 20)), "TIFF"), (30, 20)),
    "huge-downscaled": (encode(Image.new("RGB", (4000, 3000)), "JPEG"), (1024, 768)),
    "exif-rotated-90": (exif_rotated(6), (20, 40)),
    "exif-rotated-180": (exif_rotated(3), (40, 20)),
    "exif-rotated-270": (exif_rotated(8), (20, 40)),
}


@pytest.mark.parametrize("name", GOOD)
def test_awkward_images_decode_to_rgb(name):
    data, size = GOOD[name]
    image = decode_image(data)
    assert image.mode == "RGB" and image.size == size
    x = to_input(image, (0.5,) * 3, (0.5,) * 3)
    assert x.shape == (1, 3, 224, 224) and torch.isfinite(x).all()


def test_transparent_pixels_become_white_and_16bit_keeps_its_range():
    assert decode_image(GOOD["rgba"][0]).getpixel((0, 0)) == (255, 255, 255)
    lo, hi = decode_image(GOOD["16bit"][0]).convert("L").getextrema()
    assert lo == 0 and hi == 255  # stretched, not clipped to black or white


def test_exif_rotation_is_applied():
    upright = decode_image(exif_rotated(6))  # 90° clockwise: the left stripe goes to the top
    r, g, b = upright.getpixel((10, 2))
    assert b > 200 and r < 80


def bomb() -> bytes:
    return encode(Image.new("1", (20000, 20000)))


BAD = {
    "empty": (b"", "empty"),
    "text-renamed-png": (b"hello, this is not an image", "not an image"),
    "truncated-jpeg": (encode(Image.new("RGB", (300, 200), (9, 9, 9)), "JPEG")[:200], "damaged or truncated"),
    "truncated-png": (encode(Image.effect_noise((300, 200), 50).convert("RGB"))[:3000], "damaged or truncated"),
    "html": (b"<html><body>hi</body></html>", "not an image"),
}


@pytest.mark.parametrize("name", BAD)
def test_bad_uploads_raise_clear_errors(name):
    data, message = BAD[name]
    with pytest.raises(ImageError, match=message):
        decode_image(data)


def test_decompression_bomb_is_refused():
    with pytest.raises(ImageError, match="too large|limit"):
        decode_image(bomb())
    with pytest.raises(ImageError, match="limit is 1 MP"):
        decode_image(encode(Image.new("RGB", (2000, 1000)), "JPEG"), max_pixels=1_000_000)


def test_crop_is_224_centre():
    image = Image.new("RGB", (600, 400))
    image.paste((255, 255, 255), (290, 190, 310, 210))
    crop = crop_for_display(image)
    assert crop.size == (224, 224) and crop.getpixel((112, 112)) == (255, 255, 255)
