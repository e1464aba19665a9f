"""Time our drop_block2d (masks included) against torchvision.ops.drop_block2d, same run.

Prints, per shape, the median time of each and the ratio ours / torchvision (target <= 1.2).
Both use keep_prob 0.9 (p = 0.1), block_size 7, per-channel masks, the valid seed region.

    .venv/bin/python bench/ops.py [--repeats 7] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torchvision.ops import drop_block2d as tv_drop_block2d

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import dropblock as db  # noqa: E402


def median_ms(fn, repeats: int, device: str) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = parser.parse_args()
    generator = torch.Generator(device=args.device).manual_seed(0)
    print(f"torch {torch.__version__}, device {args.device}, threads {torch.get_num_threads()}")
    print(f"{'shape':<22}{'torchvision ms':>15}{'ours+masks ms':>15}{'ratio':>8}")
    for shape in [(32, 1024, 14, 14), (32, 256, 56, 56)]:
        x = torch.randn(shape, device=args.device)

        def ours():
            mask = db.sample_drop_block_mask(x, 0.9, 7, generator=generator)
            return db.apply_mask(x, mask), mask

        t_tv = median_ms(lambda: tv_drop_block2d(x, p=0.1, block_size=7), args.repeats, args.device)
        t_ours = median_ms(ours, args.repeats, args.device)
        print(f"{str(shape):<22}{t_tv:>15.1f}{t_ours:>15.1f}{t_ours / t_tv:>8.2f}")


if __name__ == "__main__":
    main()
