"""The image-set page on the bundled samples, through AppTest (few samples, two keep_probs)."""

from __future__ import annotations

from .conftest import assert_clean, new_app

PAGE = "pages/7_Image_set.py"


def test_bundled_set_thumbnails_curves_and_downloads():
    at = new_app().run()
    at.switch_page(PAGE).run()
    assert_clean(at)
    assert at.radio(key="set_source").value == "bundled"
    captions = [i.caption for e in at.get("image") for i in e.proto.imgs]
    assert len(captions) == 4 and captions[0].startswith("Coffee cup\\: espresso \\(0\\.")  # escaped Markdown
    assert any("Press" in i.value for i in at.info)

    at.select_slider(key="set_samples").set_value(2)
    at.select_slider(key="set_points").set_value(2)
    at.button(key="set_compute").click().run()
    assert_clean(at)
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
