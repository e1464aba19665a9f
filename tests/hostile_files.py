"""Hostile uploads for the decode and app fuzz tests (issue 13): built in memory, deterministic.

Each case is (name, bytes, expectation): expectation is a size ``(w, h)`` the decoded image must
have, ``"ok"`` (any size), or a regular expression the refusal message must match.
"""

from __future__ import annotations

import functools
import io
import random
import struct
import zlib

from PIL import Image

NOT_AN_IMAGE = "not an image that can be read"
DAMAGED = "damaged or truncated"
TOO_MANY_PIXELS = r"the limit is 40 MP|too large to decode safely"
TOO_THIN = r"more than 20 times"
TOO_MUCH_MEMORY = r"too much memory"


def enc(image: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kw)
    return buf.getvalue()


def noise(size=(300, 200), mode="RGB") -> Image.Image:
    return Image.effect_noise(size, 60).convert(mode)


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def raw_png(width: int, height: int, bit_depth: int, color_type: int, rows_per_write: int = 1) -> bytes:
    """A valid all-zero PNG of any depth and colour type, compressed while streaming (the raw
    rows of the big ones would be hundreds of MB)."""
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color_type]
    row = bytes(1 + (width * channels * bit_depth + 7) // 8)  # filter byte 0 + zero pixels
    comp = zlib.compressobj(6)
    block = row * rows_per_write
    parts = [comp.compress(block) for _ in range(height // rows_per_write)]
    parts += [comp.compress(row) for _ in range(height % rows_per_write)]
    parts.append(comp.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    plte = _chunk(b"PLTE", bytes(3 * 2)) if color_type == 3 else b""
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + plte + _chunk(b"IDAT", b"".join(parts)) + _chunk(b"IEND", b"")


def gif_with_screen(width: int, height: int) -> bytes:
    """A 1x1 frame on a huge logical screen (a classic GIF bomb header)."""
    data = bytearray(enc(Image.new("P", (1, 1)), "GIF"))
    data[6:10] = struct.pack("<HH", width, height)
    return bytes(data)


def exif_jpeg(orientation: int) -> bytes:
    image = Image.new("RGB", (40, 20), (255, 0, 0))
    image.paste((0, 0, 255), (0, 0, 10, 20))
    exif = image.getexif()
    exif[0x0112] = orientation
    return enc(image, "JPEG", exif=exif)


def flipped(data: bytes, seed: int) -> bytes:
    rng = random.Random(seed)
    b = bytearray(data)
    for _ in range(40):
        b[rng.randrange(64, len(b))] ^= 0xFF
    return bytes(b)


@functools.cache
def hostile_uploads() -> tuple[tuple[str, bytes, object], ...]:
    jpeg, png = enc(noise(), "JPEG"), enc(noise())
    rng = random.Random(13)
    cases: list[tuple[str, bytes, object]] = [
        # not images at all
        ("empty.png", b"", "empty"),
        ("one-byte.jpg", b"\xff", NOT_AN_IMAGE),
        ("text.png", b"plain text renamed to png\n" * 20, NOT_AN_IMAGE),
        ("page.png", b"<!doctype html><img src=x onerror=alert(1)>", NOT_AN_IMAGE),
        ("doc.pdf.png", b"%PDF-1.4\n1 0 obj <<>> endobj\n", NOT_AN_IMAGE),
        ("archive.png", b"PK\x03\x04" + bytes(300), NOT_AN_IMAGE),
        ("script.svg.png", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', NOT_AN_IMAGE),
        *[(f"random-{i}.jpg", bytes(rng.randrange(256) for _ in range(3000)), NOT_AN_IMAGE) for i in range(3)],
        # formats Pillow reads but the app does not accept (smaller attack surface)
        ("icon.ico.png", enc(noise((32, 32)), "ICO"), NOT_AN_IMAGE),
        ("pixmap.ppm.png", enc(noise((32, 32)), "PPM"), NOT_AN_IMAGE),
        ("targa.tga.png", enc(noise((32, 32)), "TGA"), NOT_AN_IMAGE),
        ("paintbrush.pcx.png", enc(noise((32, 32)), "PCX"), NOT_AN_IMAGE),
        ("postscript.eps.png", enc(noise((32, 32)), "EPS"), NOT_AN_IMAGE),
        # damaged
        ("header-only.png", png[:33], f"{NOT_AN_IMAGE}|{DAMAGED}"),
        ("header-only.jpg", jpeg[:20], f"{NOT_AN_IMAGE}|{DAMAGED}"),
        *[(f"truncated-{n}.png", png[:n], DAMAGED) for n in (100, 5000, 60000)],
        *[(f"truncated-{n}.jpg", jpeg[:n], DAMAGED) for n in (300, 2000)],
        *[(f"flipped-{i}.png", flipped(png, i), DAMAGED) for i in range(2)],
        # bombs and memory hogs
        ("bomb-20000x20000-1bit.png", raw_png(20000, 20000, 1, 0, 1000), TOO_MANY_PIXELS),
        ("bomb-gif-screen.gif", gif_with_screen(65535, 65535), TOO_MANY_PIXELS),
        ("gray-7000x6000.png", raw_png(7000, 6000, 8, 0, 200), TOO_MANY_PIXELS),
        ("rgba16-6300x6300.png", raw_png(6300, 6300, 16, 6, 10), TOO_MUCH_MEMORY),
        ("gray16-6300x6300.png", raw_png(6300, 6300, 16, 0, 20), TOO_MUCH_MEMORY),
        ("rgb-5000x4000.png", raw_png(5000, 4000, 8, 2, 20), TOO_MUCH_MEMORY),
        ("gray-6300x6300.png", raw_png(6300, 6300, 8, 0, 50), (1024, 1024)),  # 1 byte/px: fits the budget
        ("rgba-4000x4000.png", raw_png(4000, 4000, 8, 6, 20), TOO_MUCH_MEMORY),  # alpha counts twice
        # just under the memory budget: accepted, and the memory test bounds their real peak
        ("rgb-4000x4000.png", raw_png(4000, 4000, 8, 2, 20), (1024, 1024)),
        ("rgba-2800x2800.png", raw_png(2800, 2800, 8, 6, 20), (1024, 1024)),
        ("rgb-3000x2500.webp", enc(Image.new("RGB", (3000, 2500), (9, 99, 199)), "WEBP"), TOO_MUCH_MEMORY),
        ("rgb-2000x1900.webp", enc(Image.new("RGB", (2000, 1900), (9, 99, 199)), "WEBP"), (1024, 973)),
        ("rgb-2800x2800.tiff", enc(Image.new("RGB", (2800, 2800), (9, 99, 199)), "TIFF", compression="tiff_deflate"),
         (1024, 1024)),
        ("progressive-4000x3000.jpg", enc(Image.new("RGB", (4000, 3000), (90, 60, 30)), "JPEG", progressive=True),
         (1024, 768)),
        ("huge-6000x4000.jpg", enc(Image.new("RGB", (6000, 4000), (30, 60, 90)), "JPEG"), (1024, 683)),
        ("progressive-6000x4000.jpg", enc(Image.new("RGB", (6000, 4000), (90, 60, 30)), "JPEG", progressive=True),
         TOO_MUCH_MEMORY),  # libjpeg holds every coefficient of a progressive JPEG
        # thin
        ("thin-1x10000.png", enc(noise((1, 10000))), TOO_THIN),
        ("thin-10000x1.png", enc(noise((10000, 1))), TOO_THIN),
        ("thin-1x39000000-1bit.png", raw_png(1, 39_000_000, 1, 0, 1_000_000), TOO_THIN),
        ("thin-21-to-1.png", enc(noise((420, 20))), TOO_THIN),
        ("strip-20-to-1.png", enc(noise((400, 20))), (400, 20)),
        ("strip-1-to-20.jpg", enc(noise((50, 1000)), "JPEG"), (50, 1000)),
        # modes
        ("rgba.png", enc(noise(mode="RGBA")), (300, 200)),
        ("la.png", enc(noise(mode="LA")), (300, 200)),
        ("gray.png", enc(noise(mode="L")), (300, 200)),
        ("bilevel.png", enc(noise(mode="1")), (300, 200)),
        ("palette.png", enc(noise(mode="P")), (300, 200)),
        ("palette-transparent.gif", enc(noise(mode="P"), "GIF", transparency=0), (300, 200)),
        ("gray16.png", enc(Image.frombytes("I;16", (64, 32), bytes(range(256)) * 16)), (64, 32)),
        ("big-bilevel-3000x2000.png", enc(noise((3000, 2000), "1")), (1024, 683)),
        ("big-palette-3000x2000.gif", enc(noise((3000, 2000), "P"), "GIF"), (1024, 683)),
        ("big-gray16-3000x2000.png", raw_png(3000, 2000, 16, 0, 20), (1024, 683)),
        ("cmyk.jpg", enc(noise(mode="CMYK"), "JPEG"), (300, 200)),
        ("cmyk.tiff", enc(noise(mode="CMYK"), "TIFF"), (300, 200)),
        ("float.tiff", enc(noise(mode="F"), "TIFF"), (300, 200)),
        ("int32.tiff", enc(noise(mode="I"), "TIFF"), (300, 200)),
        ("photo.webp", enc(noise(), "WEBP"), (300, 200)),
        ("photo.bmp", enc(noise(), "BMP"), (300, 200)),
        ("one-pixel.png", enc(Image.new("RGB", (1, 1), (200, 10, 10))), (1, 1)),
        ("one-pixel.jpg", enc(Image.new("RGB", (1, 1)), "JPEG"), (1, 1)),
        ("one-pixel.gif", enc(Image.new("P", (1, 1))), (1, 1)),
        # animated and multi-page: the first frame
        ("animated.gif", enc(noise(mode="P"), "GIF", save_all=True, append_images=[noise(mode="P")] * 3), (300, 200)),
        ("animated.png", enc(noise(), "PNG", save_all=True, append_images=[noise()]), (300, 200)),
        ("animated.webp", enc(noise(), "WEBP", save_all=True, append_images=[noise()]), (300, 200)),
        ("pages.tiff", enc(noise(), "TIFF", save_all=True, append_images=[noise((30, 20))]), (300, 200)),
        # EXIF orientation: 5-8 swap the sides
        *[(f"exif-{o}.jpg", exif_jpeg(o), (20, 40) if o >= 5 else (40, 20)) for o in range(1, 9)],
    ]
    return tuple(cases)
