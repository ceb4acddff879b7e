"""Reading what a team brings: its model's probabilities or embeddings, keyed by item id, and
the labels CSV on its own (no image folder needed).

Every reader aligns the file's rows to the labelled ids (extra ids in the file are ignored)
and raises :class:`~labelrefine.data.dataset.DataError` with one line naming the file and the
first bad item: a missing or duplicate id, a wrong shape, a NaN, a column that is not a class.

* probabilities: CSV with an id column and one column per class name, or ``.npy`` ``(n, C)``
  with its columns in the labels' class order plus an id list (``--ids``);
* features: ``.npy`` ``(n, D)`` plus an id list, ``.npz`` with arrays ``ids`` and
  ``features``, or parquet / CSV with an id column and numeric columns;
* id lists: a text file with one id per line, or a CSV with an id column (or one column).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from labelrefine.config import DatasetConfig
from labelrefine.data.dataset import DataError
from labelrefine.data.loaders import _check_ids, _encode_labels, _require_columns, read_label_csv

#: Id column names tried, after the labels' own, in files keyed by id.
ID_FALLBACKS: tuple[str, ...] = ("id", "image_id", "item")
#: Largest allowed ``|sum_j P[i, j] - 1|`` of a row of probabilities.
ROW_SUM_TOL = 1e-3


def _name(ids: Sequence[str] | None, i: int) -> str:
    return f"item {ids[i]!r}" if ids is not None else f"row {i}"


def check_pred_probs(pred_probs: np.ndarray, *, num_classes: int | None = None,
                     ids: Sequence[str] | None = None, tol: float = ROW_SUM_TOL) -> np.ndarray:
    """``pred_probs`` as a float64 ``(n, C)`` array, or a :class:`DataError` naming the first
    bad row (``ids[i]`` when given): not 2-D, ``C`` not ``num_classes``, NaN or infinite,
    outside ``[0, 1]``, or ``|sum_j P[i, j] - 1| > tol``."""
    p = np.asarray(pred_probs, dtype=np.float64)
    if p.ndim != 2:
        raise DataError(f"pred_probs must be a 2-D (n, C) array, got shape {p.shape}")
    if num_classes is not None and p.shape[1] != num_classes:
        raise DataError(f"pred_probs has {p.shape[1]} columns for {num_classes} classes")
    if ids is not None and len(ids) != p.shape[0]:
        raise DataError(f"pred_probs has {p.shape[0]} rows for {len(ids)} ids")
    checks = (
        (~np.isfinite(p).all(axis=1), "has a NaN or infinite probability"),
        (((p < 0) | (p > 1)).any(axis=1), "has a probability outside [0, 1]"),
    )
    for bad, what in checks:
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(f"pred_probs: {_name(ids, i)} {what}: {p[i].tolist()}")
    sums = p.sum(axis=1)
    bad = np.abs(sums - 1.0) > tol
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"pred_probs: the probabilities of {_name(ids, i)} sum to "
                        f"{sums[i]:.6g}, not 1 (tolerance {tol:g})")
    return p


def trusted_mask(frame: pd.DataFrame, column: str, values: Sequence[str]) -> np.ndarray:
    """``(n,)`` bool: rows of ``frame`` whose ``column`` (compared as stripped text) is one of
    ``values``. A missing column, or values no row holds, are a :class:`DataError` naming
    them (a typo would otherwise silently trust nothing)."""
    if column not in frame.columns:
        present = ", ".join(repr(str(c)) for c in frame.columns)
        raise DataError(f"trusted column {column!r} not found; columns present: {present}")
    wanted = [str(v).strip() for v in values]
    if not wanted or any(not v for v in wanted):
        raise DataError("trusted values must be non-empty, e.g. --trusted-values histo")
    cells = frame[column].astype(str).str.strip()
    held = set(cells)
    absent = [v for v in wanted if v not in held]
    if absent:
        shown = ", ".join(repr(v) for v in sorted(held)[:20])
        raise DataError(f"trusted column {column!r} never holds {', '.join(map(repr, absent))}; "
                        f"values present: {shown}")
    return cells.isin(wanted).to_numpy()


@dataclass(frozen=True)
class LabelTable:
    """A labels CSV read on its own: every row (as text), ids, label indices, class names."""

    frame: pd.DataFrame
    ids: tuple[str, ...]
    labels: np.ndarray
    class_names: tuple[str, ...]


def read_label_table(path: str | Path, *, id_column: str = "image_id",
                     label_column: str = "dx",
                     classes: Sequence[str] | None = None) -> LabelTable:
    """The labels CSV ``path`` (checked like :func:`labelrefine.data.loaders.load_csv_folder`:
    empty or duplicate ids, empty or unknown labels, fewer than two classes)."""
    path = Path(path)
    df = read_label_csv(path)
    _require_columns(df, [id_column, label_column], path)
    ids = df[id_column].tolist()
    _check_ids(ids, id_column, path)
    labels, names = _encode_labels(df[label_column].tolist(), classes, ids, path.name,
                                   what=f"label ({label_column})")
    return LabelTable(frame=df, ids=tuple(ids), labels=labels, class_names=names)


def trusted_from_config(cfg: DatasetConfig, frame: pd.DataFrame) -> np.ndarray:
    """``(n,)`` bool over the rows of the labels CSV ``frame``: ``dataset.trusted`` applied
    (all False when the config marks nothing trusted)."""
    if cfg.trusted is None:
        return np.zeros(len(frame), dtype=bool)
    return trusted_mask(frame, cfg.trusted.column, cfg.trusted.values)


def _file(path: str | Path, what: str) -> Path:
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{what} file not found: {p}")
    return p


def _id_column(columns: Sequence[str], id_column: str, path: Path) -> str:
    for name in (id_column, *ID_FALLBACKS):
        if name in columns:
            return name
    raise DataError(f"{path.name}: no id column (looked for {id_column!r}, "
                    f"{', '.join(repr(c) for c in ID_FALLBACKS)}); columns present: "
                    f"{', '.join(repr(str(c)) for c in columns)}")


def _unique(ids: Sequence[str], path: Path) -> None:
    seen: set[str] = set()
    for i, item in enumerate(ids):
        if not item:
            raise DataError(f"{path.name}: empty id in row {i + 1}")
        if item in seen:
            raise DataError(f"{path.name}: duplicate id {item!r}")
        seen.add(item)


def load_ids(path: str | Path, *, id_column: str = "image_id") -> list[str]:
    """Item ids, in order, from a ``.csv`` (its id column, or its only column) or a text file
    with one id per line (blank lines skipped). Duplicates are an error naming the id."""
    p = _file(path, "id list")
    if p.suffix.lower() == ".csv":
        df = read_label_csv(p)
        col = df.columns[0] if len(df.columns) == 1 else _id_column(list(df.columns),
                                                                    id_column, p)
        ids = df[col].tolist()
    else:
        try:
            text = p.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError:
            raise DataError(f"{p.name}: not UTF-8 text") from None
        ids = [line.strip() for line in text.splitlines() if line.strip()]
    if not ids:
        raise DataError(f"{p.name}: no ids")
    _unique(ids, p)
    return ids


def _align(file_ids: Sequence[str], ids: Sequence[str], path: Path) -> np.ndarray:
    """Rows of the file holding ``ids``, in that order; the first labelled id the file lacks
    is an error."""
    pos = {item: i for i, item in enumerate(file_ids)}
    missing = next((item for item in ids if item not in pos), None)
    if missing is not None:
        n_missing = sum(item not in pos for item in ids)
        more = f" (and {n_missing - 1} more)" if n_missing > 1 else ""
        raise DataError(f"{path.name}: no row for labelled item {missing!r}{more}")
    return np.fromiter((pos[item] for item in ids), dtype=np.int64, count=len(ids))


def _numeric(df: pd.DataFrame, columns: Sequence[str], row_ids: Sequence[str],
             path: Path) -> np.ndarray:
    """``df[columns]`` (text cells) as float64; the first cell that is not a number or NaN is
    an error naming its id and column."""
    out = np.empty((len(df), len(columns)), dtype=np.float64)
    for j, col in enumerate(columns):
        cells = df[col]
        vals = pd.to_numeric(cells, errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isfinite(vals)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(f"{path.name}: item {row_ids[i]!r} has {str(cells.iloc[i])!r} in "
                            f"column {col!r} (NaN, infinite or not a number)")
        out[:, j] = vals
    return out


def _load_npy(path: Path) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise DataError(f"{path.name}: not a readable .npy array ({err})") from None
    if arr.ndim != 2:
        raise DataError(f"{path.name}: expected a 2-D (items, columns) array, got shape "
                        f"{arr.shape}")
    if not np.issubdtype(arr.dtype, np.number):
        raise DataError(f"{path.name}: holds {arr.dtype} values, not numbers")
    return arr


def _npy_with_ids(p: Path, ids_file: str | Path | None,
                  id_column: str) -> tuple[np.ndarray, list[str]]:
    """A ``.npy`` array and the ids of its rows (``ids_file``, required), one row per id."""
    if ids_file is None:
        raise DataError(f"{p.name}: a .npy file needs an id list (--ids FILE) naming its rows")
    arr = _load_npy(p)
    file_ids = load_ids(ids_file, id_column=id_column)
    if arr.shape[0] != len(file_ids):
        raise DataError(f"{p.name}: wrong shape {arr.shape}: {arr.shape[0]} rows for "
                        f"{len(file_ids)} ids in {Path(ids_file).name}")
    return arr, file_ids


def _finite_rows(x: np.ndarray, ids: Sequence[str], path: Path, what: str) -> None:
    bad = ~np.isfinite(x).all(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"{path.name}: item {ids[i]!r} has NaN or infinite {what}")


def load_pred_probs(path: str | Path, ids: Sequence[str], class_names: Sequence[str], *,
                    ids_file: str | Path | None = None, id_column: str = "image_id",
                    tol: float = ROW_SUM_TOL) -> np.ndarray:
    """``(len(ids), C)`` out-of-sample probabilities for ``ids``, columns in ``class_names``
    order, from a CSV (an id column -- ``id_column`` or one of :data:`ID_FALLBACKS` -- and one
    column per class name, any order) or a ``.npy`` (columns in ``class_names`` order) with
    ``ids_file`` naming its rows. Checked: the class columns are exactly the classes, every
    labelled id has a row, no NaN, every value in ``[0, 1]`` and every row sums to 1 within
    ``tol``; the error names the file and the first bad item."""
    p = _file(path, "pred-probs")
    names = [str(c) for c in class_names]
    if p.suffix.lower() == ".npy":
        arr, file_ids = _npy_with_ids(p, ids_file, id_column)
        if arr.shape[1] != len(names):
            raise DataError(f"{p.name}: wrong shape {arr.shape}: {arr.shape[1]} columns for "
                            f"{len(names)} classes ({', '.join(names)})")
        rows = _align(file_ids, ids, p)
        probs = arr[rows].astype(np.float64)
        _finite_rows(probs, ids, p, "probabilities")
    elif p.suffix.lower() == ".csv":
        df = read_label_csv(p)
        col = _id_column(list(df.columns), id_column, p)
        others = [c for c in df.columns if c != col]
        extra = [c for c in others if c not in names]
        missing = [c for c in names if c not in others]
        if extra or missing:
            detail = "; ".join(part for part in (
                f"not classes of the labels: {', '.join(map(repr, extra))} (--classes names "
                "classes no label uses)" if extra else "",
                f"missing classes: {', '.join(map(repr, missing))}" if missing else "") if part)
            raise DataError(f"{p.name}: class columns do not match the labels' classes "
                            f"({', '.join(names)}): {detail}")
        file_ids = df[col].tolist()
        _unique(file_ids, p)
        rows = _align(file_ids, ids, p)
        probs = _numeric(df.iloc[rows].reset_index(drop=True), names, list(ids), p)
    else:
        raise DataError(f"{p.name}: pred-probs must be a .csv or .npy file")
    try:
        return check_pred_probs(probs, ids=list(ids), tol=tol)
    except DataError as err:
        raise DataError(f"{p.name}: {str(err).removeprefix('pred_probs: ')}") from None


def load_features(path: str | Path, ids: Sequence[str], *,
                  ids_file: str | Path | None = None,
                  id_column: str = "image_id") -> np.ndarray:
    """``(len(ids), D)`` float32 embeddings for ``ids`` from a ``.npy`` (with ``ids_file``),
    a ``.npz`` (arrays ``ids`` and ``features``), or a parquet / CSV file (an id column and
    numeric feature columns). Checked: 2-D, one row per id, every labelled id present, no NaN
    or infinite value; the error names the file and the first bad item."""
    p = _file(path, "features")
    suffix = p.suffix.lower()
    if suffix == ".npy":
        arr, file_ids = _npy_with_ids(p, ids_file, id_column)
    elif suffix == ".npz":
        try:
            with np.load(p, allow_pickle=False) as z:
                if "ids" not in z or "features" not in z:
                    raise DataError(f"{p.name}: needs arrays 'ids' and 'features', has "
                                    f"{', '.join(map(repr, z.files))}")
                arr, raw_ids = z["features"], z["ids"]
        except (OSError, ValueError) as err:
            if isinstance(err, DataError):
                raise
            raise DataError(f"{p.name}: not a readable .npz file ({err})") from None
        if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.number):
            raise DataError(f"{p.name}: 'features' must be a 2-D numeric array, got "
                            f"{arr.dtype} {arr.shape}")
        file_ids = [str(s) for s in np.asarray(raw_ids).ravel()]
        if len(file_ids) != arr.shape[0]:
            raise DataError(f"{p.name}: wrong shape {arr.shape}: {arr.shape[0]} rows for "
                            f"{len(file_ids)} ids")
        _unique(file_ids, p)
    elif suffix in (".parquet", ".pq", ".csv"):
        df = _read_table(p)
        col = _id_column(list(df.columns), id_column, p)
        file_ids = df[col].astype(str).str.strip().tolist()
        _unique(file_ids, p)
        cols = [c for c in df.columns if c != col]
        if not cols:
            raise DataError(f"{p.name}: no feature columns beside the id column {col!r}")
        rows = _align(file_ids, ids, p)
        sub = df.iloc[rows].reset_index(drop=True)
        return _numeric(sub, cols, list(ids), p).astype(np.float32)
    else:
        raise DataError(f"{p.name}: features must be a .npy, .npz, .parquet or .csv file")
    rows = _align(file_ids, ids, p)
    x = np.asarray(arr[rows], dtype=np.float32)
    _finite_rows(x, ids, p, "features")
    return x


def _read_table(path: Path) -> pd.DataFrame:
    if path.suffix.lower() == ".csv":
        return read_label_csv(path)
    try:
        df = pd.read_parquet(path)
    except ImportError:
        raise DataError(f"{path.name}: reading parquet needs pyarrow: "
                        "pip install 'labelrefine[parquet]'") from None
    except (OSError, ValueError) as err:
        raise DataError(f"{path.name}: not a readable parquet file ({err})") from None
    df.columns = [str(c).strip() for c in df.columns]
    return df
