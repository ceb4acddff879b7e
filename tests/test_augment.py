"""Paper augmentations and the plain view: shapes, normalisation, determinism, bad sizes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from labelrefine.models.augment import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    eval_transform,
    train_transform,
)


def _image(h: int = 40, w: int = 48, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8))


def test_train_transform_shape_dtype_for_pil_and_tensor() -> None:
    tf = train_transform(32)
    img = _image()
    out = tf(img)
    assert out.shape == (3, 32, 32) and out.dtype == torch.float32
    tensor = torch.from_numpy(np.array(img)).permute(2, 0, 1).contiguous()
    out_t = tf(tensor)
    assert out_t.shape == (3, 32, 32) and out_t.dtype == torch.float32


def test_train_transform_is_deterministic_given_the_torch_seed() -> None:
    tf = train_transform(24)
    img = _image()
    torch.manual_seed(7)
    a = [tf(img) for _ in range(3)]
    torch.manual_seed(7)
    b = [tf(img) for _ in range(3)]
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x, y)
    # successive draws and other seeds give different views
    assert not torch.equal(a[0], a[1])
    torch.manual_seed(8)
    assert not torch.equal(tf(img), a[0])


def test_train_views_differ_from_plain_view() -> None:
    img = _image(32, 32)
    plain = eval_transform(32)(img)
    torch.manual_seed(0)
    views = [train_transform(32)(img) for _ in range(8)]
    assert all(not torch.allclose(v, plain) for v in views)


def test_train_transform_uses_both_flip_directions() -> None:
    """Orientation-free images: vertical flips are part of the augmentation."""
    names = [type(t).__name__ for t in train_transform(32).transforms]
    assert "RandomHorizontalFlip" in names and "RandomVerticalFlip" in names
    assert "RandomRotation" in names and "RandomResizedCrop" in names


def test_eval_transform_normalises_exactly_when_no_resampling() -> None:
    img = _image(32, 32, seed=3)
    out = eval_transform(32)(img)
    pixels = torch.from_numpy(np.array(img)).permute(2, 0, 1).float() / 255
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    torch.testing.assert_close(out, (pixels - mean) / std)


def test_eval_transform_resize_then_centre_crop_and_is_deterministic() -> None:
    img = _image(60, 90)
    tf = eval_transform(32, resize=40)
    a, b = tf(img), tf(img)
    assert a.shape == (3, 32, 32)
    assert torch.equal(a, b)


def test_train_transform_with_resize_first() -> None:
    out = train_transform(24, resize=28)(_image(60, 90))
    assert out.shape == (3, 24, 24)


@pytest.mark.parametrize("size", [0, -3, 2.5, True])
def test_bad_image_size_is_a_clear_error(size: object) -> None:
    with pytest.raises(ValueError, match="image_size"):
        train_transform(size)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="image_size"):
        eval_transform(size)  # type: ignore[arg-type]


def test_resize_smaller_than_image_size_is_an_error() -> None:
    with pytest.raises(ValueError, match="resize"):
        eval_transform(32, resize=16)
    with pytest.raises(ValueError, match="resize"):
        train_transform(32, resize=16)
