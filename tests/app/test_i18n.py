"""Every page in 简体中文 through AppTest: nothing shown asks for a string the catalog lacks.

``ui.i18n.MISSING`` collects every msgid looked up in Chinese without a translation, including
the ones built at run time (option labels, messages from ``models/``), which the static
extraction in tests/test_i18n.py cannot see.
"""

from __future__ import annotations

import re

import pytest

from ui import i18n

from .conftest import PAGES, assert_clean, new_app

HAN = re.compile(r"[\u4e00-\u9fff]")


def chinese_app(**params: str):
    at = new_app()
    at.query_params["lang"] = "zh"
    for key, value in params.items():
        at.query_params[key] = value
    return at


def shown_text(at) -> str:
    parts = [e.value for kind in ("title", "header", "subheader", "markdown", "caption", "info", "warning")
             for e in at.get(kind)]
    parts += [w.label for kind in ("slider", "select_slider", "selectbox", "radio", "number_input", "toggle")
              for w in at.get(kind)]
    return "\n".join(str(p) for p in parts)


@pytest.fixture(autouse=True)
def no_missing_before():
    i18n.MISSING.clear()
    yield
    i18n.MISSING.clear()


@pytest.fixture
def zh():
    """AppTest calls a selectbox's format_func in the test's own thread, outside the script run, where
    the language is use_language's: the same as the session's here, so option labels match."""
    with i18n.use_language("zh"):
        yield


def test_home_in_chinese_from_the_url(zh):
    at = chinese_app().run()
    assert_clean(at)
    assert not i18n.MISSING, sorted(i18n.MISSING)
    assert at.sidebar.selectbox(key="lang").value == "zh"
    assert "保留概率" in at.sidebar.slider(key="keep_prob").label
    assert "块大小" in at.sidebar.slider(key="block_size").label
    assert at.sidebar.subheader[0].value == "图像" and "正则化" in [s.value for s in at.sidebar.subheader]
    assert at.table[0].value.columns[0] == "类别"  # the top-5 table's header
    assert at.query_params["lang"] == ["zh"] or at.query_params["lang"] == "zh"


@pytest.mark.parametrize("page", PAGES)
def test_every_page_in_chinese_has_every_translation(page, zh):
    at = chinese_app().run()
    at.switch_page(page).run()
    assert_clean(at)
    assert not i18n.MISSING, sorted(i18n.MISSING)
    text = shown_text(at)
    assert len(HAN.findall(text)) > 20, text[:500]
    assert not re.search(r"\b(the|and|with|without)\b", at.title[0].value)


def test_image_set_curves_in_chinese(zh):
    at = chinese_app().run()
    at.switch_page("pages/7_Image_set.py").run()
    at.select_slider(key="set_samples").set_value(2)
    at.select_slider(key="set_points").set_value(2)
    at.button(key="set_compute").click().run()
    assert_clean(at)
    assert not i18n.MISSING, sorted(i18n.MISSING)
    table = at.table[-1].value
    assert table.columns[0] == "保留概率 keep_prob"
    assert "DropBlock b=7，论文的放置方式" in list(table.columns)
    assert any("内置样例" in s.value for s in at.subheader)


def test_url_warnings_in_chinese(zh):
    at = chinese_app(kp="abc", b="99").run()
    assert_clean(at)
    assert not i18n.MISSING, sorted(i18n.MISSING)
    warning = next(w.value for w in at.warning if "kp" in w.value)
    assert "链接中的部分设置无法按原样使用" in warning and "不是数字" in warning and "高于最大值 15" in warning


def test_switching_language_in_the_sidebar():
    at = new_app().run()
    assert at.sidebar.slider(key="keep_prob").label == "keep_prob"  # English by default
    assert at.sidebar.subheader[0].value == "Image"
    at.sidebar.selectbox(key="lang").set_value("zh").run()
    assert_clean(at)
    assert "保留概率" in at.sidebar.slider(key="keep_prob").label
    assert at.query_params["lang"] in ("zh", ["zh"])
    with i18n.use_language("zh"):  # see the zh fixture
        at.switch_page(PAGES[0]).run()  # the language stays with the session across pages
        assert at.title[0].value == "掩码浏览器"
        at.sidebar.selectbox(key="lang").set_value("en").run()  # the widgets' states are read in Chinese
    assert at.title[0].value == "Mask explorer"
    assert not i18n.MISSING, sorted(i18n.MISSING)


def test_english_pages_stay_english():
    at = new_app().run()
    at.switch_page(PAGES[4]).run()
    assert_clean(at)
    assert at.title[0].value == "Theory & schedule"
    assert not HAN.search(shown_text(at).replace("语言", ""))
