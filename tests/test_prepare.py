"""prepare_data: split fixed by split.seed, long-tail and noise in the training split only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from labelrefine.config import LongTailConfig, NoiseConfig, SplitConfig
from labelrefine.data import (
    DataError,
    ImageDataset,
    PreparedData,
    inject_noise,
    load_csv_folder,
    longtail_counts,
    prepare_data,
)

SPLIT = SplitConfig(train=0.7, val=0.1, test=0.2, seed=0, vary_seed=False)
SYM40 = NoiseConfig(kind="symmetric", rate=0.4)


@pytest.fixture(scope="module")
def ham(ham10000_dir: Path) -> ImageDataset:
    return load_csv_folder(ham10000_dir / "images", ham10000_dir / "labels.csv",
                           check_images=False)


def _toy(n_per_class: tuple[int, ...] = (300, 120, 40, 12)) -> ImageDataset:
    labels = np.repeat(np.arange(len(n_per_class)), n_per_class)
    labels = np.random.default_rng(0).permutation(labels)
    n = len(labels)
    return ImageDataset(
        ids=tuple(f"x{i}" for i in range(n)),
        labels=labels.astype(np.int64),
        class_names=tuple(f"c{k}" for k in range(len(n_per_class))),
        images=np.zeros((n, 2, 2), dtype=np.uint8),
    )


def _check_invariants(p: PreparedData, ds: ImageDataset) -> None:
    n = len(ds)
    parts = [p.train_idx, p.val_idx, p.test_idx]
    used = np.concatenate(parts)
    assert len(np.unique(used)) == len(used), "splits overlap"
    assert used.min() >= 0 and used.max() < n
    for idx in parts:
        assert idx.dtype == np.int64
    np.testing.assert_array_equal(p.true_labels, ds.labels)
    outside = np.ones(n, dtype=bool)
    outside[p.train_idx] = False
    np.testing.assert_array_equal(p.given_labels[outside], p.true_labels[outside])
    assert not p.is_noisy[outside].any()
    assert p.true_labels.dtype == np.int64 and p.given_labels.dtype == np.int64
    assert p.num_classes == ds.num_classes and p.class_names == ds.class_names


def test_ham10000_symmetric_noise_in_train_only(ham: ImageDataset) -> None:
    p = prepare_data(ham, SPLIT, SYM40, None, seed=0)
    _check_invariants(p, ham)
    n_train = len(p.train_idx)
    assert len(p.train_idx) + len(p.val_idx) + len(p.test_idx) == len(ham)
    assert abs(n_train - 0.7 * len(ham)) <= ham.num_classes
    assert int(p.is_noisy.sum()) == round(0.4 * n_train)
    # the training noise is exactly inject_noise on the training labels with the run seed
    expected = inject_noise(ham.labels[p.train_idx], 7, "symmetric", 0.4, 0)
    np.testing.assert_array_equal(p.given_labels[p.train_idx], expected)
    # the dataset's own labels are untouched
    assert int(np.sum(ham.labels == ham.class_names.index("nv"))) == 4323
    # every class in every split (df has 60 items)
    for idx in (p.train_idx, p.val_idx, p.test_idx):
        assert np.all(np.bincount(ham.labels[idx], minlength=7) > 0)


def test_same_seed_same_data_other_seed_other_noise_same_split() -> None:
    ds = _toy()
    a = prepare_data(ds, SPLIT, SYM40, None, seed=1)
    b = prepare_data(ds, SPLIT, SYM40, None, seed=1)
    c = prepare_data(ds, SPLIT, SYM40, None, seed=2)
    for f in ("train_idx", "val_idx", "test_idx", "given_labels"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
    for f in ("train_idx", "val_idx", "test_idx"):  # the split ignores the run seed
        np.testing.assert_array_equal(getattr(a, f), getattr(c, f))
    assert not np.array_equal(a.given_labels, c.given_labels)
    assert a.is_noisy.sum() == c.is_noisy.sum()
    d = prepare_data(ds, SplitConfig(seed=9), SYM40, None, seed=1)
    assert not np.array_equal(a.train_idx, d.train_idx)


def test_longtail_subsamples_train_only() -> None:
    ds = _toy()
    base = prepare_data(ds, SPLIT, NoiseConfig(kind="none"), None, seed=3)
    lt = prepare_data(ds, SPLIT, NoiseConfig(kind="none"), LongTailConfig(ratio=100), seed=3)
    _check_invariants(lt, ds)
    np.testing.assert_array_equal(lt.val_idx, base.val_idx)
    np.testing.assert_array_equal(lt.test_idx, base.test_idx)
    assert np.isin(lt.train_idx, base.train_idx).all()
    base_counts = np.bincount(ds.labels[base.train_idx], minlength=4)
    np.testing.assert_array_equal(np.bincount(ds.labels[lt.train_idx], minlength=4),
                                  longtail_counts(base_counts, 100))
    assert len(lt.train_idx) < len(base.train_idx)
    assert lt.summary()["sizes"]["unused"] == len(base.train_idx) - len(lt.train_idx)
    other = prepare_data(ds, SPLIT, NoiseConfig(kind="none"), LongTailConfig(ratio=100), seed=4)
    assert not np.array_equal(lt.train_idx, other.train_idx)
    assert not lt.is_noisy.any()


def test_longtail_then_noise() -> None:
    ds = _toy()
    p = prepare_data(ds, SPLIT, NoiseConfig(kind="asymmetric", rate=0.5), LongTailConfig(ratio=20),
                     seed=5)
    _check_invariants(p, ds)
    noisy = p.is_noisy
    np.testing.assert_array_equal(p.given_labels[noisy], (p.true_labels[noisy] + 1) % 4)
    train_counts = np.bincount(ds.labels[p.train_idx], minlength=4)
    assert int(noisy.sum()) == sum(round(0.5 * int(k)) for k in train_counts)


def test_matrix_noise_from_config_and_bad_matrix() -> None:
    ds = _toy()
    t = [[0.5, 0.5, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]
    p = prepare_data(ds, SPLIT, NoiseConfig(kind="matrix", transition=t), None, seed=0)
    _check_invariants(p, ds)
    assert set(p.given_labels[p.is_noisy].tolist()) == {1}
    assert set(p.true_labels[p.is_noisy].tolist()) == {0}
    with pytest.raises(DataError, match="shape"):
        prepare_data(ds, SPLIT, NoiseConfig(kind="matrix", transition=[[1.0]]), None, seed=0)


def test_summary_reports_counts_and_realised_noise() -> None:
    ds = _toy()
    p = prepare_data(ds, SPLIT, NoiseConfig(kind="symmetric", rate=0.2), None, seed=0)
    s = p.summary()
    assert s["items"] == len(ds) and s["num_classes"] == 4
    assert s["sizes"]["train"] == len(p.train_idx)
    assert s["sizes"]["unused"] == 0
    assert sum(s["class_counts"]["val"]) == len(p.val_idx)
    assert s["class_counts"]["test"] == np.bincount(ds.labels[p.test_idx], minlength=4).tolist()
    assert s["noisy_train"] == round(0.2 * len(p.train_idx))
    assert s["noise_rate"] == pytest.approx(s["noisy_train"] / len(p.train_idx))
    assert sum(s["given_train_counts"]) == len(p.train_idx)
    assert set(s["noise_rate_per_class"]) == set(ds.class_names)
    clean = prepare_data(ds, SPLIT, NoiseConfig(kind="none"), None, seed=0).summary()
    assert clean["noise_rate"] == 0.0 and clean["noisy_train"] == 0


def test_vary_seed_gives_each_run_seed_its_own_split() -> None:
    ds = _toy()
    vary = SplitConfig(seed=0, vary_seed=True)
    a = prepare_data(ds, vary, SYM40, None, seed=1)
    b = prepare_data(ds, vary, SYM40, None, seed=1)
    c = prepare_data(ds, vary, SYM40, None, seed=2)
    np.testing.assert_array_equal(a.train_idx, b.train_idx)
    assert not np.array_equal(a.train_idx, c.train_idx)
    # split seed = split.seed + run seed
    fixed = prepare_data(ds, SplitConfig(seed=2, vary_seed=False), SYM40, None, seed=2)
    np.testing.assert_array_equal(c.test_idx, fixed.test_idx)
    _check_invariants(c, ds)


def test_keep_dataset_split_from_medmnist_ids() -> None:
    labels = np.tile(np.arange(3), 20).astype(np.int64)
    ids = tuple(f"{s}_{i}" for s, n in (("train", 40), ("val", 8), ("test", 12))
                for i in range(n))
    ds = ImageDataset(ids=ids, labels=labels, class_names=("a", "b", "c"),
                      images=np.zeros((60, 2, 2), dtype=np.uint8))
    p = prepare_data(ds, SplitConfig(keep_dataset=True), SYM40, None, seed=0)
    np.testing.assert_array_equal(p.train_idx, np.arange(40))
    np.testing.assert_array_equal(p.val_idx, np.arange(40, 48))
    np.testing.assert_array_equal(p.test_idx, np.arange(48, 60))
    _check_invariants(p, ds)
    with pytest.raises(DataError, match="item 'x0' names no split"):
        prepare_data(_toy(), SplitConfig(keep_dataset=True), SYM40, None, seed=0)
