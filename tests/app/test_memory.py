"""Memory is bounded by what the README states: the default model pinned, two others, nothing more.

Before, the clean-pass cache held each model it had served (up to 8), so 10 switches of network
took a server from 1.36 to 3.0 GB and kept it after the tabs closed.
"""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

import models as M
import ui.state
from models.loading import LoadedModel

from .conftest import assert_clean, new_app

ARCHS = ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "wide_resnet50_2", "resnext50_32x4d"]


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def live_models() -> list[LoadedModel]:
    gc.collect()
    return [o for o in gc.get_objects() if isinstance(o, LoadedModel)]


def switch(at, arch: str) -> None:
    at.sidebar.selectbox(key="arch").set_value(arch).run()
    at.sidebar.selectbox(key="weights").set_value("untrained").run()  # no download: random weights, real sizes
    assert_clean(at)
    assert M.ARCHITECTURES[arch] in " ".join(c.value for c in at.caption)


def test_twenty_model_switches_keep_the_default_and_two_others():
    ui.state._models.clear()
    earlier = weakref.WeakSet(live_models())  # other tests' models (their own caches): not this test's
    at = new_app().run()
    assert_clean(at)
    for arch in ARCHS:  # every network once: the plateau
        switch(at, arch)
    gc.collect()
    plateau = rss_mb()
    # 20 more, ending as the first cycle ended: the cache then holds the same models as at the plateau
    for arch in [ARCHS[(3 * i + 1) % len(ARCHS)] for i in range(18)] + ARCHS[-2:]:
        switch(at, arch)
    cache = ui.state._models()
    held = len(cache.pinned) + len(cache.others)
    assert len(cache.others) <= cache.capacity == 2
    alive = [m for m in live_models() if m not in earlier]  # (collects garbage first)
    # only the models the cache holds (and the CPU copy of none) are alive: nothing else keeps one
    assert len(alive) <= held, [m.summary for m in alive]
    assert rss_mb() <= 1.10 * plateau, (plateau, rss_mb())


def test_five_large_multi_file_sets_leave_memory_at_its_plateau():
    """16 uploads of ~19 MB each added 620 MB that stayed after the tab closed: the set kept every
    file's bytes. A set now keeps each image at the network's size, the page holds the last 4 sets,
    and the files of one set are bounded together (tests/app/test_upload_limits.py)."""
    import io

    from PIL import Image

    import ui.imageset
    from models.imageset import read_files

    def big_set(n: int) -> list[tuple[str, bytes]]:  # 16 photos' worth of decoding, each distinct
        files = []
        for i in range(16):
            buf = io.BytesIO()
            Image.new("RGB", (3000, 2000), (n * 40 % 256, i * 15, 90)).save(buf, "PNG")
            files.append((f"set{n}-{i}.png", buf.getvalue()))
        return files

    ui.imageset._SETS.clear()
    for n in range(2):  # the plateau: the page's set cache holding sets, one decode's buffers freed
        ui.imageset._SETS.put(f"set{n}", read_files(big_set(n), f"set {n}"))
    gc.collect()
    plateau = rss_mb()
    for n in range(2, 7):
        imageset = read_files(big_set(n), f"set {n}")
        assert len(imageset.images) == 16, [r.reason for r in imageset.rejected]
        ui.imageset._SETS.put(f"set{n}", imageset)
    gc.collect()
    assert len(ui.imageset._SETS) <= 4
    assert rss_mb() <= 1.10 * plateau, (plateau, rss_mb())
    ui.imageset._SETS.clear()
