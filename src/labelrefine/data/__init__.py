"""Data layer: dataset type, image reading (DICOM, high bit depth), loaders for the supported
layouts (the format registry: :mod:`labelrefine.data.formats`), splits, noise and long-tail.

Names are loaded on first use, so the config can read the format and noise registries without
importing pandas or the image readers.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "DataError": "dataset",
    "ImageDataset": "dataset",
    "PreparedData": "prepare",
    "UnsupportedImageError": "images",
    "inject_noise": "noise",
    "load_csv_folder": "loaders",
    "load_dataset": "formats",
    "load_isic2019": "loaders",
    "load_medmnist": "loaders",
    "load_nct_crc": "loaders",
    "longtail_counts": "longtail",
    "longtail_indices": "longtail",
    "noise_transition_matrix": "noise",
    "prepare_data": "prepare",
    "read_image": "images",
    "stratified_split": "splits",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'labelrefine.data' has no attribute {name!r}")
    return getattr(importlib.import_module(f"labelrefine.data.{module}"), name)
