"""Data layer: dataset type, image reading (DICOM, high bit depth), loaders for the supported
layouts, splits, noise and long-tail."""

from labelrefine.data.dataset import DataError, ImageDataset
from labelrefine.data.images import UnsupportedImageError, read_image
from labelrefine.data.loaders import (
    load_csv_folder,
    load_dataset,
    load_isic2019,
    load_medmnist,
    load_nct_crc,
)
from labelrefine.data.longtail import longtail_counts, longtail_indices
from labelrefine.data.noise import inject_noise, noise_transition_matrix
from labelrefine.data.prepare import PreparedData, prepare_data
from labelrefine.data.splits import stratified_split

__all__ = [
    "DataError",
    "ImageDataset",
    "PreparedData",
    "UnsupportedImageError",
    "inject_noise",
    "load_csv_folder",
    "load_dataset",
    "load_isic2019",
    "load_medmnist",
    "load_nct_crc",
    "longtail_counts",
    "longtail_indices",
    "noise_transition_matrix",
    "prepare_data",
    "read_image",
    "stratified_split",
]
