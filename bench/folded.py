"""CPU seconds of each heavy view with BatchNorm folded into the convolutions (what the app runs)
against the model's own modules (the baseline), in the same run.

Each view is what its page computes with the page's defaults (``bench/first_round.py``'s table: own
image, seed 1, one torch thread as the server runs), through its ``compute_*_rounds`` function to
its last round. The baseline is the same backbone with no folded blocks, so every re-run goes
through the model's conv, BatchNorm and activation modules as before this change. Runs are
interleaved and repeated; the median CPU time (``time.process_time``) is printed with the ratio
folded/baseline. The machine's single-core GEMM rate is printed first.

    .venv/bin/python bench/folded.py [--repeats 3] [--views curve,compare,...]

The last line is machine-readable: ``folded: gemm_gflops=… <view>_ratio=… …``.
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
from first_round import views  # noqa: E402


def whole(rounds) -> float:
    start = time.process_time()
    for _ in rounds:
        pass
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--views", default="", help="comma-separated names (default: all)")
    parser.add_argument("--set-images", type=int, default=8, help="images of the bundled set for set_curve")
    args = parser.parse_args()
    torch.set_num_threads(1)
    described = machine.describe()
    print(described, flush=True)
    gflops = float(described.rsplit("=", 1)[1])
    folded = M.load_model(allow_download=False, device=torch.device("cpu")).backbone
    if not folded.folded_groups:
        raise SystemExit("the loaded model has no folded blocks")
    exact = dataclasses.replace(folded, folded_groups=(), folded_features=None)  # the model's own modules
    tables = {"folded": views(folded, args.set_images), "baseline": views(exact, args.set_images)}
    chosen = [v for v in tables["folded"] if not args.views or v in {w.strip() for w in args.views.split(",")}]
    print(f"torch {torch.__version__}, fallback model ({folded.name}), 1 thread; whole runs, CPU s, "
          f"median of {args.repeats}, interleaved")
    print(f"{'view':<20}{'folded':>9}{'baseline':>10}{'ratio':>7}")
    line = [f"gemm_gflops={gflops:.1f}"]
    total = {"folded": 0.0, "baseline": 0.0}
    for name in chosen:
        for kind in tables:
            whole(tables[kind][name](1))  # warm-up
        times: dict[str, list[float]] = {kind: [] for kind in tables}
        for _ in range(args.repeats):
            for kind in tables:
                times[kind].append(whole(tables[kind][name](1)))
        med = {kind: statistics.median(ts) for kind, ts in times.items()}
        for kind in total:
            total[kind] += med[kind]
        ratio = med["folded"] / med["baseline"]
        print(f"{name:<20}{med['folded']:>9.3f}{med['baseline']:>10.3f}{ratio:>7.2f}", flush=True)
        line.append(f"{name}_ratio={ratio:.2f}")
    print(f"{'all of them':<20}{total['folded']:>9.3f}{total['baseline']:>10.3f}"
          f"{total['folded'] / total['baseline']:>7.2f}")
    line.append(f"total_ratio={total['folded'] / total['baseline']:.2f}")
    print("folded: " + " ".join(line))


if __name__ == "__main__":
    main()
