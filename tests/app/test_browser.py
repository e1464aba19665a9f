"""A real browser: headless Chromium (Debian's package) driven by Playwright against the app.

Starts ``streamlit run app.py`` on a free local port, waits for the landing page, moves a
slider, switches page, and saves screenshots; fails on any Streamlit exception box. Set
``DROPBLOCK_LAB_SCREENSHOTS=docs/screenshots`` to also write one screenshot per page there.
Skipped when no Chromium is installed, except under CI, where it must run.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from urllib.parse import parse_qs, urlparse
from pathlib import Path

import pytest

import dropblock as db

from .conftest import ROOT

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
]
PAGES = [  # url path, heading, screenshot name, text that appears once the page is computed
    ("", "DropBlock Lab", "home", "espresso"),
    ("Mask_explorer", "Mask explorer", "mask-explorer", "Expected drop (overlaps counted)"),
    ("Compare_methods", "Compare methods", "compare-methods", "p(espresso)"),
    ("CAM_shift", "CAM shift", "cam-shift", "samples keeping the top-1 class"),
    ("Robustness_curve", "Robustness curve", "robustness-curve", "Download PNG"),  # drawn after the curve
    ("Theory_and_schedule", "Theory & schedule", "theory", "Paper (Eq. 1"),
    ("DropBlock_and_Dropout", "DropBlock + Dropout", "dropblock-dropout", "std over samples"),
    ("Image_set", "Image set", "image-set", "Compute the curves"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is required under CI (apt-get install chromium)")
        pytest.skip("no Chromium installed (apt-get install chromium)")
    port = free_port()
    env = {**os.environ, "DROPBLOCK_LAB_OFFLINE": "1", "TORCH_HOME": str(tmp_path_factory.mktemp("torch"))}
    env.pop("DROPBLOCK_LAB_WEIGHTS", None)
    log = tmp_path_factory.mktemp("server") / "streamlit.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
             "--server.address", "127.0.0.1", "--server.headless", "true", "--server.fileWatcherType", "none"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.3)
        else:
            pytest.fail(f"streamlit did not start:\n{log.read_text()}")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def wait_ready(page, title: str, text: str | None = None) -> None:
    page.get_by_role("heading", name=title).first.wait_for(timeout=90_000)
    if text:
        page.get_by_text(text).first.wait_for(timeout=90_000)
    # wait for the script run to finish (the "running" indicator disappears)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=90_000
    )
    page.wait_for_timeout(300)


def settle(page) -> tuple[float, str]:
    """Wait until the app is idle and the slider, the URL and the γ metric agree."""
    thumb = page.locator('[data-testid="stSliderThumbValue"]').first
    for _ in range(120):
        page.wait_for_timeout(500)
        if page.locator('[data-testid="stStatusWidget"]').count():
            continue
        kp_url = float(parse_qs(urlparse(page.url).query)["kp"][0])
        kp_shown = float(thumb.inner_text())
        gamma = page.locator('[data-testid="stMetricValue"]').first.inner_text()
        if abs(kp_url - kp_shown) < 1e-9 and gamma == f"{db.dropblock_gamma(kp_shown, 7, 14, 14):.5f}":
            return kp_shown, gamma
    raise AssertionError(f"the app did not settle: url {page.url}, slider {thumb.inner_text()}")


def assert_no_exception(page) -> None:
    boxes = page.locator('[data-testid="stException"]')
    assert boxes.count() == 0, boxes.first.inner_text()
    errors = page.locator('[data-testid="stAlertContentError"]')
    assert errors.count() == 0, errors.first.inner_text()


def test_real_browser_session(server, browser, tmp_path):
    shots = Path(os.environ.get("DROPBLOCK_LAB_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1500})
    page.goto(server)
    wait_ready(page, "DropBlock Lab", "espresso")  # the sample's top-1, with nothing uploaded
    assert_no_exception(page)
    page.screenshot(path=str(shots / "home.png"), full_page=True)

    # switch page through the navigation, then move the keep_prob slider with the keyboard
    page.get_by_role("link", name="Mask explorer").first.click()
    wait_ready(page, "Mask explorer", "γ (seed probability)")
    gamma_before = page.locator('[data-testid="stMetricValue"]').first.inner_text()
    slider = page.get_by_role("slider", name="keep_prob")
    slider.focus()
    for _ in range(4):  # arrow keys move by 0.05 (a key pressed during a rerun may be lost)
        slider.press("ArrowLeft")
        page.wait_for_timeout(200)
    kp_shown, gamma_shown = settle(page)
    assert kp_shown < 0.9  # the slider moved ...
    assert gamma_shown == f"{db.dropblock_gamma(kp_shown, 7, 14, 14):.5f}" != gamma_before  # ... and γ followed
    assert gamma_before == f"{db.dropblock_gamma(0.9, 7, 14, 14):.5f}"
    assert_no_exception(page)
    page.screenshot(path=str(shots / "slider-moved.png"), full_page=True)

    for path, title, name, text in PAGES[1:]:
        page.goto(f"{server}/{path}")
        wait_ready(page, title, text)
        assert_no_exception(page)
        page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
    assert (shots / "theory.png").stat().st_size > 10_000

    # the image set as a teacher runs it: the bundled samples, one click, the curves drawn
    page.get_by_role("button", name="Compute the curves").click()
    page.get_by_text("Over 4 images").first.wait_for(timeout=180_000)
    wait_ready(page, "Image set")
    assert_no_exception(page)
    page.screenshot(path=str(shots / "image-set.png"), full_page=True)
