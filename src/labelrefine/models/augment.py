"""Image transforms: the paper's training augmentations and the plain evaluation view.

Both transforms accept a PIL image or a ``(3, H, W)`` uint8 tensor and return a normalised
``(3, image_size, image_size)`` float32 tensor (ImageNet mean/std). They draw their randomness
from torch's global generator only, so ``torch.manual_seed(s)`` makes them reproducible.

Augmentations (paper, section 4: "random crop, random flip, random Gaussian blur, and random
colour jittering"; docs/design.md adds rotation <= 10 degrees):

- random resized crop covering 80-100 % of the image area;
- horizontal **and** vertical flip, each with p = 0.5. Dermoscopy and histology images have no
  canonical orientation (a lesion or a tissue patch photographed upside down is the same
  finding), so vertical flips are label-preserving here, unlike for natural images;
- rotation by a uniform angle in [-10, 10] degrees;
- Gaussian blur with p = 0.5, sigma uniform in [0.1, 2.0];
- colour jitter with p = 0.5 (brightness, contrast, saturation 0.2, hue 0.02).
"""

from __future__ import annotations

import math

import torch
from torchvision.transforms import v2

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

BLUR_SIGMA = (0.1, 2.0)
#: odd kernel covering +-3 sigma of the widest blur
BLUR_KERNEL = 2 * math.ceil(3 * BLUR_SIGMA[1]) + 1


def _check_size(name: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _to_normalised_tensor() -> list[v2.Transform]:
    return [
        v2.ToImage(),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(mean=list(IMAGENET_MEAN), std=list(IMAGENET_STD)),
    ]


def train_transform(image_size: int, resize: int | None = None) -> v2.Compose:
    """Random augmented view of an image, as a normalised ``(3, image_size, image_size)`` tensor.

    With ``resize`` (fine-tune protocol: 256 -> 224) the short side is first resized to
    ``resize`` and the random crop is taken from that; without it the crop is taken from the
    image as it is and resized to ``image_size``.
    """
    _check_size("image_size", image_size)
    pre: list[v2.Transform] = []
    if resize is not None:
        _check_size("resize", resize)
        if resize < image_size:
            raise ValueError(f"resize ({resize}) must be >= image_size ({image_size})")
        pre.append(v2.Resize(resize, antialias=True))
    return v2.Compose(
        [
            *pre,
            v2.RandomResizedCrop(image_size, scale=(0.8, 1.0), antialias=True),
            v2.RandomHorizontalFlip(p=0.5),
            v2.RandomVerticalFlip(p=0.5),
            v2.RandomRotation(10),
            v2.RandomApply([v2.GaussianBlur(BLUR_KERNEL, sigma=BLUR_SIGMA)], p=0.5),
            v2.RandomApply([v2.ColorJitter(0.2, 0.2, 0.2, 0.02)], p=0.5),
            *_to_normalised_tensor(),
        ]
    )


def eval_transform(image_size: int, resize: int | None = None) -> v2.Compose:
    """Plain view: resize the short side to ``resize`` (default ``image_size``), centre-crop.

    The fine-tune protocol uses ``eval_transform(224, resize=256)``; embedding mode uses
    ``eval_transform(image_size)``.
    """
    _check_size("image_size", image_size)
    if resize is None:
        resize = image_size
    _check_size("resize", resize)
    if resize < image_size:
        raise ValueError(f"resize ({resize}) must be >= image_size ({image_size})")
    return v2.Compose(
        [
            v2.Resize(resize, antialias=True),
            v2.CenterCrop(image_size),
            *_to_normalised_tensor(),
        ]
    )
