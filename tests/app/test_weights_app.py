"""The sidebar's model choice as a hostile visitor meets it (issue 13, defects 2-5), through AppTest.

No visitor can name a server path: without an operator's weights directory the sidebar offers
no file at all; with one, it offers that directory's files by name. A refused file ends in
"could not load <name>: <reason>" and a working app on the default model.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest
from torchvision.models import resnet18

import models as M
import ui.inputs
from models.weights_files import MAX_WEIGHTS_BYTES

from .conftest import APP, PAGES, assert_clean, new_app


@pytest.fixture(autouse=True)
def no_operator_settings(monkeypatch):
    monkeypatch.delenv("DROPBLOCK_LAB_WEIGHTS_DIR", raising=False)
    monkeypatch.delenv("DROPBLOCK_LAB_WEIGHTS", raising=False)


def _texts(at: AppTest) -> str:
    parts = []
    for kind in ("markdown", "caption", "error", "warning", "info", "success", "title", "header", "subheader"):
        parts += [str(e.value) for e in getattr(at, kind)]
    return "\n".join(parts)


def _save(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def test_without_an_operator_directory_there_is_no_file_choice_at_all():
    at = new_app().run()
    assert_clean(at)
    assert not at.sidebar.text_input and not at.text_input  # no path box anywhere
    assert at.sidebar.selectbox(key="weights").options == list(M.weight_choices("resnet50"))
    assert at.sidebar.selectbox(key="arch").value == "resnet50"
    shown = _texts(at)
    assert "torch hub cache" in shown  # the reason names the cache, not its path
    assert os.environ["TORCH_HOME"] not in shown and "/root" not in shown and "checkpoints" not in shown


def test_a_session_cycling_through_every_choice_does_not_evict_the_default_model():
    at = new_app().run()
    assert_clean(at)
    default = ui.inputs.models().peek(M.ModelSpec())
    assert default is not None
    for arch in M.ARCHITECTURES:
        at.sidebar.selectbox(key="arch").set_value(arch).run()
        for weights in at.sidebar.selectbox(key="weights").options:
            at.sidebar.selectbox(key="weights").set_value(weights).run()
            assert_clean(at)
            assert len(ui.inputs.models().others) <= ui.inputs.models().capacity
    assert ui.inputs.models().peek(M.ModelSpec()) is default
    other = new_app().run()  # another student still gets the very same object
    assert ui.inputs.models().get(M.ModelSpec()) is default
    assert_clean(other)


@pytest.fixture
def weights_dir(tmp_path) -> Path:
    wdir = tmp_path / "operator-weights"
    wdir.mkdir()
    torch.manual_seed(5)
    state = resnet18(weights=None).state_dict()
    (wdir / "good18.pth").write_bytes(_save(state))
    nan = dict(state)
    nan["fc.bias"] = torch.full_like(state["fc.bias"], float("nan"))
    (wdir / "nan18.pth").write_bytes(_save(nan))
    (wdir / "notes.pth").write_text("SECRET-CONTENTS")
    (wdir / "![x](https:evil.example).pth").write_text("junk")
    (wdir / "linear.pth").write_bytes(_save(torch.nn.Linear(2, 2).state_dict()))
    with open(wdir / "huge.pth", "wb") as f:
        f.truncate(MAX_WEIGHTS_BYTES + 1)
    os.mkfifo(wdir / "pipe.pth")
    os.symlink("/proc/self/environ", wdir / "environ.pth")
    (tmp_path / "outside.pth").write_bytes(_save(state))
    os.symlink(tmp_path / "outside.pth", wdir / "out.pth")
    return wdir


EXPECTED = {
    "nan18.pth": "non-finite values",
    "notes.pth": "not a state dict",
    "![x](https:evil.example).pth": "not a state dict",
    "linear.pth": "does not match the architecture",
    "huge.pth": "too large",
}


@pytest.mark.parametrize("via", ["env", "secrets"])
def test_operator_directory_offers_its_files_and_every_refusal_keeps_the_app_working(
        weights_dir, monkeypatch, tmp_path, via):
    at = AppTest.from_file(APP, default_timeout=120)
    if via == "env":
        monkeypatch.setenv("DROPBLOCK_LAB_WEIGHTS_DIR", str(weights_dir))
    else:
        at.secrets["weights_dir"] = str(weights_dir)
    at.run()
    assert_clean(at)
    options = at.sidebar.selectbox(key="weights").options
    files = sorted(o.removesuffix(" (weights directory)") for o in options if o.endswith("(weights directory)"))
    assert files == sorted(["good18.pth", *EXPECTED])  # no FIFO, no /proc link, no link out
    at.sidebar.selectbox(key="arch").set_value("resnet18").run()
    for name, reason in EXPECTED.items():
        at.sidebar.selectbox(key="weights").set_value(f"dir:{name}").run()
        assert not at.exception, [e.value for e in at.exception]
        errors = [e.value for e in at.error]
        assert len(errors) == 1, errors
        assert errors[0].replace("\\", "") == f"could not load {name}: {reason}. Showing the default model instead."
        assert "](" not in errors[0]  # markup in a name is shown as text
        shown = _texts(at)
        assert str(tmp_path) not in shown and "SECRET" not in shown
        assert at.table, "the page still draws its predictions"
    at.sidebar.selectbox(key="weights").set_value("dir:good18.pth").run()
    assert_clean(at)
    caption = " ".join(c.value for c in at.caption)
    assert "ResNet-18" in caption and "good18" in caption and str(tmp_path) not in caption
    for page in PAGES[:2]:
        at.switch_page(page).run()
        assert_clean(at)


def test_operator_start_up_file_that_is_a_fifo_neither_hangs_nor_leaks(tmp_path, monkeypatch):
    fifo = tmp_path / "fifo.pth"
    os.mkfifo(fifo)
    monkeypatch.setenv("DROPBLOCK_LAB_WEIGHTS", str(fifo))
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert [e.value.replace("\\", "") for e in at.error] == [
        "could not load fifo.pth: not a regular file. Showing the default model instead."]
    assert str(tmp_path) not in _texts(at) and at.table
