"""The mask explorer's grid: the old two PNG pictures against the HTML tile grid, in one run.

Old (before the tile grid): per session and rerun, the tile rows (``render.mask_rows``), the
labelled 8-column picture (``render.grid``, 112 px per map) and the phone picture (rows of 4,
64 px per map), each hashed for the PNG cache and, the first time, PNG-encoded; the browser then
fetches both pictures (the hidden one too). New: ``render.mask_grid_html``, built once per result (the
tile rows, one PNG per map at one pixel per unit, the HTML) and a dictionary hit for every other
session; the HTML travels in the script run's delta, nothing is fetched.

A real ``MaskSample`` (EfficientNet-Lite0, the offline fallback; the coffee sample; keep_prob 0.9,
block_size 7; 8 channels). Times are medians over ``--repeat`` builds, on this machine, now.

    .venv/bin/python bench/grid.py --repeat 30
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DROPBLOCK_LAB_OFFLINE", "1")

import torch  # noqa: E402

import models as M  # noqa: E402
from ui import render  # noqa: E402

ROWS = ("blocks", "seeds", "before", "after")
LABELS = ["block mask M", "seed mask", "before", "after (scaled)"]
PHONE_CELL = 64  # the old phone picture's pixels per map


def median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def old_pictures(view, encode: bool) -> list[bytes | None]:
    """What every session did per rerun: the rows, both pictures, their pixel hashes; ``encode``:
    also PNG-encode them (a result no session had shown yet)."""
    rows = render.mask_rows(view, ROWS)
    half = (len(view.channels) + 1) // 2
    out = []
    for image in (render.grid(rows, LABELS),
                  render.grid([r[:half] for r in rows] + [r[half:] for r in rows], LABELS * 2, size=PHONE_CELL)):
        hashlib.blake2b(image.tobytes(), digest_size=20).digest()
        png = None
        if encode:
            buf = io.BytesIO()
            image.save(buf, "PNG", compress_level=1)
            png = buf.getvalue()
        out.append(png)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    loaded = M.load_model(allow_download=False, device=torch.device("cpu"))
    image = M.decode_image((ROOT / "assets" / "coffee.jpg").read_bytes())
    clean = M.clean_pass(loaded.backbone, loaded.preprocess(image))
    views = [M.compute_mask_sample(loaded.backbone, clean, M.RegularizerSpec(keep_prob=0.9, block_size=7), seed=s,
                                   n_channels=8) for s in range(args.repeat)]
    caption = "Masks drawn with seed 0."
    it = iter(range(10**9))

    def new_cold():  # a result no session has shown: rows, tiles, HTML
        view = views[next(it) % len(views)]
        render.tile_grid_html(render.mask_rows(view, ROWS), LABELS, caption, view.channels)

    def new_shared():  # every other session showing it
        render.mask_grid_html((views[0],), tuple(ROWS), None, tuple(LABELS), caption, render.TILE_MAX, "en")

    new_shared()
    old_cold = median_ms(lambda: old_pictures(views[0], encode=True), args.repeat)
    old_warm = median_ms(lambda: old_pictures(views[0], encode=False), args.repeat)
    cold = median_ms(new_cold, args.repeat)
    shared = median_ms(new_shared, args.repeat)
    wide, narrow = old_pictures(views[0], encode=True)
    html_bytes = len(render.tile_grid_html(render.mask_rows(views[0], ROWS), LABELS, caption, views[0].channels)
                     .encode())
    h, w = views[0].map_size
    print(f"MaskSample: 8 channels of {h}x{w}, 4 rows; median of {args.repeat} builds")
    print(f"  old, new result (rows, 2 pictures, hashes, PNG encoding)   {old_cold:7.2f} ms")
    print(f"  old, per other session (rows, 2 pictures, hashes)          {old_warm:7.2f} ms")
    print(f"  new, new result (rows, 32 tile PNGs, HTML)                 {cold:7.2f} ms   x{cold / old_cold:.2f}")
    print(f"  new, per other session (shared HTML)                       {1000 * shared:7.1f} us   "
          f"x{shared / old_warm:.4f}")
    old_bytes = len(wide) + len(narrow)
    print(f"  bytes per new result: old {old_bytes} (PNG {len(wide)} + phone PNG {len(narrow)}, both fetched over "
          f"HTTP); new {html_bytes} (HTML in the delta)   x{html_bytes / old_bytes:.2f}")
    print("  (an unchanged grid on a rerun: Streamlit's message cache sends a reference, elements >= 10 KB)")
    print(f"grid: old_new_result_ms={old_cold:.2f} new_new_result_ms={cold:.2f} ratio_new_result={cold / old_cold:.3f} "
          f"old_per_session_ms={old_warm:.2f} new_per_session_ms={shared:.4f} "
          f"ratio_per_session={shared / old_warm:.4f} old_bytes={old_bytes} new_bytes={html_bytes} "
          f"ratio_bytes={html_bytes / old_bytes:.3f}")

if __name__ == "__main__":
    main()
