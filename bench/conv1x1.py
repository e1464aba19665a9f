"""EfficientNet-Lite0's 1x1 convolutions in groups 3-4 (NHWC, 8 samples, one thread): ``F.conv2d``
against the same product written as ``F.linear`` over the channels, in the same run.

A curve's remaining cost is convolutions; this checks whether PyTorch's 1x1 path on one thread (its
"slow" conv, a GEMM per sample) leaves anything to gain. Prints linear/conv per shape.

    .venv/bin/python bench/conv1x1.py [--repeats 20]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

# (samples, in channels, map side, out channels): expansions and projections of Lite0's groups 3-4
SHAPES = [(8, 80, 14, 480), (8, 480, 14, 80), (8, 112, 14, 672), (8, 672, 14, 112), (8, 672, 7, 192),
          (8, 192, 7, 1152), (8, 1152, 7, 192), (8, 1152, 7, 320), (8, 320, 7, 1280)]


def ms(fn, repeats: int) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return 1000 * (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"{'shape':<26}{'conv ms':>9}{'linear ms':>11}{'linear/conv':>13}{'GFLOP/s conv':>14}")
    for n, c, side, out in SHAPES:
        x = torch.randn(n, c, side, side).contiguous(memory_format=torch.channels_last)
        w = torch.randn(out, c, 1, 1)
        conv = lambda: F.conv2d(x, w)  # noqa: E731
        linear = lambda: F.linear(x.permute(0, 2, 3, 1), w.view(out, c)).permute(0, 3, 1, 2)  # noqa: E731
        torch.testing.assert_close(conv(), linear(), rtol=1e-4, atol=1e-3)
        tc, tl = ms(conv, args.repeats), ms(linear, args.repeats)
        gflops = 2 * n * side * side * c * out / (tc / 1000) / 1e9
        print(f"{n}x{c}x{side}x{side} -> {out:<8}{tc:>9.2f}{tl:>11.2f}{tl / tc:>13.2f}{gflops:>14.0f}")


if __name__ == "__main__":
    main()
