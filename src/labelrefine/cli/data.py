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

from labelrefine.cli._common import console, friendly_errors
from labelrefine.config import ConfigError, DatasetConfig, load_config, parse_config

if TYPE_CHECKING:  # pandas (via the loaders) is imported only when a command runs
    from labelrefine.data.dataset import ImageDataset

data_app = typer.Typer(
    help="Inspect datasets: class counts and imbalance for any supported layout.",
    no_args_is_help=True,
)


class Format(StrEnum):
    """Dataset layouts accepted on the command line."""

    csv = "csv"
    isic2019 = "isic2019"
    nct_crc = "nct-crc"
    medmnist = "medmnist"


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
) -> DatasetConfig:
    options = {
        "format": fmt.value.replace("-", "_") if fmt is not None else None,
        "images": images,
        "labels": labels,
        "npz": npz,
        "npz_split": npz_split,
        "id_column": id_column,
        "label_column": label_column,
        "classes": [c.strip() for c in classes.split(",") if c.strip()] if classes else None,
        "image_suffix": suffix,
    }
    given = {k: v for k, v in options.items() if v is not None}
    if config is not None:
        if given:
            flags = ", ".join("--" + k.replace("_", "-") for k in given)
            raise ConfigError(f"use either --config or dataset options, not both (got {flags})")
        return load_config(config).dataset
    if not given:
        raise ConfigError("give --config CONFIG.yaml or dataset options (see --help)")
    return parse_config({"dataset": given}).dataset


@data_app.command("info")
def info(
    config: Path | None = typer.Option(
        None, "--config", "-c", help="Experiment YAML; its 'dataset' section is used."
    ),
    fmt: Format | None = typer.Option(
        None, "--format", "-f", help="Dataset layout (default csv).", case_sensitive=False
    ),
    images: Path | None = typer.Option(
        None, "--images", help="Image folder (csv, isic2019) or class-folder root (nct-crc)."
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
    check_images: bool = typer.Option(
        True, "--check-images/--no-check-images", help="Open and verify every image file."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Print class counts, class shares and the imbalance ratio of a dataset."""
    from labelrefine.data.loaders import load_dataset

    with friendly_errors():
        cfg = _dataset_config(
            config, fmt, images, labels, npz, npz_split, id_column, label_column, classes, suffix
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
    summary = dataset_info(ds)
    out = Console()
    if as_json:
        out.print_json(json.dumps(summary))
        return
    table = Table(title=ds.name)
    table.add_column("#", justify="right")
    table.add_column("class")
    table.add_column("items", justify="right")
    table.add_column("share", justify="right")
    order = np.argsort(-ds.class_counts(), kind="stable")
    for k in order:
        row = summary["classes"][k]
        table.add_row(str(k), row["name"], f"{row['count']:,}", f"{100 * row['share']:.1f} %")
    table.add_section()
    table.add_row("", "total", f"{summary['items']:,}", "100.0 %")
    out.print(table)
    ratio = summary["imbalance_ratio"]
    ratio_text = f"{ratio:.1f}" if ratio is not None else "undefined (a class has no items)"
    out.print(f"items: {summary['items']:,}  classes: {ds.num_classes}  "
              f"imbalance ratio (largest / smallest): {ratio_text}")
