"""Where one render's server time goes: py-spy samples the live app process while a protocol
session (bench/stclient.py) changes the seed on the mask explorer, then the samples are sorted
into network, mask sampling, figure drawing, image encoding, Streamlit serialisation and the rest.

py-spy (PyPI, requirements-dev.txt) reads the process from outside, so the whole server is seen:
script thread, event loop, websocket and media serving. It needs ptrace rights over the app
(same user; in some containers SYS_PTRACE). Only samples where a thread is busy are counted.

    .venv/bin/python bench/profile_render.py --changes 30
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from load import cpu_seconds, slider_probe, start_server  # noqa: E402
from stclient import Session  # noqa: E402

# First matching rule wins, checked from the innermost frame outwards.
CATEGORIES = [
    ("mask sampling", ("dropblock/functional.py", "dropblock/modules.py")),
    ("network (torch forward)", ("torch/nn/", "models/backbone.py", "torchvision/", "efficientnet", "models/engine.py",
                                 "models/compute.py")),
    ("image encoding", ("PIL/", "image_utils", "ui/render.py:_png", "_png (", "savefig", "media_file",
                        "tile_grid_html")),  # the tile grid's PNG tiles and their data: URIs
    ("figure drawing", ("matplotlib", "ui/render.py", "ui/chartpng.py", "ui/chartview.py")),
    ("Streamlit serialisation", ("google/protobuf", "forward_msg", "SerializeToString", "websocket", "uvicorn",
                                 "starlette", "streamlit/runtime", "streamlit/elements", "streamlit/delta_generator",
                                 "streamlit/web")),
]


# Leaf frames that are a thread waiting, not working (py-spy's idle detection misses some sleeps).
WAITING = ("polling_path_watcher.py:90", "concurrent/futures/thread.py:81", "threading.py:3", "(time.sleep",
           "selectors.py")


def category(stack: str) -> str | None:
    frames = stack.split(";")
    if any(w in frames[-1] for w in WAITING):
        return None
    for frame in reversed(frames):  # innermost first
        for name, needles in CATEGORIES:
            if any(n in frame for n in needles):
                return name
    return "other (Python, page code, idle wake-ups)"


async def drive(url: str, changes: int) -> float:
    session = Session(url)
    try:
        await session.open("Mask_explorer", "image=chelsea&kp=0.8&b=5&seed=100")
        t0 = time.perf_counter()
        for k in range(changes):
            await session.move("Seed", 101 + k)
        return time.perf_counter() - t0
    finally:
        await session.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=30, help="seed changes while sampling")
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--browser", action="store_true",
                        help="drive one Chromium moving sliders (bench/load.py's slider probe) instead of seed changes")
    args = parser.parse_args()
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    os.environ.setdefault("TORCH_HOME", tempfile.mkdtemp())
    server = start_server(0)
    out = Path(tempfile.mkdtemp()) / "profile.txt"
    try:
        asyncio.run(drive(server.url, 2))  # warm-up: model, clean pass
        pid = server.app_pids[0]
        cpu0 = cpu_seconds(pid)
        recorder = subprocess.Popen([spy, "record", "--pid", str(pid), "--format", "raw", "--rate", str(args.rate),
                                     "--threads", "--nonblocking", "-o", str(out)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(1.0)
        if args.browser:
            wall = sum(asyncio.run(slider_probe(server.url, args.changes))[1])
        else:
            wall = asyncio.run(drive(server.url, args.changes))
        cpu = cpu_seconds(pid) - cpu0
        recorder.send_signal(2)  # SIGINT: py-spy writes the profile and exits
        recorder.wait(timeout=60)
    finally:
        server.stop()
    counts: collections.Counter[str] = collections.Counter()
    for line in out.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if stack and (name := category(stack)) is not None:
            counts[name] += int(n)
    total = sum(counts.values()) or 1
    per = 1000 * cpu / args.changes
    what = "browser slider moves" if args.browser else "seed changes"
    print(f"{args.changes} {what} on the mask explorer (own image and parameters), "
          f"{1000 * wall / args.changes:.0f} ms each end to end; server CPU {per:.0f} ms per change")
    print(f"{'where the server is busy':<42}{'share':>8}{'ms per change':>16}")
    for name, n in counts.most_common():
        print(f"{name:<42}{100 * n / total:>7.0f}%{per * n / total:>16.0f}")
    print(f"profile: cpu_ms_per_change={per:.0f} samples={total}")


if __name__ == "__main__":
    main()
