"""Every upload limit says what it enforces, and the transport lets each through.

Before, the zip uploader's label and the README said 64 MB while the server's transport limit
(``server.maxUploadSize``) was 25 MB for every widget: a 30 MB zip was refused with a connection
reset. Now the transport takes the largest upload any widget takes (a zip), and each uploader
sets, states and checks its own.
"""

from __future__ import annotations

import tomllib

import pytest

import models.imageset as S
import ui.inputs
from ui.i18n import tr

from .conftest import ROOT, assert_clean, new_app


def uploaders(at) -> dict[str, int]:
    """Each file uploader on the page: label -> the limit it sets (MB)."""
    return {e.proto.label: e.proto.max_upload_size_mb for e in at.get("file_uploader")}


def transport_mb() -> int:
    return tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())["server"]["maxUploadSize"]


def test_each_uploader_states_the_limit_it_sets_and_the_transport_takes_the_largest():
    at = new_app().run()
    assert_clean(at)
    seen = dict(uploaders(at))
    single = seen["…or upload your own"]
    assert single == ui.inputs.MAX_UPLOAD_BYTES // 2**20 == 25
    at.switch_page("pages/7_Image_set.py").run()
    for source in ("files", "zip"):
        at.radio(key="set_source").set_value(source).run()
        assert_clean(at)
        seen.update(uploaders(at))
    files = next(mb for label, mb in seen.items() if label.startswith("Images (up to"))
    zipped = next(mb for label, mb in seen.items() if label.startswith("A zip of images"))
    assert files == S.MAX_MEMBER_BYTES // 2**20 and zipped == S.MAX_ZIP_BYTES // 2**20 == 64
    for label, mb in seen.items():  # the label says the limit the widget sets
        if "MB" in label:
            assert f"{mb} MB" in label, (label, mb)
    assert transport_mb() == max(seen.values())  # nothing a widget accepts is cut off by the transport


def test_the_readme_states_the_same_limits():
    readme = (ROOT / "README.md").read_text()
    assert f"{S.MAX_ZIP_BYTES // 2**20} MB zipped" in readme
    assert f"server.maxUploadSize = {transport_mb()}" in readme


def test_several_files_are_bounded_in_all_like_a_zips_members(monkeypatch):
    monkeypatch.setattr(S, "MAX_TOTAL_BYTES", 3000)
    files = [(f"{i}.png", bytes(1200)) for i in range(4)]  # 1,200 bytes each: the third passes 3,000
    result = S.read_files(files, "4 files")
    why = {r.name: tr(r.reason) for r in result.rejected}
    assert set(why) == {"0.png", "1.png", "2.png", "3.png"}
    assert all("together pass" in why[n] for n in ("2.png", "3.png"))
    assert not any("together pass" in why[n] for n in ("0.png", "1.png"))  # refused for what they are


@pytest.mark.parametrize("n", [1, 5])
def test_a_set_holds_no_file_bytes(n):
    """A set keeps its images at the network's size, never the uploads' bytes (620 MB were held)."""
    from tests.hostile_files import enc, noise

    result = S.read_files([(f"{i}.png", enc(noise((64 + i, 48)))) for i in range(n)], "files")
    assert len(result.images) == n
    held = [v for img in result.images for v in vars(img).values() if isinstance(v, (bytes, bytearray))]
    assert not held
