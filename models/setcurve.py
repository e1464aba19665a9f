"""The paper's Figure 5 over a set of images: how predictions survive a drop at inference.

DropBlock (Ghiasi, Lin & Le, NeurIPS 2018, arXiv:1810.12890), Sec. 4.2 and Fig. 5, applies
DropBlock at inference to a model trained without it and reports ImageNet accuracy against
keep_prob: block_size 7 hurts more than block_size 1. Without labels, this module reports the
closest thing on any set of images, per regulariser and keep_prob:

* the share of images whose top-1 class is unchanged, and
* the mean probability of each image's clean top-1 class,

each as the mean and the spread (population std) over Monte Carlo samples: sample ``s`` draws
one set of masks for every image and gives one value of each statistic for the whole set.

Images run one at a time (clean pass, then every method and keep_prob from the cached
activations, several points per batched pass), so memory does not grow with the set. Image ``i`` draws its
masks from seed ``seed * 65536 + i`` (:func:`image_seed`), the same for every method and keep_prob: its
sample ``s`` from :func:`models.engine.sample_seed` (that seed, s), so sample 0 from the image seed itself.

:func:`compute_set_curve_rounds` computes the same in rounds (:mod:`models.rounds`): every round runs
the whole set for its new samples only (each image's clean pass again, so memory still does not grow
with the set), and yields the curve over the samples so far; the last equals :func:`compute_set_curve`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from .backbone import Backbone
from .engine import RegularizerSpec, clean_pass, iter_runs, sample_range
from .rounds import FIRST, Partial, round_progress, round_ranges
from .text import N_, Text

__all__ = [
    "Cancelled",
    "SetCurve",
    "SetMethod",
    "compute_set_curve",
    "compute_set_curve_rounds",
    "compute_set_predictions",
    "default_set_methods",
    "image_seed",
]

SetMethod = tuple[str, RegularizerSpec]  # (label, spec; its keep_prob is replaced along the curve)
Progress = Callable[[float, str], "bool | None"]
MAX_SET_IMAGES = 1024


class Cancelled(Exception):
    """The progress callback asked to stop (it returned False, or raised this)."""


def image_seed(seed: int, index: int) -> int:
    """The seed image ``index`` of a set draws its masks from."""
    return int(seed) * 65_536 + int(index)


def default_set_methods(base: RegularizerSpec) -> tuple[SetMethod, ...]:
    """DropBlock b=1 and b=7 and SpatialDropout where ``base`` places them, plus the paper's placement.

    The paper's placement is DropBlock b=7 inside every block of groups 3 and 4, conv branches
    and skip connections, γ/4 in group 3; it is left out when ``base`` is that already.
    """
    methods = [
        ("DropBlock b=1", replace(base, kind="dropblock", block_size=1)),
        ("DropBlock b=7", replace(base, kind="dropblock", block_size=7)),
        ("SpatialDropout", replace(base, kind="spatial_dropout")),
    ]
    paper = replace(base, kind="dropblock", block_size=7, placement="in_blocks", groups=(3, 4),
                    group3_quarter=True, skip=True)
    if paper != methods[1][1]:
        methods.append((Text(N_("DropBlock b=7, paper placement")), paper))
    return tuple(methods)


@dataclass(frozen=True, eq=False)
class SetCurve:
    """Robustness of a set's predictions vs keep_prob, per method (all tensors on the CPU).

    Attributes:
        keep_probs: (K,) the x axis.
        labels, specs: (M,) the methods (each spec at the base keep_prob).
        n_samples, seed: Monte Carlo samples per point (those drawn so far, in rounds), and the seed
            image seeds derive from.
        clean_top1: (I,) each image's top-1 class without a regulariser.
        clean_prob: (I,) its probability.
        top1_kept: (M, K, I, S) bool, whether sample ``s`` keeps image ``i``'s clean top-1.
        class_prob: (M, K, I, S) float32, the probability of image ``i``'s clean top-1 class.
    """

    keep_probs: tuple[float, ...]
    labels: tuple[str, ...]
    specs: tuple[RegularizerSpec, ...]
    n_samples: int
    seed: int
    clean_top1: tuple[int, ...]
    clean_prob: Tensor
    top1_kept: Tensor
    class_prob: Tensor

    @property
    def n_images(self) -> int:
        return len(self.clean_top1)

    @property
    def unchanged_share(self) -> Tensor:
        """(M, K, S): per sample, the share of images whose top-1 is unchanged."""
        return self.top1_kept.float().mean(dim=2)

    @property
    def mean_prob(self) -> Tensor:
        """(M, K, S): per sample, the mean over images of the clean top-1 class's probability."""
        return self.class_prob.mean(dim=2)

    def summary(self) -> dict[str, Tensor]:
        """Mean and Monte Carlo spread (population std over samples), each (M, K)."""
        share, prob = self.unchanged_share, self.mean_prob
        return {
            "unchanged_mean": share.mean(dim=-1), "unchanged_std": share.std(dim=-1, unbiased=False),
            "prob_mean": prob.mean(dim=-1), "prob_std": prob.std(dim=-1, unbiased=False),
        }


def _check_inputs(inputs: Sequence[Tensor]) -> None:
    if not 1 <= len(inputs) <= MAX_SET_IMAGES:
        raise ValueError(f"expected 1..{MAX_SET_IMAGES} inputs, but got {len(inputs)}")
    for x in inputs:
        if not isinstance(x, Tensor) or x.dim() != 4 or x.shape[0] != 1:
            raise ValueError(f"expected each input to be a (1, 3, H, W) tensor, but got {getattr(x, 'shape', x)!r}")


def compute_set_predictions(backbone: Backbone, inputs: Sequence[Tensor], *,
                            progress: Progress | None = None) -> tuple[tuple[int, float], ...]:
    """(top-1 class, its probability) of each input (1, 3, 224, 224) without a regulariser.

    ``progress(fraction, text)`` is called before each image; returning False (or raising) stops.

    Raises:
        Cancelled: when ``progress`` asked to stop.
    """
    _check_inputs(inputs)
    out = []
    for i, x in enumerate(inputs):
        if progress is not None and progress(i / len(inputs), Text(N_("image {i} of {n}"), i=i + 1,
                                                                     n=len(inputs))) is False:
            raise Cancelled("predictions")
        clean = clean_pass(backbone, x)
        out.append((clean.top1, float(clean.probs[0, clean.top1])))
    return tuple(out)


def compute_set_curve(
    backbone: Backbone,
    inputs: Sequence[Tensor],
    base: RegularizerSpec,
    *,
    keep_probs: Sequence[float] = (1.0, 0.95, 0.9, 0.85, 0.8, 0.75),
    methods: Sequence[SetMethod] | None = None,
    n_samples: int = 8,
    seed: int = 0,
    progress: Progress | None = None,
    max_samples: int | None = None,
) -> SetCurve:
    """Figure 5 over ``inputs``: prediction robustness vs keep_prob for each method.

    Args:
        backbone: the model (never modified).
        inputs: the set, each (1, 3, 224, 224) as the network takes it.
        base: placement and mask options for :func:`default_set_methods` (when ``methods`` is None).
        keep_probs: the x axis; 1.0 is the clean network.
        methods: (label, spec) pairs; each spec's keep_prob is replaced by the curve's.
        n_samples: Monte Carlo samples per point (one batch per image).
        seed: image ``i`` draws from :func:`image_seed` (seed, i), its sample ``s`` from
            :func:`models.engine.sample_seed` (image seed, s).
        progress: called as ``progress(fraction, text)`` at each image's start and after each
            point; returning False (or raising :class:`Cancelled`) stops the computation.
        max_samples: samples per batched pass (default :func:`models.engine.pass_samples`);
            a point's samples are never split; the masks never depend on it.

    Raises:
        Cancelled: when ``progress`` asked to stop; nothing partial is returned.
    """
    job = _SetJob(backbone, inputs, base, keep_probs, methods, n_samples, seed)
    kept, probs = job.draw(range(0, job.n_samples), progress, max_samples)
    if progress is not None:
        progress(1.0, N_("done"))
    return job.result(kept, probs)


def compute_set_curve_rounds(
    backbone: Backbone,
    inputs: Sequence[Tensor],
    base: RegularizerSpec,
    *,
    keep_probs: Sequence[float] = (1.0, 0.95, 0.9, 0.85, 0.8, 0.75),
    methods: Sequence[SetMethod] | None = None,
    n_samples: int = 8,
    seed: int = 0,
    progress: Progress | None = None,
    max_samples: int | None = None,
    first: int = FIRST,
) -> Iterator[Partial[SetCurve]]:
    """:func:`compute_set_curve` in rounds (:func:`models.rounds.round_sizes`): each round draws its
    new samples for every image and point and yields the curve over the samples so far (its
    ``n_samples``); the last equals :func:`compute_set_curve`. ``progress`` as there, its fraction
    counting the samples of every round.

    Raises:
        Cancelled: when ``progress`` asked to stop (within a round).
    """
    job = _SetJob(backbone, inputs, base, keep_probs, methods, n_samples, seed)
    kept = torch.zeros(*job.shape, 0, dtype=torch.bool)
    probs = torch.zeros(*job.shape, 0, dtype=torch.float32)
    for new in round_ranges(job.n_samples, first, most=None):  # a round re-runs every image's clean pass: few rounds
        kept_new, probs_new = job.draw(new, round_progress(progress, new, job.n_samples), max_samples)
        kept, probs = torch.cat([kept, kept_new], dim=-1), torch.cat([probs, probs_new], dim=-1)
        if new.stop >= job.n_samples and progress is not None:
            progress(1.0, N_("done"))
        yield Partial(job.result(kept, probs), new.stop, job.n_samples)


class _SetJob:
    """A set curve's inputs, checked once; draws any samples of it and builds the result."""

    def __init__(self, backbone: Backbone, inputs: Sequence[Tensor], base: RegularizerSpec,
                 keep_probs: Sequence[float], methods: Sequence[SetMethod] | None, n_samples: int, seed: int) -> None:
        _check_inputs(inputs)
        if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
            raise ValueError(f"expected n_samples to be an int >= 1, but got {n_samples!r}")
        keep_probs = tuple(float(k) for k in keep_probs)
        if not keep_probs or any(not 0.0 < k <= 1.0 for k in keep_probs):
            raise ValueError(f"expected keep_probs in (0, 1], but got {keep_probs!r}")
        methods = tuple(default_set_methods(base) if methods is None else methods)
        if not methods:
            raise ValueError("expected at least one method")
        self.backbone, self.inputs, self.keep_probs, self.methods = backbone, inputs, keep_probs, methods
        self.n_samples, self.seed = n_samples, int(seed)
        self.shape = (len(methods), len(keep_probs), len(inputs))
        self.clean_top1: list[int] = []
        self.clean_prob: list[Tensor] = []

    def draw(self, samples: range, progress: Progress | None, max_samples: int | None) -> tuple[Tensor, Tensor]:
        """Samples ``samples`` of every image and point: top-1 kept (M, K, I, S) bool and the clean
        top-1's probability (M, K, I, S) float32. Raises :class:`Cancelled` when ``progress`` asks."""
        samples = sample_range(samples)
        backbone, keep_probs, methods = self.backbone, self.keep_probs, self.methods
        n_methods, n_points, n_images = self.shape
        kept = torch.zeros(*self.shape, len(samples), dtype=torch.bool)
        probs_out = torch.zeros(*self.shape, len(samples), dtype=torch.float32)
        steps, done = n_images * n_methods * n_points, 0
        first_draw = not self.clean_top1

        def report(text: str) -> None:
            if progress is not None and progress(done / steps, text) is False:
                raise Cancelled(text)

        points = [(m, k) for m in range(n_methods) for k in range(n_points)]
        for i, x in enumerate(self.inputs):
            clean = clean_pass(backbone, x)
            top1 = clean.top1
            clean_probs_i = clean.probs[0].detach().to("cpu").float()
            if first_draw:
                self.clean_top1.append(top1)
                self.clean_prob.append(clean_probs_i[top1])
            label = lambda m, k: Text(  # noqa: E731
                N_("image {i} of {n} · {method}, keep_prob {keep_prob:g}"), i=i + 1, n=n_images, method=methods[m][0],
                keep_prob=keep_probs[k])
            report(label(0, 0))
            runs, dropped = [], []
            for m, k in points:
                if keep_probs[k] >= 1.0:  # the clean network: no forward
                    kept[m, k, i] = clean_probs_i.argmax() == top1
                    probs_out[m, k, i] = clean_probs_i[top1]
                    done += 1
                else:
                    runs.append((replace(methods[m][1], keep_prob=keep_probs[k]), samples, image_seed(self.seed, i)))
                    dropped.append((m, k))
            # The points of an image share batched passes from its cached activations (models.engine.iter_runs).
            for j, run in iter_runs(backbone, clean, runs, max_samples=max_samples):
                m, k = dropped[j]
                probs = run.probs.detach().to("cpu").float()
                kept[m, k, i] = probs.argmax(dim=1) == top1
                probs_out[m, k, i] = probs[:, top1]
                done += 1
                if done < steps:  # the last step is the final "done"
                    report(label(m, k))
            del clean
        return kept, probs_out

    def result(self, kept: Tensor, probs: Tensor) -> SetCurve:
        """The curve over the samples ``kept`` and ``probs`` (M, K, I, S) hold."""
        return SetCurve(
            keep_probs=self.keep_probs,
            labels=tuple(label for label, _ in self.methods),
            specs=tuple(spec for _, spec in self.methods),
            n_samples=kept.shape[-1],
            seed=self.seed,
            clean_top1=tuple(self.clean_top1),
            clean_prob=torch.stack(self.clean_prob),
            top1_kept=kept,
            class_prob=probs,
        )
