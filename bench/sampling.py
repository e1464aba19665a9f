"""Time one round of Monte Carlo masks (sample + apply at every site), this code against the code before
the batched-masks round (``bench/unbatched_masks.py``), in the same run.

A round is what one batched pass of a heavy view does to its masks (``models.engine``): S samples, each
drawing from its own CPU generator (``sample_generators``), and at every site of the paper placement
(DropBlock in the blocks of groups 3 and 4, gamma / 4 in group 3, skip connections too) one call of
the engine's ``_draw``: the sampler for the whole batch, then ``apply_mask``. The site shapes and
layouts are recorded from the real backbones: ResNet-50 (random weights; 256/1024 x 14 x 14 in
group 3, 512/2048 x 7 x 7 in group 4, NCHW) and EfficientNet-Lite0 (80..672 x 14 x 14 and
192..1152 x 7 x 7, NHWC as the engine re-runs it on the CPU). Cases: S samples per pass, seed_region,
block_size, keep_prob 0.9, per_channel; plus one row per other kind.

Both codes draw the very same masks (checked here on every case's first round: every site's realised
drop fractions are equal). CPU time of this process (``time.process_time``, one torch thread as the
server runs), median of interleaved repeats. The last line is JSON with every ratio (new / baseline).

    .venv/bin/python bench/sampling.py [--repeats 5] [--models resnet50,lite0] [--samples 1,2,4,8]
        [--block-sizes 1,2,3,4,5,6,7] [--regions valid,everywhere]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
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
import unbatched_masks  # noqa: E402
from models import engine  # noqa: E402
from models.backbone import resnet50_backbone  # noqa: E402

PAPER = M.RegularizerSpec(kind="dropblock", keep_prob=0.9, block_size=7, placement="in_blocks", groups=(3, 4),
                          group3_quarter=True, skip=True)


def backbone_for(name: str) -> M.Backbone:
    if name == "lite0":
        return M.load_model(allow_download=False, device=torch.device("cpu")).backbone
    from torchvision.models import resnet50

    torch.manual_seed(0)
    return resnet50_backbone(resnet50(weights=None).eval(), [str(i) for i in range(1000)])


def sites_of(bb: M.Backbone, spec: M.RegularizerSpec) -> list[tuple[M.Site, bool, tuple[int, ...], bool]]:
    """(site, in_block, (C, H, W), channels_last) of every site ``spec`` drops at, in forward order."""
    clean = M.clean_pass(bb, torch.zeros(1, 3, 224, 224))
    found = []

    def record(h, site, in_block):
        if engine._offered(spec, site, in_block):
            nhwc = not h.is_contiguous() and h.is_contiguous(memory_format=torch.channels_last)
            found.append((site, in_block, tuple(h.shape[1:]), nhwc))
        return h

    with torch.inference_mode():
        engine._run_to_group4(bb, clean, spec, record)
    return found


def activations(sites, n: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    out = []
    for _, _, shape, nhwc in sites:
        x = torch.randn((n, *shape), generator=gen)
        out.append(x.contiguous(memory_format=torch.channels_last) if nhwc else x)
    return out


def one_round(sites, xs, spec: M.RegularizerSpec, n: int, seed: int = 1) -> list[torch.Tensor]:
    """Every site's mask drawn and applied for samples 0..n-1, as a pass of the engine does; the
    realised drop fractions, site by site."""
    gens = engine.sample_generators(seed, range(n))
    drops = []
    with torch.inference_mode():
        for (site, in_block, _, _), x in zip(sites, xs):
            _, mask = engine._draw(x, spec, gens, site, in_block)
            drops.append(mask.drop_fraction)
    return drops


def cpu_ms(fn) -> float:
    start = time.process_time()
    fn()
    return 1000 * (time.process_time() - start)


def compare(sites, xs, spec, n, repeats) -> tuple[float, float, bool]:
    """(baseline ms, new ms, same masks) for one case, the two interleaved."""
    with unbatched_masks.install():
        old = one_round(sites, xs, spec, n)  # also the warm-up
    new = one_round(sites, xs, spec, n)
    same = all(torch.equal(a, b) for a, b in zip(old, new))
    times: dict[str, list[float]] = {"baseline": [], "new": []}
    for _ in range(repeats):
        with unbatched_masks.install():
            times["baseline"].append(cpu_ms(lambda: one_round(sites, xs, spec, n)))
        times["new"].append(cpu_ms(lambda: one_round(sites, xs, spec, n)))
    return statistics.median(times["baseline"]), statistics.median(times["new"]), same


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--models", default="resnet50,lite0")
    parser.add_argument("--samples", default="1,2,4,8", help="samples per pass (engine rounds: 1, then up to 4)")
    parser.add_argument("--block-sizes", default="1,2,3,4,5,6,7")
    parser.add_argument("--regions", default="valid,everywhere")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (the server uses 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(machine.describe())
    gflops = machine.gemm_gflops()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), keep_prob 0.9, per_channel, "
          f"CPU ms per round of masks (median of {args.repeats} interleaved)")
    print(f"{'model':<10}{'S':>3}  {'case':<26}{'sites':>6}{'baseline':>10}{'new':>9}{'new/base':>10}  same masks")
    ratios: dict[str, float] = {}
    all_same = True
    for model in args.models.split(","):
        bb = backbone_for(model)
        sites = sites_of(bb, PAPER)
        for n in map(int, args.samples.split(",")):
            xs = activations(sites, n)
            cases = [(f"dropblock {region} b={b}", dataclasses.replace(PAPER, seed_region=region, block_size=b))
                     for region in args.regions.split(",") for b in map(int, args.block_sizes.split(","))]
            cases += [(kind, dataclasses.replace(PAPER, kind=kind)) for kind in ("dropout", "spatial_dropout")]
            cases += [("cutout (features)", dataclasses.replace(PAPER, kind="cutout", cutout_on="features"))]
            for label, spec in cases:
                base, new, same = compare(sites, xs, spec, n, args.repeats)
                all_same &= same
                key = f"{model} S={n} {label}"
                ratios[key] = round(new / base, 3)
                print(f"{model:<10}{n:>3}  {label:<26}{len(sites):>6}{base:>10.1f}{new:>9.1f}{new / base:>10.2f}  "
                      f"{'yes' if same else 'NO'}", flush=True)
    dropblock = [r for k, r in ratios.items() if "dropblock" in k]
    geomean = math.exp(statistics.fmean(math.log(r) for r in dropblock)) if dropblock else float("nan")
    print(f"dropblock rounds: new/baseline geometric mean {geomean:.3f} (speed-up {1 / geomean:.2f}x), "
          f"worst {max(dropblock, default=float('nan')):.3f}, best {min(dropblock, default=float('nan')):.3f}")
    print(json.dumps({"bench": "sampling", "gemm_gflops": round(gflops, 1), "same_masks": all_same,
                      "dropblock_geomean": round(geomean, 3), "ratios": ratios}))


if __name__ == "__main__":
    main()
