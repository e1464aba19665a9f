"""简体中文: every marked string has a translation, the catalog is clean, and no visible literal is unmarked.

The catalog's tool is ``python -m ui.i18n`` (ui/i18n_build.py); these tests call the same
functions. The runtime check (every page in Chinese, nothing untranslated asked for) is
tests/app/test_i18n.py.
"""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

import pytest

from models.images import ImageError, decode_image
from models.imageset import SetError, read_zip
from models.text import N_, Text
from models.weights_files import WeightsFileError
from ui import i18n
from ui import i18n_build as B

ROOT = Path(__file__).resolve().parents[1]
LANG = "zh_CN"


@pytest.fixture(scope="module")
def found():
    return B.extract()


def test_extraction_finds_the_marked_strings(found):
    # one from each kind of place: a page, the sidebar, models/ (N_), a plural (ngettext)
    assert "Mask explorer" in found and "Regulariser" in found
    assert "The file is empty." in found  # models/images.py, N_
    assert found["{title}: waiting for the server, {n} request ahead of yours…"].plural is not None
    assert len(found) > 300


def test_every_extracted_string_has_a_chinese_translation(found):
    gaps = B.missing(LANG, found)
    assert not gaps, "untranslated (run python -m ui.i18n --print-missing):\n" + "\n".join(
        f"{e.where}: {e.msgid!r}" for e in gaps)


def test_a_missing_translation_is_reported(found, tmp_path):
    """The check above can fail: the same catalog with one entry taken out is caught."""
    copy = tmp_path / "locale" / LANG / "LC_MESSAGES"
    copy.mkdir(parents=True)
    text = B.po_path(LANG).read_text(encoding="utf-8")
    entry = '\nmsgid "Regulariser"\nmsgstr "'
    assert entry in text
    start = text.index(entry)
    end = text.index("\n\n", start + 1) if "\n\n" in text[start + 1:] else len(text)
    (copy / "dropblock_lab.po").write_text(text[:start] + text[end:], encoding="utf-8")
    gaps = B.missing(LANG, found, root=tmp_path)
    assert [e.msgid for e in gaps] == ["Regulariser"]


def test_no_entry_is_duplicated():
    assert B.duplicates(B.po_path(LANG).read_text(encoding="utf-8")) == []


def test_duplicates_are_found():
    po = 'msgid ""\nmsgstr ""\n\nmsgid "a"\nmsgstr "甲"\n\nmsgid "b"\nmsgstr "乙"\n\nmsgid ""\n"a"\nmsgstr "甲"\n'
    assert B.duplicates(po) == ["a"]


def test_translations_keep_their_placeholders():
    """A translation uses exactly the fields of its msgid, so .format() never fails in Chinese."""
    fields = re.compile(r"\{(\w*)[^{}]*\}")
    catalog = B.read_catalog(LANG)
    bad = []
    for message in catalog:
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        want = set(fields.findall(ids[0]))
        bad += [(ids[0], s) for s in strings if s and set(fields.findall(s)) != want]
    assert not bad, bad


def test_the_compiled_catalog_is_in_sync_with_the_po():
    assert B.mo_path(LANG).exists(), "run python -m ui.i18n"
    assert B.mo_in_sync(LANG), "the .mo is stale: run python -m ui.i18n"


def test_a_stale_mo_is_detected(tmp_path):
    copy = tmp_path / "locale" / LANG / "LC_MESSAGES"
    copy.mkdir(parents=True)
    shutil.copy(B.po_path(LANG), copy)
    (copy / "dropblock_lab.mo").write_bytes(B.compile_mo(LANG))
    assert B.mo_in_sync(LANG, root=tmp_path)
    with open(copy / "dropblock_lab.po", "a", encoding="utf-8") as f:
        f.write('\nmsgid "a string added later"\nmsgstr "后来加的"\n')
    assert not B.mo_in_sync(LANG, root=tmp_path)


# ------------------------------------------------------------------ messages from models/


def test_model_messages_stay_english_and_translate_in_the_ui():
    with pytest.raises(ImageError) as info:
        decode_image(b"")
    assert str(info.value) == "The file is empty."
    with i18n.use_language("zh"):
        assert i18n.tr(info.value) != "The file is empty." and "空" in i18n.tr(info.value)

    err = WeightsFileError("bad.pth", "too large")
    assert str(err) == "could not load bad.pth: too large"
    with i18n.use_language("zh"):
        shown = i18n.tr(err)
    assert "bad.pth" in shown and "too large" not in shown and "过大" in shown

    with pytest.raises(SetError) as info:
        read_zip(b"x" * 100)
    with i18n.use_language("zh"):
        assert "zip" in i18n.tr(info.value) and "This file" not in i18n.tr(info.value)


def test_text_is_its_english_sentence():
    t = Text(N_("The zip holds {entries:,} entries; at most {limit:,} are read at once. Nothing was opened."),
             entries=10_000, limit=1_000)
    assert t == "The zip holds 10,000 entries; at most 1,000 are read at once. Nothing was opened."
    assert "10,000 entries" in t and isinstance(t, str)
    import pickle

    back = pickle.loads(pickle.dumps(t))
    assert back == t and back.fields == t.fields
    with i18n.use_language("zh"):
        assert "10,000" in i18n.tr(t) and "zip" in i18n.tr(t).lower() and "entries" not in i18n.tr(t)


def test_english_is_the_source_language():
    with i18n.use_language("en"):
        assert i18n._("Regulariser") == "Regulariser"
    with i18n.use_language("zh"):
        assert i18n._("Regulariser") == "正则化"
        assert i18n._("keep_prob").startswith("保留概率")


def test_figures_draw_chinese_labels_without_missing_glyphs():
    """Latin from DejaVu Sans, Chinese from Noto Sans CJK SC (apt: fonts-noto-cjk): no tofu boxes."""
    import warnings

    from ui import chartpng, render

    assert chartpng.cjk_font_path() is not None, "install the fonts-noto-cjk package (README set-up)"
    chartpng.matplotlib_ready()
    fig = chartpng.Figure()
    ax = fig.subplots()
    with i18n.use_language("zh"), warnings.catch_warnings():
        warnings.simplefilter("error")  # "Glyph ... missing from font(s)" is a UserWarning
        ax.plot([1.0, 0.5], [0.2, 0.8], label=i18n._("without DropBlock"))
        ax.set(xlabel=i18n._("keep_prob at inference"), ylabel="p(espresso) − 1",
               title=i18n._("Top-1 unchanged (mean ± MC std)"))
        ax.legend()
        chartpng.png_bytes(fig)
    assert "推理" in ax.get_xlabel()
    assert render._label_font().getname()[0] == "Noto Sans CJK SC"  # the mask grid's row labels


# ------------------------------------------------------------------ no unmarked literal on screen

# st.* (and columns', containers' and placeholders') calls that show their first argument
DISPLAY = {"title", "header", "subheader", "markdown", "caption", "write", "info", "warning", "error", "success",
           "button", "slider", "select_slider", "selectbox", "multiselect", "radio", "toggle", "checkbox",
           "number_input", "text_input", "file_uploader", "expander", "tabs", "page_link", "download_button",
           "metric", "progress", "spinner", "toast", "status", "popover", "text"}
# keywords that are shown, on any call (Streamlit's and matplotlib's)
SHOWN_KEYWORDS = {"label", "help", "caption", "text", "title", "xlabel", "ylabel", "placeholder", "show_spinner"}
# literals shown as they are, on purpose
ALLOWED = {
    "DropBlock Lab": "the product's name (page title and heading), the same in every language",
    "Language / 语言": "the language switch is labelled in both languages, so either reader finds it",
}
# format_func=<dict>.get shows the dict's values untranslated; these are names, not words
ALLOWED_GET = {
    "LANGUAGES.get": "each language's own name (English, 简体中文)",
    "M.ARCHITECTURES.get": "network names (ResNet-50, ...)",
}
WORDS = re.compile(r"[A-Za-z]{2,}")


def _wrapped(node: ast.AST) -> bool:
    """``_("…")``, ``ngettext(…)``, or either followed by ``.format(…)``."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
        return _wrapped(node.func.value)
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("_", "ngettext")


def _literal_words(node: ast.AST) -> list[str]:
    """The worded string literals in an expression that is not itself wrapped (concatenations, f-strings,
    conditionals), skipping anything inside ``_()``."""
    if _wrapped(node):
        return []
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value] if WORDS.search(node.value) and node.value not in ALLOWED else []
    if isinstance(node, ast.JoinedStr):
        text = "".join(v.value for v in node.values if isinstance(v, ast.Constant))
        return [text] if WORDS.search(text) else []
    if isinstance(node, ast.BinOp):
        return _literal_words(node.left) + _literal_words(node.right)
    if isinstance(node, ast.IfExp):
        return _literal_words(node.body) + _literal_words(node.orelse)
    if isinstance(node, (ast.List, ast.Tuple)):
        return [w for e in node.elts for w in _literal_words(e)]
    return []


def _table_keys(node: ast.AST) -> list[str]:
    """Literal column names in a table's rows (dict keys)."""
    out = []
    for sub in ast.walk(node):
        if isinstance(sub, ast.Dict):
            out += [k.value for k in sub.keys
                    if isinstance(k, ast.Constant) and isinstance(k.value, str) and WORDS.search(k.value)]
    return out


def ui_files() -> list[Path]:
    ui = [p for p in sorted((ROOT / "ui").glob("*.py")) if p.name != "i18n_build.py"]  # a command-line tool
    return [ROOT / "app.py", *sorted((ROOT / "pages").glob("*.py")), *ui]


def unmarked(path: Path, root: Path = ROOT) -> list[str]:
    problems = []
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        where = f"{path.relative_to(root)}:{node.lineno}"
        attr = node.func.attr
        if "log" in ast.unparse(node.func.value).lower():  # a logger's warning() goes to the server log
            continue
        if attr in DISPLAY and node.args:
            problems += [f"{where}: {attr}({w!r})" for w in _literal_words(node.args[0])]
        if attr in ("table", "dataframe") and node.args:
            problems += [f"{where}: {attr} column {k!r}" for k in _table_keys(node.args[0])]
        for kw in node.keywords:
            if kw.arg in SHOWN_KEYWORDS:
                problems += [f"{where}: {attr}({kw.arg}={w!r})" for w in _literal_words(kw.value)]
            if kw.arg == "format_func" and isinstance(kw.value, ast.Attribute) and kw.value.attr == "get":
                name = ast.unparse(kw.value)
                if name not in ALLOWED_GET:
                    problems.append(f"{where}: format_func={name} shows its values untranslated")
    return problems


@pytest.mark.parametrize("path", ui_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_visible_literals_are_marked(path):
    assert unmarked(path) == []


def test_the_static_check_catches_an_unmarked_label(tmp_path):
    page = tmp_path / "page.py"
    page.write_text('import streamlit as st\nst.slider("Map size", 1, 3)\nst.caption(f"{n} images")\n'
                    'st.radio("x", [1], format_func=PLACES.get)\nst.table([{"recipe": 1}])\n'
                    'st.title(_("Fine"))\nst.metric(f"p({x})", 1)\n'
                    '_log.warning("for the server log")\nst.warning("Shown to the visitor")\n')
    problems = unmarked(page, root=tmp_path)
    assert len(problems) == 5, problems


HAN = "\u4e00-\u9fff"
# Half-width , ; : next to Chinese text or after a number read as decimal or thousands separators
# ("0.813,100% 的采样"): Chinese text takes ，；： there. A thousands separator (17,000), a ratio
# ({aspect}:1), code and formulas keep their ASCII.
HALF_WIDTH = re.compile(rf"N[,;]|N:(?![0-9])|[0-9%)][,;](?![0-9]{{3}})|[,;:] ?[{HAN}]|[{HAN}][,;:]")


def half_width_punctuation(text: str) -> bool:
    text = re.sub(r"\{[^{}]*\}", "N", text)  # a placeholder: a number or a name
    text = re.sub(r"`[^`]*`|\$[^$]*\$|\b[a-z_.]+\([^)]*\)", "C", text)  # code and formulas
    return bool(HALF_WIDTH.search(text))


def test_chinese_text_uses_full_width_punctuation_around_numbers():
    catalog = B.read_catalog(LANG)
    # Chinese text only: a name kept as it is ("AmoebaNet-B (6, 256)") holds no Han character
    bad = [m.string for m in catalog if m.id and isinstance(m.string, str) and re.search(f"[{HAN}]", m.string)
           and half_width_punctuation(m.string)]
    assert not bad, bad
    assert half_width_punctuation("p({cls}) 平均从 {clean:.3f} 变为 {mean:.3f},{kept:.0%} 的采样")  # the check can fail
    assert not half_width_punctuation("17,000 张图像，长宽比不超过 {aspect}:1，db.linear_keep_prob({step}, {total})")
    with i18n.use_language("zh"):
        assert i18n.listing(["1", "0.9", "0.8"]) == "1、0.9、0.8" and i18n.listing(["a", "b"], clauses=True) == "a；b"
    assert i18n.listing(["1", "0.9"]) == "1, 0.9"
