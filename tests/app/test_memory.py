"""Memory is bounded by what the README states: the default model pinned, two others, nothing more.

Before, the clean-pass cache held each model it had served (up to 8), so 10 switches of network
took a server from 1.36 to 3.0 GB and kept it after the tabs closed; 16 uploads of ~19 MB stayed
as 620 MB. Each measurement runs in a fresh process (the app through AppTest, as a server runs it):
the suite's other tests keep their own caches in this one, which would move its RSS.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from .conftest import ROOT

PRELUDE = '''
import gc, json, os, sys
from pathlib import Path
sys.path.insert(0, {root!r})

def rss_mb():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
'''

SWITCHES = PRELUDE + '''
from streamlit.testing.v1 import AppTest
import models as M
import ui.inputs
from models.loading import LoadedModel

ARCHS = ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "wide_resnet50_2", "resnext50_32x4d"]
at = AppTest.from_file(os.path.join({root!r}, "app.py"), default_timeout=120).run()

def switch(arch):
    at.sidebar.selectbox(key="arch").set_value(arch).run()
    at.sidebar.selectbox(key="weights").set_value("untrained").run()  # no download: random weights, real sizes
    assert not at.exception and not at.error, [e.value for e in at.exception] + [e.value for e in at.error]
    assert M.ARCHITECTURES[arch] in " ".join(c.value for c in at.caption)

for arch in ARCHS:  # every network once: the plateau
    switch(arch)
gc.collect()
plateau = rss_mb()
# 20 more, ending as the first cycle ended: the cache then holds the same models as at the plateau
for arch in [ARCHS[(3 * i + 1) % len(ARCHS)] for i in range(18)] + ARCHS[-2:]:
    switch(arch)
gc.collect()
cache = ui.inputs.models()
print(json.dumps({{"plateau": plateau, "end": rss_mb(), "capacity": cache.capacity, "others": len(cache.others),
                  "held": len(cache.pinned) + len(cache.others),
                  "alive": [o.summary for o in gc.get_objects() if isinstance(o, LoadedModel)]}}))
'''

SETS = PRELUDE + '''
import io
from PIL import Image
import ui.imageset
from models.imageset import read_files

def big_set(n):  # 16 photos' worth of decoding, each distinct
    files = []
    for i in range(16):
        buf = io.BytesIO()
        Image.new("RGB", (3000, 2000), (n * 40 % 256, i * 15, 90)).save(buf, "PNG")
        files.append((f"set{{n}}-{{i}}.png", buf.getvalue()))
    return files

for n in range(2):  # the plateau: the page's set cache holding sets, one decode's buffers freed
    ui.imageset.read.results().put(f"set{{n}}", read_files(big_set(n), f"set {{n}}"))
gc.collect()
plateau = rss_mb()
used = []
for n in range(2, 7):
    imageset = read_files(big_set(n), f"set {{n}}")
    used.append(len(imageset.images))
    ui.imageset.read.results().put(f"set{{n}}", imageset)
gc.collect()
print(json.dumps({{"plateau": plateau, "end": rss_mb(), "used": used, "held": len(ui.imageset.read.results())}}))
'''


def measure(script: str) -> dict:
    run = subprocess.run([sys.executable, "-c", script.format(root=str(ROOT))], cwd=ROOT, capture_output=True,
                             text=True, timeout=900,
                             env={**os.environ, "DROPBLOCK_LAB_OFFLINE": "1"})
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_twenty_model_switches_keep_the_default_and_two_others(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty hub: the default falls back, as on CI
    got = measure(SWITCHES)
    assert got["others"] <= got["capacity"] == 2
    # only the models the cache holds are alive: nothing else (a clean-pass cache) keeps one
    assert len(got["alive"]) <= got["held"], got["alive"]
    assert got["end"] <= 1.10 * got["plateau"], got


def test_five_large_multi_file_sets_leave_memory_at_its_plateau():
    """A set keeps each image at the network's size, never the files' bytes; the page holds the last 4
    sets, and the files of one set are bounded together (tests/app/test_upload_limits.py)."""
    got = measure(SETS)
    assert got["used"] == [16] * 5 and got["held"] <= 4, got
    assert got["end"] <= 1.10 * got["plateau"], got
