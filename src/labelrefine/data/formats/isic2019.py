"""``isic2019``: an image folder plus the ISIC-2019 ground-truth CSV (one-hot class columns)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from labelrefine.data.formats import DatasetFormat

if TYPE_CHECKING:
    from labelrefine.config import DatasetConfig
    from labelrefine.data.dataset import ImageDataset
    from labelrefine.data.loaders import Progress


def _load(cfg: DatasetConfig, check_images: bool, progress: Progress | None) -> ImageDataset:
    from labelrefine.data.loaders import load_isic2019

    assert cfg.images is not None and cfg.labels is not None
    return load_isic2019(
        cfg.images, cfg.labels, classes=cfg.classes, check_images=check_images,
        suffix=cfg.image_suffix, progress=progress, split_column=cfg.split_column,
    )


FORMAT = DatasetFormat("isic2019", "ISIC-2019: image folder + one-hot ground-truth CSV",
                       needs=("images", "labels"), load=_load, labels_csv=True,
                       id_column="image")
