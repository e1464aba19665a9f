"""How many Monte Carlo samples make the bundled image set's curves smooth (#23).

Runs the image-set page's computation (``models.setcurve.compute_set_curve``, the page's default
four keep_probs and methods, seed 0) once with ``--samples`` samples per point on the bundled set,
read as the page reads it, then splits those samples into disjoint groups of n = 2, 4, 8, 16 and
reports, per n, how far an n-sample curve's mean moves between groups (std of the group means,
averaged over the curve's points), for the share of images whose top-1 is unchanged and for the
mean probability of the clean top-1 class. The groups are independent draws, so this is the
run-to-run spread a person sees when they change the seed at n samples. The curves run on one
torch thread, as the server runs them; the last line is JSON.

    .venv/bin/python bench/set_samples.py [--samples 32]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import models as M  # noqa: E402
from models.imageset import network_inputs, read_files  # noqa: E402
from models.setcurve import compute_set_curve  # noqa: E402
from ui.imageset import BUNDLED_SET  # noqa: E402

KEEP_PROBS = (1.0, 0.92, 0.83, 0.75)  # the page's default: lowest 0.75, 4 points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(1)
    loaded = M.load_model(allow_download=False, device=torch.device("cpu"))
    files = [(name, (ROOT / "assets" / name).read_bytes()) for name in BUNDLED_SET]
    inputs = network_inputs(read_files(files, "bundled"), loaded.preprocess)
    start = time.process_time()
    curve = compute_set_curve(loaded.backbone, inputs, M.RegularizerSpec(), keep_probs=KEEP_PROBS,
                              n_samples=args.samples, seed=0)
    cpu = time.process_time() - start
    print(f"one image is {1 / curve.n_images:.1%} of the set")
    print(f"{loaded.backbone.name}: {curve.n_images} images, {len(curve.labels)} methods x {len(KEEP_PROBS)} "
          f"keep_probs x {args.samples} samples in {cpu:.1f} s CPU ({cpu / args.samples:.2f} s per sample per point set)")
    share, prob = curve.unchanged_share, curve.mean_prob  # (M, K, S)
    points = [k for k, kp in enumerate(KEEP_PROBS) if kp < 1.0]  # keep_prob 1 has no spread
    result = {"images": curve.n_images, "samples": args.samples, "cpu_s": round(cpu, 1), "spread": {}}
    for n in (2, 4, 8, 16):
        groups = args.samples // n
        if groups < 2:
            continue
        row = {}
        for name, values in (("unchanged", share), ("prob", prob)):
            means = values[:, points, : groups * n].reshape(values.shape[0], len(points), groups, n).mean(-1)
            row[name] = round(float(means.std(-1).mean()), 4)
            if name == "unchanged":  # (M, K', G): how many groups' curves never rise as keep_prob falls
                whole = torch.cat([share[:, :1, :1].expand(-1, 1, groups), means], dim=1)
                row["monotone"] = round(float((whole.diff(dim=1) <= 1e-6).all(dim=1).float().mean()), 3)
        result["spread"][n] = row
        print(f"n={n:2d}: spread of the mean between {groups} groups, top-1 unchanged {row['unchanged']:.1%}, "
              f"mean probability {row['prob']:.3f}; curves that never rise {row['monotone']:.0%}")
    stats = curve.summary()
    for m, label in enumerate(curve.labels):
        print(f"  {label}: top-1 unchanged "
              + ", ".join(f"{kp:g}: {float(stats['unchanged_mean'][m, k]):.0%}" for k, kp in enumerate(KEEP_PROBS)))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
