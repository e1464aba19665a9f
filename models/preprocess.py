"""Each model's own eval preprocessing: the crop the network sees, and the tensor made from it.

torchvision's weights carry their transform: ``ResNet50_Weights.IMAGENET1K_V1.transforms()``
resizes the short side to 256 and centre-crops 224, ``IMAGENET1K_V2`` resizes to 232 first
(bilinear, antialiased), then both normalise with the ImageNet mean and std. :class:`Preprocess`
holds those numbers and applies the same torchvision functions in the same order, split in two
so the app can show the exact crop the network saw:

    crop = pre.crop(image)        # PIL, (crop_size, crop_size)
    x = pre.to_tensor(crop)       # (1, 3, crop_size, crop_size) == weights.transforms()(image)[None]

The fallback EfficientNet-Lite0 keeps its documented transform, :func:`models.images.to_input`
(resize 256, crop 224, mean = std = 0.5), through :class:`DocumentedPreprocess`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from PIL import Image
from torch import Tensor
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as F

from . import images

__all__ = ["DocumentedPreprocess", "LITE0_PREPROCESS", "Preprocess"]


@dataclass(frozen=True)
class Preprocess:
    """Resize the short side, centre-crop, scale to [0, 1], normalise (torchvision's ImageClassification)."""

    resize_size: int
    crop_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: InterpolationMode = InterpolationMode.BILINEAR
    antialias: bool = True

    @classmethod
    def from_weights(cls, weights) -> Preprocess:
        """The transform of a torchvision weights enum member (``weights.transforms()``)."""
        t = weights.transforms()
        return cls(int(t.resize_size[0]), int(t.crop_size[0]), tuple(t.mean), tuple(t.std), t.interpolation,
                   bool(t.antialias))

    @property
    def label(self) -> str:
        return f"resize {self.resize_size}, centre crop {self.crop_size}"

    def crop(self, image: Image.Image) -> Image.Image:
        """The (crop_size, crop_size) RGB view the network sees."""
        resized = F.resize(image, [self.resize_size], interpolation=self.interpolation, antialias=self.antialias)
        return F.center_crop(resized, [self.crop_size])

    def to_tensor(self, crop: Image.Image) -> Tensor:
        """(1, 3, crop_size, crop_size) float32, normalised, from :meth:`crop`'s output."""
        x = F.convert_image_dtype(F.pil_to_tensor(crop), torch.float)
        return F.normalize(x, list(self.mean), list(self.std)).unsqueeze(0)

    def __call__(self, image: Image.Image) -> Tensor:
        """(1, 3, crop_size, crop_size) network input from an RGB image."""
        return self.to_tensor(self.crop(image))


@dataclass(frozen=True)
class DocumentedPreprocess(Preprocess):
    """The app's own documented transform, :func:`models.images.crop_for_display` then normalise."""

    def crop(self, image: Image.Image) -> Image.Image:
        return images.crop_for_display(image)

    def __call__(self, image: Image.Image) -> Tensor:
        return images.to_input(image, self.mean, self.std)


LITE0_PREPROCESS = DocumentedPreprocess(256, 224, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
