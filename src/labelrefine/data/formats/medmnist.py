"""``medmnist``: a MedMNIST ``.npz`` file (``train_images``, ``train_labels``, ``val_*``,
``test_*``), read from a local file only."""

from __future__ import annotations

from typing import TYPE_CHECKING

from labelrefine.data.formats import DatasetFormat

if TYPE_CHECKING:
    from labelrefine.config import DatasetConfig
    from labelrefine.data.dataset import ImageDataset
    from labelrefine.data.loaders import Progress


def _load(cfg: DatasetConfig, check_images: bool, progress: Progress | None) -> ImageDataset:
    from labelrefine.data.loaders import load_medmnist

    assert cfg.npz is not None
    return load_medmnist(cfg.npz, cfg.npz_split, classes=cfg.classes)


def _split(cfg: DatasetConfig) -> str:
    return f"the train/val/test arrays of {cfg.npz.name if cfg.npz else 'the .npz file'}"


FORMAT = DatasetFormat("medmnist", "MedMNIST .npz file (local)", needs=("npz",), load=_load,
                       own_split=_split)
