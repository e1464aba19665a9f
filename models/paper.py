"""The DropBlock paper's own reported results (Ghiasi, Lin & Le, NeurIPS 2018, arXiv:1810.12890).

Cited, never measured here: each row keeps the paper's printed value as text (with its ± where the
paper gives one) and the table or section it comes from. Pages show these apart from what the app
measures, under a heading that says so. Checked against ``shared/seeds/dropblock-paper-neurips2018.txt``
by ``tests/models/test_paper.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .text import N_

__all__ = ["DETECTION", "FINDINGS", "IMAGENET", "OTHER", "SEGMENTATION", "Finding", "Reported"]


@dataclass(frozen=True)
class Reported:
    """One row of one of the paper's tables: ``values`` as printed, by column."""

    setting: str  # N_-marked (a model name translates to itself)
    values: tuple[str, ...]
    highlight: bool = False  # the row the paper's claim is about


@dataclass(frozen=True)
class Finding:
    """A qualitative finding, with the paper's words and where they are."""

    claim: str  # N_-marked, in this app's words
    quote: str  # the paper's own sentence (English, as printed)
    where: str  # N_-marked section / figure


# Table 1: ResNet-50 on ImageNet, validation accuracy (%), mean ± std over 3 runs (AutoAugment from [27]).
IMAGENET_COLUMNS = ("top-1 (%)", "top-5 (%)")
IMAGENET: tuple[Reported, ...] = (
    Reported(N_("ResNet-50"), ("76.51 ± 0.07", "93.20 ± 0.05")),
    Reported(N_("+ dropout (kp=0.7)"), ("76.80 ± 0.04", "93.41 ± 0.04")),
    Reported(N_("+ DropPath (kp=0.9)"), ("77.10 ± 0.08", "93.50 ± 0.05")),
    Reported(N_("+ SpatialDropout (kp=0.9)"), ("77.41 ± 0.04", "93.74 ± 0.02")),
    Reported(N_("+ Cutout"), ("76.52 ± 0.07", "93.21 ± 0.04")),
    Reported(N_("+ AutoAugment"), ("77.63", "93.82")),
    Reported(N_("+ label smoothing (0.1)"), ("77.17 ± 0.05", "93.45 ± 0.03")),
    Reported(N_("+ DropBlock (kp=0.9)"), ("78.13 ± 0.05", "94.02 ± 0.02"), highlight=True),
    Reported(N_("+ DropBlock (kp=0.9) + label smoothing (0.1)"), ("78.35 ± 0.05", "94.15 ± 0.03")),
)

# Table 3: RetinaNet with a ResNet-50 FPN trained from random initialisation on COCO (val2017).
DETECTION_COLUMNS = ("AP", "AP50", "AP75")
DETECTION: tuple[Reported, ...] = (
    Reported(N_("RetinaNet, fine-tuning from ImageNet"), ("36.5", "55.0", "39.1")),
    Reported(N_("RetinaNet, no DropBlock"), ("36.8", "54.6", "39.4")),
    Reported(N_("RetinaNet, keep_prob = 0.9, block_size = 1"), ("37.9", "56.1", "40.6")),
    Reported(N_("RetinaNet, keep_prob = 0.9, block_size = 3"), ("38.3", "56.4", "41.2")),
    Reported(N_("RetinaNet, keep_prob = 0.9, block_size = 5"), ("38.4", "56.4", "41.2"), highlight=True),
    Reported(N_("RetinaNet, keep_prob = 0.9, block_size = 7"), ("38.2", "56.0", "40.9")),
)

# Table 4: semantic segmentation on PASCAL VOC 2012 from random initialisation, ResNet-101 FPN (mIOU).
SEGMENTATION_COLUMNS = ("mIOU",)
SEGMENTATION: tuple[Reported, ...] = (
    Reported(N_("fine-tuning from ImageNet"), ("74.6",)),
    Reported(N_("no DropBlock"), ("47.2",)),
    Reported(N_("keep_prob = 0.2, block_size = 1"), ("51.0",)),
    Reported(N_("keep_prob = 0.2, block_size = 4"), ("53.2",)),
    Reported(N_("keep_prob = 0.2, block_size = 16"), ("53.4",), highlight=True),
)

# Table 2: AmoebaNet-B (6, 256) on ImageNet.
OTHER_COLUMNS = ("top-1 (%)", "top-5 (%)")
OTHER: tuple[Reported, ...] = (
    Reported(N_("AmoebaNet-B (6, 256)"), ("82.25", "95.88")),
    Reported(N_("AmoebaNet-B (6, 256) + DropBlock"), ("82.52", "96.07"), highlight=True),
)

FINDINGS: dict[str, Finding] = {
    "cutout": Finding(
        N_("DropBlock generalises Cutout: Cutout applied at every feature map."),
        "DropBlock generalizes Cutout by applying Cutout at every feature map in a convolutional networks.",
        N_("Sec. 2")),
    "cutout_imagenet": Finding(
        N_("Cutout gives no gain on ImageNet (Table 1: 76.52 against 76.51)."),
        "it does not improve the accuracy on the ImageNet dataset in our experiments.",
        N_("Sec. 4.1.1")),
    "per_channel": Finding(
        N_("A mask per channel works better than one mask shared by all channels."),
        "Algorithm 1 corresponds to the latter, which tends to work better in our experiments.",
        N_("Sec. 3")),
    "vs_dropout": Finding(
        N_("DropBlock beats dropout by 1.3% top-1 on ResNet-50."),
        "DropBlock outperforms dropout with 1.3% for top-1 accuracy.",
        N_("Sec. 4.1.1, Fig. 3(a)")),
    "spatial": Finding(
        N_("SpatialDropout is better than dropout but worse than DropBlock, and too harsh on group 3."),
        "SpatialDropout is better than dropout but inferior to DropBlock.",
        N_("Sec. 4.1.1, Fig. 4")),
    "skip": Finding(
        N_("DropBlock on the skip connections too, and the linear schedule, both raise accuracy."),
        "applying DropBlock in skip connections in addition to the convolution layers increases the accuracy.",
        N_("Abstract, Sec. 5, Fig. 4")),
    "robust": Finding(
        N_("A model trained with block_size 7 is more robust to DropBlock at inference than one trained with "
           "block_size 1, and keeps the benefit of block_size 1."),
        "The results suggest that block_size = 7 is more robust and has the benefit of block_size = 1 but not "
        "vice versa.",
        N_("Sec. 4.2, Fig. 5")),
    "cam": Finding(
        N_("A model trained with DropBlock has class activations on several spatially distributed regions; "
           "without it, on one or a few."),
        "models trained with DropBlock learn spatially distributed representations that induce high class "
        "activations on multiple regions",
        N_("Sec. 4.2, Fig. 6")),
}
