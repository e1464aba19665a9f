"""A real browser: headless Chromium (Debian's package) driven by Playwright against the app.

Starts ``streamlit run app.py`` on a free local port, waits for the landing page, moves a
slider, switches page, and saves screenshots; fails on any Streamlit exception box. Then opens
every page on a phone (390×844) and on a projector (1920×1080, presenter mode): nothing may be
cut off at the right edge or scroll the page sideways, and in presenter mode the main figure
must be on screen without scrolling. In presenter mode on the lesson, the arrow keys step.
Set ``DROPBLOCK_LAB_SCREENSHOTS=docs/screenshots`` to also write the screenshots there (the
pages, the lesson, presenter mode, a phone, and Chinese when the app has it).
Skipped when no Chromium is installed, except under CI, where it must run.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from urllib.parse import parse_qs, urlparse
from pathlib import Path

import pytest

import dropblock as db

from .appserver import app_server
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
LESSON = ("Lesson", None, "lesson", None)  # its heading is the lesson's own
PHONE = {"width": 390, "height": 844}
PROJECTOR = {"width": 1920, "height": 1080}
MAIN_FIGURE = '[class*="st-key-dbl_main_figure"]'

# Elements of the main area that stick out past the right edge of the window, unless a block of
# their own scrolls them (a wide formula or table scrolls inside its block, not the page). Parts
# that are visually hidden on purpose (inside a 1 px box, e.g. a slider's range input) don't count.
CUT_OFF = """() => {
  const main = document.querySelector('.stMainBlockContainer');
  const right = window.innerWidth + 1;
  const bad = [];
  for (const el of main.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0 || r.right <= right) continue;
    let a = el.parentElement, ok = false;
    while (a && a !== main) {
      const box = a.getBoundingClientRect();
      const ox = getComputedStyle(a).overflowX;
      if (box.width <= 2 || ((ox === 'auto' || ox === 'scroll') && box.right <= right)) { ok = true; break; }
      a = a.parentElement;
    }
    if (!ok) bad.push(`${el.tagName} ${el.getAttribute('data-testid') || ''} right=${Math.round(r.right)}`);
  }
  return bad.slice(0, 5);
}"""
SIDEWAYS = """() => {
  const s = document.scrollingElement, main = document.querySelector('[data-testid="stMain"]');
  const block = document.querySelector('.stMainBlockContainer');
  return [[s.scrollWidth, window.innerWidth], [main.scrollWidth, main.clientWidth], [block.scrollWidth, block.clientWidth]];
}"""
# The visible tiles of the page's tile grids (ui/render.py show_mask_grid): size, place, drawn, CSS.
TILES = """() => [...document.querySelectorAll('[data-testid="stMain"] .dbl-tiles img.dbl-tile')]
  .filter(i => i.getClientRects().length).map(i => { const r = i.getBoundingClientRect();
    return {width: r.width, height: r.height, left: r.left, top: r.top, right: r.right, bottom: r.bottom,
            natural: [i.naturalWidth, i.naturalHeight], drawn: i.complete && i.naturalWidth > 0, alt: i.alt,
            rendering: getComputedStyle(i).imageRendering}; })"""
SOURCES = """() => [...document.querySelectorAll('.dbl-tiles img')].map(i => i.src).join(' ')"""
FIGURES = f"""() => [...document.querySelectorAll('{MAIN_FIGURE}')]
  .map(e => e.getBoundingClientRect()).filter(r => r.width > 0 && r.height > 0)
  .map(r => [r.top, r.bottom, r.left, r.right])"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is required under CI (apt-get install chromium)")
        pytest.skip("no Chromium installed (apt-get install chromium)")
    with app_server(tmp_path_factory) as app:
        yield app.url


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def wait_ready(page, title: str | None, text: str | None = None) -> None:
    if title:
        page.get_by_role("heading", name=title).first.wait_for(timeout=90_000)
    else:  # in presenter mode a lesson step's own title stands for the lesson's (its h1 is in the page, hidden)
        page.locator("h1").first.wait_for(state="attached", timeout=90_000)
    if text:
        page.get_by_text(text).first.wait_for(timeout=90_000)
    # wait for the script run to finish (the "running" indicator disappears)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=90_000
    )
    page.wait_for_timeout(300)


def wait_count(locator, n: int, timeout: int = 90_000) -> None:
    """Wait until ``locator`` matches at least ``n`` elements: a page's parts reach a browser on a
    busy or slow machine one message (and one lazily loaded chart component) at a time, so counting
    them right after the run ends races the browser."""
    locator.nth(n - 1).wait_for(state="attached", timeout=timeout)


def wait_until(check, what: str, timeout_s: float = 90.0, page=None) -> None:
    """Poll ``check()`` until it is true, at most ``timeout_s`` (generous: a busy CPU is slow)."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        if page is not None:
            page.wait_for_timeout(250)
        else:
            time.sleep(0.25)


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
    page.get_by_text("Over 32 images").first.wait_for(timeout=240_000)
    wait_ready(page, "Image set")
    assert_no_exception(page)
    page.screenshot(path=str(shots / "image-set.png"), full_page=True)


def shots_dir(tmp_path) -> tuple[Path, Path]:
    """(where the README's screenshots go, where the others go)."""
    chosen = os.environ.get("DROPBLOCK_LAB_SCREENSHOTS")
    shown = Path(chosen) if chosen else tmp_path
    shown.mkdir(parents=True, exist_ok=True)
    return shown, tmp_path


def pages_to_check() -> list[tuple]:
    return PAGES[:1] + [LESSON] + PAGES[1:]


def assert_nothing_sideways(page, where: str) -> None:
    for scroll, visible in page.evaluate(SIDEWAYS):
        assert scroll <= visible + 1, f"{where}: the page scrolls sideways ({scroll} px in {visible} px)"
    assert page.evaluate(CUT_OFF) == [], f"{where}: cut off at the right edge: {page.evaluate(CUT_OFF)}"


def test_a_live_control_reruns_only_the_mask_explorers_fragment(server):
    """On the real server, through Streamlit's own protocol: moving keep_prob on the mask explorer is
    a fragment's run (the sidebar's other widgets, the title and the model banner are not sent
    again), with new numbers, the CAMs and the link brought up to date; the next page keeps it."""
    import asyncio
    import concurrent.futures

    sys.path.insert(0, str(ROOT / "bench"))
    from stclient import Session

    async def scenario():
        s = Session(server, timeout=120)
        try:
            full = await s.open("Mask_explorer", "seed=7341&kp=0.8&b=5")
            assert not full.errors and full.status == 0, full.errors
            gamma = next(t for t in full.texts if t.startswith("γ"))
            moved = await s.move("keep_prob", 0.7)
            assert not moved.errors, moved.errors
            assert moved.status == 3  # FINISHED_FRAGMENT_RUN_SUCCESSFULLY: the page itself did not run
            assert moved.deltas < 0.8 * full.deltas
            assert any(t.startswith("Model:") for t in full.texts)
            assert not any(t.startswith("Model:") for t in moved.texts)  # the model banner is not sent again
            assert moved.pictures >= 2  # the CAMs for the new masks
            new_gamma = next(t for t in moved.texts if t.startswith("γ"))
            assert new_gamma != gamma and "kp=0.7" in s.query.split("&")
            assert (await s.move("Seed", 7342)).status == 3
            other = await s.goto("Compare_methods")  # a full run: the page's own script
            assert not other.errors and other.status == 0
            assert {"kp=0.7", "seed=7342"} <= set(s.query.split("&"))
        finally:
            await s.close()
        # A page's own control (the channels shown) reruns its fragment too; Streamlit 1.67 then
        # drops the sidebar's values on the next page switch, which once failed that page
        # ("no key image"): the settings come back from the session's own copy.
        s = Session(server, timeout=120)
        try:
            await s.open("Mask_explorer", "seed=7343&kp=0.85&b=3&image=chelsea")
            assert (await s.move("Channels to show (the most active ones)", 5)).status == 3
            for page in ("Compare_methods", "CAM_shift", "Mask_explorer"):
                r = await s.goto(page)
                assert not r.errors and r.status == 0, (page, r.errors)
                assert {"kp=0.85", "b=3", "seed=7343", "image=chelsea"} <= set(s.query.split("&"))
        finally:
            await s.close()

    # in a thread of its own: the sync Playwright of the other tests keeps an event loop in this one
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, scenario()).result()


def test_phone_and_projector(server, browser, tmp_path):
    """Every page at 390 px (a phone) and at 1920×1080 in presenter mode."""
    shown, other = shots_dir(tmp_path)
    phone = browser.new_page(viewport=PHONE)
    for path, title, name, text in pages_to_check():
        phone.goto(f"{server}/{path}")
        wait_ready(phone, title, text)
        assert_no_exception(phone)
        assert_nothing_sideways(phone, f"{name} at 390 px")
        if name == "mask-explorer":  # the 8-channel grid: one element, regrouped per channel on a phone
            tiles = phone.evaluate(TILES)
            assert len(tiles) == 4 * 8, tiles
            assert all(t["width"] >= 56 and t["drawn"] for t in tiles), tiles
            assert len({round(t["left"]) for t in tiles}) == 4, "not 4 tiles (mask, seeds, before, after) a line"
            by_channel = {}
            for t in tiles:  # alt: "before, channel 29"
                kind, channel = t["alt"].rsplit(", ", 1)
                by_channel.setdefault(channel, {})[kind] = t
            assert len(by_channel) == 8, by_channel.keys()
            for channel, kinds in by_channel.items():  # one line per channel, "before" right beside "after"
                assert len({round(t["top"]) for t in kinds.values()}) == 1, (channel, kinds)
                assert 0 <= kinds["after (scaled)"]["left"] - kinds["before"]["right"] <= 8, (channel, kinds)
            labels = phone.locator(".dbl-tiles .dbl-label")
            first_tile = phone.locator(".dbl-tiles img").first
            assert labels.first.bounding_box()["y"] < first_tile.bounding_box()["y"]  # the label above its row
            grid = phone.locator(".dbl-tiles").first
            phone.locator(".katex-display").first.evaluate("e => e.scrollIntoView({block: 'center'})")
            phone.wait_for_timeout(300)
            phone.screenshot(path=str(shown / "phone-mask-explorer-formula.png"))  # the main area scrolls, not the page
            grid.evaluate("e => e.scrollIntoView({block: 'start'})")
            phone.wait_for_timeout(300)
            phone.screenshot(path=str(shown / "phone-mask-explorer-grid.png"))
    phone.close()

    projector = browser.new_page(viewport=PROJECTOR)
    for path, title, name, text in pages_to_check():
        projector.goto(f"{server}/{path}?present=1")
        if name == "image-set":  # no figure before its curves are computed: its controls stay
            wait_ready(projector, title, text)
        else:
            wait_ready(projector, title)
            projector.locator(f"{MAIN_FIGURE} :is(img, canvas, svg)").first.wait_for(timeout=180_000)
            wait_ready(projector, title)
        assert_no_exception(projector)
        projector.locator('[data-testid="stSidebar"]').wait_for(state="hidden", timeout=30_000)
        projector.get_by_role("button", name="Exit presenter mode").wait_for(state="visible", timeout=30_000)
        assert_nothing_sideways(projector, f"{name} in presenter mode")
        target = shown if name in ("mask-explorer", "lesson", "compare-methods") else other
        projector.screenshot(path=str(target / f"presenter-{name}.png"))
        figures = projector.evaluate(FIGURES)
        assert figures or name == "image-set", f"{name}: no main figure shown in presenter mode"
        for top, bottom, left, right in figures:
            assert top >= 0 and bottom <= PROJECTOR["height"] + 1 and left >= 0 and right <= PROJECTOR["width"] + 1, (
                f"{name}: the main figure is not on screen without scrolling: {top, bottom, left, right}")
        if name in ("mask-explorer", "lesson"):  # tile grids: on screen and larger than on a laptop
            tiles = projector.evaluate(TILES)
            assert tiles and all(t["drawn"] and t["width"] >= 120 for t in tiles), (name, tiles[:2])
            assert max(t["bottom"] for t in tiles) <= PROJECTOR["height"] and min(t["top"] for t in tiles) >= 0, name
            box = projector.locator(f"{MAIN_FIGURE} .dbl-tiles").first.bounding_box()
            assert box["width"] >= 0.9 * PROJECTOR["width"] and box["y"] + box["height"] <= PROJECTOR["height"], box

    # presenter mode survives a page switch and leaves with the button in the main area
    projector.goto(f"{server}/Mask_explorer?present=1")
    wait_ready(projector, "Mask explorer")
    projector.get_by_role("button", name="Exit presenter mode").click()
    projector.locator('[data-testid="stSidebar"]').wait_for(state="visible", timeout=60_000)
    wait_ready(projector, "Mask explorer")
    assert parse_qs(urlparse(projector.url).query)["present"] == ["0"]
    projector.close()


def test_a_phones_sidebar_opens_on_the_live_controls(server, browser, tmp_path):
    """At 390×844 the slide-out sidebar shows keep_prob, block_size and the seed without scrolling
    (right under the page links; the image widgets follow), on the mask explorer, whose fragment draws
    them, and on a page where the sidebar does; moving one there still changes the masks."""
    shown, _ = shots_dir(tmp_path)
    for path, title in (("Mask_explorer", "Mask explorer"), ("CAM_shift", "CAM shift")):
        page = browser.new_page(viewport=PHONE)  # a fresh tab: its sidebar starts closed
        try:
            page.goto(f"{server}/{path}")
            wait_ready(page, title)
            page.locator(f"{MAIN_FIGURE} img").first.wait_for(timeout=180_000)
            wait_ready(page, title)
            page.locator('[data-testid="stExpandSidebarButton"]').first.click()
            sidebar = page.locator('[data-testid="stSidebar"]')
            controls = [sidebar.get_by_role("slider", name="keep_prob"),
                        sidebar.get_by_role("slider", name="block_size"), sidebar.locator('input[aria-label="Seed"]')]
            for control in controls:
                control.wait_for(state="visible", timeout=30_000)
            page.wait_for_timeout(600)  # the sidebar's slide-in animation
            for control in controls:
                box = control.bounding_box()
                assert box and 0 <= box["y"] and box["y"] + box["height"] <= PHONE["height"], (path, box)
                assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], (path, box)
            image = sidebar.get_by_text("Sample image").first.bounding_box()
            assert image["y"] > controls[-1].bounding_box()["y"], "the image widgets come after the live controls"
            if path == "Mask_explorer":
                page.screenshot(path=str(shown / "phone-sidebar.png"))
                before = page.evaluate(SOURCES)
                controls[0].focus()
                page.keyboard.press("ArrowLeft")
                page.wait_for_function(f"old => ({SOURCES})() !== old", arg=before, timeout=60_000)
            assert_no_exception(page)
        finally:
            page.close()


def test_mask_grid_units_are_crisp_squares_on_a_laptop(server, browser):
    """At 1280x900 the grid is one line per row with its labels at the left; each tile is the map at
    one pixel per unit, scaled up pixelated; a seed change redraws the tiles."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{server}/Mask_explorer?seed=3")
    wait_ready(page, "Mask explorer", "γ (seed probability)")
    page.locator(".dbl-tiles img").first.wait_for(timeout=120_000)
    tiles = page.evaluate(TILES)
    assert len(tiles) == 4 * 8
    assert all(t["rendering"] == "pixelated" and t["drawn"] and t["natural"] == [14, 14] for t in tiles), tiles[:2]
    assert all(abs(t["width"] - t["height"]) < 1 and t["width"] >= 56 for t in tiles)  # squares, units >= 4 px
    assert len({round(t["top"]) for t in tiles}) == 4  # one line per row
    label = page.locator(".dbl-tiles .dbl-label").first.bounding_box()
    assert label["x"] + label["width"] <= min(t["left"] for t in tiles)  # the label column at the left
    assert page.locator(".dbl-tiles .dbl-label").first.inner_text() == "block mask M"
    before = [t["natural"] for t in tiles], page.evaluate(SOURCES)
    box = page.locator('input[aria-label="Seed"]')
    box.fill("4")
    box.press("Enter")
    page.wait_for_function(f"old => ({SOURCES})() !== old", arg=before[1], timeout=60_000)
    wait_ready(page, "Mask explorer")
    assert all(t["drawn"] for t in page.evaluate(TILES))
    assert_no_exception(page)
    page.close()


def test_a_lesson_question_stays_on_screen_under_its_grid_in_presenter_mode(server, browser):
    """Step 2's grid has two rows: its tiles grow with the projector's height only as far as the step's
    title, paragraph and question leave room, so the question and all its answers stay on a 1920x1080
    screen without scrolling."""
    page = browser.new_page(viewport=PROJECTOR)
    page.goto(f"{server}/Lesson?step=2&present=1")
    wait_ready(page, None)
    page.locator(".dbl-tiles img").first.wait_for(timeout=120_000)
    options = page.locator('[data-testid="stMain"] [data-testid="stRadio"] [role="radiogroup"] label')
    wait_count(options, 3)  # the page may still be drawing its question
    wait_ready(page, None)
    for i in range(options.count()):
        box = options.nth(i).bounding_box()
        assert box is not None and box["y"] + box["height"] <= PROJECTOR["height"], (i, box)
    grid = page.locator(".dbl-tiles").first.bounding_box()
    assert grid["y"] >= 0 and grid["y"] + grid["height"] <= PROJECTOR["height"]
    assert_no_exception(page)
    page.close()


def test_arrow_keys_step_the_lesson_in_presenter_mode(server, browser, tmp_path):
    shown, _ = shots_dir(tmp_path)
    page = browser.new_page(viewport=PROJECTOR)
    page.goto(f"{server}/Lesson")
    wait_ready(page, None)
    page.screenshot(path=str(shown / "lesson.png"), full_page=True)
    page.goto(f"{server}/Lesson?present=1")
    wait_ready(page, None)
    page.locator(".st-key-lesson_next button").wait_for(state="visible", timeout=60_000)
    first = page.url

    def press(key: str) -> str:
        before = page.url
        page.mouse.click(PROJECTOR["width"] // 2, 5)  # the page has the focus, not a widget
        page.keyboard.press(key)
        page.wait_for_function("u => window.location.href !== u", arg=before, timeout=60_000)
        wait_ready(page, None)
        return page.url

    second = press("ArrowRight")
    assert second != first
    page.screenshot(path=str(shown / "presenter-lesson.png"))
    assert press("ArrowLeft") == first
    # out of presenter mode and on another page (same tab), the arrows are the widgets' again
    page.get_by_role("button", name="Exit presenter mode").click()
    page.locator('[data-testid="stSidebar"]').wait_for(state="visible", timeout=60_000)
    page.locator('[data-testid="stSidebar"]').get_by_role("link", name="Mask explorer").click()
    wait_ready(page, "Mask explorer", "γ (seed probability)")
    thumb = page.locator('.st-key-explorer_channels [data-testid="stSliderThumbValue"]')
    value = thumb.inner_text()
    page.get_by_role("slider", name="Channels to show (the most active ones)").focus()
    page.keyboard.press("ArrowLeft")
    for _ in range(60):
        page.wait_for_timeout(500)
        if thumb.inner_text() != value:
            break
    assert thumb.inner_text() == str(int(value) - 1), "the arrow key did not reach the slider"


def test_chinese_screenshots(server, browser, tmp_path):
    """The pages in Chinese, as a link with lang=zh opens them."""
    shown, _ = shots_dir(tmp_path)
    page = browser.new_page(viewport={"width": 1400, "height": 1500})
    for path, name in [("", "home"), ("Lesson", "lesson"), ("Mask_explorer", "mask-explorer")]:
        page.goto(f"{server}/{path}?lang=zh")
        wait_ready(page, None)
        page.locator(f"{MAIN_FIGURE} img").first.wait_for(timeout=120_000)
        wait_ready(page, None)
        assert_no_exception(page)
        assert any("\u4e00" <= ch <= "\u9fff" for ch in page.locator("h1").first.inner_text() + page.locator(
            '[data-testid="stSidebar"]').inner_text()), "no Chinese on the page"
        page.screenshot(path=str(shown / f"zh-{name}.png"), full_page=True)


# What a projector must show once a lesson step is answered: its header line, the step's title and
# paragraph, the question, the verdict with the measured answer, and the main figure, all on screen.
ON_SCREEN = """sel => [...document.querySelectorAll(sel)].filter(e => e.getClientRects().length)
  .map(e => { const r = e.getBoundingClientRect(); const s = getComputedStyle(e);
              return {top: r.top, bottom: r.bottom, left: r.left, right: r.right, width: r.width, height: r.height,
                      visible: s.visibility !== 'hidden' && s.display !== 'none', text: e.innerText || ''}; })"""


# The pictures drawn in a container: each img at the size it is drawn (object-fit: contain shrinks a
# picture inside its box), each canvas, and each chart's marks (a Vega-Lite svg's plotted group).
PICTURES = """sel => [...document.querySelectorAll(`${sel} :is(img, canvas, svg.marks)`)]
  .filter(e => e.getClientRects().length && getComputedStyle(e).visibility !== 'hidden').map(e => {
    const r = e.getBoundingClientRect(); let w = r.width, h = r.height, left = r.left, top = r.top;
    if (e.tagName === 'IMG' && e.naturalWidth && e.naturalHeight && getComputedStyle(e).objectFit === 'contain') {
      const s = Math.min(r.width / e.naturalWidth, r.height / e.naturalHeight);
      w = e.naturalWidth * s; h = e.naturalHeight * s; left += (r.width - w) / 2; top += (r.height - h) / 2; }
    return {tag: e.tagName, left, top, right: left + w, bottom: top + h, width: w, height: h}; })"""


def boxes(page, selector: str) -> list[dict]:
    return [b for b in page.evaluate(ON_SCREEN, selector) if b["visible"] and b["width"] > 0 and b["height"] > 0]


def assert_on_screen(page, selector: str, what: str, viewport: dict = PROJECTOR) -> list[dict]:
    found = boxes(page, selector)
    assert found, f"{what}: not shown"
    for b in found:
        assert b["top"] >= 0 and b["bottom"] <= viewport["height"] + 1, f"{what}: off screen {b}"
        assert b["left"] >= 0 and b["right"] <= viewport["width"] + 1, f"{what}: off screen {b}"
    return found


def test_presenter_mode_shows_each_lesson_steps_reveal(server, browser, tmp_path):
    """At 1920×1080 in presenter mode, each lesson step answered: the verdict and the measured answer,
    the step's own parameters in the header (not the sidebar's), the step's title, paragraph and
    question, and the main figure's picture (what is drawn, not its container) across at least 80 % of the
    width, all on screen at once."""
    from ui import lesson

    shown, other = shots_dir(tmp_path)
    page = browser.new_page(viewport=PROJECTOR)
    try:
        for n, step in enumerate(lesson.STEPS, start=1):
            page.goto(f"{server}/Lesson?step={n}&present=1&kp=0.9&b=7&seed=0")
            options = page.locator(f'[data-testid="stMain"] .st-key-lesson_q{n} [data-testid="stRadioOption"]')
            options.first.wait_for(timeout=120_000)
            wait_ready(page, None)
            options.last.click()  # any answer: a verdict either way
            reveal = page.locator('.st-key-dbl_projector_lesson-answer [data-testid="stAlert"]').first
            reveal.wait_for(state="visible", timeout=240_000)
            if not step.picture_first:  # the picture comes with the answer
                page.locator(f"{MAIN_FIGURE} :is(img, canvas, svg)").first.wait_for(timeout=240_000)
            wait_ready(page, None)
            assert_no_exception(page)
            page.screenshot(path=str((shown if n == 3 else other) / (
                "presenter-lesson-reveal.png" if n == 3 else f"presenter-lesson-{n}.png")))

            verdict = assert_on_screen(page, '.st-key-dbl_projector_lesson-answer [data-testid="stAlert"]',
                                       f"step {n}: the verdict")
            text = verdict[0]["text"]
            assert "Right." in text or "Not this time" in text or n == 8, (n, text)  # step 8 may be a tie: numbers only
            assert any(ch.isdigit() for ch in text), (n, text)  # the measured answer

            header = assert_on_screen(page, ".st-key-dbl_presenter_bar", f"step {n}: the header")[0]["text"]
            assert lesson.headline(step).replace("**", "") in header, (n, header)
            assert f"seed {step.seed}" in header and "keep_prob 0.9 · block_size 7" not in header, (n, header)
            if n == 1:  # the picture's own parameters: 0.85, 5×5 blocks, seed 1 (students count 25 units)
                assert "0.85" in header and "5×5" in header and "seed 1" in header, header
            if n == 5:  # the paper's placement, as the curve uses
                assert "inside the blocks of groups 3 and 4" in header, header

            assert_on_screen(page, ".st-key-dbl_projector_lesson-step h2", f"step {n}: the title")
            paragraph = assert_on_screen(page, ".st-key-dbl_projector_lesson-step [data-testid='stMarkdownContainer'] p",
                                         f"step {n}: the paragraph")
            assert sum(len(p["text"]) for p in paragraph) > 40, paragraph
            assert_on_screen(page, f'[data-testid="stMain"] .st-key-lesson_q{n} [data-testid="stRadioOption"]',
                             f"step {n}: the question")

            assert_on_screen(page, MAIN_FIGURE, f"step {n}: the main figure")
            pictures = [p for p in page.evaluate(PICTURES, MAIN_FIGURE) if p["width"] > 40 and p["height"] > 40]
            assert pictures, f"step {n}: no picture drawn in the main figure"
            for p in pictures:
                assert p["top"] >= 0 and p["bottom"] <= PROJECTOR["height"] + 1, (n, "picture off screen", p)
            # what is drawn, not its box: a tile grid's tiles from the first to the last, a picture as
            # object-fit: contain draws it inside its box, a chart's marks
            span = max(p["right"] for p in pictures) - min(p["left"] for p in pictures)
            assert span >= 0.8 * PROJECTOR["width"], (n, span, pictures[:4])
            assert max(p["height"] for p in pictures) >= 100, (n, pictures)
    finally:
        page.close()


def test_presenter_mode_has_a_compact_control_bar_on_the_mask_explorer(server, browser):
    """No sidebar on a projector: keep_prob, block_size and the seed sit in a bar under the top line,
    on screen; a new seed there redraws the masks and the top line says the seed now used."""
    page = browser.new_page(viewport=PROJECTOR)
    try:
        page.goto(f"{server}/Mask_explorer?present=1&seed=0")
        page.locator(f"{MAIN_FIGURE} .dbl-tiles img").first.wait_for(timeout=120_000)
        wait_ready(page, "Mask explorer")
        page.locator('[data-testid="stSidebar"]').wait_for(state="hidden", timeout=30_000)
        bar = page.locator(".st-key-dbl_controls")
        for control in (bar.get_by_role("slider", name="keep_prob"), bar.get_by_role("slider", name="block_size"),
                        bar.locator('input[aria-label="Seed"]')):
            box = control.bounding_box()
            assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= PROJECTOR["height"], box
        before = page.evaluate(SOURCES)
        box = page.locator('.st-key-dbl_controls input[aria-label="Seed"]')
        box.fill("3")
        box.press("Enter")
        page.wait_for_function(f"old => ({SOURCES})() !== old", arg=before, timeout=90_000)
        page.locator(".st-key-dbl_presenter_bar", has_text="seed 3").wait_for(timeout=90_000)
        wait_ready(page, "Mask explorer")
        assert "seed=3" in page.url.split("?")[1].split("&")
        assert_no_exception(page)
    finally:
        page.close()


def test_a_view_in_rounds_refines_in_place_then_stops_ticking(server, browser):
    """The run ends at the first answer; the browser's timer (the refining fragment's run_every)
    brings each new round without a user action, and stops once the final round is drawn."""
    from streamlit.proto.BackMsg_pb2 import BackMsg

    page = browser.new_page(viewport={"width": 1400, "height": 1200})
    reruns: list[float] = []

    def sent(payload) -> None:
        if isinstance(payload, (bytes, bytearray)):
            msg = BackMsg()
            msg.ParseFromString(bytes(payload))
            if msg.WhichOneof("type") == "rerun_script":
                reruns.append(time.monotonic())

    page.on("websocket", lambda ws: ws.on("framesent", sent))
    page.goto(f"{server}/CAM_shift?seed=4242")
    page.get_by_text("16 of 16 samples").first.wait_for(timeout=240_000)  # refined with no action of ours
    assert_no_exception(page)
    page.wait_for_timeout(1500)  # a tick that was already on its way
    done = len(reruns)
    page.wait_for_timeout(6000)  # three ticks' worth: the timer has stopped
    assert len(reruns) == done, f"{len(reruns) - done} reruns after the final round"
    assert page.get_by_text("16 of 16 samples").count() >= 1
    page.close()
