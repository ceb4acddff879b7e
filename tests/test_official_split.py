"""A dataset's own train/val/test split: read from a CSV column (or a MedMNIST file), carried
by the dataset, honoured by prepare_data with split.keep_dataset, shown by `data info`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import write_image
from labelrefine.cli import app
from labelrefine.config import (
    ConfigError,
    DatasetConfig,
    EncoderConfig,
    NoiseConfig,
    SplitConfig,
    parse_config,
)
from labelrefine.data import (
    DataError,
    ImageDataset,
    inject_noise,
    load_csv_folder,
    load_dataset,
    load_isic2019,
    load_medmnist,
    prepare_data,
)

SYM40 = NoiseConfig(kind="symmetric", rate=0.4)
KEEP = SplitConfig(keep_dataset=True)
N = 30
# The split as written in the CSV (case, spaces and aliases vary) and what it means.
RAW_SPLITS = (["train", "Train", " TRAIN "] * 6 + ["val", "Validation", " valid"] * 2
              + ["test", "TEST"] * 3)
SPLITS = ["train"] * 18 + ["val"] * 6 + ["test"] * 6


@dataclass
class Official:
    images: Path
    csv: Path
    ids: list[str]
    labels: list[str]
    splits: list[str]  # normalised, in CSV order


def _write_csv(path: Path, ids: list[str], labels: list[str], raw: list[str]) -> Path:
    rows = ["image_id,dx,split"] + [f"{i},{y},{s}" for i, y, s in zip(ids, labels, raw,
                                                                       strict=True)]
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture(scope="module")
def official(tmp_path_factory: pytest.TempPathFactory) -> Official:
    """30 tiny PNGs of 3 classes; the CSV's rows interleave the splits (shuffled order)."""
    root = tmp_path_factory.mktemp("official")
    order = np.random.default_rng(3).permutation(N)
    ids = [f"img_{k:02d}" for k in range(N)]
    labels = [("a", "b", "c")[k % 3] for k in range(N)]
    for k, item in enumerate(ids):
        write_image(root / "images" / f"{item}.png", seed=k)
    ids, labels = [ids[k] for k in order], [labels[k] for k in order]
    raw, splits = [RAW_SPLITS[k] for k in order], [SPLITS[k] for k in order]
    csv = _write_csv(root / "labels.csv", ids, labels, raw)
    return Official(images=root / "images", csv=csv, ids=ids, labels=labels, splits=splits)


def _load(o: Official, **kw: object) -> ImageDataset:
    return load_csv_folder(o.images, o.csv, suffix=".png", **kw)


def _where(splits: list[str] | tuple[str, ...], part: str) -> np.ndarray:
    return np.flatnonzero(np.asarray(splits) == part)


# ---------------------------------------------------------------------------------------------
# loading
# ---------------------------------------------------------------------------------------------


def test_loader_carries_the_split_column(official: Official) -> None:
    ds = _load(official, split_column="split")
    assert ds.splits == tuple(official.splits)  # aliases, case and spaces normalised
    assert list(ds.ids) == official.ids  # CSV order kept
    sub = ds.subset([3, 0, 7])
    assert sub.splits == (official.splits[3], official.splits[0], official.splits[7])
    assert _load(official).splits is None  # without the option nothing is carried


def test_load_dataset_passes_split_column_for_csv_and_isic(official: Official,
                                                           tmp_path: Path) -> None:
    cfg = DatasetConfig(images=official.images, labels=official.csv, image_suffix=".png",
                        split_column="split")
    assert load_dataset(cfg).splits == tuple(official.splits)
    # isic2019: one-hot ground truth plus a split column
    classes = ("MEL", "NV", "BCC", "AK", "BKL", "DF", "VASC", "SCC")
    rows = ["image," + ",".join(classes) + ",fold"]
    for k, item in enumerate(official.ids):
        onehot = ["1" if j == k % 2 else "0" for j in range(len(classes))]
        rows.append(f"{item}," + ",".join(onehot) + f",{RAW_SPLITS[k]}")
    gt = tmp_path / "gt.csv"
    gt.write_text("\n".join(rows) + "\n")
    ds = load_isic2019(official.images, gt, suffix=".png", split_column="fold",
                       check_images=False)
    assert ds.splits == tuple(SPLITS)
    isic = DatasetConfig(format="isic2019", images=official.images, labels=gt,
                         image_suffix=".png", split_column="fold")
    assert load_dataset(isic, check_images=False).splits == tuple(SPLITS)


@pytest.mark.parametrize(("bad", "shown"), [("tset", "split 'tset'"), ("", "an empty split"),
                                            ("train/val", "split 'train/val'")])
def test_bad_split_value_names_the_line_and_value(official: Official, tmp_path: Path,
                                                  bad: str, shown: str) -> None:
    raw = [RAW_SPLITS[0]] * N
    raw[4] = bad
    csv = _write_csv(tmp_path / "labels.csv", official.ids, official.labels, raw)
    with pytest.raises(DataError) as err:
        load_csv_folder(official.images, csv, suffix=".png", split_column="split")
    msg = str(err.value)
    # data row 4 is CSV line 6 (the header is line 1)
    assert "labels.csv line 6" in msg and official.ids[4] in msg and shown in msg
    assert "allowed: train, val (or validation, valid), test" in msg


def test_missing_split_column_is_named(official: Official) -> None:
    with pytest.raises(DataError, match="missing column 'fold'; columns present: "
                                        "'image_id', 'dx', 'split'"):
        _load(official, split_column="fold")


def test_carried_split_names_are_checked() -> None:
    with pytest.raises(DataError, match="item 'b' has split 'dev'"):
        ImageDataset(ids=("a", "b"), labels=np.array([0, 1]), class_names=("x", "y"),
                     images=np.zeros((2, 2, 2), np.uint8), splits=("train", "dev"))
    with pytest.raises(DataError, match="1 split names for 2 ids"):
        ImageDataset(ids=("a", "b"), labels=np.array([0, 1]), class_names=("x", "y"),
                     images=np.zeros((2, 2, 2), np.uint8), splits=("train",))


# ---------------------------------------------------------------------------------------------
# prepare_data with split.keep_dataset
# ---------------------------------------------------------------------------------------------


def test_official_split_is_honoured_exactly(official: Official) -> None:
    ds = _load(official, split_column="split")
    # fractions and split seeds are ignored: every setting gives the CSV's split
    for split in (KEEP, SplitConfig(keep_dataset=True, train=0.2, val=0.4, test=0.4, seed=9),
                  SplitConfig(keep_dataset=True, vary_seed=False)):
        for seed in (0, 1):
            p = prepare_data(ds, split, SYM40, None, seed)
            np.testing.assert_array_equal(p.train_idx, _where(official.splits, "train"))
            np.testing.assert_array_equal(p.val_idx, _where(official.splits, "val"))
            np.testing.assert_array_equal(p.test_idx, _where(official.splits, "test"))
    # without keep_dataset the stratified split differs from the CSV's
    p = prepare_data(ds, SplitConfig(train=0.6, val=0.2, test=0.2), SYM40, None, 0)
    assert not np.array_equal(p.train_idx, _where(official.splits, "train"))


def test_noise_only_on_the_official_training_split(official: Official) -> None:
    ds = _load(official, split_column="split")
    p = prepare_data(ds, KEEP, SYM40, None, seed=5)
    train = _where(official.splits, "train")
    noisy = np.flatnonzero(p.is_noisy)
    assert len(noisy) == round(0.4 * len(train))
    assert np.isin(noisy, train).all()
    expected = inject_noise(ds.labels[train], 3, "symmetric", 0.4, 5, class_names=("a", "b", "c"))
    np.testing.assert_array_equal(p.given_labels[train], expected)
    held_out = np.setdiff1d(np.arange(N), train)
    np.testing.assert_array_equal(p.given_labels[held_out], ds.labels[held_out])


def test_official_split_is_deterministic(official: Official) -> None:
    a = prepare_data(_load(official, split_column="split"), KEEP, SYM40, None, seed=2)
    b = prepare_data(_load(official, split_column="split"), KEEP, SYM40, None, seed=2)
    c = prepare_data(_load(official, split_column="split"), KEEP, SYM40, None, seed=3)
    for x, y in ((a.train_idx, b.train_idx), (a.val_idx, b.val_idx), (a.test_idx, b.test_idx),
                 (a.given_labels, b.given_labels), (a.train_idx, c.train_idx)):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a.given_labels, c.given_labels)  # another seed, other noise


def test_keep_dataset_without_split_info_says_what_to_set(official: Official) -> None:
    with pytest.raises(DataError, match="carries no train/val/test split.*set "
                                        "dataset.split_column"):
        prepare_data(_load(official), KEEP, SYM40, None, seed=0)
    with pytest.raises(ConfigError, match="split.keep_dataset: dataset format 'csv' carries no "
                                          "train/val/test split; set dataset.split_column"):
        parse_config({"dataset": {"images": "i", "labels": "l.csv"},
                      "split": {"keep_dataset": True}})
    with pytest.raises(ConfigError, match="format 'nct_crc' carries no"):
        parse_config({"dataset": {"format": "nct_crc", "images": "i"},
                      "split": {"keep_dataset": True}})
    with pytest.raises(ConfigError, match="split_column applies to formats csv and isic2019"):
        parse_config({"dataset": {"format": "medmnist", "npz": "x.npz", "split_column": "s"}})


@pytest.mark.parametrize(("gone", "into", "message"), [
    ("val", "train", "has no val item .*model selection"),
    ("test", "val", "has no test item"),
    ("train", "test", "has no train item"),
])
def test_a_missing_part_is_named(official: Official, tmp_path: Path, gone: str, into: str,
                                 message: str) -> None:
    raw = [into if s == gone else s for s in official.splits]
    csv = _write_csv(tmp_path / "labels.csv", official.ids, official.labels, raw)
    ds = load_csv_folder(official.images, csv, suffix=".png", split_column="split",
                         check_images=False)
    with pytest.raises(DataError, match=message):
        prepare_data(ds, KEEP, SYM40, None, seed=0)


def test_medmnist_split_is_carried_and_id_prefixes_still_work(medmnist_npz: Path) -> None:
    ds = load_medmnist(medmnist_npz)
    assert ds.splits == ("train",) * 10 + ("val",) * 4 + ("test",) * 6
    p = prepare_data(ds, KEEP, SYM40, None, seed=0)
    np.testing.assert_array_equal(p.test_idx, np.arange(14, 20))
    # a dataset built without carried splits falls back to the ids' train_/val_/test_ prefixes
    bare = ImageDataset(ids=ds.ids, labels=ds.labels, class_names=ds.class_names,
                        images=ds.images)
    q = prepare_data(bare, KEEP, SYM40, None, seed=0)
    for x, y in ((p.train_idx, q.train_idx), (p.val_idx, q.val_idx),
                 (p.given_labels, q.given_labels)):
        np.testing.assert_array_equal(x, y)
    # one split only: no val item to select models with
    with pytest.raises(DataError, match="no val and no test item"):
        prepare_data(load_medmnist(medmnist_npz, "train"), KEEP, SYM40, None, seed=0)


# ---------------------------------------------------------------------------------------------
# caching and fingerprints do not depend on the split column
# ---------------------------------------------------------------------------------------------


def test_cache_key_ignores_the_split_column(official: Official) -> None:
    from labelrefine.models.cache import cache_key, content_fingerprint

    with_split = _load(official, split_column="split")
    without = _load(official)
    enc = EncoderConfig(name="resnet18", image_size=32, views=1)
    assert content_fingerprint(with_split) == content_fingerprint(without)
    assert cache_key(with_split, enc) == cache_key(without, enc)
    # the key still follows the images: another image set gives another key
    assert cache_key(with_split.subset(range(N - 1)), enc) != cache_key(with_split, enc)


def test_unset_split_column_leaves_config_dumps_unchanged() -> None:
    cfg = parse_config({"dataset": {"images": "i", "labels": "l.csv"}})
    assert "split_column" not in cfg.model_dump(mode="json")["dataset"]
    cfg = parse_config({"dataset": {"images": "i", "labels": "l.csv", "split_column": "fold"}})
    assert cfg.model_dump(mode="json")["dataset"]["split_column"] == "fold"


# ---------------------------------------------------------------------------------------------
# `labelrefine data info`
# ---------------------------------------------------------------------------------------------


def _info(*args: str):
    return CliRunner().invoke(app, ["data", "info", *args], terminal_width=160)


def _config(tmp_path: Path, o: Official, csv: Path | None = None, keep: bool = True) -> Path:
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(
        f"dataset:\n  images: {o.images}\n  labels: {csv or o.csv}\n  image_suffix: .png\n"
        f"  split_column: split\nsplit:\n  keep_dataset: {str(keep).lower()}\n"
    )
    return cfg


def test_data_info_shows_the_official_split(official: Official, tmp_path: Path) -> None:
    res = _info("--config", str(_config(tmp_path, official)))
    assert res.exit_code == 0, res.output
    out = res.stdout
    assert ("split: the dataset's own, from column 'split' of labels.csv "
            "(train 18  val 6  test 6); used (split.keep_dataset: true)") in out
    assert "train" in out and "val" in out and "test" in out  # per-class columns
    res = _info("--config", str(_config(tmp_path, official)), "--json")
    info = json.loads(res.stdout)["split"]
    assert info["sizes"] == {"train": 18, "val": 6, "test": 6} and info["used"] is True
    labels = np.array([("a", "b", "c").index(y) for y in official.labels])
    for p in ("train", "val", "test"):
        want = np.bincount(labels[_where(official.splits, p)], minlength=3).tolist()
        assert info["class_counts"][p] == want
    # keep_dataset off: shown, but said to be unused
    res = _info("--config", str(_config(tmp_path, official, keep=False)))
    assert res.exit_code == 0 and "not used (split.keep_dataset is off" in res.stdout
    # dataset options only: the column's counts, nothing about use
    res = _info("--images", str(official.images), "--labels", str(official.csv),
                "--suffix", ".png", "--split-column", "split", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["split"]["used"] is None
    # no split asked for: no split section (output as before)
    res = _info("--images", str(official.images), "--labels", str(official.csv),
                "--suffix", ".png", "--json")
    assert "split" not in json.loads(res.stdout)


def test_data_info_split_errors(official: Official, tmp_path: Path) -> None:
    raw = ["train" if s == "val" else s for s in official.splits]
    csv = _write_csv(tmp_path / "noval.csv", official.ids, official.labels, raw)
    res = _info("--config", str(_config(tmp_path, official, csv=csv)))
    assert res.exit_code == 2 and "has no val item" in res.output
    cfg = tmp_path / "nosplit.yaml"
    cfg.write_text(f"dataset:\n  images: {official.images}\n  labels: {official.csv}\n"
                   "split:\n  keep_dataset: true\n")
    res = _info("--config", str(cfg))
    assert res.exit_code == 2 and "set dataset.split_column" in res.output
