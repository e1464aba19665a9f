"""The image-set page on the bundled samples, through AppTest (few samples, two keep_probs)."""

from __future__ import annotations

import time

from ui.imageset import BUNDLED_SET

from .conftest import assert_clean, new_app

PAGE = "pages/7_Image_set.py"


def until_final(at) -> None:
    """Rerun until the curves are whole (their downloads come with the final round): in a browser the
    refining fragment's timer brings each round; here a rerun does."""
    for _ in range(480):
        if "dl-image-set-curves" in {b.key for b in at.get("download_button")}:
            return
        time.sleep(0.5)
        at.run()
    raise AssertionError("the curves were not whole after 4 minutes")


def test_bundled_set_thumbnails_curves_and_downloads():
    at = new_app().run()
    at.switch_page(PAGE).run()
    assert_clean(at)
    assert at.radio(key="set_source").value == "bundled"
    captions = [i.caption for e in at.get("image") for i in e.proto.imgs]
    assert len(captions) == len(BUNDLED_SET) >= 24 and captions[0].startswith("coffee\\.jpg\\: espresso \\(0\\.")  # escaped
    assert any("4 samples per point already give a smooth curve" in c.value for c in at.caption)  # measured, said
    assert any("Press" in i.value for i in at.info)

    at.select_slider(key="set_samples").set_value(2)
    at.select_slider(key="set_points").set_value(2)
    at.button(key="set_compute").click().run()
    assert_clean(at)
    assert any("Over 32 images" in h.value for h in at.subheader)  # the first answer, at once
    until_final(at)
    table = at.table[-1].value
    assert list(table["keep_prob"]) == ["1", "0.75"]
    assert list(table.columns[1:]) == ["DropBlock b=1", "DropBlock b=7", "SpatialDropout",
                                       "DropBlock b=7, paper placement"]
    assert all(v == "100% ± 0%" for v in table.iloc[0, 1:])  # keep_prob 1: nothing dropped
    keys = {b.key for b in at.get("download_button")}
    assert {"dl-image-set-curves", "data-image-set-curves.csv", "data-image-set-samples.npz"} <= keys
    assert not [b for b in at.button if b.key == "set_cancel"]  # only while computing

    at.run()  # cached: same curves, no recomputation needed
    assert_clean(at)
    assert at.table[-1].value.equals(table)


def _png(color: tuple[int, int, int]) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 48), color).save(buf, "PNG")
    return buf.getvalue()


def test_zip_and_several_files_through_the_page(tmp_path, monkeypatch):
    """A zip with good and hostile members, and several files at once, go through the page's own
    uploaders: thumbnails for the good ones, one reason per refused member, nothing written."""
    import io
    import os
    import zipfile

    monkeypatch.chdir(tmp_path)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("red.png", _png((200, 20, 20)))
        z.writestr("blue.png", _png((20, 20, 200)))
        z.writestr("../../escape.png", _png((0, 200, 0)))
        z.writestr("notes.txt", b"not an image")
    at = new_app().run()
    at.switch_page(PAGE).run()
    at.radio(key="set_source").set_value("zip").run()
    assert any("Upload images" in i.value for i in at.info)
    at.file_uploader(key="set_zip").upload("set.zip", buf.getvalue(), "application/zip")
    at.run()
    assert_clean(at)
    captions = [i.caption for e in at.get("image") for i in e.proto.imgs]
    assert len(captions) == 2 and any("red" in c for c in captions) and any("blue" in c for c in captions)
    refused = at.dataframe[0].value
    assert len(refused) == 2 and {"escape", "notes"} <= {n for name in refused["file"] for n in ("escape", "notes")
                                                        if n in name}
    assert os.listdir(tmp_path) == []  # nothing unpacked

    at.radio(key="set_source").set_value("files").run()
    uploader = at.file_uploader(key="set_files")
    uploader.upload("a.png", _png((10, 10, 10)), "image/png")
    uploader.upload("b.png", b"\x89PNG broken", "image/png")
    at.run()
    assert_clean(at)
    captions = [i.caption for e in at.get("image") for i in e.proto.imgs]
    assert len(captions) == 1 and "a" in captions[0]
    assert len(at.dataframe[0].value) == 1
    assert os.listdir(tmp_path) == []


def test_a_rerun_from_the_page_keeps_the_sidebar_settings():
    """The page's button calls st.rerun() before the sidebar is drawn (the sidebar comes after the
    page): the interrupted run must not lose the sidebar's settings."""
    at = new_app().run()
    at.switch_page(PAGE).run()
    at.sidebar.slider(key="keep_prob").set_value(0.7)
    at.sidebar.slider(key="block_size").set_value(3)
    at.sidebar.number_input(key="seed").set_value(17)
    at.sidebar.selectbox(key="image").set_value("chelsea")
    at.run()
    at.select_slider(key="set_samples").set_value(2)
    at.select_slider(key="set_points").set_value(2)
    at.button(key="set_compute").click().run()
    assert_clean(at)
    assert at.sidebar.slider(key="keep_prob").value == 0.7
    assert at.sidebar.slider(key="block_size").value == 3
    assert at.sidebar.number_input(key="seed").value == 17
    assert at.sidebar.selectbox(key="image").value == "chelsea"
    assert at.query_params["kp"] in ("0.7", ["0.7"]) and at.query_params["seed"] in ("17", ["17"])


def test_through_the_page_each_image_is_decoded_once(monkeypatch):
    """Issue 22 §5: reading the zip, the thumbnails, the clean passes and the curves decode each image
    once in all (the curve used to decode the whole set again)."""
    import io
    import zipfile

    from PIL import Image, ImageFile

    decoded: list[int] = []
    load = ImageFile.ImageFile.load

    def counting(self):
        if getattr(self, "tile", None) and self.format == "PNG":
            decoded.append(self.size[0])
        return load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", counting)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for i in range(3):
            png = io.BytesIO()
            Image.new("RGB", (1500, 1500), (40 * i, 90, 200)).save(png, "PNG")
            z.writestr(f"big{i}.png", png.getvalue())
    at = new_app().run()
    at.switch_page(PAGE).run()
    at.radio(key="set_source").set_value("zip").run()
    at.file_uploader(key="set_zip").upload("big.zip", buf.getvalue(), "application/zip")
    at.run()
    assert_clean(at)
    assert len([i for e in at.get("image") for i in e.proto.imgs]) == 3
    at.select_slider(key="set_samples").set_value(2)
    at.select_slider(key="set_points").set_value(2)
    at.button(key="set_compute").click().run()
    assert_clean(at)
    assert list(at.table[-1].value["keep_prob"]) == ["1", "0.75"]
    assert decoded == [1500, 1500, 1500]  # once each, at their full size, and never again


def test_the_sidebars_keep_prob_and_block_size_leave_the_set_curves_as_they_are(monkeypatch):
    """The curves sweep their own keep_probs and block sizes: moving the sidebar's keep_prob or
    block_size on this page starts no job and keeps the curves shown (they used to be re-keyed on the
    whole spec, so the page started a new, identical computation, possibly minutes long)."""
    import ui.imageset

    computed = []
    real = ui.imageset.compute_set_curve_rounds
    monkeypatch.setattr(ui.imageset, "compute_set_curve_rounds", lambda *a, **k: computed.append(1) or real(*a, **k))
    at = new_app().run()
    at.sidebar.slider(key="keep_prob").set_value(0.85).run()  # a value no other test computed the curves at
    at.switch_page(PAGE).run()
    at.select_slider(key="set_samples").set_value(2)
    at.select_slider(key="set_points").set_value(2)
    at.button(key="set_compute").click().run()
    assert_clean(at)
    assert any("Over 32 images" in h.value for h in at.subheader)  # the first answer, at once
    until_final(at)
    table = at.table[-1].value
    started = len(computed)
    for key, value in (("keep_prob", 0.5), ("block_size", 3)):
        at.sidebar.slider(key=key).set_value(value).run()
        assert_clean(at)
        assert not any("Press" in i.value for i in at.info), key  # no new computation asked for
        assert at.table[-1].value.equals(table), key
        assert len(computed) == started, key  # no job started
