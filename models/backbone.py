"""Backbones described as stages, with functional forwards that accept a regulariser.

A torchvision ResNet (He et al. 2016; ResNet-18/34 with BasicBlocks, ResNet-50/101/152, Wide
ResNet-50-2 and ResNeXt-50 with Bottlenecks) is split into a stem and groups 1-4 (``layer1``..``layer4``, the
paper's conv2_x..conv5_x). The fallback EfficientNet-Lite0 is split the same way by
resolution (56, 28, 14, 7). Blocks are run by functions of ours that call the model's own
submodules, so a regulariser can act inside a block -- after every conv branch (after its
BN/activation) and on the skip connection, where the DropBlock paper (arXiv:1810.12890,
Sec. 4.1.1) and the TF TPU ResNet apply it -- without hooks and without modifying the model,
which is shared by every session of the app.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .text import N_, Text

__all__ = ["Backbone", "FoldedConv", "Site", "SiteFn", "fold_bn", "resnet_backbone", "resnet50_backbone", "efficientnet_lite0_backbone", "identity_site"]


@dataclass(frozen=True)
class Site:
    """Where in the network a regulariser is offered a tensor.

    ``kind`` is ``"input"`` (the image, for Cutout), ``"group_output"`` (after a whole group), ``"branch"`` (after a conv in a
    block's residual branch; ``index`` is the conv number), ``"skip"`` (the shortcut) or ``"pooled"``
    (the globally pooled features before the classifier, for Dropout before fc).
    """

    group: int  # 1..4
    block: int  # index inside the group, -1 for group_output
    kind: str
    index: int = 0

    @property
    def label(self) -> str:
        if self.kind == "input":
            return Text(N_("input image"))
        if self.kind == "pooled":
            return Text(N_("pooled features before fc"))
        if self.kind == "group_output":
            return Text(N_("group {group} output"), group=self.group)
        where = Text(N_("skip connection")) if self.kind == "skip" else Text(N_("conv{index} branch"), index=self.index)
        return Text(N_("group {group}, block {block}, {where}"), group=self.group, block=self.block, where=where)


SiteFn = Callable[[Tensor, Site], Tensor]


def identity_site(x: Tensor, site: Site) -> Tensor:
    return x


@dataclass(frozen=True, eq=False)
class Backbone:
    """A classifier cut into stem, four groups and a head, with what CAM needs.

    Attributes:
        name: the torchvision builder (``"resnet50"``, ``"resnet34"`` ...) or ``"efficientnet_lite0"``.
        model: the eval-mode ``nn.Module`` (never modified after loading).
        groups: four sequences of blocks; group g has resolution 224 / 2**(g+1).
        mean, std: input normalisation.
        categories: the 1000 ImageNet class names.
        group_labels: names for groups 1..4 (ResNet: layer1 / conv2_x ...).
    """

    name: str
    model: nn.Module
    stem: Callable[[Tensor], Tensor]
    groups: tuple[tuple[nn.Module, ...], ...]
    block_fn: Callable[..., Tensor]  # (block, x, group, index, site_fn, before_act=False) -> Tensor
    features: Callable[[Tensor], Tensor]  # group-4 output -> (N, K, 7, 7) CAM features
    classifier: nn.Linear  # (1000, K), applied to globally averaged features
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    categories: tuple[str, ...]
    group_labels: tuple[str, ...]
    folded_groups: tuple[tuple[object, ...], ...] = ()  # the groups' blocks with BN folded; () if none
    folded_block_fn: Callable[..., Tensor] | None = None  # as block_fn, for a folded block
    folded_features: Callable[[Tensor], Tensor] | None = None  # as features, BN folded

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _folded_on(self, x: Tensor) -> bool:
        """Whether the folded blocks can run ``x``: built, and on x's device (a model moved after
        its backbone was described runs its own modules)."""
        return bool(self.folded_groups) and self.folded_groups[0][0].device == x.device

    def run_group(self, x: Tensor, group: int, site_fn: SiteFn = identity_site, *, before_act: bool = False,
                  folded: bool = False) -> Tensor:
        """Run group ``group`` (1..4) on x, offering every in-block site to ``site_fn``.

        ``before_act`` offers branch sites followed by an activation before it (after BN) instead
        of after it; with ReLU the two are equal for any mask scaled by a positive factor.
        ``folded`` runs the blocks with every BatchNorm folded into its conv (:func:`fold_bn`): the
        same function up to float rounding, without the BN pass over every activation; the sites
        and what they are offered are the same. The model's own modules run otherwise, and where
        there are no folded blocks on x's device.
        """
        if folded and self._folded_on(x):
            blocks, block_fn = self.folded_groups[group - 1], self.folded_block_fn
        else:
            blocks, block_fn = self.groups[group - 1], self.block_fn
        for b, block in enumerate(blocks):
            x = block_fn(block, x, group, b, site_fn, before_act)
        return x

    def head(self, x: Tensor, *, folded: bool = False) -> tuple[Tensor, Tensor]:
        """Group-4 output -> (logits (N, 1000), CAM features (N, K, h, w)); ``folded`` as in :meth:`run_group`."""
        features = self.folded_features if folded and self.folded_features is not None and self._folded_on(x) \
            else self.features
        feats = features(x)
        return self.classifier(feats.mean(dim=(2, 3))), feats

    def __reduce__(self):
        """Pickled as the module it describes (its forwards are closures over it): rebuilt by the
        builder of its kind, for the heavy rounds' helper processes (models/offload.py)."""
        if self.name != "efficientnet_lite0" and self.block_fn is not _resnet_block:
            raise pickle.PicklingError(f"expected a backbone built by this module, but got {self.name!r}")
        return _rebuild, (self.name, self.model, self.categories)


def _conv_bn(conv: nn.Module, bn: nn.Module) -> Callable[[Tensor], Tensor]:
    """``bn(conv(x))`` through the model's own modules."""
    return lambda x: bn(conv(x))


def _resnet_block(
    block: nn.Module, x: Tensor, group: int, index: int, site_fn: SiteFn, before_act: bool = False
) -> Tensor:
    """torchvision Bottleneck or BasicBlock through its own modules (:func:`_resnet_sites`)."""
    pairs = [(block.conv1, block.bn1), (block.conv2, block.bn2)]
    if hasattr(block, "conv3"):  # Bottleneck: 1x1, 3x3, 1x1 (ResNet-50/101/152, Wide, ResNeXt)
        pairs.append((block.conv3, block.bn3))
    convs = tuple(_conv_bn(c, b) for c, b in pairs)
    return _resnet_sites(_ResBlock(convs, block.downsample), x, group, index, site_fn, before_act)


def resnet_backbone(model: nn.Module, categories: Sequence[str], name: str = "resnet50") -> Backbone:
    """Describe a torchvision ResNet (eval mode; ``name`` is its builder, e.g. ``"resnet34"``) as a Backbone."""

    def stem(x: Tensor) -> Tensor:
        return model.maxpool(model.relu(model.bn1(model.conv1(x))))

    groups = tuple(tuple(layer) for layer in (model.layer1, model.layer2, model.layer3, model.layer4))
    return Backbone(
        name=name,
        model=model,
        stem=stem,
        groups=groups,
        block_fn=_resnet_block,
        folded_groups=() if model.training else _folded(groups, _fold_resnet_block),
        folded_block_fn=_resnet_sites,
        features=lambda x: x,  # CAM on layer4's output (conv5_3), as in the paper's Figure 6
        classifier=model.fc,
        mean=(0.485, 0.456, 0.406),
        std=(0.229, 0.224, 0.225),
        categories=tuple(categories),
        group_labels=("layer1 (conv2_x)", "layer2 (conv3_x)", "layer3 (conv4_x)", "layer4 (conv5_x)"),
    )


def resnet50_backbone(model: nn.Module, categories: Sequence[str]) -> Backbone:
    """Describe a torchvision ResNet-50 (eval mode) as a Backbone."""
    return resnet_backbone(model, categories, "resnet50")


def _mbconv_block(
    block: nn.Module, x: Tensor, group: int, index: int, site_fn: SiteFn, before_act: bool = False
) -> Tensor:
    """efficientnet-lite MBConvBlock through its own modules (:func:`_mbconv_sites`)."""
    args = block._block_args
    units = _MBConv(
        expand=_conv_bn(block._expand_conv, block._bn0) if args.expand_ratio != 1 else None,
        depthwise=_conv_bn(block._depthwise_conv, block._bn1),
        project=_conv_bn(block._project_conv, block._bn2),
        skip=_mbconv_skip(block),
        act_=block._swish,  # not in place: the block's own activation module
        act=block._swish,
    )
    return _mbconv_sites(units, x, group, index, site_fn, before_act)


def _mbconv_skip(block: nn.Module) -> bool:
    args = block._block_args
    stride = args.stride if isinstance(args.stride, int) else args.stride[0]
    return bool(block.id_skip and stride == 1 and args.input_filters == args.output_filters)


# ---------------------------------------------------------------------------- BatchNorm folded


@dataclass(frozen=True, eq=False)
class FoldedConv:
    """A convolution and the eval-mode BatchNorm after it, as one convolution with a bias.

    ``conv(x) * s + (beta - mean * s)`` with ``s = gamma / sqrt(var + eps)`` per output channel is
    ``conv(x)`` with weights ``W * s`` and bias ``(b - mean) * s + beta``: the same function up to float
    rounding, one pass over the output instead of two. ``pad`` is a padding applied before the
    convolution where it is not the same on both sides (EfficientNet's TF "SAME" padding with stride
    2); symmetric padding is the convolution's own, without the padded copy.
    """

    weight: Tensor
    bias: Tensor
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int
    pad: tuple[int, int, int, int] | None = None  # (left, right, top, bottom)
    conv: nn.Module | None = field(default=None, repr=False)  # the model's conv it stands for (never run here)

    @property
    def device(self) -> torch.device:
        return self.weight.device

    def __call__(self, x: Tensor) -> Tensor:
        if self.pad is not None:
            x = F.pad(x, self.pad)
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


def fold_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> FoldedConv:
    """``bn(conv(x))`` in eval mode as one :class:`FoldedConv` (computed in float64, stored in the
    conv's dtype, on its device); neither module is changed.

    Raises:
        ValueError: a BatchNorm without running statistics or affine parameters, or a conv whose
            padding is not a number of units ("same"/"valid" strings, a non-zero padding mode).
    """
    if bn.running_mean is None or bn.running_var is None or bn.weight is None or bn.bias is None:
        raise ValueError("expected a BatchNorm with running statistics and affine parameters")
    if isinstance(conv.padding, str) or conv.padding_mode != "zeros":
        raise ValueError(f"expected a conv with zero padding in units, but got {conv.padding!r}, {conv.padding_mode!r}")
    with torch.no_grad():
        scale = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
        weight = (conv.weight.double() * scale.view(-1, *([1] * (conv.weight.dim() - 1)))).to(conv.weight.dtype)
        shift = -bn.running_mean.double() if conv.bias is None else conv.bias.double() - bn.running_mean.double()
        bias = (shift * scale + bn.bias.double()).to(conv.weight.dtype)
    padding, pad = tuple(conv.padding), None
    static = getattr(conv, "static_padding", None)  # efficientnet_lite_pytorch's Conv2dStaticSamePadding
    if isinstance(static, nn.ZeroPad2d):
        left, right, top, bottom = static.padding
        if left == right and top == bottom:
            padding = (padding[0] + top, padding[1] + left)
        else:
            pad = (left, right, top, bottom)
    elif static is not None and not isinstance(static, nn.Identity) and type(static).__name__ != "Identity":
        raise ValueError(f"expected no padding module or a ZeroPad2d, but got {type(static).__name__}")
    elif static is None and type(conv).forward is not nn.Conv2d.forward:  # e.g. a padding computed per input
        raise ValueError(f"expected a Conv2d or a static SAME padding, but got {type(conv).__name__}")
    return FoldedConv(weight.contiguous(), bias.contiguous(), tuple(conv.stride), padding, tuple(conv.dilation),
                      conv.groups, pad, conv)


def _at_fresh(site_fn: SiteFn, pre: Tensor, act_: Callable[[Tensor], Tensor], act: Callable[[Tensor], Tensor],
              site: Site, before_act: bool) -> Tensor:
    """Offer ``pre``, a conv+BN output just computed, to ``site_fn`` after its activation (default) or
    before it. Before the site the activation may run in place (``act_``: nothing else holds ``pre``);
    after it, it does not (``act``), since ``site_fn`` may return its input or a tensor its caller keeps."""
    return act(site_fn(pre, site)) if before_act else site_fn(act_(pre), site)


Unit = Callable[[Tensor], Tensor]  # a conv and its BatchNorm: the model's own modules, or a FoldedConv


@dataclass(frozen=True, eq=False)
class _ResBlock:
    """A ResNet block as the functions :func:`_resnet_sites` calls."""

    convs: tuple[Unit, ...]  # the residual branch: Bottleneck 3, BasicBlock 2
    downsample: Unit | None

    @property
    def device(self) -> torch.device:  # for folded blocks
        return self.convs[0].device


def _resnet_sites(
    block: _ResBlock, x: Tensor, group: int, index: int, site_fn: SiteFn, before_act: bool = False
) -> Tensor:
    """A Bottleneck or BasicBlock with sites as in the TF TPU ResNet: after every conv's BN(+ReLU) in the
    residual branch (or between BN and ReLU, ``before_act``), and on the skip connection."""
    site = lambda kind, i=0: Site(group, index, kind, i)  # noqa: E731
    *inner, last = block.convs
    out = x
    for i, conv in enumerate(inner, start=1):
        out = _at_fresh(site_fn, conv(out), torch.relu_, torch.relu, site("branch", i), before_act)
    out = site_fn(last(out), site("branch", len(block.convs)))
    identity = x if block.downsample is None else block.downsample(x)
    identity = site_fn(identity, site("skip"))
    return torch.add(out, identity).relu_()


def _fold_resnet_block(block: nn.Module) -> _ResBlock:
    pairs = [(block.conv1, block.bn1), (block.conv2, block.bn2)]
    if hasattr(block, "conv3"):
        pairs.append((block.conv3, block.bn3))
    downsample = None
    if block.downsample is not None:
        conv, bn = block.downsample  # torchvision: Sequential(conv1x1, BatchNorm2d)
        downsample = fold_bn(conv, bn)
    return _ResBlock(tuple(fold_bn(c, b) for c, b in pairs), downsample)


@dataclass(frozen=True, eq=False)
class _MBConv:
    """An MBConv block as the functions :func:`_mbconv_sites` calls."""

    expand: Unit | None
    depthwise: Unit
    project: Unit
    skip: bool
    act_: Unit  # the activation, in place where it may be
    act: Unit

    @property
    def device(self) -> torch.device:  # for folded blocks
        return self.depthwise.device


def _mbconv_sites(
    block: _MBConv, x: Tensor, group: int, index: int, site_fn: SiteFn, before_act: bool = False
) -> Tensor:
    """efficientnet-lite MBConvBlock (no SE), with sites after each BN(+act) and on the skip."""
    site = lambda kind, i=0: Site(group, index, kind, i)  # noqa: E731
    out = x
    if block.expand is not None:
        out = _at_fresh(site_fn, block.expand(x), block.act_, block.act, site("branch", 1), before_act)
    out = _at_fresh(site_fn, block.depthwise(out), block.act_, block.act, site("branch", 2), before_act)
    out = site_fn(block.project(out), site("branch", 3))
    if block.skip:
        out = out + site_fn(x, site("skip"))
    return out


def _fold_mbconv(block: nn.Module) -> _MBConv:
    if not isinstance(block._swish, nn.ReLU6):  # the folded blocks apply ReLU6 (Lite); Swish is not folded
        raise ValueError(f"expected a ReLU6 block, but got {type(block._swish).__name__}")
    args = block._block_args
    return _MBConv(
        expand=fold_bn(block._expand_conv, block._bn0) if args.expand_ratio != 1 else None,
        depthwise=fold_bn(block._depthwise_conv, block._bn1),
        project=fold_bn(block._project_conv, block._bn2),
        skip=_mbconv_skip(block),
        act_=_relu6_,
        act=_relu6,
    )


def _relu6_(t: Tensor) -> Tensor:
    return t.clamp_(0.0, 6.0)


def _relu6(t: Tensor) -> Tensor:
    return t.clamp(0.0, 6.0)


def _folded(groups: tuple[tuple[nn.Module, ...], ...], fold: Callable[[nn.Module], object]) -> tuple[tuple[object, ...], ...]:
    """Every block of ``groups`` folded, or () where one cannot be (the model's own modules then run)."""
    try:
        return tuple(tuple(fold(block) for block in group) for group in groups)
    except (ValueError, AttributeError, TypeError):
        return ()


# Block indices of efficientnet-lite0 per resolution group: 56, 28, 14, 7.
_LITE0_GROUPS = ((1, 2), (3, 4), (5, 6, 7, 8, 9, 10), (11, 12, 13, 14, 15))


def _rebuild(name: str, model: nn.Module, categories: tuple[str, ...]) -> Backbone:
    if name == "efficientnet_lite0":
        return efficientnet_lite0_backbone(model, categories)
    return resnet_backbone(model, categories, name)


def efficientnet_lite0_backbone(model: nn.Module, categories: Sequence[str]) -> Backbone:
    """Describe efficientnet_lite_pytorch's EfficientNet-Lite0 (eval mode) as a Backbone."""
    blocks = model._blocks

    def stem(x: Tensor) -> Tensor:
        x = model._swish(model._bn0(model._conv_stem(x)))
        return _mbconv_block(blocks[0], x, 0, 0, identity_site)

    def features(x: Tensor) -> Tensor:
        return model._swish(model._bn1(model._conv_head(x)))

    groups = tuple(tuple(blocks[i] for i in group) for group in _LITE0_GROUPS)
    folded = () if model.training else _folded(groups, _fold_mbconv)
    head = None
    if folded and isinstance(model._swish, nn.ReLU6):  # else its own head runs (the folded one applies ReLU6)
        try:
            head = fold_bn(model._conv_head, model._bn1)
        except ValueError:  # e.g. a BatchNorm without running statistics: its own head runs
            head = None
    return Backbone(
        name="efficientnet_lite0",
        model=model,
        stem=stem,
        groups=groups,
        block_fn=_mbconv_block,
        folded_groups=folded,
        folded_block_fn=_mbconv_sites,
        folded_features=None if head is None else lambda x: _relu6_(head(x)),
        features=features,  # CAM on the 1280-channel head conv, the last conv before pooling
        classifier=model._fc,
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        categories=tuple(categories),
        group_labels=("56x56 blocks 1-2", "28x28 blocks 3-4", "14x14 blocks 5-10", "7x7 blocks 11-15"),
    )
