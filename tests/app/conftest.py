from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")  # the entrypoint: every test reaches the pages through it, as a browser does
HOME = "pages/0_Home.py"
PAGES = [  # at.switch_page(path) after a first run of the entrypoint
    "pages/1_Mask_explorer.py",
    "pages/2_Compare_methods.py",
    "pages/3_CAM_shift.py",
    "pages/4_Robustness_curve.py",
    "pages/5_Theory_and_schedule.py",
    "pages/6_DropBlock_and_Dropout.py",
    "pages/7_Image_set.py",
]


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
