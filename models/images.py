"""Decode user images safely and turn them into network inputs.

Everything a browser upload can throw at us is handled here, with a clear ``ImageError``:
non-images, corrupt or truncated files, decompression bombs, palette/RGBA/LA/grayscale/CMYK/
16-bit modes, EXIF orientation, animated images (first frame), and tiny images (1x1 is
upscaled like any other). Nothing is written to disk.
"""

from __future__ import annotations

import io
import warnings

import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor

__all__ = ["ImageError", "MAX_PIXELS", "MAX_SIDE", "decode_image", "to_input", "crop_for_display"]

MAX_PIXELS = 40_000_000  # refuse before decoding anything bigger (decompression bombs)
MAX_SIDE = 1024  # larger images are downscaled right after decoding
INPUT_SIZE = 224
RESIZE_SIZE = 256


class ImageError(ValueError):
    """An upload that cannot be used; the message is meant for the user."""


def decode_image(data: bytes, *, max_pixels: int = MAX_PIXELS, max_side: int = MAX_SIDE) -> Image.Image:
    """Decode bytes into an 8-bit RGB PIL image, upright, at most ``max_side`` on its long side.

    Raises:
        ImageError: empty, not an image, corrupt, or too many pixels.
    """
    if not data:
        raise ImageError("The file is empty.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > max_pixels:
                raise ImageError(
                    f"The image is {width}x{height} pixels ({width * height / 1e6:.0f} MP); "
                    f"the limit is {max_pixels / 1e6:.0f} MP. Please upload a smaller image."
                )
            image.draft("RGB", (max_side, max_side))  # JPEG: decode at reduced scale when huge
            image.load()
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageError("The image is too large to decode safely (decompression bomb guard).") from err
    except UnidentifiedImageError as err:
        raise ImageError("This file is not an image that can be read (try PNG, JPEG, WebP, GIF, BMP or TIFF).") from err
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        raise ImageError(f"The image file is damaged or truncated and cannot be decoded ({err}).") from err
    try:
        image = ImageOps.exif_transpose(image)
    except Exception:  # broken EXIF blocks must not lose the picture  # noqa: BLE001
        pass
    image = _to_rgb(image)
    if max(image.size) > max_side:
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return image


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
    """The 224x224 view the network sees: resize the short side to 256, centre-crop 224."""
    width, height = image.size
    scale = RESIZE_SIZE / min(width, height)
    new_size = (max(INPUT_SIZE, round(width * scale)), max(INPUT_SIZE, round(height * scale)))
    resized = image.resize(new_size, Image.Resampling.BILINEAR)
    left = (new_size[0] - INPUT_SIZE) // 2
    top = (new_size[1] - INPUT_SIZE) // 2
    return resized.crop((left, top, left + INPUT_SIZE, top + INPUT_SIZE))


def to_input(image: Image.Image, mean: tuple[float, float, float], std: tuple[float, float, float]) -> Tensor:
    """(1, 3, 224, 224) float32 network input from an RGB image (ImageNet-style eval transform)."""
    crop = crop_for_display(image)
    pixels = torch.frombuffer(bytearray(crop.tobytes()), dtype=torch.uint8).view(INPUT_SIZE, INPUT_SIZE, 3)
    x = pixels.permute(2, 0, 1).float().div_(255.0)
    x = (x - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)
    return x.unsqueeze(0)
