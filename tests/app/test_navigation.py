"""Navigation through the entrypoint (st.navigation/st.Page) and presenter mode: what the menu lists
(the real server's navigation message) and what each page shows (AppTest)."""

from __future__ import annotations

import asyncio
import sys

import pytest

from ui.i18n import catalog

from .appserver import app_server
from .conftest import HOME, PAGES, ROOT, assert_clean, new_app

sys.path.insert(0, str(ROOT / "bench"))

from stclient import Session  # noqa: E402

MENU = [("Home", ""), ("Lesson", "Lesson"), ("Mask explorer", "Mask_explorer"), ("Compare methods", "Compare_methods"),
        ("CAM shift", "CAM_shift"), ("Robustness curve", "Robustness_curve"),
        ("Theory & schedule", "Theory_and_schedule"), ("DropBlock + Dropout", "DropBlock_and_Dropout"),
        ("Image set", "Image_set")]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with app_server(tmp_path_factory) as app:
        yield app.url
    assert "Traceback" not in app.log.read_text()


def _zh(text: str) -> str:
    return catalog("zh").gettext(text)


def test_the_menu_lists_every_page_in_order_at_its_url(server):
    """The README's and bench/'s links (/Mask_explorer, /Theory_and_schedule) keep working; "/" is Home,
    the Lesson comes right after it, and every page of pages/ is there, each at its own URL."""
    async def menu():
        s = Session(server)
        try:
            first = await s.open("", "")
            nav = list(s.nav)
            on_page = await s.goto("Theory_and_schedule")
            return first, nav, on_page
        finally:
            await s.close()

    first, nav, on_page = asyncio.run(menu())
    assert not first.errors and not on_page.errors
    assert nav == MENU
    assert len(PAGES) + 2 == len(nav) and all((ROOT / f).exists() for f in [HOME, *PAGES])
    assert any("calculator" in t or "γ" in t for t in on_page.texts)  # the link reached the theory page


def test_menu_titles_follow_the_language_each_run(server):
    """The titles are translated every run: from the URL (lang=zh), and when the sidebar's language moves."""
    async def titles():
        zh = Session(server)
        en = Session(server)
        try:
            await zh.open("", "lang=zh")
            await en.open("Mask_explorer", "")
            english = list(en.nav)
            chinese = next(o for o in en.widget_options["Language / 语言"] if any("\u4e00" <= ch <= "\u9fff" for ch in o))
            await en.move("Language / 语言", chinese)
            return list(zh.nav), english, list(en.nav)
        finally:
            await zh.close()
            await en.close()

    from_url, english, switched = asyncio.run(titles())
    assert english == MENU
    for nav in (from_url, switched):
        assert [url for _, url in nav] == [url for _, url in MENU]
        assert [title for title, _ in nav] == [_zh(title) for title, _ in MENU]
        shown = dict((url, title) for title, url in nav)
        assert all(any("\u4e00" <= ch <= "\u9fff" for ch in shown[url]) for url in ("", "Mask_explorer", "CAM_shift"))


def test_the_url_is_written_in_one_message_and_only_when_it_changes(server):
    """Each URL write is a message the browser acts on: a rerun sends at most one, and none when no
    setting changed (it used to send one per URL key, 14 per rerun)."""
    async def writes():
        s = Session(server)
        try:
            await s.open("Mask_explorer", "")
            same = await s.goto("Mask_explorer")  # a rerun of the same page, nothing moved
            moved = await s.move("keep_prob", 0.75)
            return same, moved, s.query
        finally:
            await s.close()

    same, moved, query = asyncio.run(writes())
    assert same.url_writes == 0 and not same.errors
    assert moved.url_writes == 1 and not moved.errors
    assert "kp=0.75" in query.split("&")


@pytest.mark.parametrize("page", [HOME, *PAGES])
def test_each_page_through_the_entrypoint(page):
    at = new_app().run()
    at.switch_page(page).run()
    assert_clean(at)
    assert at.title
    # the entrypoint drew the shared sidebar and the model line once
    assert at.sidebar.slider(key="keep_prob").value == 0.9 and at.sidebar.toggle(key="present").value is False
    assert sum("Model:" in c.value for c in at.caption) == 1


def presenting(at) -> bool:
    """What a presenter sees: the exit button, and the one-line summary instead of the model banner."""
    exit_button = any(b.key == "present_exit" for b in at.button)
    banner = any("Model:" in c.value for c in at.caption)
    assert exit_button is not banner, (exit_button, banner)
    return exit_button


def test_presenter_mode_from_the_url_survives_page_switches_and_leaves():
    at = new_app()
    at.query_params["present"] = "1"
    at.run()
    assert_clean(at)
    assert presenting(at)  # one line instead of the banner
    line = at.markdown[0].value
    assert "EfficientNet-Lite0" in line and "keep_prob **0.9**" in line and "Coffee cup" in line
    at.switch_page(PAGES[0]).run()
    assert_clean(at)
    assert presenting(at) and at.query_params["present"] == "1"
    at.main.slider(key="keep_prob").set_value(0.8).run()  # no sidebar on a projector: the page's control bar
    assert "keep_prob **0.8**" in at.markdown[0].value and presenting(at)
    at.button(key="present_exit").click().run()
    assert_clean(at)
    assert not presenting(at) and at.query_params["present"] == "0"
    assert at.title[0].value == "Mask explorer"  # still on the same page


def test_presenter_switch_in_the_sidebar():
    at = new_app().run()
    at.switch_page(PAGES[0]).run()
    at.sidebar.toggle(key="present").set_value(True).run()
    assert_clean(at)
    assert at.query_params["present"] == "1" and presenting(at)


def test_a_bad_present_value_is_refused_with_a_note():
    at = new_app()
    at.query_params["present"] = "<script>"
    at.run()
    assert not at.exception
    assert not presenting(at)
    assert any("present" in w.value for w in at.warning)
