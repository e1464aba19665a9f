"""Server CPU per animation frame (the mask explorer's "Animation for slides"), masks only vs the full view.

Before: each frame ran the whole mask view (masks, then every layer after the site, top-5 and CAMs)
though a frame shows only masks and feature maps. Now: each frame samples the masks at the site
(``compute_mask_sample``) and runs no layer after it. Both render the same frames (the page's tiles,
ui/render.py) and encode the same GIF; the baseline runs in the same process, interleaved, on one
torch thread as the server does, timed with ``time.process_time``.

    .venv/bin/python bench/frames.py [--model lite0|resnet50] [--frames 12] [--repeats 3]

ResNet-50 uses random weights (timing does not depend on the values). Last line: JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
import models as M  # noqa: E402
from models import animation as A  # noqa: E402
from ui import render  # noqa: E402
from views import backbone_for  # noqa: E402


@contextlib.contextmanager
def full_view_per_frame():
    """The previous way: every frame computes the whole mask view (the masks, then the network after them)."""
    saved = A.compute_mask_sample

    def full_view(backbone, clean, spec, **kwargs):
        M.compute_mask_outcome(backbone, clean, spec, seed=kwargs.get("seed", 0))
        return saved(backbone, clean, spec, **kwargs)

    A.compute_mask_sample = full_view
    try:
        yield
    finally:
        A.compute_mask_sample = saved


def draw(view, vmax: float, tile: int):
    return render.grid(render.mask_rows(view, ("blocks", "after"), vmax), size=tile)  # as ui/animation.py


def caption(value, view) -> list[str]:
    return [f"seed {value} · realised drop {view.realised_drop:.3f}", "keep_prob 0.9 · block_size 7", "legend"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lite0", choices=["lite0", "resnet50"])
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    bb = backbone_for(args.model)
    x = M.to_input(M.decode_image((ROOT / "assets" / "coffee.jpg").read_bytes()), bb.mean, bb.std)
    clean = M.clean_pass(bb, x)
    anim = A.AnimationSpec("seeds", frames=args.frames, width=A.WIDTHS["small"], fmt="gif")
    specs = {"after group 3": M.RegularizerSpec(keep_prob=0.9, block_size=7),
             "in blocks 3+4": M.RegularizerSpec(keep_prob=0.9, block_size=7, placement="in_blocks")}
    print(f"torch {torch.__version__}, {args.model}, 1 thread, {args.frames} frames ({anim.width} px GIF), "
          f"CPU ms per frame (median of {args.repeats}, process CPU time, compute + draw + encode)")
    print(f"{'placement':<16}{'before':>10}{'now':>10}{'now/before':>12}")
    result = {}
    for name, spec in specs.items():
        def render_once():
            return A.render_animation(bb, clean, spec, anim, seed=0, n_channels=8, draw=draw, caption=caption)

        def cpu_ms_per_frame() -> float:
            start = time.process_time()
            out = render_once()
            return 1000 * (time.process_time() - start) / out.frames

        with full_view_per_frame():
            before_out = render_once()  # warm-up
        now_out = render_once()
        assert before_out.data == now_out.data, "the frames must be the same"
        times: dict[str, list[float]] = {"before": [], "now": []}
        for _ in range(args.repeats):
            with full_view_per_frame():
                times["before"].append(cpu_ms_per_frame())
            times["now"].append(cpu_ms_per_frame())
        before, now = statistics.median(times["before"]), statistics.median(times["now"])
        result[name] = {"before_ms": round(before, 1), "now_ms": round(now, 1), "ratio": round(now / before, 3)}
        print(f"{name:<16}{before:>10.1f}{now:>10.1f}{now / before:>12.2f}", flush=True)
    print(json.dumps({"bench": "frames", "model": args.model, "frames": args.frames, "per_frame": result}))


if __name__ == "__main__":
    main()
