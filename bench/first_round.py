"""CPU seconds of each heavy view's first round and of its whole run, first round sizes compared.

Each view is what its page computes with the page's defaults (own image, seed 1, keep_prob 0.8,
block_size 5, one torch thread as the server runs), through its ``compute_*_rounds`` function. For
each view the bench times, with the process's own CPU clock (``time.process_time``, so other load on
the machine does not count), the first :class:`models.rounds.Partial` and the whole run, once with
this round's first round (``--first``, default 1 sample per point) and once with the previous
round's (``--previous``, default 2), interleaved and repeated; the median is printed with the ratio
now/previous. The keep_prob scan (a one-shot view the curve page needs the first time an image is
seen) is timed the same way. The machine's single-core GEMM rate (``bench/machine.py``) is printed
first, so that figures from different machines compare.

    .venv/bin/python bench/first_round.py [--repeats 3] [--views curve,compare,...] [--set-images 8]

The last line is machine-readable: ``first_round: gemm_gflops=… <view>_first_ms=… …``.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
import machine  # noqa: E402
import models as M  # noqa: E402
from models.compute import DEFAULT_CURVE_METHODS  # noqa: E402
from models.keepgrid import compute_keep_prob_scan_rounds  # noqa: E402
from models.setcurve import compute_set_curve_rounds  # noqa: E402
from models.theory import compute_depth_contrast_rounds, compute_tutorial_contrasts_rounds  # noqa: E402

SET_DIR = ROOT / "assets" / "set"


def views(bb: M.Backbone, set_images: int):
    """{name: rounds(first)} for each heavy view, as its page computes it by default."""
    def x_of(path: Path):
        return M.to_input(M.decode_image(path.read_bytes()), bb.mean, bb.std)

    clean = M.clean_pass(bb, x_of(ROOT / "assets" / "coffee.jpg"))
    sidebar = M.RegularizerSpec(keep_prob=0.8, block_size=5)
    paper = dataclasses.replace(sidebar, kind="dropblock", keep_prob=1.0, block_size=1, placement="in_blocks",
                                groups=(3, 4), group3_quarter=True, skip=True)  # pages/4: its defaults
    fixed = tuple(round(1.0 - i * (1.0 - 0.75) / 5, 4) for i in range(6))
    scan_methods = DEFAULT_CURVE_METHODS
    strategy = M.RegularizerSpec(kind="dropblock", placement="in_blocks", groups=(2, 3), skip=False,
                                 group3_quarter=False, group_params=((2, 0.8, 3), (3, 0.8, 3)))
    images = [x_of(p) for p in sorted(SET_DIR.glob("*.jpg"))[:set_images]]
    set_kps = tuple(round(1.0 - i * (1.0 - 0.75) / 3, 2) for i in range(4))
    deep = M.RegularizerSpec(keep_prob=1.0, block_size=7, placement="in_blocks", groups=(3, 4), skip=False,
                             group3_quarter=False)
    return {
        "keep_prob_scan": lambda first: compute_keep_prob_scan_rounds(bb, clean, paper, methods=scan_methods, seed=1,
                                                                      first=first),
        "curve": lambda first: M.compute_robustness_curve_rounds(bb, clean, paper, keep_probs=fixed, n_samples=8,
                                                                 seed=1, first=first),
        "set_curve": lambda first: compute_set_curve_rounds(bb, images, sidebar, keep_probs=set_kps, n_samples=4,
                                                            seed=1, first=first),
        "compare": lambda first: M.compute_comparison_rounds(bb, clean, sidebar, seed=1, first=first),
        "cam_shift": lambda first: M.compute_cam_shift_rounds(bb, clean, sidebar, n_samples=16, seed=1, first=first),
        "dropblock_dropout": lambda first: M.compute_dropblock_dropout_rounds(bb, clean, strategy, n_samples=16,
                                                                              seed=1, first=first),
        "tutorial_contrasts": lambda first: compute_tutorial_contrasts_rounds(bb, clean, 0.8, seed=1, first=first),
        "depth_contrast": lambda first: compute_depth_contrast_rounds(bb, clean, (0.8, 0.9), seed=1, first=first),
        "depth_scan": lambda first: compute_keep_prob_scan_rounds(bb, clean, deep, methods=(("dropblock", 7),),
                                                                  seed=1, first=first),
    }


def timed(rounds) -> tuple[float, float]:
    """(CPU s to the first partial, CPU s to the last) of one run."""
    start = time.process_time()
    it = iter(rounds)
    next(it)
    first = time.process_time() - start
    for _ in it:
        pass
    return first, time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--first", type=int, default=1, help="this round's first round (samples per point)")
    parser.add_argument("--previous", type=int, default=2, help="the previous round's first round")
    parser.add_argument("--views", default="", help="comma-separated names (default: all)")
    parser.add_argument("--set-images", type=int, default=8, help="images of the bundled set for set_curve")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(machine.describe(), flush=True)
    gflops = float(machine.describe().rsplit("=", 1)[1])
    bb = M.load_model(allow_download=False, device=torch.device("cpu")).backbone
    table = views(bb, args.set_images)
    chosen = [v for v in table if not args.views or v in {w.strip() for w in args.views.split(",")}]
    print(f"torch {torch.__version__}, fallback model, 1 thread; CPU s, median of {args.repeats} "
          f"(first round: {args.first} sample(s) per point now, {args.previous} before)")
    print(f"{'view':<20}{'first now':>10}{'first prev':>11}{'ratio':>7}{'whole now':>11}{'whole prev':>11}{'ratio':>7}")
    line = [f"gemm_gflops={gflops:.1f}"]
    for name in chosen:
        make = table[name]
        timed(make(args.first))  # warm-up
        runs: dict[int, list[tuple[float, float]]] = {args.first: [], args.previous: []}
        for _ in range(args.repeats):
            for first in (args.first, args.previous):
                runs[first].append(timed(make(first)))
        now = [statistics.median(t[i] for t in runs[args.first]) for i in (0, 1)]
        prev = [statistics.median(t[i] for t in runs[args.previous]) for i in (0, 1)]
        print(f"{name:<20}{now[0]:>10.3f}{prev[0]:>11.3f}{now[0] / prev[0]:>7.2f}"
              f"{now[1]:>11.3f}{prev[1]:>11.3f}{now[1] / prev[1]:>7.2f}", flush=True)
        line += [f"{name}_first_s={now[0]:.3f}", f"{name}_first_ratio={now[0] / prev[0]:.2f}",
                 f"{name}_whole_s={now[1]:.3f}"]
    print("first_round: " + " ".join(line))


if __name__ == "__main__":
    main()
