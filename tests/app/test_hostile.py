"""Issue 13, UI side: hostile URLs, uploads and file names end in a message and a working app.

Defects 1 (URL values), 6 (upload lost on a page switch), 7 (image work on every rerun) and
9 (file names rendered as Markdown) are reproduced here; decoding itself is fuzzed in
tests/models/test_images_hostile.py, whose files the upload fuzz below sends through the app.
"""

from __future__ import annotations

import re

import pytest
from streamlit.testing.v1 import AppTest

import models as M
from models import images
import ui.settings
import ui.text
from tests.hostile_files import enc, hostile_uploads, noise

from .conftest import HOME, PAGES, assert_clean, new_app

CODE_SPAN = re.compile(r"`[^`]*`")
DEFAULTS = {"keep_prob": 0.9, "block_size": 7, "seed": 0, "group": 3, "image": "coffee", "placement": "after_group",
            "shared_mask": False, "seed_region": "valid"}
WIDGETS = {"keep_prob": "slider", "block_size": "slider", "seed": "number_input", "group": "selectbox",
           "image": "selectbox", "placement": "radio", "shared_mask": "toggle", "seed_region": "radio"}


def texts(at: AppTest) -> list[str]:
    """Every Markdown-rendered string on the page (main area and sidebar)."""
    kinds = ("markdown", "caption", "error", "warning", "info", "success", "title", "subheader")
    return [e.value for kind in kinds for e in getattr(at, kind)]


def outside_code(text: str) -> str:
    return CODE_SPAN.sub("", text)


def assert_working(at: AppTest) -> None:
    """No exception, no error box, the sidebar drawn and the network's answer shown (Home)."""
    assert_clean(at)
    assert at.sidebar.slider(key="keep_prob") is not None
    assert len(at.table) == 1 and len(at.table[0].value) == 5  # the top-5


def url_warning(at: AppTest) -> str:
    found = [w.value for w in at.warning if w.value.startswith("Some settings in the link")]
    assert len(found) == 1, [w.value for w in at.warning]
    return found[0]


# ------------------------------------------------------------------ defect 1: URL values

NUMBERS = ["inf", "-inf", "Infinity", "-Infinity", "nan", "NaN", "1e309", "-1e309", "9" * 5000, "", "   ",
           "banana", "0x1p-2", "1_0", "٠٫٥", "０.５", "½", "0.5.5", "1e", "--1", "<b>1</b>", "![x](https:evil.example)"]
URL_CASES: list[tuple[str, dict, dict]] = [
    *[(f"kp={v[:12]!r}", {"kp": v}, {}) for v in NUMBERS],
    ("kp clamped low", {"kp": "0.01"}, {"keep_prob": 0.05}),
    ("kp negative zero", {"kp": "-0.0"}, {"keep_prob": 0.05}),
    ("kp tiny", {"kp": "1e-300"}, {"keep_prob": 0.05}),
    ("kp clamped high", {"kp": "1.5"}, {"keep_prob": 1.0}),
    ("kp off the grid", {"kp": "0.93"}, {"keep_prob": 0.95}),
    ("kp off the grid low", {"kp": "0.333"}, {"keep_prob": 0.35}),
    ("b too big", {"b": "99"}, {"block_size": 15}),
    ("b zero", {"b": "0"}, {"block_size": 1}),
    ("b negative", {"b": "-4"}, {"block_size": 1}),
    ("b not whole", {"b": "3.5"}, {}),
    ("b exponent", {"b": "1e3"}, {}),
    ("b arabic digit", {"b": "٣"}, {}),
    ("b superscript", {"b": "³"}, {}),
    ("b 5000 nines", {"b": "9" * 5000}, {}),
    ("seed negative", {"seed": "-1"}, {"seed": 0}),
    ("seed too big", {"seed": "10001"}, {"seed": 10_000}),
    ("seed 20 digits", {"seed": "9" * 20}, {"seed": 10_000}),
    ("seed 40 digits", {"seed": "9" * 40}, {}),
    ("seed hex", {"seed": "0x10"}, {}),
    ("group zero", {"group": "0"}, {"group": 1}),
    ("group five", {"group": "5"}, {"group": 4}),
    ("group float", {"group": "2.0"}, {}),
    ("image path", {"image": "../../etc/passwd"}, {}),
    ("image case", {"image": "COFFEE"}, {}),
    ("image script", {"image": "<script>alert(1)</script>"}, {}),
    ("image nul", {"image": "chelsea\x00"}, {}),
    ("place wrong", {"place": "everywhere"}, {}),
    ("region wrong", {"region": "after_group"}, {}),
    ("shared maybe", {"shared": "maybe"}, {}),
    ("shared two", {"shared": "2"}, {}),
    ("repeated kp", {"kp": ["0.5", "0.7"]}, {"keep_prob": 0.7}),
    ("unknown key", {"keep_prob": "0.5"}, {}),
    ("unknown markup key", {"![x](https:evil.example)": "1"}, {}),
    ("everything at once", {"kp": "inf", "b": "99", "seed": "-1", "group": "x", "image": "nope", "place": "",
                            "shared": "maybe", "region": "?"}, {"block_size": 15, "seed": 0}),
    ("good and bad", {"kp": "0.75", "b": "3", "image": "chelsea", "seed": "1e309"},
     {"keep_prob": 0.75, "block_size": 3, "image": "chelsea"}),
]


def test_at_least_fifty_url_cases():
    assert len(URL_CASES) >= 50


@pytest.mark.parametrize("params, expected", [c[1:] for c in URL_CASES], ids=[c[0] for c in URL_CASES])
def test_url_value_is_ignored_or_clamped_with_a_message_and_the_app_works(params, expected):
    at = new_app()
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    assert_working(at)
    message = url_warning(at)
    for key in params:
        session_key = ui.settings.BY_URL[key].key if key in ui.settings.BY_URL else ""
        if session_key in expected and str(expected[session_key]) == params[key]:
            continue  # a valid value, used as given
        named = f"**{key}**" if key in ui.settings.BY_URL else ui.text.plain(key, 24)
        assert named in message, (key, message)
    assert len(message) < 400 * len(params) and "9" * 30 not in message  # values are truncated
    assert "![" not in outside_code(message) and "<" not in outside_code(message)  # and inert
    values = {**DEFAULTS, **expected}
    for key, value in values.items():
        assert getattr(at.sidebar, WIDGETS[key])(key=key).value == value, key
    assert at.query_params["kp"] == str(values["keep_prob"])  # the URL now holds what is used

    at.run()  # the message is shown once; the app keeps working with the same values
    assert_working(at)
    assert not [w for w in at.warning if w.value.startswith("Some settings in the link")]
    assert at.sidebar.slider(key="block_size").value == values["block_size"]


@pytest.mark.parametrize("value", ["inf", "-inf", "Infinity", "1e309", "9" * 5000])
def test_issue_urls_no_longer_blank_the_app_on_any_page(value):
    """Repro of defect 1: these raised OverflowError and left only 'Something went wrong'."""
    at = new_app()
    at.query_params["kp"] = value
    at.query_params["b"] = value
    at.run()
    assert_working(at)
    assert "**kp**" in url_warning(at) and "**b**" in url_warning(at)
    for page in PAGES:
        at.switch_page(page).run()
        assert_clean(at)
        assert at.sidebar.slider(key="keep_prob").value == 0.9


def test_valid_urls_give_no_message():
    at = new_app()
    at.query_params.update({"kp": "0.75", "b": "3", "seed": "42", "image": "chelsea", "group": "2",
                            "place": "in_blocks", "shared": "1", "region": "everywhere", "embed": "true"})
    at.run()
    assert_working(at)
    assert not [w for w in at.warning if w.value.startswith("Some settings in the link")]


# ------------------------------------------------------------------ defect 6: upload across pages


def red_png() -> bytes:
    return enc(noise((300, 200)))


def test_upload_survives_every_page_switch_until_cleared():
    """Repro of defect 6: after a page switch the caption said 'image: Coffee cup'."""
    at = new_app().run()
    at.sidebar.file_uploader(key="upload").upload("red.png", red_png(), "image/png")
    at.run()
    assert_working(at)
    first_top5 = at.table[0].value
    for page in [*PAGES, HOME]:
        at.switch_page(page).run()
        assert_clean(at)
        captions = " ".join(c.value for c in at.caption)
        assert "image: `red.png`" in captions and "Coffee cup" not in captions, page
    assert at.table[0].value.equals(first_top5)  # the same image, the same prediction
    at.sidebar.button(key="clear_upload").click().run()
    assert_working(at)
    assert "image: Coffee cup" in " ".join(c.value for c in at.caption)
    assert at.table[0].value.iloc[0]["class"] == "espresso"
    assert not at.sidebar.button  # nothing left to clear
    at.switch_page(PAGES[0]).run()
    assert "image: Coffee cup" in " ".join(c.value for c in at.caption)


def test_removing_the_file_from_the_uploader_or_picking_a_sample_returns_to_the_sample():
    at = new_app().run()
    at.sidebar.file_uploader(key="upload").upload("red.png", red_png(), "image/png")
    at.run()
    at.sidebar.file_uploader(key="upload").clear().run()  # the uploader's ×
    assert_working(at)
    assert "image: Coffee cup" in " ".join(c.value for c in at.caption)

    at.sidebar.file_uploader[0].upload("red.png", red_png(), "image/png")
    at.run()
    assert "`red.png`" in " ".join(c.value for c in at.caption)
    at.sidebar.selectbox(key="image").set_value("chelsea").run()
    assert_working(at)
    assert "image: Chelsea the cat" in " ".join(c.value for c in at.caption)


def test_an_upload_stays_in_its_own_session():
    alice, bob = new_app().run(), new_app().run()
    alice.sidebar.file_uploader(key="upload").upload("alice.png", red_png(), "image/png")
    alice.run()
    bob.sidebar.file_uploader(key="upload").upload("bob.png", red_png(), "image/png")  # the same bytes
    bob.run()
    carol = new_app().run()
    for at, name in ((alice, "`alice.png`"), (bob, "`bob.png`"), (carol, "Coffee cup")):
        at.switch_page(PAGES[0]).run()
        captions = " ".join(c.value for c in at.caption)
        assert f"image: {name}" in captions, (name, captions)
        assert sum(n in captions for n in ("alice", "bob", "Coffee")) == 1


# ------------------------------------------------------------------ defect 7: no image work on a rerun


def test_reruns_do_no_image_work(monkeypatch):
    """Repro of defect 7: crop_for_display ran on every sidebar run (a 1x10000 strip: 1-1.7 s)."""
    calls = []
    real_decode, real_crop = M.decode_image, images.crop_for_display
    monkeypatch.setattr(M, "decode_image", lambda *a, **k: calls.append("decode") or real_decode(*a, **k))
    # the display crop is the live model's transform; the fallback's is images.crop_for_display
    monkeypatch.setattr(images, "crop_for_display", lambda *a, **k: calls.append("crop") or real_crop(*a, **k))
    at = new_app().run()
    calls.clear()
    at.sidebar.file_uploader(key="upload").upload("strip.png", enc(noise((400, 20))), "image/png")
    at.run()
    assert_working(at)
    assert calls.count("decode") == 1 and calls.count("crop") == 2  # the network's input and the display crop
    before = len(calls)
    for seed in range(1, 6):
        at.sidebar.number_input(key="seed").set_value(seed).run()
        assert_clean(at)
    at.switch_page(PAGES[0]).run()
    assert at.metric[0].label.startswith("γ")
    assert len(calls) == before  # no decode, no crop on reruns or page switches


def test_thin_upload_is_refused_with_a_message():
    at = new_app().run()
    at.sidebar.file_uploader(key="upload").upload("thin.png", enc(noise((1, 10000))), "image/png")
    at.run()
    assert not at.exception
    assert "more than 20 times" in at.error[0].value and "Showing the sample instead" in at.error[0].value
    assert "image: Coffee cup" in " ".join(c.value for c in at.caption)


# ------------------------------------------------------------------ defect 9: file names

HOSTILE_NAMES = [
    "![x](https:evil.example).png",
    "[click](javascript:alert(1)).png",
    "<img src=x onerror=alert(1)>.png",
    "**bold** _it_ ~~gone~~ # head.png",
    ":red[alert] :material/home: :smile: $x^2$.png",
    "www.evil.example.png",
    "photo\u202egnp.png",
    "line\nbreak\r\n# heading.png",
    "`code` ``more``.png",
    "../../etc/passwd.png",
    "تصویر 🐱.png",
    "x" * 251 + ".png",
]


def assert_inert(at: AppTest, name: str) -> None:
    """The name appears only inside code spans, never as Markdown."""
    for text in texts(at):
        rest = outside_code(text)
        for marker in ("evil", "javascript", "<img", "**bold**", ":red[", "$x", "passwd", "\u202e", "``"):
            assert marker not in rest, (marker, text)
        assert len(text) < 700, text


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_file_names_are_shown_as_plain_text(name):
    """Repro of defect 9: '![x](https:evil.example).png' made the browser fetch evil.example."""
    at = new_app().run()
    at.sidebar.file_uploader(key="upload").upload(name, red_png(), "image/png")
    at.run()
    assert_working(at)
    assert_inert(at, name)
    assert "image: `" in " ".join(c.value for c in at.caption)  # the upload is used, as a code span
    at.sidebar.file_uploader(key="upload").clear().upload(name, b"not an image", "image/png").run()
    assert not at.exception
    assert_inert(at, name)
    assert at.error and "Showing the sample instead" in at.error[0].value


@pytest.mark.parametrize("length", [256, 300, 5000])
def test_overlong_names_are_refused_with_a_message(length):
    name = "n" * (length - 4) + ".png"
    at = new_app().run()
    at.sidebar.file_uploader(key="upload").upload(name, red_png(), "image/png")
    at.run()
    assert not at.exception
    message = at.error[0].value
    assert f"is {length:,} characters long; the limit is 255" in message and len(message) < 300
    assert "image: Coffee cup" in " ".join(c.value for c in at.caption)
    assert at.table[0].value.iloc[0]["class"] == "espresso"


# ------------------------------------------------------------------ upload fuzz through the app

UPLOADS = {name: (data, expect) for name, data, expect in hostile_uploads()}
UPLOADS.update({name: (red_png(), (300, 200)) for name in HOSTILE_NAMES[:6]})


def test_at_least_fifty_app_uploads():
    assert len(UPLOADS) >= 50


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """One session for the whole fuzz: every upload replaces the last, as a student would."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TORCH_HOME", str(tmp_path_factory.getbasetemp() / "torch-home"))  # as hermetic_model
        mp.setenv("DROPBLOCK_LAB_OFFLINE", "1")
        mp.delenv("DROPBLOCK_LAB_WEIGHTS", raising=False)
        yield new_app().run()


@pytest.mark.parametrize("name", UPLOADS)
def test_hostile_upload_ends_in_a_message_or_the_image_and_a_working_app(home, name):
    data, expect = UPLOADS[name]
    at = home
    at.sidebar.file_uploader[0].clear().upload(name, data, "application/octet-stream")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    captions = " ".join(c.value for c in at.caption)
    shown = ui.text.plain(name, 48, keep_end=6)
    if isinstance(expect, str):
        assert len(at.error) == 1 and shown in at.error[0].value, (name, [e.value for e in at.error])
        assert "Showing the sample instead" in at.error[0].value
        assert re.search(expect, at.error[0].value, re.IGNORECASE), at.error[0].value
        assert "image: Coffee cup" in captions
    else:
        assert not at.error, [e.value for e in at.error]
        assert f"image: {shown}" in captions
    assert at.sidebar.slider(key="keep_prob") is not None and len(at.table[0].value) == 5
    at.sidebar.number_input(key="seed").set_value(len(name) % 50).run()  # and a rerun still works
    assert not at.exception and len(at.table[0].value) == 5
    assert len(at.error) == (1 if isinstance(expect, str) else 0)
