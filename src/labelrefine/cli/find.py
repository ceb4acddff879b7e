"""``labelrefine find``: which given labels look wrong, from your own model's probabilities or
features, your own encoder, or the built-in one; with labels you already trust left out."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from labelrefine.cli._common import console, friendly_errors
from labelrefine.config import ConfigError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

#: Columns of the written CSV (the library frame without its row index), in order.
CSV_COLUMNS: tuple[str, ...] = ("rank", "id", "given_label", "suggested_label",
                                "suggested_probability", "given_probability", "score", "reason")
#: Rows of the ranking printed to the terminal.
SHOWN = 10


def estimate_path(out: Path) -> Path:
    """Where the estimate is written beside the ranking: ``suspects.csv`` ->
    ``suspects.estimate.json``."""
    return out.with_name(out.stem + ".estimate.json")


def _split(text: str | None) -> list[str]:
    return [] if text is None else [v.strip() for v in text.split(",") if v.strip()]


def _check_options(*, pred_probs: Path | None, features: Path | None, encoder: Path | None,
                   images: Path | None, ids: Path | None, trusted_column: str | None,
                   trusted_values: str | None, mean: str | None, std: str | None,
                   top: int | None, out: Path, labels: Path) -> str:
    """The input kind (pred_probs, features, encoder, builtin); :class:`ConfigError` naming
    the option for a combination that cannot work."""
    given = [name for name, v in (("--pred-probs", pred_probs), ("--features", features),
                                  ("--encoder", encoder)) if v is not None]
    if len(given) > 1:
        raise ConfigError(f"{' and '.join(given)}: give at most one of --pred-probs, "
                          "--features, --encoder")
    kind = {"--pred-probs": "pred_probs", "--features": "features",
            "--encoder": "encoder"}.get(given[0] if given else "", "builtin")
    if (trusted_column is None) != (trusted_values is None):
        raise ConfigError("--trusted-column and --trusted-values go together")
    if kind in ("encoder", "builtin") and images is None:
        what = "--encoder" if kind == "encoder" else "without --pred-probs or --features"
        raise ConfigError(f"--images: needed {what} (the images are embedded)")
    if ids is not None and kind not in ("pred_probs", "features"):
        raise ConfigError("--ids: names the rows of a --pred-probs or --features .npy file")
    if (mean is not None or std is not None) and kind != "encoder":
        raise ConfigError("--mean / --std: apply to --encoder only (the built-in encoder "
                          "uses ImageNet's)")
    if top is not None and top < 1:
        raise ConfigError(f"--top: must be >= 1, got {top}")
    if out.suffix.lower() != ".csv":
        raise ConfigError(f"--out: must be a .csv file, got {out}")
    if out.resolve() == labels.resolve():
        raise ConfigError("--out: would overwrite the labels CSV")
    return kind


def output_frame(ranking: pd.DataFrame, frame: pd.DataFrame, keep: list[str],
                 top: int | None) -> pd.DataFrame:
    """The CSV's rows: the first ``top`` of ``ranking`` with :data:`CSV_COLUMNS` and the
    labels CSV's ``keep`` columns."""
    rows = ranking if top is None else ranking.head(top)
    out = rows[list(CSV_COLUMNS)].reset_index(drop=True)
    for col in keep:
        out[col] = frame[col].to_numpy()[rows["index"].to_numpy()]
    return out


def _fmt(v: float) -> str:
    return "n/a" if not math.isfinite(v) else f"{v:,.0f}"


def _print_summary(out: Console, rows: pd.DataFrame, total: int, estimate: dict[str, Any],
                   paths: tuple[Path, Path]) -> None:
    table = Table(title=f"most likely wrong (first {min(SHOWN, len(rows))} of {total})")
    for col in ("rank", "id", "given", "suggested", "p", "reason"):
        table.add_column(col, overflow="fold")
    for r in rows.head(SHOWN).itertuples():
        table.add_row(str(r.rank), escape(str(r.id)), escape(str(r.given_label)),
                      escape(str(r.suggested_label)), f"{r.suggested_probability:.0%}",
                      escape(str(r.reason)))
    out.print(table)
    e = estimate
    share = "" if not math.isfinite(e["share"]) else f" ({e['share']:.1%})"
    out.print(f"estimated wrong labels: {_fmt(e['estimate'])} of {e['untrusted']:,} untrusted"
              f"{share}; {e['trusted']:,} trusted counted as correct "
              f"[dim]({escape(e['method'])}; sum of 1 - p(label): {e['expected']:,.1f})[/]")
    per = Table(title="estimate per given class")
    for col in ("class", "untrusted", "trusted", "estimated wrong", "sum 1 - p"):
        per.add_column(col, justify="left" if col == "class" else "right")
    for name, v in e["per_class"].items():
        per.add_row(escape(name), f"{v['n']:,}", f"{v['trusted']:,}", _fmt(v["estimate"]),
                    f"{v['expected']:,.1f}")
    out.print(per)
    out.print(f"wrote {escape(str(paths[0]))} and {escape(str(paths[1]))}")


def find_command(
    labels: Path = typer.Option(
        ..., "--labels", help="CSV with one row per item: an id column and the given label."),
    images: Path | None = typer.Option(
        None, "--images",
        help="Image folder (files <id><suffix>); needed with --encoder or with none of "
        "--pred-probs / --features, when the images are embedded. Not read otherwise."),
    pred_probs: Path | None = typer.Option(
        None, "--pred-probs",
        help="OUT-OF-SAMPLE predicted probabilities (each row from a model that did not train "
        "on that item, e.g. cross-validated): a CSV with an id column and one column per "
        "class name, or a .npy (columns in class order) with --ids. Rows must sum to 1. "
        "Ranked by cleanlab's label quality."),
    features: Path | None = typer.Option(
        None, "--features",
        help="Embeddings keyed by id: .npy with --ids, .npz with arrays 'ids' and "
        "'features', or parquet / CSV with an id column and numeric columns. Probabilities "
        "are cross-fitted on them (--folds logistic heads) and mixed with neighbour agreement."),
    encoder: Path | None = typer.Option(
        None, "--encoder",
        help="Your image encoder: TorchScript (.pt/.ts) or ONNX (.onnx) mapping (B, 3, S, S) "
        "normalised images to (B, D) features. Input size and normalisation from --image-size "
        "/ --mean / --std, else FILE.yaml next to it (image_size, mean, std), else the ONNX "
        "input shape and ImageNet's mean/std. Features are cached (key: images + file sha256 "
        "+ settings) and used as --features."),
    ids: Path | None = typer.Option(
        None, "--ids", help="Id list naming the rows of a .npy file: one id per line, or a "
        "CSV with an id column."),
    out: Path = typer.Option(
        Path("suspects.csv"), "--out",
        help="Ranked CSV to write; the estimate goes beside it as NAME.estimate.json. Both "
        "are written only after every check passed."),
    top: int | None = typer.Option(
        None, "--top", help="Keep the K most likely wrong labels (default: every untrusted item)."),
    as_json: bool = typer.Option(
        False, "--json", help="Print the ranking and the estimate as JSON on stdout instead "
        "of tables."),
    id_column: str = typer.Option(
        "image_id", "--id-column", help="Labels CSV column with the item id (also looked for "
        "in the probability / feature files, then 'id')."),
    label_column: str = typer.Option(
        "dx", "--label-column", help="Labels CSV column with the given label."),
    classes: str | None = typer.Option(
        None, "--classes", help="Comma-separated class list fixing the class order (default: "
        "sorted names); a .npy of probabilities has its columns in this order."),
    suffix: str = typer.Option(".jpg", "--suffix", help="File ending appended to ids that "
                               "lack it."),
    trusted_column: str | None = typer.Option(
        None, "--trusted-column", help="Labels CSV column marking labels you already trust, "
        "e.g. dx_type. Trusted items are fitted on, never listed, and counted as correct in "
        "the estimate."),
    trusted_values: str | None = typer.Option(
        None, "--trusted-values", help="Comma-separated values of --trusted-column that mean "
        "trusted, e.g. histo."),
    keep_columns: str | None = typer.Option(
        None, "--keep-columns", help="Comma-separated labels CSV columns copied into the "
        "output, e.g. dx_type."),
    image_size: int | None = typer.Option(
        None, "--image-size", min=8, help="Encoder input size in pixels (built-in encoder: "
        "default 128)."),
    mean: str | None = typer.Option(
        None, "--mean", help="R,G,B mean of --encoder's normalisation (images in [0, 1])."),
    std: str | None = typer.Option(
        None, "--std", help="R,G,B standard deviation of --encoder's normalisation."),
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="Images per encoder call."),
    cache_dir: Path | None = typer.Option(
        None, "--cache-dir", help="Feature cache folder (default: $LABELREFINE_CACHE_DIR, "
        "else the user cache folder; see 'labelrefine cache info')."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or auto (embedding only; "
                               "ONNX runs on CPU)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the cross-fitting folds: the same "
                             "seed gives the same output."),
    folds: int | None = typer.Option(
        None, "--folds", min=2, max=20, help="Folds of the cross-fitted heads (default: the "
        "campaign's, 5)."),
    weight: float | None = typer.Option(
        None, "--weight", min=0.0, max=1.0, help="Weight of the neighbour-agreement rank "
        "against cleanlab's label quality with features (default: the campaign's, 0.25; "
        "0 = cleanlab alone). Not used with --pred-probs."),
    neighbours: int | None = typer.Option(
        None, "--neighbours", min=1, max=200, help="Nearest neighbours of the agreement "
        "signal (default: 10)."),
    quality: str | None = typer.Option(
        None, "--quality", help="cleanlab's label-quality score the ranking uses: "
        "self_confidence (p of the given label; the default with --pred-probs: level with or "
        "ahead of cleanlab's find_label_issues order at every k on development seeds), "
        "normalized_margin (the default with features, as campaigns) or "
        "confidence_weighted_entropy."),
    progress: bool = typer.Option(True, "--progress/--no-progress",
                                  help="Show a progress bar while embedding."),
) -> None:
    """Rank the given labels, most likely wrong first, and estimate how many are wrong.

    Each item gets a score, the model's suggested label with its probability and a reason.

    Input: your out-of-sample probabilities, your embeddings, your encoder, or the built-in one.

    The estimate is cleanlab's confident-learning count, overall and per given class.

    Bad files stop with exit code 2 and one line naming the file and the bad item.
    """
    from labelrefine import finder
    from labelrefine.active.label_quality import CL_METHODS
    from labelrefine.data.external import load_features, load_pred_probs, read_label_table
    from labelrefine.io import atomic_open, dumps_json, write_json

    with friendly_errors():
        kind = _check_options(pred_probs=pred_probs, features=features, encoder=encoder,
                              images=images, ids=ids, trusted_column=trusted_column,
                              trusted_values=trusted_values, mean=mean, std=std, top=top,
                              out=out, labels=labels)
        if quality is None:
            quality = "self_confidence" if pred_probs is not None else "normalized_margin"
        if quality not in CL_METHODS:
            raise ConfigError(f"--quality: {quality!r} is not one of {', '.join(CL_METHODS)}")
        table = read_label_table(labels, id_column=id_column, label_column=label_column,
                                 classes=_split(classes) or None)
        keep = _split(keep_columns)
        absent = [c for c in keep if c not in table.frame.columns]
        if absent:
            raise ConfigError(f"--keep-columns: {labels.name} has no column {absent[0]!r}")
        trusted = (finder.trusted_mask(table.frame, trusted_column, _split(trusted_values))
                   if trusted_column is not None else None)
        probs = x = None
        if kind == "pred_probs":
            assert pred_probs is not None
            probs = load_pred_probs(pred_probs, table.ids, table.class_names, ids_file=ids,
                                    id_column=id_column)
        elif kind == "features":
            assert features is not None
            x = load_features(features, table.ids, ids_file=ids, id_column=id_column)
        else:
            x = _embed(kind, labels, table.class_names, images, encoder, id_column=id_column,
                       label_column=label_column, suffix=suffix, image_size=image_size,
                       mean=mean, std=std, batch_size=batch_size, cache_dir=cache_dir,
                       device=device, progress=progress and not as_json)
        opts = {k: v for k, v in (("folds", folds), ("weight", weight),
                                  ("neighbours", neighbours)) if v is not None}
        result = finder.find_wrong_labels(table.labels, pred_probs=probs, features=x,
                                          trusted=trusted, ids=table.ids,
                                          class_names=table.class_names, seed=seed,
                                          method=quality, **opts)  # type: ignore[arg-type]
        rows = output_frame(result.ranking, table.frame, keep, top)
        estimate = {**result.estimate, "labels": labels.name, "seed": seed,
                    "quality": quality}
        est_path = estimate_path(out)
        with atomic_open(out, "w", newline="") as fh:
            rows.to_csv(fh, index=False, float_format="%.6g")
        write_json(est_path, estimate)
    if as_json:
        records = json.loads(rows.to_json(orient="records"))
        typer.echo(dumps_json({"suspects": records, "estimate": estimate}))
        return
    _print_summary(Console(), rows, len(result.ranking), estimate, (out, est_path))


def _embed(kind: str, labels: Path, class_names: tuple[str, ...], images: Path | None,
           encoder: Path | None, *,
           id_column: str, label_column: str, suffix: str, image_size: int | None,
           mean: str | None, std: str | None, batch_size: int, cache_dir: Path | None,
           device: str, progress: bool) -> np.ndarray:
    """Plain-view features of every labelled image: with the encoder file, or the built-in
    default encoder (as ``labelrefine embed``), cached either way."""
    import numpy as np

    from labelrefine.config import EncoderConfig
    from labelrefine.data.loaders import load_csv_folder
    from labelrefine.runtime import resolve_device

    assert images is not None
    try:
        dev = resolve_device(device).type
    except (ValueError, RuntimeError) as err:
        raise ConfigError(f"--device: {err}") from None
    spec = None
    if kind == "encoder":
        from labelrefine.models.encoder_file import read_encoder_spec

        assert encoder is not None
        spec = read_encoder_spec(encoder, image_size=image_size, mean=mean, std=std)
    with console.status("checking images"):
        dataset = load_csv_folder(images, labels, id_column=id_column,
                                  label_column=label_column, classes=class_names,
                                  suffix=suffix)
    if spec is not None:
        from labelrefine.models.encoder_file import embed_with_encoder_file

        fs = embed_with_encoder_file(dataset, spec, cache_dir=cache_dir, batch_size=batch_size,
                                     device=dev, progress=progress)
    else:
        from labelrefine.models.cache import embed_dataset

        enc = EncoderConfig(image_size=image_size or 128, views=0, batch_size=batch_size,
                            cache_dir=cache_dir)
        try:
            fs = embed_dataset(dataset, enc, device=dev, progress=progress)
        except ValueError as err:
            raise ConfigError(str(err)) from None
    return np.asarray(fs.plain, dtype=np.float32)

