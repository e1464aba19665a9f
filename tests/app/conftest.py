from __future__ import annotations

import re
import time
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


# The pages' own Monte Carlo sample counts at their smallest, for tests of something that holds at any
# count (the sidebar's settings, their edges): each count is a test of its own elsewhere.
FEWEST_SAMPLES = {"cam_samples": 4, "curve_samples": 4, "strategy_samples": 4}


def new_app(*, fewest_samples: bool = False) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    if fewest_samples:  # before the first run: each page's widget starts at this value
        for key, n in FEWEST_SAMPLES.items():
            at.session_state[key] = n
    return at


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def assert_fewest_samples(at: AppTest) -> None:
    """The page's own sample count, if it has one, is the one ``new_app(fewest_samples=True)`` set."""
    shown = {w.key: w.value for w in at.get("select_slider") if w.key in FEWEST_SAMPLES}
    assert shown == {key: FEWEST_SAMPLES[key] for key in shown}, shown


_ROUND = re.compile(r"(\d+) of (\d+) samples")


def refining(at: AppTest) -> bool:
    """Whether a view in rounds on the page shows a round before its last ("8 of 32 samples")."""
    return any(int(m[0]) < int(m[1]) for c in at.caption for m in _ROUND.findall(c.value))


def until_final(at: AppTest, timeout_s: float = 300.0) -> AppTest:
    """Rerun until every view in rounds on the page shows its final round. A run ends at a view's first
    answer; in a browser the refining fragment's timer brings the later rounds, here a rerun does (the
    job refines on the pool meanwhile, held for the session)."""
    deadline = time.monotonic() + timeout_s
    while refining(at):
        if time.monotonic() > deadline:
            raise AssertionError(f"still refining after {timeout_s:g} s: {[c.value for c in at.caption]}")
        time.sleep(0.25)
        at.run()
    return at
