"""Whether two heavy workers serve first rounds twice as fast as one: the same first rounds (one
sample per point, as the pool runs them for the own-parameters load) run one after another in one
thread (the baseline, measured in the same run) and split over two threads, one torch thread each as
the server runs them. A ratio near 1 means the rounds hold the GIL between their small ops, so the
pool's second worker adds little on a 2-core machine.

    .venv/bin/python bench/threads.py [--rounds 8] [--repeats 3]

The last line is machine-readable: ``threads: gemm_gflops=… <view>_speedup=… …``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import first_round  # noqa: E402
import machine  # noqa: E402
import models as M  # noqa: E402

VIEWS = ("compare", "cam_shift", "tutorial_contrasts", "depth_contrast", "curve")


def first_rounds(make, n: int) -> None:
    for _ in range(n):
        next(iter(make(1)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8, help="first rounds per measurement (an even number)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    described = machine.describe()
    print(described, flush=True)
    bb = M.load_model(allow_download=False, device=torch.device("cpu")).backbone
    table = first_round.views(bb, 2)
    line = [f"gemm_gflops={float(described.rsplit('=', 1)[1]):.1f}"]
    print(f"{'view':<20}{'1 thread s':>12}{'2 threads s':>13}{'speedup':>9}")
    for name in VIEWS:
        make = table[name]
        first_rounds(make, 2)  # warm-up
        one, two = [], []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            first_rounds(make, args.rounds)
            one.append(time.perf_counter() - t0)
            threads = [threading.Thread(target=first_rounds, args=(make, args.rounds // 2)) for _ in range(2)]
            t0 = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            two.append(time.perf_counter() - t0)
        a, b = statistics.median(one), statistics.median(two)
        print(f"{name:<20}{a:>12.3f}{b:>13.3f}{a / b:>9.2f}")
        line.append(f"{name}_speedup={a / b:.2f}")
    print("threads: " + " ".join(line))


if __name__ == "__main__":
    main()
