"""``labelrefine lnl CONFIG``: run phase 1 (CE / Co-teaching / CT_VOG) and write the partition.

Phase 1 itself is library code in :mod:`labelrefine.lnl.phase1`; this module adds the command,
the progress display and the files of a run directory (:func:`write_phase1`).
"""

from __future__ import annotations

import json
import time
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from labelrefine.cli._common import console, friendly_errors
from labelrefine.config import check_lnl_config, load_config
from labelrefine.io import atomic_write_text, to_jsonable

if TYPE_CHECKING:  # torch and pandas are imported only by the commands that need them
    import pandas as pd

    from labelrefine.lnl.phase1 import Phase1Inputs
    from labelrefine.lnl.trainer import LNLResult


def method_choices() -> tuple[str, ...]:
    """``--method`` choices: the registered LNL methods (:mod:`labelrefine.lnl.methods`)."""
    from labelrefine.lnl.methods import method_names

    return method_names()


#: Phase-1 methods accepted on the command line.
Method = StrEnum("Method", {name: name for name in method_choices()})  # type: ignore[misc]


def partition_frame(res: LNLResult, inputs: Phase1Inputs) -> pd.DataFrame:
    """One row per training item: id, given/true label, clean or suspect, loss, VOG."""
    import pandas as pd

    d = inputs.data
    idx = d.train_idx
    names = np.asarray(d.class_names, dtype=object)
    clean = np.zeros(len(d.given_labels), dtype=bool)
    clean[res.clean_idx] = True
    return pd.DataFrame({
        "item_id": [inputs.dataset.ids[i] for i in idx],
        "index": idx,
        "given_label": names[d.given_labels[idx]],
        "true_label": names[d.true_labels[idx]],
        "noisy": d.given_labels[idx] != d.true_labels[idx],
        "status": np.where(clean[idx], "clean", "suspect"),
        "loss": res.last_loss[idx],
        "vog": res.last_vog[idx] if res.last_vog is not None else np.nan,
    })


def phase1_summary(res: LNLResult, inputs: Phase1Inputs, info: dict[str, Any]) -> dict[str, Any]:
    """JSON-ready run summary: settings in ``info`` plus partition sizes and scores."""
    d = inputs.data
    from labelrefine.metrics import selection_precision_recall

    prec, rec = selection_precision_recall(res.clean_idx, d.train_idx, d.given_labels,
                                           d.true_labels)
    injected = (info.get("noise") or {}).get("kind", "none") != "none"
    return to_jsonable({
        **info,
        "train_items": int(d.train_idx.size),
        "noisy_train": int(np.sum(d.is_noisy[d.train_idx])),
        "clean": int(res.clean_idx.size),
        "suspect": int(res.suspect_idx.size),
        # against injected noise only; with the labels as given there is no truth to score
        "clean_precision": prec if injected else None,
        "clean_recall": rec if injected else None,
        "best_epoch": res.fit.best_epoch,
        "best_val_f1": res.fit.best_val_f1,
        "test_f1": res.fit.test_f1,
        "test_recall": dict(zip(d.class_names, res.fit.test_recall.tolist(), strict=True)),
        "final_val_f1": res.fit.history[-1]["val_f1"],
        "features": inputs.features_key,
    })


def write_phase1(out_dir: Path, res: LNLResult, inputs: Phase1Inputs,
                 info: dict[str, Any]) -> dict[str, Path]:
    """Write partition.csv, diagnostics.csv, history.json/csv, summary.json, loss_vog.png.

    Every file is written to a temporary name and renamed into place.
    """
    import pandas as pd

    from labelrefine.lnl.plots import plot_loss_vog

    out_dir.mkdir(parents=True, exist_ok=True)
    part = partition_frame(res, inputs)
    hist = pd.DataFrame(res.fit.history)
    paths = {name: out_dir / name for name in (
        "partition.csv", "diagnostics.csv", "history.json", "history.csv", "summary.json",
        "loss_vog.png")}
    atomic_write_text(paths["partition.csv"], part.to_csv(index=False))
    diag = res.diagnostics if res.diagnostics is not None else pd.DataFrame()
    atomic_write_text(paths["diagnostics.csv"], diag.to_csv(index=False))
    atomic_write_text(paths["history.json"], json.dumps(to_jsonable(res.fit.history), indent=1))
    atomic_write_text(paths["history.csv"], hist.to_csv(index=False))
    atomic_write_text(paths["summary.json"],
                  json.dumps(phase1_summary(res, inputs, info), indent=1))
    plot_loss_vog(paths["loss_vog.png"], part["loss"].to_numpy(),
                  part["vog"].to_numpy() if res.last_vog is not None else None,
                  part["noisy"].to_numpy(), title=info.get("title", ""))
    return paths


def lnl_command(
    config: Path = typer.Argument(..., help="Experiment YAML (dataset, split, noise, encoder, "
                                  "lnl sections are used; the first noise setting)."),
    seed: int | None = typer.Option(None, "--seed", min=0, max=2**32 - 1,
                                    help="Run seed (noise draw, model init, "
                                    "batch order). Default: the config's first seed."),
    noise_rate: float | None = typer.Option(None, "--noise-rate", min=0.0, max=0.99,
                                            help="Override the noise rate of the first noise "
                                            "setting (also the forget rate unless lnl.tau)."),
    method: Method | None = typer.Option(None, "--method", help="Override lnl.method."),
    mix: float | None = typer.Option(None, "--mix", min=0.0, max=1.0,
                                     help="Mix ratio m for ct_vog (default: noise.mix, then "
                                     "lnl.mix)."),
    epochs: int | None = typer.Option(None, "--epochs", min=1, help="Override lnl.epochs."),
    device: str | None = typer.Option(None, "--device", help="auto, cpu or cuda (default: the "
                                      "config's device)."),
    out: Path | None = typer.Option(None, "--out", help="Run directory (default: "
                                    "<output_dir>/<name>/lnl/<method>-<noise>-seed<seed>)."),
) -> None:
    """Run phase 1 (learning with noisy labels) and write the clean/suspect partition,
    per-class diagnostics, per-epoch history and a loss/VOG histogram to the run directory."""
    with friendly_errors():
        cfg = load_config(config)
        noise = cfg.noise[0]
        if noise_rate is not None:
            noise = noise.model_copy(update={"rate": noise_rate})
        run_seed = cfg.seeds[0] if seed is None else seed
        updates: dict[str, Any] = {}
        if method is not None:
            updates["method"] = method.value
        if epochs is not None:  # before the schedule: warm-up follows the epochs that run
            updates["epochs"] = epochs
        base = cfg.lnl.model_copy(update=updates)
        check_lnl_config(base if mix is None else base.model_copy(update={"mix": mix}))
        dev = device or cfg.device
        from labelrefine.lnl.phase1 import phase1_inputs, run_phase1
        from labelrefine.runtime import resolve_device
        from labelrefine.settings import resolve

        dev_name = resolve_device(dev).type
        inputs = phase1_inputs(cfg, noise, run_seed, device=dev_name)
        # resolved as a sweep and a campaign resolve them: mix: noise.mix > lnl.mix; tau:
        # lnl.tau > noise rate; then the schedule derived from the training-set size
        settings = resolve(base, cfg.active, n_train=int(inputs.data.train_idx.size),
                           seed=run_seed, noise=noise)
        lnl = settings.lnl if mix is None else settings.lnl.model_copy(update={"mix": mix})
        tau = settings.tau
        label = lnl.method + (f"-m{lnl.mix:g}" if lnl.method == "ct_vog" else "")
        run_dir = out or (Path(cfg.output_dir) / cfg.name / "lnl"
                          / f"{label}-{noise.tag}-seed{run_seed}")

        console.print(f"[bold]phase 1[/] {label}, noise {noise.tag}, tau {tau:g}, seed {run_seed}"
                      f", {lnl.mode} mode on {dev_name}, {lnl.epochs} epochs")
        t0 = time.perf_counter()
        with Progress(TextColumn("[bold]epochs"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), TextColumn("{task.description}"),
                      console=console) as bar:
            task = bar.add_task("", total=lnl.epochs)

            def report(done: int, total: int, row: dict[str, Any]) -> None:
                desc = f"val F1 {row['val_f1']:.3f}"
                if "sel_precision" in row and noise.kind != "none":
                    desc += f", clean precision {row['sel_precision']:.3f}"
                bar.update(task, completed=done, total=total, description=desc)

            res = run_phase1(lnl, inputs, seed=run_seed, tau=tau, device=dev_name,
                             progress=report)
        seconds = time.perf_counter() - t0
        info = {
            "method": lnl.method, "mix": lnl.mix if lnl.method == "ct_vog" else 0.0,
            "tau": tau, "noise": noise.model_dump(mode="json"), "seed": run_seed,
            "epochs": lnl.epochs, "mode": lnl.mode, "device": dev_name,
            "vog": lnl.vog.model_dump(mode="json", by_alias=True),
            "seconds": round(seconds, 2), "title": f"{cfg.name}: {label}, {noise.tag}, "
            f"seed {run_seed}",
        }
        write_phase1(run_dir, res, inputs, info)
        d = inputs.data
        from labelrefine.metrics import selection_precision_recall

        prec, rec = selection_precision_recall(res.clean_idx, d.train_idx, d.given_labels,
                                               d.true_labels)
        # Only injected noise gives a truth to score the partition against: with the labels as
        # given (noise kind none) "precision" would be measured against the labels themselves.
        scored = (f"clean precision {prec:.3f}, recall {rec:.3f}" if noise.kind != "none" else
                  "clean precision not measurable (no injected noise: the true labels are "
                  "unknown)")
        console.print(
            f"clean {res.clean_idx.size} / suspect {res.suspect_idx.size}; {scored}; test F1 "
            f"{res.fit.test_f1:.3f} against the given labels (best val epoch "
            f"{res.fit.best_epoch}); {seconds:.1f} s"
        )
        console.print(f"wrote {run_dir}")
