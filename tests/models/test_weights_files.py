"""Weights files as a hostile visitor or a careless operator would leave them (issue 13, defects 2-5).

Each case puts something in (or next to) the operator's weights directory, then goes through the
real code the app uses: the directory listing, ``resolve_in_dir`` and ``load_spec``. Every case
ends in a model or in "could not load <name>: <reason class>", with no path outside the
directory and no byte of any file in the message.
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import socket
import threading
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torchvision.models import resnet18

import models as M
from models.weights_files import (
    MAX_WEIGHTS_BYTES,
    REASONS,
    WeightsFileError,
    list_weights_dir,
    read_state_dict,
    resolve_in_dir,
)

SECRET = "SECRET-CONTENTS-7f3a"  # written into files; must never come back in a message


@pytest.fixture(scope="module")
def r18_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(3)
    return resnet18(weights=None).state_dict()


@pytest.fixture(scope="module")
def r18_bytes(r18_state) -> bytes:
    buf = io.BytesIO()
    torch.save(r18_state, buf)
    return buf.getvalue()


def _save(obj, **kw) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf, **kw)
    return buf.getvalue()


class Evil:
    """A pickle that would create a directory when unpickled with weights_only=False."""

    marker = ""

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def _evil(marker: Path, zipped: bool) -> bytes:
    Evil.marker = str(marker)
    return _save({"w": Evil()}) if zipped else pickle.dumps({"w": Evil()})


def _zip_with(member: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(member, data)
    return buf.getvalue()


def _png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (4, 4), (255, 0, 0)).save(buf, "PNG")
    return buf.getvalue()


def _with(state: dict, key: str, fn) -> dict:
    state = dict(state)
    state[key] = fn(state[key].clone())
    return state


def _nan_one(t: torch.Tensor) -> torch.Tensor:
    t.view(-1)[7] = float("nan")
    return t


# (case id, file name to pick, setup(wdir, outside, r18_state, r18_bytes), expected reason or "ok")
Setup = Callable[[Path, Path, dict, bytes], None]


def _write(name: str, data: bytes | Callable[[dict, bytes], bytes]) -> Setup:
    def setup(wdir, outside, state, raw):
        (wdir / name).write_bytes(data(state, raw) if callable(data) else data)

    return setup


def _link(name: str, target: Callable[[Path, Path], str]) -> Setup:
    def setup(wdir, outside, state, raw):
        os.symlink(target(wdir, outside), wdir / name)

    return setup


def _nothing(wdir, outside, state, raw) -> None:
    pass


def _outside_file(wdir, outside, state, raw) -> None:
    (outside / "good.pth").write_bytes(raw)
    (outside / "secret.txt").write_text(SECRET)


def _fifo(name: str) -> Setup:
    return lambda wdir, outside, state, raw: os.mkfifo(wdir / name)


def _socket(name: str) -> Setup:
    def setup(wdir, outside, state, raw):
        s = socket.socket(socket.AF_UNIX)
        s.bind(str(wdir / name))
        s.close()

    return setup


def _sparse(name: str, size: int) -> Setup:
    def setup(wdir, outside, state, raw):
        with open(wdir / name, "wb") as f:
            f.truncate(size)

    return setup


def _subdir_file(wdir, outside, state, raw) -> None:
    (wdir / "sub").mkdir()
    (wdir / "sub" / "inner.pth").write_bytes(raw)


NOT_OFFERED = "not in the weights directory"
CASES: list[tuple[str, str, Setup, str]] = [
    # names that are not one of the directory's offered files
    ("nonexistent", "missing.pth", _nothing, NOT_OFFERED),
    ("directory", "dir.pth", lambda w, o, s, r: (w / "dir.pth").mkdir(), NOT_OFFERED),
    ("fifo", "pipe.pth", _fifo("pipe.pth"), NOT_OFFERED),
    ("unix-socket", "sock.pth", _socket("sock.pth"), NOT_OFFERED),
    ("link-proc-environ", "environ.pth", _link("environ.pth", lambda w, o: "/proc/self/environ"), NOT_OFFERED),
    ("link-proc-cmdline", "cmdline.pth", _link("cmdline.pth", lambda w, o: "/proc/self/cmdline"), NOT_OFFERED),
    ("link-proc-maps", "maps.pth", _link("maps.pth", lambda w, o: "/proc/self/maps"), NOT_OFFERED),
    ("link-etc-passwd", "passwd.pth", _link("passwd.pth", lambda w, o: "/etc/passwd"), NOT_OFFERED),
    ("link-dev-zero", "zero.pth", _link("zero.pth", lambda w, o: "/dev/zero"), NOT_OFFERED),
    ("link-dev-null", "null.pth", _link("null.pth", lambda w, o: "/dev/null"), NOT_OFFERED),
    ("link-dev-urandom", "random.pth", _link("random.pth", lambda w, o: "/dev/urandom"), NOT_OFFERED),
    ("link-out-to-good-weights", "outside.pth",
     lambda w, o, s, r: (_outside_file(w, o, s, r), os.symlink(o / "good.pth", w / "outside.pth")), NOT_OFFERED),
    ("link-out-to-secret", "secret.pth",
     lambda w, o, s, r: (_outside_file(w, o, s, r), os.symlink(o / "secret.txt", w / "secret.pth")), NOT_OFFERED),
    ("link-out-relative", "rel.pth",
     lambda w, o, s, r: (_outside_file(w, o, s, r), os.symlink("../outside/good.pth", w / "rel.pth")), NOT_OFFERED),
    ("link-to-parent-dir", "parent.pth", _link("parent.pth", lambda w, o: str(w.parent)), NOT_OFFERED),
    ("link-to-fifo-inside", "pipe-link.pth",
     lambda w, o, s, r: (os.mkfifo(w / "fifo"), os.symlink(w / "fifo", w / "pipe-link.pth")), NOT_OFFERED),
    ("dangling-link", "dangling.pth", _link("dangling.pth", lambda w, o: str(w / "nowhere")), NOT_OFFERED),
    ("link-loop", "loop.pth", _link("loop.pth", lambda w, o: str(w / "loop.pth")), NOT_OFFERED),
    ("dotdot-name", "../outside/good.pth", _outside_file, NOT_OFFERED),
    ("dotdot-deep", "../../../../etc/passwd", _nothing, NOT_OFFERED),
    ("absolute-name", "/etc/passwd", _nothing, NOT_OFFERED),
    ("absolute-proc", "/proc/self/environ", _nothing, NOT_OFFERED),
    ("subdir-name", "sub/inner.pth", _subdir_file, NOT_OFFERED),
    ("empty-name", "", _nothing, NOT_OFFERED),
    ("dot", ".", _nothing, NOT_OFFERED),
    ("dotdot", "..", _nothing, NOT_OFFERED),
    ("nul-byte", "good.pth\0.txt", _write("good.pth", lambda s, r: r), NOT_OFFERED),
    ("trailing-slash", "good.pth/", _write("good.pth", lambda s, r: r), NOT_OFFERED),
    ("tilde", "~/.bashrc", _nothing, NOT_OFFERED),
    ("url-encoded", "%2e%2e%2fetc%2fpasswd.pth", _nothing, NOT_OFFERED),
    ("wrong-suffix", "notes.txt", _write("notes.txt", SECRET.encode()), NOT_OFFERED),
    ("hidden-file", ".hidden.pth", _write(".hidden.pth", lambda s, r: r), NOT_OFFERED),
    ("case-mismatch", "GOOD.PTH", _write("good.pth", lambda s, r: r), NOT_OFFERED),
    ("overlong-name", "a" * 5000 + ".pth", _nothing, NOT_OFFERED),
    # offered files that are refused when read
    ("empty-file", "empty.pth", _write("empty.pth", b""), "not a state dict"),
    ("text-file", "text.pth", _write("text.pth", SECRET.encode()), "not a state dict"),
    ("zip-of-text", "zip.pth", _write("zip.pth", _zip_with("data.txt", SECRET.encode())), "not a state dict"),
    ("zip-traversal-member", "zipslip.pth", _write("zipslip.pth", _zip_with("../../evil", SECRET.encode())),
     "not a state dict"),
    ("gzip", "gz.pth", _write("gz.pth", gzip.compress(SECRET.encode())), "not a state dict"),
    ("png", "image.pth", _write("image.pth", _png()), "not a state dict"),
    ("tensor-not-dict", "tensor.pth", _write("tensor.pth", _save(torch.ones(3))), "not a state dict"),
    ("list-of-tensors", "list.pth", _write("list.pth", _save([torch.ones(3)])), "not a state dict"),
    ("dict-of-ints", "ints.pth", _write("ints.pth", _save({"a": 1, "b": SECRET})), "not a state dict"),
    ("empty-dict", "emptydict.pth", _write("emptydict.pth", _save({})), "not a state dict"),
    ("non-string-keys", "intkeys.pth", _write("intkeys.pth", _save({1: torch.ones(2)})), "not a state dict"),
    ("truncated-state-dict", "truncated.pth", _write("truncated.pth", lambda s, r: r[: len(r) // 2]),
     "not a state dict"),
    ("truncated-header", "head.pth", _write("head.pth", lambda s, r: r[:100]), "not a state dict"),
    ("wrong-arch-linear", "linear.pth", _write("linear.pth", _save(torch.nn.Linear(3, 3).state_dict())),
     "does not match the architecture"),
    ("wrong-arch-legacy-format", "legacy.pth",
     _write("legacy.pth", _save(torch.nn.Linear(3, 3).state_dict(), _use_new_zipfile_serialization=False)),
     "does not match the architecture"),
    ("missing-key", "missing-key.pth",
     _write("missing-key.pth", lambda s, r: _save({k: v for k, v in s.items() if k != "fc.bias"})),
     "does not match the architecture"),
    ("extra-key", "extra-key.pth", _write("extra-key.pth", lambda s, r: _save({**s, "extra": torch.ones(1)})),
     "does not match the architecture"),
    ("wrong-shape", "shape.pth", _write("shape.pth", lambda s, r: _save(_with(s, "fc.weight", lambda t: t[:10]))),
     "does not match the architecture"),
    ("nan-small", "nan.pth", _write("nan.pth", _save({"w": torch.tensor([1.0, float("nan")])})), "non-finite values"),
    ("inf-small", "inf.pth", _write("inf.pth", _save({"w": torch.tensor([float("inf")])})), "non-finite values"),
    ("minus-inf-half", "ninf.pth", _write("ninf.pth", _save({"w": torch.tensor([-float("inf")]).half()})),
     "non-finite values"),
    ("inf-bfloat16", "bf16.pth", _write("bf16.pth", _save({"w": torch.tensor([float("inf")], dtype=torch.bfloat16)})),
     "non-finite values"),
    ("nan-complex", "complex.pth", _write("complex.pth", _save({"w": torch.tensor([complex(float("nan"), 0)])})),
     "non-finite values"),
    ("nan-in-resnet18", "nan18.pth", _write("nan18.pth", lambda s, r: _save(_with(s, "layer3.0.conv1.weight", _nan_one))),
     "non-finite values"),
    ("huge-sparse", "huge.pth", _sparse("huge.pth", MAX_WEIGHTS_BYTES + 1), "too large"),
    ("huge-sparse-4g", "huge4.pth", _sparse("huge4.pth", 4 << 30), "too large"),
    ("markup-name", "![x](https:evil.example).pth", _write("![x](https:evil.example).pth", SECRET.encode()),
     "not a state dict"),
    ("html-name", "<img src=x onerror=alert(1)>.pth", _write("<img src=x onerror=alert(1)>.pth", b"junk"),
     "not a state dict"),
    ("newline-name", "a\nb.pth", _write("a\nb.pth", b"junk"), "not a state dict"),
    ("quotes-name", "a 'b' \"c\".pth", _write("a 'b' \"c\".pth", b"junk"), "not a state dict"),
    # offered files that load
    ("good", "good.pth", _write("good.pth", lambda s, r: r), "ok"),
    ("good-pt-suffix", "good.pt", _write("good.pt", lambda s, r: r), "ok"),
    ("unicode-name", "权重 ñ 🧱.pth", _write("权重 ñ 🧱.pth", lambda s, r: r), "ok"),
    ("wrapped-dataparallel", "wrapped.pth",
     _write("wrapped.pth", lambda s, r: _save({"state_dict": {f"module.{k}": v for k, v in s.items()}})), "ok"),
    ("link-inside", "alias.pth",
     lambda w, o, s, r: ((w / "real.pth").write_bytes(r), os.symlink("real.pth", w / "alias.pth")), "ok"),
]


@pytest.fixture
def dirs(tmp_path) -> tuple[Path, Path]:
    wdir, outside = tmp_path / "weights", tmp_path / "outside"
    wdir.mkdir()
    outside.mkdir()
    return wdir, outside


def test_the_fuzz_has_at_least_50_cases_and_every_reason():
    assert len(CASES) >= 50 and len({c[0] for c in CASES}) == len(CASES)
    assert {c[3] for c in CASES} == set(REASONS) - {"unreadable", "not a regular file"} | {"ok"}


@pytest.mark.parametrize(("case", "name", "setup", "expected"), CASES, ids=[c[0] for c in CASES])
def test_weights_directory_fuzz(case, name, setup, expected, dirs, r18_state, r18_bytes, tmp_path, caplog):
    wdir, outside = dirs
    evil_marker = tmp_path / "pwned"
    setup(wdir, outside, r18_state, r18_bytes)
    offered = list_weights_dir(wdir)
    assert (name in offered) == (expected != NOT_OFFERED)
    for offered_name in offered:  # the listing itself never leaves the directory
        assert os.path.commonpath([os.path.realpath(wdir / offered_name), os.path.realpath(wdir)]) == str(
            os.path.realpath(wdir))
    try:
        path = resolve_in_dir(wdir, name)
        loaded = M.load_spec(M.ModelSpec("resnet18", "file", path, name), device=torch.device("cpu"))
    except WeightsFileError as err:
        message = str(err)
        assert expected != "ok", message
        assert err.reason == expected
        assert message == f"could not load {err.name}: {expected}"
        assert str(tmp_path) not in message and "/proc" not in message and "/etc" not in message
        assert SECRET not in message and "root" not in message
        assert "/" not in err.name and "\0" not in err.name
        assert err.name in (name, "the file")
        assert any(expected in r.getMessage() for r in caplog.records)  # the details go to the log
    else:
        assert expected == "ok", case
        assert loaded.backbone.name == "resnet18" and loaded.weights == f"file {name}"
        assert str(tmp_path) not in loaded.source + loaded.weights and not loaded.is_fallback
        x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
        reference = resnet18(weights=None).eval()
        reference.load_state_dict(r18_state)
        with torch.no_grad():
            torch.testing.assert_close(M.clean_pass(loaded.backbone, x).logits, reference(x))
    assert not evil_marker.exists()


@pytest.mark.parametrize("zipped", [False, True], ids=["raw-pickle", "torch-save"])
def test_malicious_reduce_never_runs(tmp_path, zipped):
    marker = tmp_path / "pwned"
    path = tmp_path / "weights" / "evil.pth"
    path.parent.mkdir()
    path.write_bytes(_evil(marker, zipped))
    assert not marker.exists()
    with pytest.raises(WeightsFileError) as info:
        read_state_dict(resolve_in_dir(path.parent, "evil.pth"))
    assert info.value.reason == "not a state dict" and not marker.exists()
    assert "mkdir" not in str(info.value) and "reduce" not in str(info.value)


def _in_thread(fn, timeout: float = 10.0):
    """Run ``fn`` in a thread; return (finished, result or exception)."""
    box: list = []

    def run():
        try:
            box.append(fn())
        except BaseException as err:  # noqa: BLE001
            box.append(err)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    return not thread.is_alive(), (box[0] if box else None), thread


def test_named_pipe_never_blocks_a_thread(tmp_path, monkeypatch):
    """Defect 3: reading a FIFO with no writer used to block for good; now it is refused at once."""
    fifo = tmp_path / "fifo.pth"
    os.mkfifo(fifo)
    finished, result, thread = _in_thread(lambda: read_state_dict(fifo))
    if not finished:  # release the blocked thread before failing
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(5)
    assert finished, "reading a FIFO blocked"
    assert isinstance(result, WeightsFileError) and result.reason == "not a regular file"
    assert str(result) == "could not load fifo.pth: not a regular file"

    # the same FIFO as the operator's start-up file: a working model and a message, promptly
    monkeypatch.setenv("DROPBLOCK_LAB_WEIGHTS", str(fifo))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    finished, loaded, thread = _in_thread(lambda: M.load_model(allow_download=False, device=torch.device("cpu")), 60)
    if not finished:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    assert finished and isinstance(loaded, M.LoadedModel)
    assert loaded.notice == "could not load fifo.pth: not a regular file"
    assert str(tmp_path) not in (loaded.fallback_reason or "") + loaded.notice


@pytest.mark.parametrize("target", ["/proc/self/environ", "/proc/self/status", "/dev/zero", "/dev/null"])
def test_operator_file_pointing_at_special_files_is_refused(target):
    """Even the operator's own file is opened carefully: /proc files (size 0) and devices are refused."""
    with pytest.raises(WeightsFileError) as info:
        _, result, _ = _in_thread(lambda: read_state_dict(target), 10)
        if isinstance(result, BaseException):
            raise result
    assert info.value.reason in ("not a state dict", "not a regular file")
    assert str(info.value) == f"could not load {os.path.basename(target)}: {info.value.reason}"


def test_unreadable_operator_file_says_so_without_the_path(tmp_path):
    with pytest.raises(WeightsFileError) as info:
        read_state_dict(tmp_path / "gone.pth")
    assert str(info.value) == "could not load gone.pth: unreadable"


def test_size_cap_is_checked_before_reading(tmp_path, r18_bytes):
    path = tmp_path / "r18.pth"
    path.write_bytes(r18_bytes)
    assert len(read_state_dict(path)) > 100
    with pytest.raises(WeightsFileError) as info:
        read_state_dict(path, max_bytes=len(r18_bytes) - 1)
    assert info.value.reason == "too large"


def test_nan_weights_never_load_as_the_live_model(tmp_path, r18_state, monkeypatch):
    """Defect 5: a state dict with NaN parameters used to load and show nan in the top-5."""
    path = tmp_path / "nan.pth"
    torch.save(_with(r18_state, "fc.weight", _nan_one), path)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    loaded = M.load_model(weights_file=path, arch="resnet18", allow_download=False, device=torch.device("cpu"))
    assert loaded.notice == "could not load nan.pth: non-finite values"
    assert loaded.backbone.name == "efficientnet_lite0"  # nothing else offline; never the NaN network
    logits = M.clean_pass(loaded.backbone, torch.zeros(1, 3, 224, 224)).logits
    assert torch.isfinite(logits).all()


def test_weights_dir_listing_is_server_side_and_sorted(dirs, r18_bytes):
    wdir, outside = dirs
    for name in ("b.pth", "a.pt", "c.txt", ".d.pth"):
        (wdir / name).write_bytes(r18_bytes[:10])
    os.mkfifo(wdir / "e.pth")
    (wdir / "f.pth").mkdir()
    os.symlink("/etc/passwd", wdir / "g.pth")
    assert list_weights_dir(wdir) == ("a.pt", "b.pth")
    assert list_weights_dir(outside / "missing") == ()
