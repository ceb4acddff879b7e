"""The one dataset type every loader returns."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from labelrefine.config import IntensityConfig
from labelrefine.data.errors import DataError

__all__ = ["DataError", "ImageDataset"]


@dataclass(frozen=True)
class ImageDataset:
    """Labelled images: ids, integer labels, class names, and either file paths or pixel arrays.

    Exactly one of ``paths`` (one file per item) or ``images`` (an ``(N, H, W, 3)`` uint8 array,
    e.g. from MedMNIST) is set. ``labels[i]`` indexes ``class_names``.

    ``splits``, when set, is each item's split in the dataset's own train/val/test partition
    (``"train"``, ``"val"`` or ``"test"``; MedMNIST files, or a CSV's ``split_column``); it is
    used with ``split.keep_dataset`` and is not part of the images' content.

    ``intensity`` says how high-bit-depth and DICOM files become 8-bit pictures
    (:func:`labelrefine.data.images.read_image`; ``None``: the default, percentile clipping).
    """

    ids: tuple[str, ...]
    labels: np.ndarray
    class_names: tuple[str, ...]
    paths: tuple[Path, ...] | None = None
    images: np.ndarray | None = field(default=None, repr=False)
    name: str = "dataset"
    splits: tuple[str, ...] | None = None
    intensity: IntensityConfig | None = None
    #: ``(N,)`` bool: labels the team already trusts (``dataset.trusted``); None: none
    trusted: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        n = len(self.ids)
        if (self.paths is None) == (self.images is None):
            raise DataError("exactly one of paths or images must be given")
        if self.labels.shape != (n,):
            raise DataError(f"labels has shape {self.labels.shape}, expected ({n},)")
        if self.paths is not None and len(self.paths) != n:
            raise DataError(f"{len(self.paths)} paths for {n} ids")
        if self.images is not None and len(self.images) != n:
            raise DataError(f"{len(self.images)} images for {n} ids")
        if self.splits is not None:
            if len(self.splits) != n:
                raise DataError(f"{len(self.splits)} split names for {n} ids")
            bad = next((i for i, s in enumerate(self.splits)
                        if s not in ("train", "val", "test")), None)
            if bad is not None:
                raise DataError(
                    f"item {self.ids[bad]!r} has split {self.splits[bad]!r}; "
                    "expected train, val or test"
                )

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def load_image(self, i: int) -> Image.Image:
        """Return item ``i`` as an 8-bit RGB PIL image (files: through
        :func:`labelrefine.data.images.read_image` with :attr:`intensity`)."""
        from labelrefine.data.images import read_image

        if self.images is not None:
            arr = self.images[i]
            if arr.ndim == 2:
                arr = np.stack([arr] * 3, axis=-1)
            return Image.fromarray(np.ascontiguousarray(arr)).convert("RGB")
        assert self.paths is not None
        path = Path(self.paths[i])
        try:
            return read_image(path, self.intensity)
        except FileNotFoundError:
            raise DataError(
                f"image of item {self.ids[i]!r} not found: {path} (was the image folder moved? "
                "for a campaign: labelrefine campaign relocate CAMPAIGN --images NEW_FOLDER)"
            ) from None

    def class_counts(self) -> np.ndarray:
        return np.bincount(self.labels, minlength=self.num_classes)

    def subset(self, indices: Sequence[int] | np.ndarray) -> ImageDataset:
        idx = np.asarray(indices, dtype=np.int64)
        return ImageDataset(
            ids=tuple(self.ids[i] for i in idx),
            labels=self.labels[idx].copy(),
            class_names=self.class_names,
            paths=None if self.paths is None else tuple(self.paths[i] for i in idx),
            images=None if self.images is None else self.images[idx],
            name=self.name,
            splits=None if self.splits is None else tuple(self.splits[i] for i in idx),
            intensity=self.intensity,
        )

    def fingerprint(self) -> str:
        """Content hash of ids, labels, class names and the image bytes (files or array)."""
        h = hashlib.sha256()
        h.update("\x1f".join(self.ids).encode())
        h.update(np.ascontiguousarray(self.labels, dtype=np.int64).tobytes())
        h.update("\x1f".join(self.class_names).encode())
        if self.images is not None:
            h.update(np.ascontiguousarray(self.images).tobytes())
        else:
            assert self.paths is not None
            for p in self.paths:
                h.update(Path(p).read_bytes())
        return h.hexdigest()[:16]
