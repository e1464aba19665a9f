"""Time the mask ops: this code against the previous round's (same run), and against torchvision.

1. now / previous, per op: the DropBlock sampler, the Dropout sampler and ``apply_mask`` at the
   activation sizes of the robustness curve on EfficientNet-Lite0 (8 samples; the 672-channel
   14x14 and 1152-channel 7x7 expanded widths), with the activations in NHWC as the engine runs
   them on the CPU and in NCHW. "previous" is the code before the masksfast round, kept in
   ``bench/previous_masks.py``. Both draw from generators seeded alike; they draw the same masks
   except where gamma <= ``GAP_MAX_GAMMA``, whose seeds are now drawn by geometric gaps (the
   same distribution, other masks for a given seed).
2. ours (sampler + apply) / ``torchvision.ops.drop_block2d`` at two ResNet-50 sizes (target <= 1.2).

Median wall time of interleaved repeats; the last line is JSON with every ratio.

    .venv/bin/python bench/ops.py [--repeats 15] [--device cpu] [--threads 1] [--skip-torchvision]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
import dropblock as db  # noqa: E402
import previous_masks as previous  # noqa: E402


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def interleaved_ms(fns: dict, repeats: int, device: str) -> dict[str, float]:
    """Median ms of each callable, the variants alternating so drifting load hits them alike."""
    for fn in fns.values():
        fn()  # warm-up
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            _sync(device)
            start = time.perf_counter()
            fn()
            _sync(device)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) * 1e3 for name, t in times.items()}


# (label, shape, block_size, gamma_scale, keep_prob): sites of the curve's paper placement
CASES = [
    ("dropblock b=7", (8, 672, 14, 14), 7, 0.25, 0.8),  # group 3: gamma / 4
    ("dropblock b=1", (8, 672, 14, 14), 1, 0.25, 0.8),
    ("dropblock b=7", (8, 1152, 7, 7), 7, 1.0, 0.8),  # group 4: the block is the whole map
    ("dropblock b=1", (8, 1152, 7, 7), 1, 1.0, 0.8),
]


def now_vs_previous(repeats: int, device: str) -> dict[str, float]:
    ratios = {}
    print(f"{'op':<20}{'shape':<20}{'layout':<8}{'previous ms':>12}{'now ms':>9}{'now/prev':>10}")

    def row(label, shape, layout, fns):
        ms = interleaved_ms(fns, repeats, device)
        ratio = ms["now"] / ms["previous"]
        ratios[f"{label} {'x'.join(map(str, shape))} {layout}"] = round(ratio, 3)
        print(f"{label:<20}{str(shape):<20}{layout:<8}{ms['previous']:>12.2f}{ms['now']:>9.2f}{ratio:>10.2f}",
              flush=True)

    for layout in ("nhwc", "nchw"):
        for label, shape, b, scale, kp in CASES:
            x = torch.randn(shape, device=device)
            x = x.contiguous(memory_format=torch.channels_last) if layout == "nhwc" else x
            g_now, g_prev = (torch.Generator().manual_seed(0) for _ in range(2))  # masks drawn on the CPU
            row(label, shape, layout, {
                "previous": lambda: previous.sample_drop_block_mask(x, kp, b, gamma_scale=scale, generator=g_prev),
                "now": lambda: db.sample_drop_block_mask(x, kp, b, gamma_scale=scale, generator=g_now),
            })
            mask = db.sample_drop_block_mask(x, kp, b, gamma_scale=scale, generator=torch.Generator().manual_seed(1))
            old_mask = previous.sample_drop_block_mask(x, kp, b, gamma_scale=scale,
                                                       generator=torch.Generator().manual_seed(1))
            row(f"apply_mask b={b}", shape, layout, {
                "previous": lambda: previous.apply_mask(x, old_mask),  # its own (NCHW) mask
                "now": lambda: db.apply_mask(x, mask),
            })
        x = torch.randn(CASES[0][1], device=device)
        x = x.contiguous(memory_format=torch.channels_last) if layout == "nhwc" else x
        g_now, g_prev = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
        row("dropout", tuple(x.shape), layout, {
            "previous": lambda: previous.sample_dropout_mask(x, 0.8, generator=g_prev),
            "now": lambda: db.sample_dropout_mask(x, 0.8, generator=g_now),
        })
    return ratios


def versus_torchvision(repeats: int, device: str) -> dict[str, float]:
    from torchvision.ops import drop_block2d as tv_drop_block2d

    generator = torch.Generator(device=device).manual_seed(0)
    ratios = {}
    print(f"\n{'shape':<22}{'torchvision ms':>15}{'ours+masks ms':>15}{'ratio':>8}")
    for shape in [(32, 1024, 14, 14), (32, 256, 56, 56)]:
        x = torch.randn(shape, device=device)

        def ours():
            mask = db.sample_drop_block_mask(x, 0.9, 7, generator=generator)
            return db.apply_mask(x, mask), mask

        ms = interleaved_ms({"tv": lambda: tv_drop_block2d(x, p=0.1, block_size=7), "ours": ours}, repeats, device)
        ratios[f"ours/torchvision {'x'.join(map(str, shape))}"] = round(ms["ours"] / ms["tv"], 3)
        print(f"{str(shape):<22}{ms['tv']:>15.1f}{ms['ours']:>15.1f}{ms['ours'] / ms['tv']:>8.2f}")
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (the server uses 1)")
    parser.add_argument("--skip-torchvision", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, device {args.device}, threads {torch.get_num_threads()}, "
          f"median of {args.repeats} interleaved repeats")
    ratios = now_vs_previous(args.repeats, args.device)
    if not args.skip_torchvision:
        ratios.update(versus_torchvision(max(3, args.repeats // 3), args.device))
    print(json.dumps({"bench": "ops", "ratios": ratios}))


if __name__ == "__main__":
    main()
