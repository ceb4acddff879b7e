"""Loaders for the supported on-disk layouts; each returns an :class:`ImageDataset`.

Layouts:

- image folder + CSV (one row per image: an id column and a label column);
- ISIC-2019 (image folder + ground-truth CSV with one-hot class columns);
- NCT-CRC-HE-100K (one subfolder per class);
- MedMNIST ``.npz`` (``train_images``, ``train_labels``, ``val_*``, ``test_*``), read from a local
  file only.

Which ``dataset.format`` uses which loader is the format registry's
(:mod:`labelrefine.data.formats`, one module per format); :func:`load_dataset` dispatches
through it.

Every loader validates its input and raises :class:`DataError` naming the offending item (row, id,
file or key). Loaders only read; they never write anything.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from labelrefine.data.dataset import DataError, ImageDataset
from labelrefine.data.images import DICOM_SUFFIXES, image_problem
from labelrefine.data.splits import allowed_split_values, parse_split_name

IMAGE_SUFFIXES: tuple[str, ...] = (".tif", ".tiff", ".png", ".jpg", ".jpeg", *DICOM_SUFFIXES)
"""File name endings (case-insensitive) recognised as images in folder layouts."""

ISIC2019_CLASSES: tuple[str, ...] = ("MEL", "NV", "BCC", "AK", "BKL", "DF", "VASC", "SCC")
"""The eight ISIC-2019 diagnosis columns, in the order of the official ground-truth CSV."""

MEDMNIST_SPLITS: tuple[str, ...] = ("train", "val", "test")

Progress = Callable[[int, int], None]
"""Progress callback: ``progress(done, total)`` while images are being checked."""


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------


def _more(n_extra: int, what: str) -> str:
    return f" (and {n_extra} more {what})" if n_extra > 0 else ""


def read_label_csv(path: str | Path) -> pd.DataFrame:
    """Read a CSV as strings (no NA guessing), with stripped column names and cells."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"label CSV not found: {path}")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        raise DataError(f"label CSV is empty: {path}") from None
    except UnicodeDecodeError:
        raise DataError(not_utf8_message(path)) from None
    except pd.errors.ParserError as err:
        raise DataError(f"cannot parse label CSV {path}: {err}") from None
    df.columns = [str(c).strip() for c in df.columns]
    df = df.apply(lambda col: col.str.strip())
    if len(df) == 0:
        raise DataError(f"label CSV has a header but no rows: {path}")
    return df


def not_utf8_message(path: Path) -> str:
    """Say where a CSV stops being UTF-8 (line and byte) and how to fix it."""
    raw = Path(path).read_bytes()
    try:
        raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        byte = raw[err.start]
        return (
            f"{Path(path).name} line {line}: not UTF-8 text (byte 0x{byte:02x}); the file is "
            "probably in a Windows or Latin-1 encoding -- save it as UTF-8 (e.g. 'CSV UTF-8' in "
            "Excel, or: iconv -f cp1252 -t utf-8 in.csv > out.csv)"
        )
    return f"{Path(path).name}: not UTF-8 text"


def _require_columns(df: pd.DataFrame, columns: Sequence[str], path: Path) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        present = ", ".join(repr(c) for c in df.columns)
        raise DataError(
            f"{path.name}: missing column {', '.join(repr(c) for c in missing)}; "
            f"columns present: {present}"
        )


def _line(row: int) -> str:
    """CSV line number of data row ``row`` (0-based; the header is line 1)."""
    return f"line {row + 2}"


def _check_ids(ids: Sequence[str], id_column: str, path: Path) -> None:
    """Empty or duplicate ids are errors naming the id and its CSV lines."""
    seen: dict[str, int] = {}
    for row, item in enumerate(ids):
        if not item:
            raise DataError(f"{path.name} {_line(row)}: empty {id_column!r}")
        if item in seen:
            raise DataError(
                f"{path.name}: duplicate {id_column} {item!r} "
                f"({_line(seen[item])} and {_line(row)})"
            )
        seen[item] = row


def _resolve_paths(
    images: Path, ids: Sequence[str], suffix: str, source: str
) -> tuple[Path, ...]:
    """Map item ids to files in ``images``: ``<id><suffix>``, or ``<id>`` when it already ends in
    ``suffix`` or another image ending (``.png``, ``.tif``, ...)."""
    if not images.is_dir():
        raise DataError(f"image folder not found: {images}")
    names = set(os.listdir(images))
    paths: list[Path] = []
    missing: list[tuple[str, Path]] = []
    for item in ids:
        if item.endswith(suffix):
            candidates = [item]
        elif Path(item).suffix.lower() in IMAGE_SUFFIXES:
            candidates = [item + suffix, item]  # the id already is a file name
        else:
            candidates = [item + suffix]
        found = None
        for cand in candidates:
            if cand in names or ("/" in cand and (images / cand).is_file()):
                found = images / cand
                break
        if found is None:
            missing.append((item, images / candidates[0]))
            continue
        paths.append(found)
    if missing:
        item, expected = missing[0]
        raise DataError(
            f"image for item {item!r} ({source}) not found: {expected}"
            + _more(len(missing) - 1, "missing")
        )
    return tuple(paths)


def check_image_files(
    paths: Sequence[Path],
    ids: Sequence[str] | None = None,
    progress: Progress | None = None,
) -> None:
    """Raise :class:`DataError` naming the first unreadable or corrupt image in ``paths``.

    ``progress(done, total)`` is called now and then while checking (and once at the end).
    """
    if not paths:
        return
    total = len(paths)
    workers = min(4, os.cpu_count() or 1, total)
    problems: list[str | None] = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for prob in pool.map(image_problem, paths):
            problems.append(prob)
            if progress is not None and (len(problems) % 256 == 0 or len(problems) == total):
                progress(len(problems), total)
    bad = [i for i, prob in enumerate(problems) if prob is not None]
    if bad:
        i = bad[0]
        who = f"item {ids[i]!r} " if ids is not None else ""
        raise DataError(
            f"unreadable image for {who}at {paths[i]}: {problems[i]}"
            + _more(len(bad) - 1, "unreadable")
        )


def _encode_labels(
    names: Sequence[str],
    classes: Sequence[str] | None,
    item_ids: Sequence[str],
    where: str,
    what: str = "label",
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Turn label names into indices into ``classes`` (default: sorted unique names).

    Default order: sorted, numerically when every name is an integer. Empty labels, labels
    outside ``classes`` and data with fewer than two classes are errors.
    """
    for item, name in zip(item_ids, names, strict=True):
        if not name:
            raise DataError(f"item {item!r} ({where}) has an empty {what}")
    if classes is not None:
        class_names = tuple(str(c) for c in classes)
        if len(class_names) < 2:
            raise DataError(f"need at least two classes, got {list(class_names)}")
        dup = pd.Index(class_names)
        if dup.has_duplicates:
            raise DataError(f"class list has duplicates: {sorted(set(dup[dup.duplicated()]))}")
        allowed = set(class_names)
        for item, name in zip(item_ids, names, strict=True):
            if name not in allowed:
                raise DataError(
                    f"item {item!r} ({where}) has unknown {what} {name!r}; "
                    f"expected one of {list(class_names)}"
                )
    else:
        class_names = _sorted_names(set(names))
    index = {c: i for i, c in enumerate(class_names)}
    labels = np.fromiter((index[n] for n in names), dtype=np.int64, count=len(names))
    _require_two_classes(labels, class_names, where)
    return labels, class_names


def _sorted_names(names: set[str]) -> tuple[str, ...]:
    """Sorted class names; numerically when every name is an integer ("2" before "10")."""
    if all(n.lstrip("-").isdigit() for n in names):
        return tuple(sorted(names, key=int))
    return tuple(sorted(names))


def _require_two_classes(labels: np.ndarray, class_names: Sequence[str], where: str) -> None:
    present = np.unique(labels)
    if len(present) < 2:
        only = class_names[int(present[0])] if len(present) else "none"
        raise DataError(
            f"{where}: all {len(labels)} items have the same class {only!r}; "
            "classification needs at least two classes"
        )


def _read_splits(
    df: pd.DataFrame, column: str, ids: Sequence[str], path: Path
) -> tuple[str, ...]:
    """Each row's split (``train`` / ``val`` / ``test``) from ``column``; an empty or unknown
    value is an error naming the CSV line, the item and the value."""
    names: list[str] = []
    for row, value in enumerate(df[column].tolist()):
        name = parse_split_name(value)
        if name is None:
            what = "an empty split" if not value.strip() else f"split {value!r}"
            raise DataError(
                f"{path.name} {_line(row)}: item {ids[row]!r} has {what} in column {column!r}; "
                f"allowed: {allowed_split_values()}"
            )
        names.append(name)
    return tuple(names)


# ----------------------------------------------------------------------------------------------
# loaders
# ----------------------------------------------------------------------------------------------


def load_csv_folder(
    images: str | Path,
    labels_csv: str | Path,
    *,
    id_column: str = "image_id",
    label_column: str = "dx",
    classes: Sequence[str] | None = None,
    suffix: str = ".jpg",
    check_images: bool = True,
    name: str | None = None,
    progress: Progress | None = None,
    split_column: str | None = None,
) -> ImageDataset:
    """Load an image folder described by a CSV with one row per image.

    Args:
        images: folder holding the image files.
        labels_csv: CSV with at least ``id_column`` and ``label_column``.
        id_column: column with the item id; the file is ``<id><suffix>`` or, when the id already
            is a file name, ``<id>``.
        label_column: column with the class name.
        classes: fixes the class order; labels outside it are errors. Default: the names found,
            sorted (numerically when all are integers).
        suffix: file name ending appended to ids that lack it.
        check_images: open and verify every image (PIL); corrupt files are errors.
        name: dataset name (default: the CSV's folder name).
        progress: called as ``progress(done, total)`` while images are checked.
        split_column: column naming each image's split in the dataset's own partition
            (``train``, ``val`` / ``validation`` / ``valid``, ``test``; any case); carried as
            :attr:`ImageDataset.splits`.

    Returns:
        An :class:`ImageDataset` with items in CSV order.
    """
    images, labels_csv = Path(images), Path(labels_csv)
    df = read_label_csv(labels_csv)
    extra = [] if split_column is None else [split_column]
    _require_columns(df, [id_column, label_column, *extra], labels_csv)
    ids = df[id_column].tolist()
    _check_ids(ids, id_column, labels_csv)
    labels, class_names = _encode_labels(
        df[label_column].tolist(), classes, ids, labels_csv.name, what=f"label ({label_column})"
    )
    splits = None if split_column is None else _read_splits(df, split_column, ids, labels_csv)
    paths = _resolve_paths(images, ids, suffix, labels_csv.name)
    if check_images:
        check_image_files(paths, ids, progress)
    return ImageDataset(
        ids=tuple(ids),
        labels=labels,
        class_names=class_names,
        paths=paths,
        name=name or labels_csv.resolve().parent.name or labels_csv.stem,
        splits=splits,
    )


def load_isic2019(
    images: str | Path,
    ground_truth_csv: str | Path,
    *,
    classes: Sequence[str] | None = None,
    check_images: bool = True,
    suffix: str = ".jpg",
    progress: Progress | None = None,
    split_column: str | None = None,
) -> ImageDataset:
    """Load the ISIC-2019 layout: an image folder and the one-hot ground-truth CSV.

    The CSV has a column ``image`` and one 0/1 column per class (``MEL, NV, BCC, AK, BKL, DF, VASC,
    SCC`` and optionally ``UNK``); each row has exactly one 1. The ``UNK`` column is used only when
    some row has it set. Class order: ``classes`` when given (those columns must exist), else the
    column order of the CSV, which is the official order. ``split_column``: as in
    :func:`load_csv_folder`.
    """
    images, ground_truth_csv = Path(images), Path(ground_truth_csv)
    df = read_label_csv(ground_truth_csv)
    if split_column is not None:
        _require_columns(df, [split_column], ground_truth_csv)
    if classes is None:
        _require_columns(df, ["image", *ISIC2019_CLASSES], ground_truth_csv)
        class_cols = [c for c in df.columns if c in ISIC2019_CLASSES or c == "UNK"]
    else:
        class_cols = [str(c) for c in classes]
        _require_columns(df, ["image", *class_cols], ground_truth_csv)
    ids = df["image"].tolist()
    _check_ids(ids, "image", ground_truth_csv)
    where = ground_truth_csv.name
    onehot = np.zeros((len(df), len(class_cols)), dtype=np.float64)
    for j, col in enumerate(class_cols):
        values = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=np.float64)
        bad = np.flatnonzero(~np.isin(values, (0.0, 1.0)))
        if len(bad):
            i = int(bad[0])
            raise DataError(
                f"item {ids[i]!r} ({where} {_line(i)}) has value {df[col].iloc[i]!r} in column "
                f"{col!r}; expected 0 or 1" + _more(len(bad) - 1, "bad values")
            )
        onehot[:, j] = values
    if classes is None and "UNK" in class_cols and not onehot[:, class_cols.index("UNK")].any():
        keep = [j for j, c in enumerate(class_cols) if c != "UNK"]
        onehot, class_cols = onehot[:, keep], [class_cols[j] for j in keep]
    # Rows whose 1 sits in a column outside the chosen classes.
    if classes is not None:
        other = [c for c in df.columns if c in ISIC2019_CLASSES + ("UNK",) and c not in class_cols]
        for col in other:
            hits = np.flatnonzero(pd.to_numeric(df[col], errors="coerce").to_numpy() == 1)
            if len(hits):
                i = int(hits[0])
                raise DataError(
                    f"item {ids[i]!r} ({where} {_line(i)}) has unknown label {col!r}; "
                    f"expected one of {class_cols}"
                )
    per_row = onehot.sum(axis=1)
    for i in np.flatnonzero(per_row != 1):
        i = int(i)
        if per_row[i] == 0:
            raise DataError(f"item {ids[i]!r} ({where} {_line(i)}) has an empty label (no 1)")
        set_cols = [class_cols[j] for j in np.flatnonzero(onehot[i])]
        raise DataError(
            f"item {ids[i]!r} ({where} {_line(i)}) has {len(set_cols)} labels {set_cols}; "
            "expected exactly one"
        )
    labels = onehot.argmax(axis=1).astype(np.int64)
    class_names = tuple(class_cols)
    _require_two_classes(labels, class_names, where)
    splits = (None if split_column is None
              else _read_splits(df, split_column, ids, ground_truth_csv))
    paths = _resolve_paths(images, ids, suffix, where)
    if check_images:
        check_image_files(paths, ids, progress)
    return ImageDataset(
        ids=tuple(ids), labels=labels, class_names=class_names, paths=paths, name="isic2019",
        splits=splits,
    )


def load_nct_crc(
    root: str | Path,
    *,
    check_images: bool = True,
    classes: Sequence[str] | None = None,
    progress: Progress | None = None,
) -> ImageDataset:
    """Load the NCT-CRC-HE-100K layout: one subfolder per class holding its images.

    Image files end in ``.tif``, ``.tiff``, ``.png``, ``.jpg``, ``.jpeg``, ``.dcm`` or ``.dicom``
    (any case); other files
    and hidden entries are ignored. Item ids are ``<class folder>/<file name>``, sorted.
    Class order: ``classes`` when given (other subfolders are errors), else sorted folder names.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"class folder root not found: {root}")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise DataError(f"{root}: no class subfolders found (expected one folder per class)")
    ids: list[str] = []
    paths: list[Path] = []
    names: list[str] = []
    for folder in folders:
        files = sorted(
            f
            for f in os.listdir(folder)
            if not f.startswith(".") and Path(f).suffix.lower() in IMAGE_SUFFIXES
        )
        if not files:
            raise DataError(
                f"class folder {folder} holds no images "
                f"(looked for {', '.join(IMAGE_SUFFIXES)})"
            )
        for f in files:
            ids.append(f"{folder.name}/{f}")
            paths.append(folder / f)
            names.append(folder.name)
    labels, class_names = _encode_labels(names, classes, ids, str(root), what="class folder")
    if check_images:
        check_image_files(paths, ids, progress)
    return ImageDataset(
        ids=tuple(ids),
        labels=labels,
        class_names=class_names,
        paths=tuple(paths),
        name=root.resolve().name,
    )


def load_medmnist(
    npz: str | Path,
    split: str = "all",
    *,
    classes: Sequence[str] | None = None,
) -> ImageDataset:
    """Load a MedMNIST ``.npz`` file from a local path (never downloads).

    Args:
        npz: file with ``<split>_images`` / ``<split>_labels`` arrays for splits train, val, test.
        split: ``train``, ``val``, ``test``, or ``all`` (every split present, in that order).
        classes: class names (default ``"0" .. "C-1"`` with C = largest label + 1).

    Images are ``(N, H, W)`` grayscale or ``(N, H, W, 3)`` RGB uint8 (``(N, H, W, 1)`` is squeezed
    to grayscale); labels ``(N,)`` or ``(N, 1)`` integers. Item ids are ``<split>_<index>``; each
    item's split is carried as :attr:`ImageDataset.splits`.
    Multi-label files (labels ``(N, K)``, K > 1) are rejected.
    """
    npz = Path(npz)
    if split not in ("all", *MEDMNIST_SPLITS):
        raise DataError(f"unknown MedMNIST split {split!r}; use all, train, val or test")
    if not npz.is_file():
        raise DataError(f"MedMNIST file not found: {npz}")
    try:
        archive = np.load(npz, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise DataError(f"cannot read {npz} as an .npz file: {err}") from None
    with archive:
        keys = set(archive.files)
        if split == "all":
            wanted = [s for s in MEDMNIST_SPLITS if f"{s}_images" in keys or f"{s}_labels" in keys]
            if not wanted:
                raise DataError(
                    f"{npz.name}: missing keys train_images/train_labels (or val_*, test_*); "
                    f"keys present: {sorted(keys)}"
                )
        else:
            wanted = [split]
        all_images: list[np.ndarray] = []
        all_labels: list[np.ndarray] = []
        ids: list[str] = []
        splits: list[str] = []
        for s in wanted:
            for key in (f"{s}_images", f"{s}_labels"):
                if key not in keys:
                    raise DataError(
                        f"{npz.name}: missing key {key!r}; keys present: {sorted(keys)}"
                    )
            imgs = _medmnist_images(archive[f"{s}_images"], f"{npz.name}:{s}_images")
            labs = _medmnist_labels(archive[f"{s}_labels"], len(imgs), f"{npz.name}:{s}_labels")
            if all_images and imgs.shape[1:] != all_images[0].shape[1:]:
                raise DataError(
                    f"{npz.name}: {s}_images has shape {imgs.shape[1:]} per image but "
                    f"{wanted[0]}_images has {all_images[0].shape[1:]}"
                )
            all_images.append(imgs)
            all_labels.append(labs)
            ids.extend(f"{s}_{i}" for i in range(len(imgs)))
            splits.extend([s] * len(imgs))
    images = np.concatenate(all_images) if len(all_images) > 1 else all_images[0]
    labels = np.concatenate(all_labels) if len(all_labels) > 1 else all_labels[0]
    if len(labels) == 0:
        raise DataError(f"{npz.name}: split {split!r} has no images")
    if classes is not None:
        class_names = tuple(str(c) for c in classes)
        too_big = np.flatnonzero(labels >= len(class_names))
        if len(too_big):
            i = int(too_big[0])
            raise DataError(
                f"item {ids[i]!r} ({npz.name}) has unknown label {int(labels[i])}; "
                f"only {len(class_names)} classes given: {list(class_names)}"
            )
    else:
        class_names = tuple(str(c) for c in range(int(labels.max()) + 1))
    _require_two_classes(labels, class_names, npz.name)
    return ImageDataset(
        ids=tuple(ids), labels=labels, class_names=class_names, images=images, name=npz.stem,
        splits=tuple(splits),
    )


def _medmnist_images(arr: np.ndarray, where: str) -> np.ndarray:
    if arr.ndim == 4 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if not (arr.ndim == 3 or (arr.ndim == 4 and arr.shape[-1] == 3)):
        raise DataError(f"{where}: shape {arr.shape}; expected (N, H, W) or (N, H, W, 3)")
    if arr.dtype != np.uint8:
        raise DataError(f"{where}: dtype {arr.dtype}; expected uint8 pixels")
    return arr


def _medmnist_labels(arr: np.ndarray, n: int, where: str) -> np.ndarray:
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise DataError(
            f"{where}: shape {arr.shape}; expected (N,) or (N, 1) single-label integers "
            "(multi-label files are not supported)"
        )
    if len(arr) != n:
        raise DataError(f"{where}: {len(arr)} labels for {n} images")
    if not np.issubdtype(arr.dtype, np.integer):
        if not np.issubdtype(arr.dtype, np.floating) or not np.all(np.mod(arr, 1) == 0):
            raise DataError(f"{where}: labels must be integers, got dtype {arr.dtype}")
    labels = arr.astype(np.int64)
    neg = np.flatnonzero(labels < 0)
    if len(neg):
        raise DataError(f"{where}: label {int(labels[neg[0]])} at index {int(neg[0])} is negative")
    return labels


def check_display_names(
    names: dict[str, str], classes: Sequence[str], where: str
) -> dict[str, str]:
    """``names`` (class code -> display name) as clean strings; :class:`DataError` naming the
    first code that is not a class, or an empty display name."""
    out: dict[str, str] = {}
    for code, shown in names.items():
        code, shown = str(code), str(shown).strip()
        if code not in classes:
            raise DataError(f"{where}: {code!r} is not a class of the data "
                            f"(classes: {', '.join(classes)})")
        if not shown:
            raise DataError(f"{where}: the display name of {code!r} is empty")
        out[code] = shown
    return out


