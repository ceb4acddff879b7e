"""``labelrefine data``: inspect datasets in any supported layout."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from labelrefine.cli._common import console, friendly_errors, lit
from labelrefine.config import (
    ConfigError,
    DatasetConfig,
    SplitConfig,
    load_config,
    parse_config,
)

if TYPE_CHECKING:  # pandas (via the loaders) is imported only when a command runs
    from labelrefine.data.dataset import ImageDataset

data_app = typer.Typer(
    help="Inspect datasets: class counts and imbalance for any supported layout.",
    no_args_is_help=True,
)


def format_choices() -> dict[str, str]:
    """``--format`` spelling -> ``dataset.format`` name, for every registered format
    (:mod:`labelrefine.data.formats`; underscores spelled as hyphens, ``nct-crc``)."""
    from labelrefine.data.formats import format_names

    return {name.replace("_", "-"): name for name in format_names()}


#: Dataset layouts accepted on the command line (the format registry's).
Format = StrEnum("Format", {v: k for k, v in format_choices().items()})  # type: ignore[misc]


def dataset_info(ds: ImageDataset) -> dict[str, Any]:
    """Class counts, shares and imbalance ratio (largest / smallest class) of ``ds``."""
    counts = ds.class_counts()
    n = int(counts.sum())
    smallest = int(counts.min())
    return {
        "name": ds.name,
        "items": n,
        "num_classes": ds.num_classes,
        "classes": [
            {"name": name, "count": int(k), "share": float(k) / n if n else 0.0}
            for name, k in zip(ds.class_names, counts, strict=True)
        ],
        # None when some class has no items (ratio undefined)
        "imbalance_ratio": float(counts.max()) / smallest if smallest > 0 else None,
    }


SPLIT_ORDER = ("train", "val", "test")


def split_source(cfg: DatasetConfig) -> str:
    """Where a dataset's own train/val/test split comes from, in words."""
    if cfg.split_column is not None:
        where = cfg.labels.name if cfg.labels is not None else "the label CSV"
        return f"column {cfg.split_column!r} of {where}"
    from labelrefine.data.formats import get_format

    own = get_format(cfg.format).own_split
    return own(cfg) if own is not None else "none"


def split_info(ds: ImageDataset, source: str, used: bool | None) -> dict[str, Any]:
    """Items and per-class counts in each part of the dataset's own split (``ds.splits``);
    ``used``: whether a run uses it (split.keep_dataset), None without a config."""
    assert ds.splits is not None
    names = np.asarray(ds.splits)
    return {
        "source": source,
        "used": used,
        "sizes": {p: int((names == p).sum()) for p in SPLIT_ORDER},
        "class_counts": {
            p: np.bincount(ds.labels[names == p], minlength=ds.num_classes).tolist()
            for p in SPLIT_ORDER
        },
    }


def _dataset_config(
    config: Path | None,
    fmt: Format | None,
    images: Path | None,
    labels: Path | None,
    npz: Path | None,
    npz_split: str | None,
    id_column: str | None,
    label_column: str | None,
    classes: str | None,
    suffix: str | None,
    split_column: str | None,
) -> tuple[DatasetConfig, SplitConfig | None]:
    """The dataset settings, and the split settings when they come from a config."""
    options = {
        "format": format_choices()[fmt.value] if fmt is not None else None,
        "images": images,
        "labels": labels,
        "npz": npz,
        "npz_split": npz_split,
        "id_column": id_column,
        "label_column": label_column,
        "classes": [c.strip() for c in classes.split(",") if c.strip()] if classes else None,
        "image_suffix": suffix,
        "split_column": split_column,
    }
    given = {k: v for k, v in options.items() if v is not None}
    if config is not None:
        if given:
            flags = ", ".join("--" + k.replace("_", "-") for k in given)
            raise ConfigError(f"use either --config or dataset options, not both (got {flags})")
        exp = load_config(config)
        return exp.dataset, exp.split
    if not given:
        raise ConfigError("give --config CONFIG.yaml or dataset options (see --help)")
    return parse_config({"dataset": given}).dataset, None


@data_app.command("info")
def info(
    config: Path | None = typer.Option(
        None, "--config", "-c", help="Experiment YAML; its 'dataset' section is used."
    ),
    fmt: Format | None = typer.Option(
        None, "--format", "-f", help="Dataset layout (default csv).", case_sensitive=False
    ),
    images: Path | None = typer.Option(
        None, "--images",
        help="Image folder (csv, isic2019) or the root of a folder layout (nct-crc, ...).",
    ),
    labels: Path | None = typer.Option(
        None, "--labels", help="Label CSV (csv) or ground-truth CSV (isic2019)."
    ),
    npz: Path | None = typer.Option(None, "--npz", help="MedMNIST .npz file (medmnist)."),
    npz_split: str | None = typer.Option(
        None, "--npz-split", help="MedMNIST split: train, val, test or all (default all)."
    ),
    id_column: str | None = typer.Option(
        None, "--id-column", help="CSV column with the image id (default image_id)."
    ),
    label_column: str | None = typer.Option(
        None, "--label-column", help="CSV column with the class name (default dx)."
    ),
    classes: str | None = typer.Option(
        None, "--classes", help="Comma-separated class list; fixes the class order."
    ),
    suffix: str | None = typer.Option(
        None, "--suffix", help="Image file ending appended to ids (default .jpg)."
    ),
    split_column: str | None = typer.Option(
        None, "--split-column",
        help="CSV column naming each image's own split (train, val, test); shows its counts.",
    ),
    check_images: bool = typer.Option(
        True, "--check-images/--no-check-images", help="Open and verify every image file."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Print class counts, class shares and the imbalance ratio of a dataset.

    With a config whose split.keep_dataset is on, or with a split column, also the dataset's own
    train/val/test split: where it comes from and its counts per split and class.
    """
    from labelrefine.data.formats import load_dataset
    from labelrefine.data.prepare import own_split

    with friendly_errors():
        cfg, split = _dataset_config(
            config, fmt, images, labels, npz, npz_split, id_column, label_column, classes, suffix,
            split_column,
        )
        with Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as bar:
            task = bar.add_task(f"Checking {cfg.format} images", total=None)
            ds = load_dataset(
                cfg,
                check_images=check_images,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
        keep = split is not None and split.keep_dataset
        if keep:
            own_split(ds)  # no split or an empty part: the error a run would give
    summary = dataset_info(ds)
    if ds.splits is not None and (keep or cfg.split_column is not None):
        used = None if split is None else keep
        summary["split"] = split_info(ds, split_source(cfg), used)
    out = Console()
    if as_json:
        out.print_json(json.dumps(summary))
        return
    table = Table(title=lit(ds.name))
    table.add_column("#", justify="right")
    table.add_column("class")
    table.add_column("items", justify="right")
    table.add_column("share", justify="right")
    parts = summary.get("split")
    for p in SPLIT_ORDER if parts else ():
        table.add_column(p, justify="right")
    order = np.argsort(-ds.class_counts(), kind="stable")
    for k in order:
        row = summary["classes"][k]
        per_split = [f"{parts['class_counts'][p][k]:,}" for p in SPLIT_ORDER] if parts else []
        table.add_row(str(k), lit(row["name"]), f"{row['count']:,}", f"{100 * row['share']:.1f} %",
                      *per_split)
    table.add_section()
    totals = [f"{parts['sizes'][p]:,}" for p in SPLIT_ORDER] if parts else []
    table.add_row("", "total", f"{summary['items']:,}", "100.0 %", *totals)
    out.print(table)
    ratio = summary["imbalance_ratio"]
    ratio_text = f"{ratio:.1f}" if ratio is not None else "undefined (a class has no items)"
    out.print(f"items: {summary['items']:,}  classes: {ds.num_classes}  "
              f"imbalance ratio (largest / smallest): {ratio_text}")
    if parts:
        sizes = "  ".join(f"{p} {parts['sizes'][p]:,}" for p in SPLIT_ORDER)
        use = {True: "; used (split.keep_dataset: true)", None: "",
               False: "; not used (split.keep_dataset is off: the stratified fractions apply)"}
        out.print(f"split: the dataset's own, from {lit(parts['source'])} ({sizes})"
                  f"{use[parts['used']]}", soft_wrap=True)
