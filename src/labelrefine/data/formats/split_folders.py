"""``split_folders``: one folder per split, one sub-folder per class inside it --
``root/<split>/<class>/<image>`` with ``<split>`` ``train``, ``val`` (or ``valid``,
``validation``) and ``test`` (any case), the layout of many downloaded datasets and of
torchvision's ``ImageFolder`` per split. No CSV; the split folders are the dataset's own
train/val/test partition (``split.keep_dataset: true`` uses it).

Item ids are ``<split folder>/<class folder>/<file name>``, sorted. A split folder may lack a
class; every class folder must hold an image. Class order: ``dataset.classes`` when given
(other class folders are errors), else sorted folder names.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from labelrefine.data.formats import DatasetFormat

if TYPE_CHECKING:
    from collections.abc import Sequence

    from labelrefine.config import DatasetConfig
    from labelrefine.data.dataset import ImageDataset
    from labelrefine.data.loaders import Progress


def _folders(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def load_split_folders(root: str | Path, *, check_images: bool = True,
                       classes: Sequence[str] | None = None,
                       progress: Progress | None = None) -> ImageDataset:
    """Load ``root/<split>/<class>/<image>``; :class:`DataError` naming the bad folder."""
    from labelrefine.data.dataset import DataError, ImageDataset
    from labelrefine.data.loaders import IMAGE_SUFFIXES, _encode_labels, check_image_files
    from labelrefine.data.splits import allowed_split_values, parse_split_name

    root = Path(root)
    if not root.is_dir():
        raise DataError(f"split folder root not found: {root}")
    parts = _folders(root)
    if not parts:
        raise DataError(f"{root}: no split folders found (expected train, val and test, each "
                        f"with one folder per class)")
    ids: list[str] = []
    paths: list[Path] = []
    names: list[str] = []
    splits: list[str] = []
    seen: dict[str, Path] = {}
    for part in parts:
        split = parse_split_name(part.name)
        if split is None:
            raise DataError(f"folder {part} is not a split folder (expected "
                            f"{allowed_split_values()})")
        if split in seen:
            raise DataError(f"folders {seen[split]} and {part} are both the {split} split")
        seen[split] = part
        folders = _folders(part)
        if not folders:
            raise DataError(f"split folder {part} holds no class folders")
        for folder in folders:
            files = sorted(f for f in os.listdir(folder)
                           if not f.startswith(".") and Path(f).suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                raise DataError(f"class folder {folder} holds no images "
                                f"(looked for {', '.join(IMAGE_SUFFIXES)})")
            for f in files:
                ids.append(f"{part.name}/{folder.name}/{f}")
                paths.append(folder / f)
                names.append(folder.name)
                splits.append(split)
    labels, class_names = _encode_labels(names, classes, ids, str(root), what="class folder")
    if check_images:
        check_image_files(paths, ids, progress)
    return ImageDataset(ids=tuple(ids), labels=labels, class_names=class_names,
                        paths=tuple(paths), name=root.resolve().name, splits=tuple(splits))


def _load(cfg: DatasetConfig, check_images: bool, progress: Progress | None) -> ImageDataset:
    assert cfg.images is not None
    return load_split_folders(cfg.images, check_images=check_images, classes=cfg.classes,
                              progress=progress)


def _split(cfg: DatasetConfig) -> str:
    return f"the train/val/test folders of {cfg.images.name if cfg.images else 'the root'}"


FORMAT = DatasetFormat("split_folders", "one folder per split, one sub-folder per class in it",
                       needs=("images",), load=_load, own_split=_split)
