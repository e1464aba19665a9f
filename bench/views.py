"""Server CPU per heavy view, this code against a same-run baseline of the previous round's way.

Each view is what its page computes with the page's defaults (own image, seed 1, keep_prob 0.8,
block_size 5, one torch thread as the server runs). CPU time is the process's own
(``time.process_time``), so other load on the machine does not count; variants are interleaved
and repeated, and the median is printed with its ratio to the baseline.

Baseline ("previous"): one network pass per curve point with activations in NCHW and
``apply_mask`` as ``x * (mask * scale)``, the way the previous round ran (its lazy start, one
image until the first mask, is kept, so the ratio understates the change slightly), with the
mask samplers as they were before the masksfast round (``bench/previous_masks.py``: more passes,
one uniform per unit; the same masks except where DropBlock's gamma <= 0.2, now drawn by
geometric gaps), and each batch part's output copied into the batch as the parts were
concatenated. Rows named in ``BASELINES`` use their own baseline instead: "curve, masks only"
is today's code with only the mask code swapped back (samplers and ``apply_mask`` before the
masksfast round), so its ratio is that round's gain alone. The "mask sample" rows time the
masks alone against this round's full mask view (per animation frame: ``bench/frames.py``).

    .venv/bin/python bench/views.py [--repeats 3] [--model lite0|resnet50] [--views curve,set_curve,...]

ResNet-50 uses random weights here (timing does not depend on the values).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
import dropblock as db  # noqa: E402
import models as M  # noqa: E402
import previous_masks  # noqa: E402
from models import engine  # noqa: E402
from models.backbone import resnet50_backbone  # noqa: E402
from models.setcurve import compute_set_curve  # noqa: E402
from models.theory import compute_mistakes, compute_tutorial_contrasts  # noqa: E402

_apply_mask = db.apply_mask


def _old_apply_mask(x, mask):
    return x * (mask.block_mask * mask.scale.to(x.dtype).view(-1, 1, 1, 1))


@contextlib.contextmanager
def previous_round():
    """NCHW activations (EfficientNet-Lite0 re-runs in NHWC now), the old apply_mask and the samplers
    before the masksfast round, for the baseline."""
    saved = engine._channels_last
    engine._channels_last = lambda t, backbone: t
    with previous_masks.install(apply=False):
        db.apply_mask = previous_masks.concatenated(_old_apply_mask)
        try:
            yield
        finally:
            engine._channels_last = saved
            db.apply_mask = _apply_mask


# Rows whose baseline is not previous_round(): the masksfast round's mask code alone, and this
# round's own code (the "mask sample" rows' baseline is today's full mask view).
BASELINES = {"curve, masks only": previous_masks.install, "mask sample": contextlib.nullcontext,
             "mask sample, in blocks": contextlib.nullcontext}


def backbone_for(name: str) -> M.Backbone:
    if name == "lite0":
        return M.load_model(allow_download=False, device=torch.device("cpu")).backbone
    from torchvision.models import ResNet50_Weights, resnet50

    torch.manual_seed(0)
    return resnet50_backbone(resnet50(weights=None).eval(), ResNet50_Weights.IMAGENET1K_V1.meta["categories"])


def mask_view(bb: M.Backbone, clean: M.CleanPass, spec: M.RegularizerSpec):
    """What the mask explorer computes for a new view: its masks, then the network after them."""
    return M.compute_mask_sample(bb, clean, spec, seed=1), M.compute_mask_outcome(bb, clean, spec, seed=1)


def views(bb: M.Backbone):
    """{name: (new, previous)} callables computing each view as its page does by default."""
    def x_of(name):
        return M.to_input(M.decode_image((ROOT / "assets" / f"{name}.jpg").read_bytes()), bb.mean, bb.std)

    clean = M.clean_pass(bb, x_of("coffee"))
    sidebar = M.RegularizerSpec(keep_prob=0.8, block_size=5)
    paper = dataclasses.replace(sidebar, kind="dropblock", keep_prob=1.0, block_size=1, placement="in_blocks",
                                groups=(3, 4), group3_quarter=True, skip=True)  # pages/4: its defaults
    kps = tuple(round(1.0 - i * (1.0 - 0.75) / 5, 4) for i in range(6))
    images = [x_of("coffee"), x_of("chelsea")]
    curve = lambda per_point: M.compute_robustness_curve(  # noqa: E731
        bb, clean, paper, keep_probs=kps, n_samples=8, seed=1, max_samples=8 if per_point else None)
    set_curve = lambda per_point: compute_set_curve(  # noqa: E731
        bb, images, sidebar, keep_probs=kps, n_samples=8, seed=1, max_samples=8 if per_point else None)
    in_blocks = dataclasses.replace(paper, keep_prob=0.9, block_size=7)
    return {
        "curve": (lambda: curve(False), lambda: curve(True)),
        "curve, masks only": (lambda: curve(False),) * 2,
        "curve, 4 points/pass": (lambda: M.compute_robustness_curve(
            bb, clean, paper, keep_probs=kps, n_samples=8, seed=1, max_samples=32), lambda: curve(True)),
        "set_curve (2 images)": (lambda: set_curve(False), lambda: set_curve(True)),
        "compare": (lambda: M.compute_comparison(bb, clean, sidebar, seed=1),) * 2,
        "theory contrasts": (lambda: compute_tutorial_contrasts(bb, clean, 0.8, seed=1),) * 2,
        "theory mistakes": (lambda: compute_mistakes(clean.acts[3], 0.8, 5, seed=1),) * 2,
        "cam shift (16)": (lambda: M.compute_cam_shift(bb, clean, sidebar, n_samples=16, seed=1),) * 2,
        "mask view": (lambda: mask_view(bb, clean, sidebar),) * 2,
        # previous = the full mask view, this round's code: the masks alone against masks + network
        "mask sample": (lambda: M.compute_mask_sample(bb, clean, sidebar, seed=1),
                        lambda: mask_view(bb, clean, sidebar)),
        "mask sample, in blocks": (lambda: M.compute_mask_sample(bb, clean, in_blocks, seed=1),
                                   lambda: mask_view(bb, clean, in_blocks)),
    }


def cpu_ms(fn) -> float:
    start = time.process_time()
    fn()
    return 1000 * (time.process_time() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", default="lite0", choices=["lite0", "resnet50"])
    parser.add_argument("--views", default="", help="comma-separated names (default: all)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (the server uses 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    bb = backbone_for(args.model)
    table = views(bb)
    chosen = [v for v in table if not args.views or any(v.startswith(w.strip()) for w in args.views.split(","))]
    print(f"torch {torch.__version__}, {args.model}, {args.threads} thread(s), CPU ms per view "
          f"(median of {args.repeats}, process CPU time)")
    print(f"{'view':<24}{'previous':>10}{'now':>10}{'now/previous':>14}")
    for name in chosen:
        new, old = table[name]
        baseline = BASELINES.get(name, previous_round)
        with baseline():
            old()  # warm-up
        new()
        times: dict[str, list[float]] = {"previous": [], "now": []}
        for _ in range(args.repeats):
            with baseline():
                times["previous"].append(cpu_ms(old))
            times["now"].append(cpu_ms(new))
        prev, now = statistics.median(times["previous"]), statistics.median(times["now"])
        print(f"{name:<24}{prev:>10.0f}{now:>10.0f}{now / prev:>14.2f}", flush=True)


if __name__ == "__main__":
    main()
