"""The mask explorer's "Animation for slides": export a GIF and an MP4 through the page, in English and 简体中文."""

from __future__ import annotations

import ast
import io

import av
import pytest
from PIL import Image
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

from models import animation as A
from ui import i18n

from .conftest import PAGES, ROOT, assert_clean, new_app



def explorer():
    at = new_app()
    at.session_state["anim_open"] = True  # the section draws its widgets only while open
    return at.run().switch_page(PAGES[0]).run()


def test_the_section_draws_its_widgets_only_while_open():
    """A slider move on the page sends none of the animation's widgets while the section is closed."""
    at = new_app().run().switch_page(PAGES[0]).run()
    assert [e.label for e in at.expander if e.label == "Animation for slides"]
    assert not [w for w in at.radio if w.key == "anim_form"] and not [b for b in at.button if b.key == "anim_render"]
    at.slider(key="keep_prob").set_value(0.8).run()
    assert not [w for w in at.radio if w.key == "anim_form"]
    at.session_state["anim_open"] = True  # the visitor opens it
    at.run()
    assert_clean(at)
    assert at.radio(key="anim_form").value == "seeds" and at.button(key="anim_render")


@pytest.fixture
def served(monkeypatch) -> dict[str, tuple[bytes, str | None]]:
    """file id -> (bytes, download file name) that Streamlit serves for media and downloads (what
    the browser gets); AppTest drops its media store after each run, so the test keeps them."""
    files: dict[str, tuple[bytes, str | None]] = {}
    original = MemoryMediaFileStorage.load_and_get_id

    def load_and_get_id(self, path_or_data, mimetype, kind, filename=None):
        file_id = original(self, path_or_data, mimetype, kind, filename)
        if isinstance(path_or_data, bytes):
            files[file_id] = (path_or_data, filename)
        return file_id

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", load_and_get_id)
    return files


def _file(served, url: str) -> tuple[bytes, str | None]:
    return served[url.rsplit("/", 1)[-1].split("?")[0].split(".")[0]]


def media_bytes(served, element) -> bytes:
    return _file(served, element.proto.imgs[0].url if hasattr(element.proto, "imgs") else element.proto.url)[0]


def export(at, fmt: str, frames: int, form: str = "seeds"):
    at.radio(key="anim_form").set_value(form)
    at.run()
    at.radio(key="anim_fmt").set_value(fmt)
    at.radio(key="anim_size").set_value("small")
    at.slider(key="anim_frames").set_value(frames)
    at.run()
    assert not at.get("download_button") or all(b.proto.label not in ("Download GIF", "Download MP4")
                                                for b in at.get("download_button"))  # nothing until asked
    at.button(key="anim_render").click().run()
    return at


def download(at, served, label: str) -> tuple[bytes, str]:
    """(bytes, file name) of the download button labelled ``label``."""
    buttons = [b for b in at.get("download_button") if b.proto.label == label]
    assert len(buttons) == 1, [b.proto.label for b in at.get("download_button")]
    return _file(served, buttons[0].proto.url)


def test_exports_a_gif_that_plays_in_the_page_with_a_download(served):
    at = export(explorer(), "gif", 5)
    assert_clean(at)
    gifs = [e for e in at.get("image") if e.proto.imgs[0].url.endswith(".gif")]
    assert len(gifs) == 1  # shown as the GIF itself, not re-encoded as a still PNG/JPEG
    shown = media_bytes(served, gifs[0])
    gif = Image.open(io.BytesIO(shown))
    assert gif.n_frames == 5 and gif.size[0] == A.WIDTHS["small"] and gif.info["loop"] == 0
    data, name = download(at, served, "Download GIF")
    assert data == shown and name == "dropblock_seeds0-4_kp0.9_b7_360px.gif"
    # seeds 0..N-1 do not depend on the sidebar's seed: moving it keeps the animation, from the cache
    at.sidebar.number_input(key="seed").set_value(3).run()
    assert_clean(at)
    again = [e for e in at.get("image") if e.proto.imgs[0].url.endswith(".gif")]
    assert len(again) == 1 and media_bytes(served, again[0]) == shown


def test_exports_an_h264_mp4_of_a_block_size_sweep(served):
    at = explorer()
    at.radio(key="anim_form").set_value("block_size").run()
    at.slider(key="anim_b_range").set_value((2, 6))
    at = export(at, "mp4", 8, form="block_size")
    assert_clean(at)
    assert [i.value for i in at.info if "block sizes" in i.value]  # 5 sizes for 8 frames: says so
    videos = at.get("video")
    assert len(videos) == 1 and videos[0].proto.loop and videos[0].proto.autoplay
    with av.open(io.BytesIO(media_bytes(served, videos[0]))) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        frames = list(container.decode(stream))
    assert len(frames) == 5 and frames[0].width % 2 == 0 and frames[0].height % 2 == 0
    data, name = download(at, served, "Download MP4")
    assert data == media_bytes(served, videos[0]) and name == "dropblock_b2-6_kp0.9_seed0_360px.mp4"


def test_changing_a_setting_asks_to_render_again():
    at = export(explorer(), "gif", 4)
    assert_clean(at)
    at.slider(key="anim_frames").set_value(6).run()
    assert_clean(at)
    assert not any(e.proto.imgs[0].url.endswith(".gif") for e in at.get("image"))
    assert any("render again" in c.value for c in at.caption)


def test_frames_above_the_cap_are_capped_and_the_caps_are_shown():
    at = explorer()
    at.radio(key="anim_size").set_value("large")
    at.slider(key="anim_frames").set_value(A.MAX_FRAMES).run()
    assert_clean(at)
    cap = A.max_frames(A.WIDTHS["large"])
    assert any(f"using {cap}" in i.value for i in at.info)
    assert any(f"{cap} large" in c.value for c in at.caption)


def test_a_failed_render_is_a_message_not_a_traceback(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("encoder exploded at /srv/secret/path")

    monkeypatch.setattr(A, "render_animation", broken)
    at = export(explorer(), "gif", 7)
    assert not at.exception
    assert [e.value for e in at.error] == [
        "The animation could not be rendered. Try other settings; the details are in the server log."]
    assert not any(e.proto.imgs[0].url.endswith(".gif") for e in at.get("image"))


# ---- 简体中文: every string this feature shows has a translation, and the Chinese export works


def _literals() -> set[str]:
    """Every literal passed to _() or N_() in ui/animation.py, plus models/animation.py's N_()."""
    found = set()
    for path in (ROOT / "ui" / "animation.py", ROOT / "models" / "animation.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("_", "N_")
                    and node.args and isinstance(node.args[0], ast.Constant)):
                found.add(node.args[0].value)
    return found


def _catalog() -> dict[str, str]:
    """msgid -> msgstr of the checked-in Chinese catalog (tests/test_i18n.py: the .mo is the .po compiled)."""
    return i18n.catalog("zh")._catalog


def test_every_string_of_the_feature_has_a_chinese_translation():
    catalog = _catalog()
    missing = sorted(s for s in _literals() if not catalog.get(s))
    assert not missing, missing
    for msgid in _literals():  # the same placeholders on both sides
        assert sorted(_fields(msgid)) == sorted(_fields(catalog[msgid])), msgid


def _fields(text: str) -> list[str]:
    import string

    return [f for _, f, _, _ in string.Formatter().parse(text) if f]


@pytest.fixture
def chinese_catalog():
    """The checked-in Chinese catalog, with no untranslated string recorded yet."""
    i18n.MISSING.clear()
    yield i18n.catalog("zh")
    i18n.MISSING.clear()


def test_chinese_export_has_translated_labels_and_runs(chinese_catalog, served):
    at = new_app()
    at.session_state["lang"] = "zh"
    at.session_state["anim_open"] = True
    with i18n.use_language("zh"):  # AppTest calls the widgets' format_func in the test's own thread
        at.run().switch_page(PAGES[0]).run()
        at.slider(key="anim_frames").set_value(4)
        at.button(key="anim_render").click().run()
    assert_clean(at)
    assert any(e.label == "幻灯片动画" for e in at.expander)
    assert any(e.proto.imgs[0].url.endswith(".gif") for e in at.get("image"))
    assert download(at, served, "下载 GIF")[1].endswith(".gif")
    assert not (_literals() & i18n.MISSING)
