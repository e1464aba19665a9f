"""How live the app feels: a parameter change from the cache vs a full recompute, same run.

A "parameter change" is what the mask explorer and CAM pages do when a slider moves: sample
new masks at the insertion point, re-run only the layers after it, and compute the CAM. A
"full recompute" runs the whole network from the image for the same result. Also times 32
Monte Carlo samples dropped after group 3 (re-running layer4) as one batch.

    .venv/bin/python bench/interaction.py [--model resnet50|lite0] [--repeats 5]

ResNet-50 uses random weights here (timing does not depend on the values).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import models as M  # noqa: E402
from models.backbone import resnet50_backbone  # noqa: E402


def median_s(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet50", choices=["resnet50", "lite0"])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    if args.model == "resnet50":
        from torchvision.models import ResNet50_Weights, resnet50

        backbone = resnet50_backbone(resnet50(weights=None).eval(), ResNet50_Weights.IMAGENET1K_V1.meta["categories"])
    else:
        backbone = M.load_model(allow_download=False, device=torch.device("cpu")).backbone
    image = M.decode_image((ROOT / "assets" / "coffee.jpg").read_bytes())
    x = M.to_input(image, backbone.mean, backbone.std)
    clean = M.clean_pass(backbone, x)
    print(f"model {backbone.name}, torch {torch.__version__}, threads {torch.get_num_threads()}")

    for spec in (M.RegularizerSpec(group=3), M.RegularizerSpec(placement="in_blocks", groups=(3, 4))):
        seeds = iter(range(10_000))

        def from_cache():  # masks + features + top-5 + CAMs, re-running after the insertion point
            seed = next(seeds)
            return (M.compute_mask_sample(backbone, clean, spec, seed=seed),
                    M.compute_mask_outcome(backbone, clean, spec, seed=seed))

        def full():  # the same view, with everything recomputed from the image
            seed, again = next(seeds), M.clean_pass(backbone, x)
            return (M.compute_mask_sample(backbone, again, spec, seed=seed),
                    M.compute_mask_outcome(backbone, again, spec, seed=seed))

        t_cache, t_full = median_s(from_cache, args.repeats), median_s(full, args.repeats)
        where = f"after group {spec.group}" if spec.placement == "after_group" else "in blocks of groups 3+4"
        print(f"parameter change, DropBlock {where}: {t_cache * 1e3:.0f} ms from cache vs "
              f"{t_full * 1e3:.0f} ms full -> ratio {t_cache / t_full:.2f} (target <= 0.5)")

    mc = median_s(lambda: M.compute_cam_shift(backbone, clean, M.RegularizerSpec(group=3), n_samples=32), args.repeats)
    print(f"32 Monte Carlo samples at layer4 (DropBlock after group 3, CAM + top-5): {mc:.2f} s (target < 1.5 s)")


if __name__ == "__main__":
    main()
