"""``nct_crc``: one sub-folder per class (NCT-CRC-HE-100K, any ``root/<class>/<image>`` tree)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from labelrefine.data.formats import DatasetFormat

if TYPE_CHECKING:
    from labelrefine.config import DatasetConfig
    from labelrefine.data.dataset import ImageDataset
    from labelrefine.data.loaders import Progress


def _load(cfg: DatasetConfig, check_images: bool, progress: Progress | None) -> ImageDataset:
    from labelrefine.data.loaders import load_nct_crc

    assert cfg.images is not None
    return load_nct_crc(cfg.images, check_images=check_images, classes=cfg.classes,
                        progress=progress)


FORMAT = DatasetFormat("nct_crc", "NCT-CRC-HE-100K: one sub-folder per class",
                       needs=("images",), load=_load)
