"""Image sets for the paper's Figure 5 over many images: read safely, in memory only.

A set is the bundled samples, several uploaded files, or one zip of images. Every image goes
through :func:`models.images.decode_image`, the same guards as a single upload. A zip is read
from its bytes (``zipfile`` over ``io.BytesIO``): member names are only ever shown, never used
as paths, and nothing is written to disk. Limits hold before anything is inflated and while it is:

* the zip itself: at most ``MAX_ZIP_BYTES``; its central directory is checked from the
  end-of-central-directory record before ``zipfile`` parses it (entry count and directory size);
* at most ``MAX_MEMBERS`` entries; at most ``MAX_IMAGES`` images are used;
* per member: the declared size at most ``MAX_MEMBER_BYTES`` (a single upload's limit), and the
  bytes are counted while inflating, so a header that lies cannot hand over more;
* all members together: ``MAX_TOTAL_BYTES`` uncompressed, declared and counted;
* only stored and deflate members are inflated (bzip2 and LZMA can expand one small read into
  gigabytes); encrypted members, nested zips, folders, absolute and ``..`` names are refused.

Each refused member gets a one-line reason; a set that cannot be read at all raises
:class:`SetError`. Imports no torch (reading a set needs none).

Cost (issue 22): each image is decoded once. What is kept is its centre square at
``NETWORK_SIDE`` x ``NETWORK_SIDE`` (every model's transform resizes the short side to at most
256 and centre-crops 224, so this square gives the network the same crop as the full image) and
a thumbnail; neither the file's bytes nor the full decode are kept. Decoding counts against
``pixel_budget`` (``MAX_SET_PIXELS`` by default): the pixels each decode produces (after a
JPEG's draft scale), checked from the header before decoding; an image that would pass it is
refused with the numbers. ``progress(fraction, text)`` is called before each member is read, so
an exception raised there (the heavy pool's ``Cancelled``) stops reading within one image.
"""

from __future__ import annotations

import hashlib
import io
import re
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from PIL import Image

from .images import ImageError, decode_image
from .text import N_, Text, text_of

if TYPE_CHECKING:
    from torch import Tensor

__all__ = [
    "ImageSet",
    "MAX_IMAGES",
    "MAX_MEMBERS",
    "MAX_MEMBER_BYTES",
    "MAX_SET_PIXELS",
    "NETWORK_SIDE",
    "MAX_TOTAL_BYTES",
    "MAX_ZIP_BYTES",
    "Rejection",
    "SetError",
    "SetImage",
    "display_name",
    "network_inputs",
    "read_files",
    "read_zip",
]

MAX_ZIP_BYTES = 64 * 2**20  # the zip upload itself
MAX_MEMBER_BYTES = 25 * 2**20  # one image, as for a single upload
MAX_TOTAL_BYTES = 128 * 2**20  # all members together, uncompressed
MAX_MEMBERS = 1_000  # entries in one zip, folders included
MAX_IMAGES = 64  # images used from one set
MAX_SET_PIXELS = 256_000_000  # pixels decoded for one set, all images together (after JPEG draft)
NETWORK_SIDE = 256  # the kept centre square: the largest short side a model's transform resizes to
MAX_DIRECTORY_BYTES = MAX_MEMBERS * 1024  # central directory: bounds what zipfile parses
MAX_NAME_CHARS = 60
THUMB_SIDE = 128
_CHUNK = 1 << 16
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
_INFLATABLE = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
Progress = Callable[[float, str], object]


class SetError(ValueError):
    """A set that cannot be read at all; the message is meant for the user."""


@dataclass(frozen=True)
class SetImage:
    """One usable image of a set.

    Attributes:
        name: the member's name, escaped and truncated for display (never a path).
        digest: SHA-256 of the file's bytes (hex).
        size: (width, height) after decoding (at most ``models.images.MAX_SIDE`` on the long side).
        pixels: RGB, (``NETWORK_SIDE``, ``NETWORK_SIDE``): the centre square, what the network is fed
            from (:func:`network_inputs`); the image is never decoded again.
        thumb: an RGB thumbnail, at most ``THUMB_SIDE`` on its long side.
    """

    name: str
    digest: str
    size: tuple[int, int]
    pixels: Image.Image = field(repr=False, compare=False)
    thumb: Image.Image = field(repr=False, compare=False)


@dataclass(frozen=True)
class Rejection:
    """A member that was not used, and why (one sentence for the user)."""

    name: str
    reason: str


@dataclass(frozen=True)
class ImageSet:
    """The usable images of a set, in order, and the members refused."""

    source: str
    images: tuple[SetImage, ...]
    rejected: tuple[Rejection, ...]

    @property
    def key(self) -> str:
        """Hash of the members' bytes, in order: the set's cache key."""
        h = hashlib.sha256()
        for image in self.images:
            h.update(bytes.fromhex(image.digest))
        return h.hexdigest()[:24]

    @property
    def digests(self) -> tuple[str, ...]:
        return tuple(image.digest for image in self.images)


def display_name(raw: str, limit: int = MAX_NAME_CHARS) -> str:
    """A member name as plain text: unprintable characters escaped, long names shortened."""
    text = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in raw) or "(no name)"
    if len(text) > limit:
        keep = limit - 1
        text = text[: keep - keep // 3] + "…" + text[-(keep // 3):]
    return text


def network_inputs(imageset: ImageSet, preprocess: Callable[[Image.Image], Tensor]) -> list[Tensor]:
    """Each image's (1, 3, crop, crop) network input, through the model's own transform, from the
    kept centre square (nothing is decoded)."""
    return [preprocess(image.pixels) for image in imageset.images]


def _centre_square(image: Image.Image, side: int = NETWORK_SIDE) -> Image.Image:
    """The centre square of the short side, resized to ``side`` x ``side`` (RGB)."""
    width, height = image.size
    s = min(width, height)
    box = ((width - s) / 2, (height - s) / 2, (width + s) / 2, (height + s) / 2)
    return image.resize((side, side), Image.Resampling.BILINEAR, box=box)


def _mb(n: int) -> str:
    return f"{n / 2**20:.0f} MB" if n >= 2**20 else f"{n / 1024:.0f} kB"


def _mp(n: int) -> str:
    return f"{n / 1e6:.1f} MP"


class _Builder:
    """Collects images and refusals with the per-image checks shared by every source."""

    def __init__(self, source: str, pixel_budget: int = MAX_SET_PIXELS) -> None:
        if pixel_budget < 1:
            raise ValueError(f"expected pixel_budget >= 1, but got {pixel_budget}")
        self.source = source
        self.images: list[SetImage] = []
        self.rejected: list[Rejection] = []
        self.seen: dict[str, str] = {}
        self.pixel_budget = pixel_budget
        self.pixels_decoded = 0

    def _charge(self, pixels: int) -> None:
        """Count a decode against the set's budget, before it runs; refuse one that would pass it."""
        if self.pixels_decoded + pixels > self.pixel_budget:
            raise ImageError(Text(
                N_("Not decoded: it has {mp} to decode, and the set's budget of {budget} decoded pixels has "
                   "{left} left. Use fewer or smaller images."),
                mp=_mp(pixels), budget=_mp(self.pixel_budget), left=_mp(self.pixel_budget - self.pixels_decoded)))
        self.pixels_decoded += pixels

    def reject(self, name: str, reason: str) -> None:
        self.rejected.append(Rejection(name, reason))

    @property
    def full(self) -> bool:
        return len(self.images) >= MAX_IMAGES

    def add(self, name: str, data: bytes) -> None:
        if self.full:
            self.reject(name, Text(N_("Not used: a set holds at most {n} images."), n=MAX_IMAGES))
            return
        if len(data) > MAX_MEMBER_BYTES:
            self.reject(name, Text(N_("Too big: {size}; the limit per image is {limit}."), size=_mb(len(data)),
                                   limit=_mb(MAX_MEMBER_BYTES)))
            return
        digest = hashlib.sha256(data).hexdigest()
        if digest in self.seen:
            self.reject(name, Text(N_("Same bytes as “{other}”, which is used once."), other=self.seen[digest]))
            return
        try:
            image = decode_image(data, before_decode=self._charge)
        except ImageError as err:
            self.reject(name, text_of(err))
            return
        thumb = image.copy()
        thumb.thumbnail((THUMB_SIDE, THUMB_SIDE))
        self.seen[digest] = name
        self.images.append(SetImage(name, digest, image.size, _centre_square(image), thumb))

    def build(self) -> ImageSet:
        return ImageSet(self.source, tuple(self.images), tuple(self.rejected))


def _reading(progress: Progress | None, i: int, n: int) -> None:
    if progress is not None:
        progress(i / max(1, n), Text(N_("reading file {i} of {n}"), i=i + 1, n=n))


def read_files(files: Iterable[tuple[str, bytes]], source: str, *, pixel_budget: int = MAX_SET_PIXELS,
               progress: Progress | None = None) -> ImageSet:
    """A set from named files already in memory (uploads, bundled samples).

    Args:
        files: (name, bytes) pairs, in the order they are to be used.
        source: what the set is called on the page, e.g. "3 uploaded files".
        pixel_budget: pixels all decodes together may produce; images past it are refused.
        progress: ``progress(fraction, text)`` before each file; whatever it raises stops reading.
    """
    files = list(files)
    builder = _Builder(source, pixel_budget)
    total = 0
    for i, (raw_name, data) in enumerate(files):
        if i >= MAX_MEMBERS:
            builder.reject("…", Text(N_("Only the first {n:,} files are read."), n=MAX_MEMBERS))
            break
        _reading(progress, i, min(len(files), MAX_MEMBERS))
        total += len(data)
        if total > MAX_TOTAL_BYTES:  # as a zip's members together: the files of one set are bounded too
            builder.reject(display_name(raw_name), Text(N_("Not read: the files together pass {limit}, the "
                                                           "limit for one set."), limit=_mb(MAX_TOTAL_BYTES)))
            continue
        builder.add(display_name(raw_name), data)
    return builder.build()


# ------------------------------------------------------------------------------------ zips


def _check_directory(data: bytes) -> None:
    """Bound the central directory from the end record, before ``zipfile`` parses it."""
    pos = data.rfind(b"PK\x05\x06", max(0, len(data) - 22 - 0xFFFF))
    if pos < 0 or len(data) - pos < 22:
        raise SetError(N_("This file is not a zip archive that can be read (no zip directory found)."))
    _, _, _, _, entries, dir_size, dir_offset, _ = struct.unpack("<4s4H2LH", data[pos : pos + 22])
    if entries == 0xFFFF or dir_size == 0xFFFFFFFF or dir_offset == 0xFFFFFFFF:  # ZIP64 end records
        loc = pos - 20
        if loc < 0 or data[loc : loc + 4] != b"PK\x06\x07":
            raise SetError(N_("This file is not a zip archive that can be read (damaged ZIP64 directory)."))
        (offset,) = struct.unpack("<Q", data[loc + 8 : loc + 16])
        record = data[offset : offset + 56]
        if len(record) < 56 or record[:4] != b"PK\x06\x06":
            raise SetError(N_("This file is not a zip archive that can be read (damaged ZIP64 directory)."))
        entries, dir_size = struct.unpack("<QQ", record[32:48])
    if entries > MAX_MEMBERS:
        raise SetError(Text(N_("The zip holds {entries:,} entries; at most {limit:,} are read at once "
                               "(and {images} images used). Nothing was opened."),
                            entries=entries, limit=MAX_MEMBERS, images=MAX_IMAGES))
    if dir_size > MAX_DIRECTORY_BYTES:
        raise SetError(Text(N_("The zip's directory is {size}, too large for {limit:,} entries. Nothing was opened."),
                            size=_mb(dir_size), limit=MAX_MEMBERS))


def _unsafe(raw: str) -> str | None:
    """Why a member name must not be read, if it points outside the archive."""
    name = raw.replace("\\", "/")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return N_("Not read: an absolute path. Names in a zip must be relative.")
    if ".." in name.split("/"):
        return N_("Not read: the name climbs out of the archive with “..”.")
    if "\x00" in name:
        return N_("Not read: the name contains a NUL character.")
    return None


class _TooMuch(Exception):
    pass


def _inflate(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    """The member's bytes, counting them as they come: more than ``limit`` raises ``_TooMuch``."""
    out = io.BytesIO()
    with archive.open(info) as member:
        while chunk := member.read(_CHUNK):
            if out.tell() + len(chunk) > limit:
                raise _TooMuch
            out.write(chunk)
    return out.getvalue()


def read_zip(data: bytes, source: str = "zip", *, pixel_budget: int = MAX_SET_PIXELS,
             progress: Progress | None = None) -> ImageSet:
    """A set from the bytes of a zip of images (nothing is written to disk).

    ``pixel_budget`` and ``progress`` as for :func:`read_files` (progress before each member).

    Raises:
        SetError: too big, not a zip, damaged, or too many entries. Members that cannot be
            used are listed in ``ImageSet.rejected`` instead.
    """
    if not data:
        raise SetError(N_("The zip file is empty."))
    if len(data) > MAX_ZIP_BYTES:
        raise SetError(Text(N_("The zip is {size}; the limit is {limit}."), size=_mb(len(data)), limit=_mb(MAX_ZIP_BYTES)))
    _check_directory(data)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, struct.error) as err:
        raise SetError(N_("This file is not a zip archive that can be read (it is damaged or truncated).")) from err
    if len(infos) > MAX_MEMBERS:
        raise SetError(Text(N_("The zip holds {entries:,} entries; at most {limit:,} are read at once. "
                               "Nothing was opened."), entries=len(infos), limit=MAX_MEMBERS))
    builder = _Builder(source, pixel_budget)
    total = 0
    with archive:
        for i, info in enumerate(infos):
            _reading(progress, i, len(infos))
            name = display_name(info.filename)
            reason = _unsafe(info.filename)
            if reason is None and builder.full and not info.is_dir():
                reason = Text(N_("Not used: a set holds at most {n} images."), n=MAX_IMAGES)
            if reason is None:
                reason = _refuse_before_reading(info, total)
            if reason is not None:
                builder.reject(name, reason)
                continue
            try:
                member = _inflate(archive, info, min(MAX_MEMBER_BYTES, MAX_TOTAL_BYTES - total))
            except _TooMuch:
                builder.reject(name, N_("Not read: it inflates to more than its header declares or the limits "
                                        "allow (a zip bomb?)."))
                continue
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError, RuntimeError):
                builder.reject(name, N_("Not read: the member is damaged (its data or checksum does not match)."))
                continue
            total += len(member)
            if member.startswith(_ZIP_MAGIC):
                builder.reject(name, N_("Not opened: a zip inside the zip. Please put the images in one zip."))
                continue
            builder.add(name, member)
    return builder.build()


def _refuse_before_reading(info: zipfile.ZipInfo, total: int) -> str | None:
    """Reasons visible in the directory alone, checked before a byte is inflated."""
    if info.is_dir():
        return N_("A folder entry; the images inside it are read on their own.")
    if info.flag_bits & 0x41:  # 0x1 encrypted, 0x40 strong encryption
        return N_("Not read: the member is encrypted (password-protected).")
    if info.filename.lower().endswith((".zip", ".jar", ".7z", ".rar", ".tar", ".gz", ".tgz")):
        return N_("Not opened: an archive inside the zip. Please put the images in one zip.")
    if info.compress_type not in _INFLATABLE:
        return N_("Not read: compressed with a method other than deflate or none (stored).")
    if info.file_size > MAX_MEMBER_BYTES:
        return Text(N_("Too big: {size} uncompressed; the limit per image is {limit}."), size=_mb(info.file_size),
                    limit=_mb(MAX_MEMBER_BYTES))
    if total + info.file_size > MAX_TOTAL_BYTES:
        return Text(N_("Not read: the set would pass {limit} uncompressed."), limit=_mb(MAX_TOTAL_BYTES))
    return None

