"""Reading image sets: every guard gives a clear message, and nothing is written to disk."""

from __future__ import annotations

import io
import os
import struct
import sys
import time
import zipfile
from pathlib import Path

import pytest
from PIL import Image

import models as M
from models import imageset as S

ASSETS = Path(__file__).resolve().parents[2] / "assets"

_WRITES: list[str] | None = None


def _audit(event: str, args: tuple) -> None:
    # Records every file opened for writing (and every rename/mkdir) while a test watches.
    if _WRITES is None:
        return
    if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        mode, flags = args[1], args[2]
        if (isinstance(mode, str) and any(c in mode for c in "wax+")) or (flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)):
            _WRITES.append(str(args[0]))
    elif event in ("os.mkdir", "os.rename", "os.replace", "shutil.copyfile", "os.symlink", "os.link"):
        _WRITES.append(str(args[0]))


sys.addaudithook(_audit)


@pytest.fixture
def no_writes(tmp_path, monkeypatch):
    """Run in an empty cwd and temp dir, recording any file the code under test opens for writing."""
    global _WRITES
    work = tmp_path / "cwd"
    tmp = tmp_path / "tmp"
    work.mkdir()
    tmp.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setattr("tempfile.tempdir", str(tmp))
    _WRITES = []
    yield
    writes, _WRITES = _WRITES, None
    assert writes == [], writes
    assert list(work.iterdir()) == [] and list(tmp.iterdir()) == []
    assert not (tmp_path / "x.png").exists() and not os.path.exists("/x.png")


def png(color: tuple[int, int, int], size: tuple[int, int] = (24, 16)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


def make_zip(members: list[tuple[str, bytes]], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, data in members:
            z.writestr(zipfile.ZipInfo(name) if name.endswith("/") else name, data)
    return buf.getvalue()


def reasons(result: S.ImageSet) -> dict[str, str]:
    return {r.name: r.reason for r in result.rejected}


def test_good_zip_reads_images_in_order_and_explains_every_other_member(no_writes):
    data = make_zip([("photos/", b""), ("photos/a.png", png((255, 0, 0))), ("notes.txt", b"hello"),
                     ("photos/b.png", png((0, 255, 0))), ("copy.png", png((255, 0, 0)))])
    result = S.read_zip(data, "photos.zip")
    assert [i.name for i in result.images] == ["photos/a.png", "photos/b.png"]
    assert [i.size for i in result.images] == [(24, 16), (24, 16)]
    why = reasons(result)
    assert set(why) == {"photos/", "notes.txt", "copy.png"}
    assert "folder" in why["photos/"]
    assert "not an image" in why["notes.txt"]
    assert "Same bytes" in why["copy.png"] and "photos/a.png" in why["copy.png"]
    # the key is the hash of the members' bytes: same bytes, same key; other bytes, another key
    assert S.read_zip(make_zip([("x.png", png((255, 0, 0))), ("y.png", png((0, 255, 0)))])).key == result.key
    assert S.read_files([("b", png((0, 255, 0))), ("a", png((255, 0, 0)))], "files").key != result.key


@pytest.mark.parametrize("data", [b"", b"not a zip at all", b"PK\x03\x04" + b"\x00" * 40, b"PK\x05\x06" + b"\x00" * 5])
def test_not_a_zip_is_refused_with_a_message(data, no_writes):
    with pytest.raises(S.SetError, match=r"(empty|not a zip)"):
        S.read_zip(data)


def test_truncated_and_corrupted_zips(no_writes):
    good = make_zip([("a.png", png((1, 2, 3))), ("b.png", png((4, 5, 6)))], zipfile.ZIP_STORED)
    with pytest.raises(S.SetError, match="not a zip"):
        S.read_zip(good[: len(good) // 2])
    # flip bytes inside the first member's data: the CRC catches it, the other member survives
    start = good.index(b"\x89PNG")
    corrupt = good[: start + 30] + bytes(b ^ 0xFF for b in good[start + 30 : start + 40]) + good[start + 40 :]
    result = S.read_zip(corrupt)
    assert [i.name for i in result.images] == ["b.png"]
    assert "damaged" in reasons(result)["a.png"]


def _zeros_zip(name: str, size: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z, z.open(name, "w") as f:
        chunk = bytes(1 << 20)
        for _ in range(size // len(chunk)):
            f.write(chunk)
    return buf.getvalue()


def test_zip_bomb_is_refused_from_its_declared_size(no_writes):
    data = _zeros_zip("bomb.png", S.MAX_MEMBER_BYTES + 2**20)
    assert len(data) < 100_000  # a highly compressible member
    result = S.read_zip(data)
    assert not result.images and "Too big" in reasons(result)["bomb.png"]


def test_zip_bomb_with_a_lying_header_is_stopped_while_inflating(no_writes):
    data = bytearray(_zeros_zip("liar.png", 8 * 2**20))
    # declare 1000 bytes in the central directory (and local header): the data inflates to 8 MB
    for sig, offset in ((b"PK\x01\x02", 24), (b"PK\x03\x04", 22)):
        pos = data.index(sig)
        struct.pack_into("<L", data, pos + offset, 1000)
    result = S.read_zip(bytes(data))
    assert not result.images
    assert "Not read" in reasons(result)["liar.png"]


def test_total_uncompressed_size_is_bounded(no_writes, monkeypatch):
    monkeypatch.setattr(S, "MAX_TOTAL_BYTES", 40_000)
    members = [(f"{i}.png", png((i, 0, 0), (100, 100)) + bytes(15_000)) for i in range(4)]
    result = S.read_zip(make_zip(members, zipfile.ZIP_STORED))
    assert len(result.images) == 2  # 2 x ~15.4 kB fit, the third would pass 40 kB
    assert all("uncompressed" in why for why in reasons(result).values()) and len(result.rejected) == 2


def test_ten_thousand_members_are_refused_before_parsing(no_writes):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for i in range(10_000):
            z.writestr(f"{i}.png", b"")
    with pytest.raises(S.SetError, match=r"10,000 entries; at most 1,000"):
        S.read_zip(buf.getvalue())


def test_a_directory_that_lies_about_its_entry_count_is_still_bounded(no_writes):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for i in range(1_500):
            z.writestr(f"{i}.png", b"")
    data = bytearray(buf.getvalue())
    eocd = data.rindex(b"PK\x05\x06")
    struct.pack_into("<HH", data, eocd + 8, 5, 5)  # claims 5 entries
    with pytest.raises(S.SetError, match="1,500 entries"):
        S.read_zip(bytes(data))


@pytest.mark.parametrize("name, why", [
    ("../../x.png", "climbs out"), ("a/../../x.png", "climbs out"), ("..\\x.png", "climbs out"),
    ("/x.png", "absolute"), ("C:\\x.png", "absolute"), ("\\\\server\\x.png", "absolute"),
])
def test_path_traversal_and_absolute_names_are_never_read(name, why, no_writes):
    result = S.read_zip(make_zip([(name, png((9, 9, 9))), ("ok.png", png((1, 1, 1)))]))
    assert [i.name for i in result.images] == ["ok.png"]
    assert why in reasons(result)[S.display_name(name)]


def test_encrypted_nested_and_exotic_members_are_refused(no_writes):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("secret.png", png((3, 3, 3)))  # first member: marked encrypted below
        z.writestr("inner.zip", make_zip([("a.png", png((4, 4, 4)))]))
        z.writestr("disguised.png", make_zip([("a.png", png((5, 5, 5)))]))
        z.writestr("packed.png", png((6, 6, 6)), compress_type=zipfile.ZIP_BZIP2)
        z.writestr("ok.png", png((7, 7, 7)))
    data = bytearray(buf.getvalue())
    (directory,) = struct.unpack_from("<L", data, data.rindex(b"PK\x05\x06") + 16)
    data[0 + 6] |= 0x1  # general purpose flag bit 0, "encrypted": local header of the first member...
    data[directory + 8] |= 0x1  # ...and its central directory entry
    result = S.read_zip(bytes(data))
    why = reasons(result)
    assert [i.name for i in result.images] == ["ok.png"]
    assert "encrypted" in why["secret.png"]
    assert "archive inside" in why["inner.zip"] and "zip inside" in why["disguised.png"]
    assert "method" in why["packed.png"]


def test_names_are_shown_escaped_and_short(no_writes):
    nasty = "\x1b[31mred\u202egnp.exe\n" + "x" * 200 + ".png"
    result = S.read_zip(make_zip([(nasty, b"not an image")]))
    shown = result.rejected[0].name
    assert shown == S.display_name(nasty)
    assert shown.isprintable() and len(shown) <= S.MAX_NAME_CHARS and "…" in shown
    assert "\\x1b" in shown and "\\u202e" in shown and shown.endswith(".png")


def test_at_most_max_images_are_used(no_writes):
    members = [(f"{i:03}.png", png((i, 255 - i, 7))) for i in range(S.MAX_IMAGES + 3)]
    result = S.read_files(members, "uploads")
    assert len(result.images) == S.MAX_IMAGES
    assert [r.name for r in result.rejected] == [f"{i:03}.png" for i in range(S.MAX_IMAGES, S.MAX_IMAGES + 3)]
    assert all(f"at most {S.MAX_IMAGES}" in r.reason for r in result.rejected)
    zipped = S.read_zip(make_zip(members))
    assert zipped.key == result.key and len(zipped.rejected) == 3


def test_uploaded_files_get_the_single_upload_guards(no_writes):
    files = [("a.png", png((1, 2, 3))), ("empty.png", b""), ("big.png", bytes(S.MAX_MEMBER_BYTES + 1)),
             ("trunc.png", png((4, 5, 6))[:40])]
    result = S.read_files(files, "4 uploaded files")
    why = reasons(result)
    assert [i.name for i in result.images] == ["a.png"]
    assert "empty" in why["empty.png"] and "Too big" in why["big.png"]
    assert why["trunc.png"]  # damaged or truncated: decode_image's own message
    assert result.images[0].thumb.size == (24, 16)


# ------------------------------------------------------------------ issue 22 §5: cost and cancel


def big_solid_zip(n: int, side: int) -> bytes:
    """``n`` solid-colour ``side``×``side`` PNGs: megapixels each, a few hundred bytes compressed."""
    return make_zip([(f"solid{i:02d}.png", png((i * 37 % 256, i * 91 % 256, 200), (side, side))) for i in range(n)])


@pytest.fixture
def decodes(monkeypatch):
    """Times at which an image file is actually decoded (Pillow's ImageFile.load with tiles to decode)."""
    from PIL import ImageFile

    seen: list[float] = []
    load = ImageFile.ImageFile.load

    def counting(self):
        if getattr(self, "tile", None):
            seen.append(time.monotonic())
        return load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", counting)
    return seen


def test_each_image_is_decoded_once_to_the_networks_size(lite0, decodes, no_writes):
    from models.setcurve import compute_set_curve, compute_set_predictions

    data = big_solid_zip(6, 1600)
    assert len(data) < 60_000  # tiny on the wire, 15 MP inside
    imageset = S.read_zip(data, "big.zip")
    assert len(imageset.images) == 6 and len(decodes) == 6
    for image in imageset.images:
        assert image.pixels.size == (S.NETWORK_SIDE, S.NETWORK_SIDE)  # kept at the network's size, not the decode
        assert image.size == (1024, 1024) and max(image.thumb.size) <= S.THUMB_SIDE
        assert not hasattr(image, "data")  # the file's bytes are not kept to be decoded again
    inputs = S.network_inputs(imageset, lite0.preprocess)
    assert [tuple(x.shape) for x in inputs] == [(1, 3, 224, 224)] * 6
    compute_set_predictions(lite0.backbone, inputs)
    compute_set_curve(lite0.backbone, inputs, M.RegularizerSpec(), keep_probs=(1.0, 0.9), n_samples=1,
                      methods=[("b=7", M.RegularizerSpec(block_size=7))])
    assert len(decodes) == 6  # predictions and curve decoded nothing again


def test_the_kept_image_gives_the_network_the_same_crop(lite0):
    """The centre square at NETWORK_SIDE, through each model's transform, is the crop of the full image."""
    from models.images import decode_image

    data = (ASSETS / "coffee.jpg").read_bytes()
    (image,) = S.read_files([("coffee.jpg", data)], "one").images
    full = lite0.preprocess(decode_image(data))
    kept = lite0.preprocess(image.pixels)
    assert kept.shape == full.shape
    assert (kept - full).abs().mean() < 0.05  # resampling differs in the last bits, not the picture
    assert M.clean_pass(lite0.backbone, kept).top1 == M.clean_pass(lite0.backbone, full).top1


def test_cancel_while_reading_stops_within_one_image(decodes, no_writes):
    """Cancel (or a closed tab) while a zip is read on the heavy pool: the worker decodes at most the
    image it is on, then stops; the CPU is free well within a second on this machine."""
    from models.jobs import Cancelled, HeavyPool

    data = big_solid_zip(12, 2000)
    pool = HeavyPool(workers=1)
    reports: list[float] = []

    def run(progress):
        def report(fraction, text):
            reports.append(fraction)
            progress(fraction, text)
        return S.read_zip(data, "big.zip", progress=report)

    job = pool.submit("session", "read", run)
    deadline = time.monotonic() + 60
    while len(decodes) < 3 and time.monotonic() < deadline:
        time.sleep(0.002)
    assert len(decodes) >= 3
    cancelled_at, decoded_at_cancel = time.monotonic(), len(decodes)
    pool.release("session", job)  # the session stopped waiting
    assert job.wait(30)
    freed = time.monotonic() - cancelled_at
    assert isinstance(job.error, Cancelled)
    after = [t for t in decodes if t > cancelled_at]
    assert len(after) <= 1 and len(decodes) <= decoded_at_cancel + 1, (len(after), freed)
    assert len(decodes) < 12 and len(reports) >= len(decodes)  # progress came before each decode
    assert freed < 5.0, freed  # generous: one 4 MP decode is ~0.05 s here
    print(f"read cancelled after {decoded_at_cancel} images; worker free {freed * 1000:.0f} ms later, "
          f"{len(after)} decode(s) after the cancel")


def test_the_pixel_budget_refuses_with_a_clear_message(no_writes):
    files = [(f"p{i}.png", png((10 * i, 0, 0), (1000, 1000))) for i in range(5)]
    result = S.read_files(files, "five", pixel_budget=3_500_000)
    assert [i.name for i in result.images] == ["p0.png", "p1.png", "p2.png"]
    why = reasons(result)
    assert set(why) == {"p3.png", "p4.png"}
    assert "3.5 MP" in why["p3.png"] and "1.0 MP" in why["p3.png"] and "budget" in why["p3.png"]
    zipped = S.read_zip(make_zip(files), "five.zip", pixel_budget=3_500_000)
    assert [i.name for i in zipped.images] == ["p0.png", "p1.png", "p2.png"] and set(reasons(zipped)) == {"p3.png", "p4.png"}


def test_the_readme_states_the_pixel_budget():
    readme = (ASSETS.parent / "README.md").read_text(encoding="utf-8")
    assert f"{S.MAX_SET_PIXELS / 1e6:.0f} megapixels" in readme
