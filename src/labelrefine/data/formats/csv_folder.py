"""``csv``: an image folder plus a CSV with one row per image (an id and a label column)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from labelrefine.data.formats import DatasetFormat

if TYPE_CHECKING:
    from labelrefine.config import DatasetConfig
    from labelrefine.data.dataset import ImageDataset
    from labelrefine.data.loaders import Progress


def _load(cfg: DatasetConfig, check_images: bool, progress: Progress | None) -> ImageDataset:
    from labelrefine.data.loaders import load_csv_folder

    assert cfg.images is not None and cfg.labels is not None
    return load_csv_folder(
        cfg.images, cfg.labels, id_column=cfg.id_column, label_column=cfg.label_column,
        classes=cfg.classes, suffix=cfg.image_suffix, check_images=check_images,
        progress=progress, split_column=cfg.split_column,
    )


FORMAT = DatasetFormat("csv", "image folder + CSV (an id column and a label column)",
                       needs=("images", "labels"), load=_load, labels_csv=True)
