"""Embedding cache: shapes, determinism, hit/miss, key sensitivity, cache folder, atomic writes,
CLI (embed, cache info|clear)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from conftest import write_image
from labelrefine.cli import app
from labelrefine.config import EncoderConfig
from labelrefine.data.dataset import ImageDataset
from labelrefine.models import cache as cache_mod
from labelrefine.models import encoders as encoders_mod
from labelrefine.models.augment import eval_transform
from labelrefine.models.cache import (
    FeatureSet,
    cache_key,
    content_fingerprint,
    embed_dataset,
    load_features,
)
from labelrefine.models.encoders import build_encoder

SIZE = 32


def _array_dataset(n: int = 6, seed: int = 0) -> ImageDataset:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, SIZE, SIZE, 3), dtype=np.uint8)
    return ImageDataset(
        ids=tuple(f"im{i}" for i in range(n)),
        labels=np.arange(n, dtype=np.int64) % 2,
        class_names=("a", "b"),
        images=images,
        name="tiny",
    )


@pytest.fixture
def tiny() -> ImageDataset:
    return _array_dataset()


def _cfg(tmp_path: Path, **kw: object) -> EncoderConfig:
    opts: dict[str, object] = {
        "image_size": SIZE,
        "views": 2,
        "batch_size": 9,
        "cache_dir": tmp_path / "cache",
    }
    opts.update(kw)
    return EncoderConfig(**opts)


@pytest.fixture(scope="module")
def first(tmp_path_factory: pytest.TempPathFactory) -> FeatureSet:
    """One embedding of the tiny dataset, shared by the read-only tests."""
    root = tmp_path_factory.mktemp("first")
    return embed_dataset(_array_dataset(), _cfg(root), progress=False, num_workers=0)


def test_shapes_dtypes_and_file(first: FeatureSet, tiny: ImageDataset) -> None:
    assert first.views.shape == (2, 6, 1280) and first.views.dtype == np.float16
    assert first.plain.shape == (6, 1280) and first.plain.dtype == np.float16
    assert first.ids == tiny.ids
    assert not first.hit
    assert first.path is not None and first.path.is_file()
    assert first.path.name == f"{first.key}.npz"
    assert first.path.stat().st_mode & 0o044 == 0o044  # readable by others sharing the cache
    assert first.meta["weights"] == "efficientnet-lite0-57934424.pth"
    assert first.num_views == 2 and first.dim == 1280 and len(first) == 6
    assert np.isfinite(first.views).all() and np.isfinite(first.plain).all()


def test_plain_view_is_the_encoder_on_the_eval_transform(
    first: FeatureSet, tiny: ImageDataset
) -> None:
    encoder, _ = build_encoder("efficientnet_lite0")
    tf = eval_transform(SIZE)
    x = torch.stack([tf(tiny.load_image(i)) for i in range(len(tiny))])
    expected = encoder(x).numpy()
    np.testing.assert_allclose(first.plain.astype(np.float32), expected, rtol=1e-2, atol=1e-2)


def test_augmented_views_differ_from_each_other_and_from_plain(first: FeatureSet) -> None:
    plain = first.plain.astype(np.float32)
    v0, v1 = first.views.astype(np.float32)
    for i in range(len(first)):
        assert not np.allclose(v0[i], plain[i], atol=1e-3)
        assert not np.allclose(v0[i], v1[i], atol=1e-3)


def test_same_settings_same_features_regardless_of_batch_and_workers(
    first: FeatureSet, tiny: ImageDataset, tmp_path: Path
) -> None:
    # two worker processes that each encode their own batches, other batch size
    other = embed_dataset(tiny, _cfg(tmp_path, batch_size=4), progress=False, num_workers=2)
    assert other.key == first.key and not other.hit
    np.testing.assert_allclose(
        other.plain.astype(np.float32), first.plain.astype(np.float32), atol=2e-3, rtol=1e-3
    )
    np.testing.assert_allclose(
        other.views.astype(np.float32), first.views.astype(np.float32), atol=2e-3, rtol=1e-3
    )


def test_other_seed_changes_views_not_plain(
    first: FeatureSet, tiny: ImageDataset, tmp_path: Path
) -> None:
    threads = torch.get_num_threads()
    other = embed_dataset(
        tiny, _cfg(tmp_path), seed=1, progress=False, num_workers=0, num_threads=1
    )
    assert torch.get_num_threads() == threads  # restored after embedding
    assert other.key != first.key
    np.testing.assert_allclose(
        other.plain.astype(np.float32), first.plain.astype(np.float32), atol=2e-3, rtol=1e-3
    )
    assert not np.allclose(other.views.astype(np.float32), first.views.astype(np.float32))


def test_second_call_is_a_cache_hit_without_the_encoder(
    tiny: ImageDataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = _cfg(tmp_path, views=1)
    calls = {"n": 0}
    real_build = cache_mod.build_runtime_encoder

    def counting_build(*args: object, **kwargs: object):  # noqa: ANN202
        calls["n"] += 1
        return real_build(*args, **kwargs)

    monkeypatch.setattr(cache_mod, "build_runtime_encoder", counting_build)
    miss = embed_dataset(tiny, cfg, progress=False, num_workers=0)
    assert calls["n"] == 1 and not miss.hit

    def no_encoder(*args: object, **kwargs: object) -> None:
        raise AssertionError("encoder built on a cache hit")

    monkeypatch.setattr(cache_mod, "build_runtime_encoder", no_encoder)
    hit = embed_dataset(tiny, cfg, progress=True, num_workers=0)
    assert hit.hit and hit.key == miss.key and hit.path == miss.path
    np.testing.assert_array_equal(hit.views, miss.views)
    np.testing.assert_array_equal(hit.plain, miss.plain)
    assert hit.ids == miss.ids
    assert hit.meta["views"] == 1 and hit.meta["encoder"] == "efficientnet_lite0"


def test_key_changes_with_every_setting_that_changes_features(
    tiny: ImageDataset, tmp_path: Path
) -> None:
    cfg = _cfg(tmp_path)
    base = cache_key(tiny, cfg, seed=0)
    assert base == cache_key(content_fingerprint(tiny), cfg, seed=0)
    changed = {
        "views": cache_key(tiny, _cfg(tmp_path, views=3)),
        "image_size": cache_key(tiny, _cfg(tmp_path, image_size=48)),
        "seed": cache_key(tiny, cfg, seed=1),
        "pixels": cache_key(_array_dataset(seed=1), cfg),
        "ids": cache_key(dataclasses.replace(tiny, ids=tuple(f"x{i}" for i in range(6))), cfg),
    }
    assert len(set(changed.values()) | {base}) == len(changed) + 1, changed
    # batch size, cache folder, labels and class names do not change the features, nor the key
    assert cache_key(tiny, _cfg(tmp_path, batch_size=1, cache_dir=tmp_path / "x")) == base
    relabeled = dataclasses.replace(tiny, labels=tiny.labels[::-1].copy(), class_names=("x", "y"))
    assert cache_key(relabeled, cfg) == base


def test_changing_one_label_is_a_cache_hit(
    first: FeatureSet, tiny: ImageDataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    labels = tiny.labels.copy()
    labels[3] = 1 - labels[3]
    relabeled = dataclasses.replace(tiny, labels=labels)

    def no_encoder(*args: object, **kwargs: object) -> None:
        raise AssertionError("encoder built although only a label changed")

    monkeypatch.setattr(cache_mod, "build_runtime_encoder", no_encoder)
    assert first.path is not None
    cfg = _cfg(first.path.parent.parent)
    hit = embed_dataset(relabeled, cfg, progress=False, num_workers=0)
    assert hit.hit and hit.key == first.key and hit.path == first.path
    np.testing.assert_array_equal(hit.plain, first.plain)


def test_default_cache_dir_env_then_user_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABELREFINE_CACHE_DIR", str(tmp_path / "env"))
    assert cache_mod.default_cache_dir() == tmp_path / "env"
    cfg = EncoderConfig()  # cache_dir unset: the default folder, whatever the working directory
    assert cfg.cache_dir is None
    assert cache_mod.cache_path(cfg, "k") == tmp_path / "env" / "k.npz"
    assert cache_mod.cache_path(_cfg(tmp_path), "k") == tmp_path / "cache" / "k.npz"
    monkeypatch.delenv("LABELREFINE_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    from platformdirs import user_cache_dir

    expected = Path(user_cache_dir("labelrefine", appauthor=False)) / "features"
    assert cache_mod.default_cache_dir() == expected
    assert str(expected).startswith(str(tmp_path / "xdg"))  # on Linux: XDG_CACHE_HOME


def test_embedding_without_cache_dir_goes_to_the_default_folder(
    tiny: ImageDataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABELREFINE_CACHE_DIR", str(tmp_path / "shared"))
    monkeypatch.chdir(tmp_path)
    cfg = EncoderConfig(image_size=SIZE, views=0)
    fs = embed_dataset(tiny, cfg, progress=False, num_workers=0)
    assert fs.path == tmp_path / "shared" / f"{fs.key}.npz" and fs.path.is_file()
    assert not (tmp_path / ".cache").exists()


def test_cli_cache_info_and_clear(first: FeatureSet, tmp_path: Path) -> None:
    runner = CliRunner()
    folder = tmp_path / "c"
    empty = runner.invoke(app, ["cache", "info", "--cache-dir", str(folder)])
    assert empty.exit_code == 0 and "empty" in empty.output
    assert first.path is not None
    folder.mkdir()
    (folder / first.path.name).write_bytes(first.path.read_bytes())
    (folder / ".x.npz.tmp").write_bytes(b"partial")  # an interrupted write
    (folder / "notes.txt").write_text("not ours")
    info = runner.invoke(app, ["cache", "info", "--cache-dir", str(folder)], terminal_width=200)
    assert info.exit_code == 0, info.output
    assert first.key in info.output and "tiny" in info.output and "2 files" in info.output
    entries = cache_mod.list_cache(folder)
    assert [e.kind for e in entries] == ["features", "partial"]
    assert entries[0].meta["items"] == 6 and entries[0].meta["views"] == 2
    declined = runner.invoke(app, ["cache", "clear", "--cache-dir", str(folder)], input="n\n")
    assert declined.exit_code == 1 and (folder / first.path.name).is_file()
    cleared = runner.invoke(app, ["cache", "clear", "--cache-dir", str(folder), "--yes"])
    assert cleared.exit_code == 0 and "deleted 2 files" in cleared.output
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]  # foreign files are kept


def test_key_follows_image_file_contents_and_weights(tmp_path: Path) -> None:
    paths = [write_image(tmp_path / "img" / f"{i}.png", seed=i, size=SIZE) for i in range(3)]
    ds = ImageDataset(
        ids=("0", "1", "2"),
        labels=np.array([0, 1, 0]),
        class_names=("a", "b"),
        paths=tuple(paths),
    )
    cfg = _cfg(tmp_path, name="resnet18", weights=tmp_path / "w" / "resnet18.pth")
    (tmp_path / "w").mkdir()
    torch.save({"w": torch.zeros(1)}, cfg.weights)
    before = cache_key(ds, cfg)
    write_image(paths[1], seed=99, size=SIZE)
    after_image = cache_key(ds, cfg)
    torch.save({"w": torch.ones(1)}, cfg.weights)
    after_weights = cache_key(ds, cfg)
    assert len({before, after_image, after_weights}) == 3
    assert cache_key(ds, _cfg(tmp_path)) != after_weights  # encoder name


def test_failed_write_leaves_no_file_behind(
    tiny: ImageDataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = _cfg(tmp_path, views=0)
    real_savez = np.savez

    def broken_savez(fh, **arrays: np.ndarray) -> None:  # noqa: ANN001
        fh.write(b"PK\x03\x04 partial")
        raise OSError("disk full")

    monkeypatch.setattr(cache_mod.np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        embed_dataset(tiny, cfg, progress=False, num_workers=0)
    def files() -> list[str]:  # the feature files (an exported encoder lives in models/)
        return [p.name for p in Path(cfg.cache_dir).iterdir() if p.is_file()]

    assert files() == []
    monkeypatch.setattr(cache_mod.np, "savez", real_savez)
    fs = embed_dataset(tiny, cfg, progress=False, num_workers=0)
    assert fs.views.shape == (0, 6, 1280)
    assert files() == [f"{fs.key}.npz"]


def test_corrupt_cache_file_is_recomputed(tiny: ImageDataset, tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, views=0)
    key = cache_key(tiny, cfg)
    path = Path(cfg.cache_dir) / f"{key}.npz"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"garbage")
    fs = embed_dataset(tiny, cfg, progress=False, num_workers=0)
    assert not fs.hit
    assert load_features(path, tiny).hit


def test_cache_file_for_other_items_is_rejected(first: FeatureSet) -> None:
    assert first.path is not None
    other = _array_dataset(n=4)
    with pytest.raises(cache_mod.CacheError, match="other items"):
        load_features(first.path, other)


def test_bad_inputs_are_clear_errors(tiny: ImageDataset, tmp_path: Path) -> None:
    empty = ImageDataset(
        ids=(),
        labels=np.zeros(0, dtype=np.int64),
        class_names=("a",),
        images=np.zeros((0, SIZE, SIZE, 3), dtype=np.uint8),
    )
    with pytest.raises(ValueError, match="empty"):
        embed_dataset(empty, _cfg(tmp_path), progress=False)
    with pytest.raises(ValueError, match="num_workers"):
        embed_dataset(tiny, _cfg(tmp_path), progress=False, num_workers=-1)
    with pytest.raises(ValueError, match="num_threads"):
        embed_dataset(tiny, _cfg(tmp_path), progress=False, num_threads=0)
    with pytest.raises(FileNotFoundError, match="resnet18"):
        embed_dataset(tiny, _cfg(tmp_path, name="resnet18"), progress=False)
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def test_cli_embed_miss_then_hit(tmp_path: Path) -> None:
    images = tmp_path / "images"
    lines = ["image_id,dx"]
    for i in range(4):
        write_image(images / f"p{i}.jpg", seed=i, size=SIZE)
        lines.append(f"p{i},{'ab'[i % 2]}")
    (tmp_path / "labels.csv").write_text("\n".join(lines) + "\n")
    config = tmp_path / "exp.yaml"
    config.write_text(
        f"dataset: {{format: csv, images: {images}, labels: {tmp_path / 'labels.csv'}}}\n"
        "encoder: {views: 8, image_size: 128}\n"
        "device: cpu\n"
    )
    runner = CliRunner()
    args = [
        "embed",
        str(config),
        "--views",
        "1",
        "--image-size",
        str(SIZE),
        "--cache-dir",
        str(tmp_path / "c"),
        "--workers",
        "0",
        "--no-progress",
    ]
    first_run = runner.invoke(app, args)
    assert first_run.exit_code == 0, first_run.output
    assert "cache: miss" in first_run.output
    assert "(1, 4, 1280)" in first_run.output and "(4, 1280)" in first_run.output
    second = runner.invoke(app, args)
    assert second.exit_code == 0, second.output
    assert "cache: hit" in second.output
    npz = list((tmp_path / "c").glob("*.npz"))
    assert len(npz) == 1 and str(npz[0].name) in first_run.output.replace("\n", "")

    bad = runner.invoke(app, [*args[:2], "--views", "-1"])
    assert bad.exit_code == 2 and "--views" in bad.output
    missing = runner.invoke(app, [*args, "--encoder", "resnet18"])
    assert missing.exit_code == 2 and "weights" in missing.output


@pytest.mark.parametrize(
    "runtime", [r for r in ("onnxruntime", "openvino") if encoders_mod.runtime_available(r)]
)
def test_runtime_changes_neither_key_nor_features(
    runtime: str, tiny: ImageDataset, tmp_path: Path
) -> None:
    ref = embed_dataset(tiny, _cfg(tmp_path / "a"), progress=False, num_workers=0,
                        runtime="torch")
    other = embed_dataset(tiny, _cfg(tmp_path / "b"), progress=False, num_workers=2,
                          runtime=runtime)
    assert (ref.meta["runtime"], other.meta["runtime"]) == ("torch", runtime)
    assert other.key == ref.key and not other.hit
    for a, b in ((ref.plain, other.plain), *zip(ref.views, other.views, strict=True)):
        a32, b32 = a.astype(np.float32), b.astype(np.float32)
        cos = (a32 * b32).sum(1) / (np.linalg.norm(a32, axis=1) * np.linalg.norm(b32, axis=1))
        assert cos.min() >= 0.999
        assert np.abs(a32 - b32).max() < 1e-2  # float16 storage
    # a cache written by one runtime is a hit for another
    hit = embed_dataset(tiny, _cfg(tmp_path / "a"), progress=False, runtime=runtime)
    assert hit.hit and hit.key == ref.key


def test_workers_with_several_threads_each_finish_with_the_same_features(
    first: FeatureSet, tiny: ImageDataset, tmp_path: Path
) -> None:
    # forked workers that start a multi-threaded pool the parent had used hung forever;
    # with more than one thread per worker the workers are fresh interpreters
    torch.set_num_threads(2)
    torch.ones(256, 256) @ torch.ones(256, 256)  # the parent's thread pool is in use
    other = embed_dataset(tiny, _cfg(tmp_path), progress=False, num_workers=2, num_threads=2)
    np.testing.assert_allclose(
        other.plain.astype(np.float32), first.plain.astype(np.float32), atol=2e-3, rtol=1e-3
    )
