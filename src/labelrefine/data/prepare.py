"""Turn a dataset + split/noise/long-tail settings into the arrays one run trains on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from labelrefine.config import LongTailConfig, NoiseConfig, SplitConfig
from labelrefine.data.dataset import DataError, ImageDataset
from labelrefine.data.longtail import longtail_indices
from labelrefine.data.noise import inject_noise
from labelrefine.data.splits import dataset_split, splits_from_ids, stratified_split


@dataclass(frozen=True)
class PreparedData:
    """Split indices plus true and given (noisy) labels for one run.

    ``given_labels`` differs from ``true_labels`` only on ``train_idx``; val and test are clean.
    Items dropped by the long-tail subsample are in no split. Treat the arrays as read-only
    (copy before editing).
    """

    train_idx: np.ndarray
    val_idx: np.ndarray
    test_idx: np.ndarray
    true_labels: np.ndarray
    given_labels: np.ndarray
    num_classes: int
    class_names: tuple[str, ...]
    #: ``(N,)`` bool: labels the team trusts (``dataset.trusted``); all False without any
    trusted: np.ndarray | None = None

    @property
    def trusted_train(self) -> np.ndarray:
        """Training items whose labels are trusted (sorted)."""
        if self.trusted is None:
            return np.zeros(0, dtype=np.int64)
        return self.train_idx[self.trusted[self.train_idx]]

    @property
    def is_noisy(self) -> np.ndarray:
        """``(N,)`` bool: the given label is wrong."""
        return self.given_labels != self.true_labels

    def summary(self) -> dict[str, Any]:
        """Plain-python summary: split sizes, per-class counts per split, realised noise."""
        n = len(self.true_labels)
        c = self.num_classes
        splits = {"train": self.train_idx, "val": self.val_idx, "test": self.test_idx}
        used = np.zeros(n, dtype=bool)
        for idx in splits.values():
            used[idx] = True
        noisy = self.is_noisy[self.train_idx]
        train_true = self.true_labels[self.train_idx]
        per_class_noise = {}
        for k, name in enumerate(self.class_names):
            members = train_true == k
            per_class_noise[name] = float(noisy[members].mean()) if members.any() else 0.0
        return {
            "items": n,
            "num_classes": c,
            "class_names": list(self.class_names),
            "sizes": {name: int(len(idx)) for name, idx in splits.items()}
            | {"unused": int((~used).sum())},
            "class_counts": {
                name: np.bincount(self.true_labels[idx], minlength=c).tolist()
                for name, idx in splits.items()
            },
            "given_train_counts": np.bincount(
                self.given_labels[self.train_idx], minlength=c
            ).tolist(),
            "noisy_train": int(noisy.sum()),
            "noise_rate": float(noisy.mean()) if len(noisy) else 0.0,
            "noise_rate_per_class": per_class_noise,
        }


def prepare_data(
    dataset: ImageDataset,
    split: SplitConfig,
    noise: NoiseConfig,
    longtail: LongTailConfig | None,
    seed: int,
) -> PreparedData:
    """Split, optionally long-tail the training split, and inject noise into it.

    - The stratified train/val/test split depends on ``split.seed`` only, so it is the same for
      every run seed; with ``split.vary_seed`` its seed is ``split.seed + seed`` (each run seed
      gets its own split). With ``split.keep_dataset`` the dataset's own split is used as it is
      (:func:`own_split`: MedMNIST files, or a CSV's ``dataset.split_column``); the fractions
      and split seeds are then ignored.
    - The long-tail subsample (training split only) and the noise (training split only) are drawn
      with ``seed``: different run seeds give different noise. The noise on the training items
      equals ``inject_noise(true_labels[train_idx], C, noise.kind, noise.rate, seed,
      noise.transition)``.
    """
    true = np.asarray(dataset.labels, dtype=np.int64).copy()
    c = dataset.num_classes
    if len(true) == 0:
        raise DataError(f"dataset {dataset.name!r} has no items")
    if split.keep_dataset:
        train, val, test = own_split(dataset)
    else:
        split_seed = split.seed + seed if split.vary_seed else split.seed
        train, val, test = stratified_split(true, (split.train, split.val, split.test),
                                            split_seed)
    if longtail is not None:
        train = train[longtail_indices(true[train], longtail.ratio, seed, num_classes=c)]
    if len(train) == 0:
        raise DataError(f"dataset {dataset.name!r}: the training split is empty")
    given = true.copy()
    trusted = dataset.trusted
    if noise.spare_trusted and trusted is None:
        raise DataError("noise.spare_trusted needs dataset.trusted")
    noisy = train if not noise.spare_trusted else train[~trusted[train]]
    try:
        given[noisy] = inject_noise(
            true[noisy], c, noise.kind, noise.rate, seed, transition=noise.transition,
            class_names=dataset.class_names,
        )
    except ValueError as err:
        raise DataError(f"noise settings do not fit dataset {dataset.name!r}: {err}") from None
    return PreparedData(
        train_idx=train,
        val_idx=val,
        test_idx=test,
        true_labels=true,
        given_labels=given,
        num_classes=c,
        class_names=tuple(dataset.class_names),
        trusted=None if trusted is None else np.asarray(trusted, dtype=bool),
    )


def own_split(dataset: ImageDataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The dataset's own train/val/test indices: its carried :attr:`ImageDataset.splits`, else
    (datasets built without them) ids prefixed ``train_`` / ``val_`` / ``test_``.

    Raises:
        DataError: the dataset carries no split (saying how to give one), or a part is empty.
    """
    if dataset.splits is not None:
        splits, source = dataset.splits, "the dataset's own split"
    else:
        try:
            splits = splits_from_ids(dataset.ids)
        except ValueError as err:
            raise DataError(
                f"dataset {dataset.name!r} carries no train/val/test split ({err}); for "
                "split.keep_dataset set dataset.split_column to the CSV column naming each "
                "image's split (train, val or test), or use a MedMNIST file"
            ) from None
        source = "the split in the item ids"
    try:
        return dataset_split(splits, source)
    except ValueError as err:
        raise DataError(f"dataset {dataset.name!r}: {err}") from None
