"""Navigation through the entrypoint (st.navigation/st.Page) and presenter mode, with AppTest."""

from __future__ import annotations

import pytest

from ui import layout, state
from ui.i18n import catalog

from .conftest import HOME, PAGES, ROOT, assert_clean, new_app


def test_navigation_lists_every_page_file_in_order():
    entries = state.NAV
    files = [path for path, *_ in entries]
    assert files[0] == HOME and files[2 if (ROOT / "pages/0_Lesson.py").exists() else 1:] == PAGES
    assert all((ROOT / path).exists() for path in files)
    urls = [url for _, url, *_ in entries]
    assert urls[0] == "" and len(set(urls)) == len(urls)  # "/" is home; no two pages share a URL
    assert "Mask_explorer" in urls and "Theory_and_schedule" in urls  # links in the README and bench/ keep working
    lesson = [e for e in state.NAV if e[1] == state.LESSON_URL]
    assert lesson and state.NAV.index(lesson[0]) == 1  # right after Home, when its file is there


@pytest.mark.parametrize("page", [HOME, *PAGES])
def test_each_page_through_the_entrypoint(page):
    at = new_app().run()
    at.switch_page(page).run()
    assert_clean(at)
    assert at.title
    # the entrypoint drew the shared sidebar and the model line once
    assert at.sidebar.slider(key="keep_prob").value == 0.9 and at.sidebar.toggle(key="present").value is False
    assert sum("Model:" in c.value for c in at.caption) == 1


def _zh(text: str) -> str:
    return catalog("zh").gettext(text)


def registered_titles(at) -> dict[str, str]:
    return {info["url_pathname"]: info["page_name"] for info in at._registered_pages.values()}


def test_page_titles_go_through_the_translation_each_run():
    at = new_app().run()
    assert registered_titles(at)["Mask_explorer"] == "Mask explorer"
    at.session_state["lang"] = "zh"  # what the sidebar's language switch does
    at.run()  # (AppTest formats the last run's options in this thread: still in English here)
    titles = registered_titles(at)
    assert titles[""] == _zh("Home") != "Home" and titles["Mask_explorer"] == _zh("Mask explorer")  # rebuilt


def test_page_titles_in_chinese_from_the_url():
    at = new_app()
    at.query_params["lang"] = "zh"
    at.run()
    assert_clean(at)
    titles = registered_titles(at)
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in titles[url]) for url in ("", "Mask_explorer", "CAM_shift"))


def test_presenter_mode_from_the_url_survives_page_switches_and_leaves():
    at = new_app()
    at.query_params["present"] = "1"
    at.run()
    assert_clean(at)
    assert at.session_state[layout.PRESENT] is True
    assert not any("Model:" in c.value for c in at.caption)  # one line instead of the banner
    line = at.markdown[0].value
    assert "EfficientNet-Lite0" in line and "keep_prob **0.9**" in line and "Coffee cup" in line
    at.switch_page(PAGES[0]).run()
    assert_clean(at)
    assert at.session_state[layout.PRESENT] is True and at.query_params["present"] == "1"
    at.main.slider(key="keep_prob").set_value(0.8).run()  # no sidebar on a projector: the page's control bar
    assert "keep_prob **0.8**" in at.markdown[0].value and at.session_state[layout.PRESENT] is True
    at.button(key="present_exit").click().run()
    assert_clean(at)
    assert at.session_state[layout.PRESENT] is False and at.query_params["present"] == "0"
    assert any("Model:" in c.value for c in at.caption)
    assert at.title[0].value == "Mask explorer"  # still on the same page


def test_presenter_switch_in_the_sidebar():
    at = new_app().run()
    at.switch_page(PAGES[0]).run()
    at.sidebar.toggle(key="present").set_value(True).run()
    assert_clean(at)
    assert at.query_params["present"] == "1"
    assert at.button(key="present_exit")


def test_a_bad_present_value_is_refused_with_a_note():
    at = new_app()
    at.query_params["present"] = "<script>"
    at.run()
    assert not at.exception
    assert at.session_state[layout.PRESENT] is False
    assert any("present" in w.value for w in at.warning)


def test_the_url_is_written_in_one_message_and_only_when_it_changes(monkeypatch):
    """Each write to st.query_params is a message the browser acts on: a rerun sends at most one,
    and none when no setting changed (it used to send one per URL key, 14 per rerun)."""
    from streamlit.runtime.state.query_params import QueryParams

    sent: list[int] = []
    real = QueryParams._send_query_param_msg
    monkeypatch.setattr(QueryParams, "_send_query_param_msg", lambda self: (sent.append(1), real(self))[1])
    at = new_app().run().switch_page(PAGES[0]).run()
    assert at.query_params["kp"] in ("0.9", ["0.9"])
    sent.clear()
    at.run()
    assert sent == []
    at.sidebar.slider(key="keep_prob").set_value(0.75).run()
    assert len(sent) == 1
    assert at.query_params["kp"] in ("0.75", ["0.75"])
    assert_clean(at)
