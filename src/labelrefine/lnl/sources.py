"""Batch sources of the LNL engine: cached features (embedding mode) or images (fine-tune mode).

Both yield ``(indices, x)`` pairs: ``indices`` are dataset item indices (int64 numpy) and ``x``
the network input for those items (a CPU tensor). Training batches are shuffled and augmented
(one random augmented view per item per epoch); evaluation batches use the plain view, in order.
Batches are balanced: ``ceil(n / batch_size)`` batches whose sizes differ by at most one, so no
epoch ends on a tiny batch (the clean-set size is floored per batch).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from labelrefine.data.dataset import ImageDataset
from labelrefine.models.augment import eval_transform, train_transform
from labelrefine.validation import check_indices

Batch = tuple[np.ndarray, torch.Tensor]


def batch_slices(n: int, batch_size: int) -> list[slice]:
    """``ceil(n / batch_size)`` contiguous slices covering ``range(n)``, sizes within one."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if n == 0:
        return []
    k = -(-n // batch_size)
    bounds = np.linspace(0, n, k + 1).round().astype(int)
    return [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def standardization_stats(
    views: np.ndarray, plain: np.ndarray, standardize: bool | str,
    fit_idx: np.ndarray | None = None, std_floor: float = 0.1,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension ``(mean, std)`` for :class:`FeatureSource` (see its docstring)."""
    d = plain.shape[1]
    if standardize is False:
        return np.zeros(d), np.ones(d)
    if standardize is True or standardize == "plain":
        p64 = plain.astype(np.float64)
        mean, std = p64.mean(axis=0), p64.std(axis=0)
        std[std < 1e-6] = 1.0
        return mean, std
    if standardize != "train_views":
        raise ValueError(f"standardize must be 'plain', 'train_views' or a bool, "
                         f"got {standardize!r}")
    if fit_idx is None:
        raise ValueError("standardize 'train_views' needs fit_idx (the training items)")
    if not 0 < std_floor <= 1:
        raise ValueError(f"std_floor must be in (0, 1], got {std_floor}")
    idx = check_indices(fit_idx, plain.shape[0], name="fit_idx")
    if idx.size == 0:
        raise ValueError("fit_idx is empty")
    total, total_sq, count = np.zeros(d), np.zeros(d), 0
    for arr in (plain, *views):  # one view at a time: float64 copies stay small
        x = arr[idx].astype(np.float64)
        total += x.sum(axis=0)
        total_sq += np.square(x).sum(axis=0)
        count += x.shape[0]
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - np.square(mean), 0.0))
    floor = max(std_floor * float(np.median(std)), 1e-6)
    return mean, np.maximum(std, floor)


class FeatureSource:
    """Embedding mode: cached encoder features, ``views`` ``(V, N, D)`` and ``plain`` ``(N, D)``.

    Features stay in their stored precision (float16) and are converted per batch. Each
    dimension is centred and scaled (keeps SGD on small heads well conditioned):

    - ``standardize=True`` / ``"plain"``: mean and standard deviation of the plain view over all
      items (label-free; scales below 1e-6 become 1).
    - ``"train_views"``: mean and standard deviation over the items ``fit_idx`` (the training
      split) in every view, augmented and plain, with the scale floored at ``std_floor`` times
      the median scale. Dimensions nearly constant on the plain view but not in the augmented
      views (low-resolution images upscaled by the encoder) then stay bounded instead of
      reaching thousands of standard deviations.
    - ``False``: no change.

    ``V = 0`` trains on the plain view. :meth:`for_split` re-standardises a source for one
    split without copying the features.
    """

    in_dim: int

    def __init__(self, views: np.ndarray, plain: np.ndarray, *,
                 standardize: bool | str = True, fit_idx: np.ndarray | None = None,
                 std_floor: float = 0.1) -> None:
        plain = np.asarray(plain)
        views = np.asarray(views)
        if plain.ndim != 2:
            raise ValueError(f"plain features must be (N, D), got shape {plain.shape}")
        if views.ndim != 3 or views.shape[1:] != plain.shape:
            raise ValueError(f"views must be (V, {plain.shape[0]}, {plain.shape[1]}), "
                             f"got shape {views.shape}")
        if not np.all(np.isfinite(plain)):
            bad = int(np.flatnonzero(~np.isfinite(plain).all(axis=1))[0])
            raise ValueError(f"plain features of item {bad} are not finite")
        self._views = torch.from_numpy(np.ascontiguousarray(views))
        self._plain = torch.from_numpy(np.ascontiguousarray(plain))
        self.num_items, self.in_dim = int(plain.shape[0]), int(plain.shape[1])
        self.num_views = int(views.shape[0])
        if not np.all(np.isfinite(views)):
            v, i = (int(a[0]) for a in np.nonzero(~np.isfinite(views).all(axis=2)))
            raise ValueError(f"augmented view {v} of item {i} has non-finite features")
        self._set_stats(*standardization_stats(views, plain, standardize, fit_idx, std_floor))

    def _set_stats(self, mean: np.ndarray, std: np.ndarray) -> None:
        self._mean = torch.from_numpy(mean.astype(np.float32))
        self._scale = torch.from_numpy((1.0 / std).astype(np.float32))

    def for_split(self, fit_idx: np.ndarray, standardize: str = "train_views",
                  std_floor: float = 0.1) -> FeatureSource:
        """A source sharing these features, standardised as ``standardize`` says with the
        statistics of ``fit_idx`` (``"plain"``: returns ``self`` unchanged)."""
        if standardize == "plain":
            return self
        new = object.__new__(FeatureSource)
        new.__dict__.update(self.__dict__)
        new._set_stats(*standardization_stats(self._views.numpy(), self._plain.numpy(),
                                              standardize, fit_idx, std_floor))
        return new

    @classmethod
    def from_features(cls, fs: Any, *, standardize: bool | str = True,
                      fit_idx: np.ndarray | None = None, std_floor: float = 0.1
                      ) -> FeatureSource:
        """From a :class:`labelrefine.models.cache.FeatureSet`."""
        return cls(fs.views, fs.plain, standardize=standardize, fit_idx=fit_idx,
                   std_floor=std_floor)

    def __len__(self) -> int:
        return self.num_items

    def _prep(self, x: torch.Tensor) -> torch.Tensor:
        return (x.float() - self._mean) * self._scale

    def train_batches(
        self, indices: np.ndarray, batch_size: int, rng: np.random.Generator
    ) -> Iterator[Batch]:
        """Shuffled batches, each item as one random augmented view (drawn from ``rng``)."""
        order = rng.permutation(check_indices(indices, self.num_items))
        if self.num_views > 0:
            view = torch.from_numpy(rng.integers(0, self.num_views, size=order.size))
        for s in batch_slices(order.size, batch_size):
            idx = order[s]
            t_idx = torch.from_numpy(idx)
            x = self._views[view[s], t_idx] if self.num_views > 0 else self._plain[t_idx]
            yield idx, self._prep(x)

    def eval_batches(self, indices: np.ndarray, batch_size: int) -> Iterator[Batch]:
        """Plain view, in the given order."""
        idx_all = check_indices(indices, self.num_items)
        for start in range(0, idx_all.size, batch_size):
            idx = idx_all[start : start + batch_size]
            yield idx, self._prep(self._plain[torch.from_numpy(idx)])


def for_training(source: Any, train_idx: np.ndarray, cfg: Any) -> Any:
    """``source`` standardised for a run whose training items are ``train_idx``, as the
    :class:`labelrefine.config.LNLConfig` ``cfg`` asks (``standardize``, ``std_floor``).

    Image sources, and the ``plain`` setting, are returned unchanged.
    """
    if not isinstance(source, FeatureSource) or cfg.standardize == "plain":
        return source
    return source.for_split(train_idx, cfg.standardize, cfg.std_floor)


class _Images(Dataset):
    """Items of an ImageDataset through a transform; augmentation seeded per (epoch, item)."""

    def __init__(self, dataset: ImageDataset, transform: Any, epoch_seed: int | None):
        self.dataset, self.transform, self.epoch_seed = dataset, transform, epoch_seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        img = self.dataset.load_image(i)
        if self.epoch_seed is None:
            return self.transform(img), i
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed((self.epoch_seed * 1_000_003 + i) % (2**63))
            return self.transform(img), i


class ImageSource:
    """Fine-tune mode: images through torchvision transforms (paper augmentations).

    Augmentations are seeded per epoch (from the ``rng`` passed to :meth:`train_batches`) and per
    item, so runs are reproducible whatever ``num_workers`` is.
    """

    in_dim: None = None

    def __init__(
        self, dataset: ImageDataset, image_size: int = 224, resize: int = 256, *,
        num_workers: int = 0,
    ) -> None:
        if resize < image_size:
            raise ValueError(f"resize ({resize}) must be >= image_size ({image_size})")
        self.dataset = dataset
        self.num_items = len(dataset)
        self.num_workers = num_workers
        self.train_transform = train_transform(image_size, resize)
        self.eval_transform = eval_transform(image_size, resize)

    def __len__(self) -> int:
        return self.num_items

    def _loader(self, ds: _Images, batches: list[list[int]]) -> DataLoader:
        return DataLoader(ds, batch_sampler=batches, num_workers=self.num_workers,
                          pin_memory=torch.cuda.is_available(),
                          persistent_workers=False)

    def train_batches(
        self, indices: np.ndarray, batch_size: int, rng: np.random.Generator
    ) -> Iterator[Batch]:
        """Shuffled batches of augmented images."""
        order = rng.permutation(check_indices(indices, self.num_items))
        batches = [order[s].tolist() for s in batch_slices(order.size, batch_size)]
        ds = _Images(self.dataset, self.train_transform, int(rng.integers(2**62)))
        for x, idx in self._loader(ds, batches):
            yield idx.numpy().astype(np.int64), x

    def eval_batches(self, indices: np.ndarray, batch_size: int) -> Iterator[Batch]:
        """Plain (resized, centre-cropped) images, in the given order."""
        idx_all = check_indices(indices, self.num_items)
        batches = [idx_all[i : i + batch_size].tolist() for i in range(0, idx_all.size,
                                                                       batch_size)]
        ds = _Images(self.dataset, self.eval_transform, None)
        for x, idx in self._loader(ds, batches):
            yield idx.numpy().astype(np.int64), x
