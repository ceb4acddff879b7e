"""The dataset-format registry: ``dataset.format`` name -> what it needs and how it loads.

Every module of this package defines one ``FORMAT = DatasetFormat(...)``; the registry is
those, found when first asked for (:func:`formats`). Everything that lists formats derives
from it: the config's allowed ``dataset.format`` values and the keys each needs
(:class:`labelrefine.config.DatasetConfig`), ``split.keep_dataset``'s check, the
``labelrefine data --format`` choices and :func:`load_dataset` (here: the registry dispatches).

Adding a format is one module here (its ``FORMAT`` and loader) plus its test. The modules are
light at import (the loaders and pandas are imported when a dataset is loaded), so the config
can check names without loading them.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from labelrefine import extensions

if TYPE_CHECKING:
    import numpy as np

    from labelrefine.config import DatasetConfig
    from labelrefine.data.dataset import ImageDataset
    from labelrefine.data.loaders import Progress

#: ``load(cfg, check_images, progress) -> ImageDataset``
Loader = Callable[["DatasetConfig", bool, "Progress | None"], "ImageDataset"]
#: The dataset keys a format may need set.
SOURCES = ("images", "labels", "npz")


@dataclass(frozen=True)
class DatasetFormat:
    """One on-disk layout.

    Attributes:
        name: the ``dataset.format`` value.
        summary: one line for the README and ``--help``.
        needs: dataset keys that must be set (of :data:`SOURCES`).
        load: reads the dataset a config describes.
        labels_csv: the labels come from a CSV (``labels``), so ``split_column`` and
            ``trusted`` (columns of that CSV) apply.
        own_split: where the layout's own train/val/test split comes from, in words
            (``cfg -> str``); None when it carries none (then only ``split_column`` can give one).
        id_column: the labels CSV's id column when the layout fixes it (ISIC-2019: ``image``);
            None: ``dataset.id_column``.
    """

    name: str
    summary: str
    needs: tuple[str, ...]
    load: Loader
    labels_csv: bool = False
    own_split: Callable[[DatasetConfig], str] | None = None
    id_column: str | None = None

    def __post_init__(self) -> None:
        unknown = set(self.needs) - set(SOURCES)
        if unknown:
            raise ValueError(f"dataset format {self.name!r}: unknown keys {sorted(unknown)}")


_REGISTRY: dict[str, DatasetFormat] = {}


def formats() -> dict[str, DatasetFormat]:
    """name -> format: every ``FORMAT`` of this package's modules (alphabetical by module),
    plus any :func:`register`-ed later."""
    if not _REGISTRY:
        found: dict[str, DatasetFormat] = {}
        for mod in sorted(m.name for m in pkgutil.iter_modules(__path__)):
            fmt = importlib.import_module(f"{__name__}.{mod}").FORMAT
            if fmt.name in found:
                raise ValueError(f"dataset format {fmt.name!r} is defined twice ({mod})")
            found[fmt.name] = fmt
        _REGISTRY.update(found)
    return _REGISTRY


def register(fmt: DatasetFormat) -> DatasetFormat:
    """Add ``fmt`` under its name (``ValueError`` if taken); returns it."""
    if fmt.name in formats():
        raise ValueError(f"dataset format {fmt.name!r} is already registered")
    _REGISTRY[fmt.name] = fmt
    return fmt


def format_names() -> tuple[str, ...]:
    """The registered format names."""
    return tuple(formats())


def get_format(name: str) -> DatasetFormat:
    """The format ``name``; ``ValueError`` listing the choices otherwise."""
    try:
        return formats()[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown dataset format {name!r}; choose one of "
                         f"{', '.join(format_names())}") from None


def labels_csv_names() -> tuple[str, ...]:
    """Formats whose labels come from a CSV (``split_column`` and ``trusted`` apply)."""
    return tuple(n for n, f in formats().items() if f.labels_csv)


def load_dataset(
    cfg: DatasetConfig, *, check_images: bool = True, progress: Progress | None = None
) -> ImageDataset:
    """Load the dataset a :class:`~labelrefine.config.DatasetConfig` describes, with its
    ``intensity`` setting.

    ``progress(done, total)`` reports image checking (file layouts only).
    """
    import dataclasses

    from labelrefine.data.loaders import check_display_names

    ds = get_format(cfg.format).load(cfg, check_images, progress)
    check_display_names(cfg.class_names or {}, ds.class_names, "dataset.class_names")
    return dataclasses.replace(ds, intensity=cfg.intensity, trusted=_trusted(cfg, ds))


def _trusted(cfg: DatasetConfig, ds: ImageDataset) -> np.ndarray | None:
    """``dataset.trusted`` as a mask over ``ds``'s items (None when nothing is trusted); the
    CSV layouts only (the column lives in the labels CSV)."""
    if cfg.trusted is None:
        return None
    import numpy as np

    from labelrefine.data.dataset import DataError
    from labelrefine.data.external import trusted_mask
    from labelrefine.data.loaders import read_label_csv

    fmt = get_format(cfg.format)
    if not fmt.labels_csv or cfg.labels is None:
        raise DataError(f"dataset.trusted needs a labels CSV (format "
                        f"{' or '.join(labels_csv_names())}), not {cfg.format}")
    frame = read_label_csv(cfg.labels)
    mask = trusted_mask(frame, cfg.trusted.column, cfg.trusted.values)
    id_column = fmt.id_column or cfg.id_column
    if id_column not in frame:
        raise DataError(f"{cfg.labels}: no id column {id_column!r}")
    by_id = dict(zip(frame[id_column].astype(str).str.strip(), mask, strict=True))
    return np.array([bool(by_id.get(str(k), False)) for k in ds.ids], dtype=bool)


__all__ = ["SOURCES", "DatasetFormat", "Loader", "format_names", "formats", "get_format",
           "labels_csv_names", "load_dataset", "register"]


extensions.offer(get_format=get_format, formats=formats, labels_csv_names=labels_csv_names)
