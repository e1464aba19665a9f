from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from ui import frame

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")  # the entrypoint: every test reaches the pages through it, as a browser does
HOME = frame.PAGES[0].file
LESSON = frame.PAGES[1].file
PAGES = [p.file for p in frame.PAGES[2:]]  # at.switch_page(path) after a first run of the entrypoint


@pytest.fixture(autouse=True)
def hermetic_model(tmp_path_factory, monkeypatch):
    """No hub cache, no network: the app runs the EfficientNet-Lite0 fallback, as on CI."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path_factory.getbasetemp() / "torch-home"))
    monkeypatch.setenv("DROPBLOCK_LAB_OFFLINE", "1")
    monkeypatch.delenv("DROPBLOCK_LAB_WEIGHTS", raising=False)


def new_app() -> AppTest:
    return AppTest.from_file(APP, default_timeout=120)


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
