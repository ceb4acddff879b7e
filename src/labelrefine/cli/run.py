"""``labelrefine run`` (a sweep of simulated campaigns) and ``labelrefine report``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from labelrefine.cli._common import console, friendly_errors, lit


def _parse_seeds(text: str | None) -> list[int] | None:
    if text is None:
        return None
    from labelrefine.config import ConfigError

    try:
        seeds = [int(s) for s in text.replace(" ", "").split(",") if s]
    except ValueError:
        raise ConfigError(f"--seeds {text!r}: expected comma-separated integers, e.g. 0,1,2"
                          ) from None
    if not seeds:
        raise ConfigError("--seeds: give at least one seed")
    return seeds


class _Display:
    """Turns runner events into a progress bar plus one line per finished run."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.progress: Progress | None = None
        self.task: Any = None

    def _start(self) -> Progress:
        if self.progress is None:
            self.progress = Progress(
                SpinnerColumn(), TextColumn("[bold]runs"), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(),
                TextColumn("{task.description}"), console=console,
            )
            self.progress.start()
            self.task = self.progress.add_task("", total=self.total)
        return self.progress

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event["kind"]
        if kind == "skip":
            console.print(f"[dim]skip {lit(event['run'])}: already finished[/]")
            return
        if kind == "status" and not event["run"]:
            console.print(f"[dim]{lit(event['message'])}[/]")
            return
        prog = self._start()
        if kind == "status":
            prog.update(self.task, description=f"[dim]{lit(event['run'])}: "
                        f"{lit(event['message'])}")
        elif kind == "done":
            prog.console.print(f"[green]done[/] {lit(event['run'])} ({event['seconds']:.0f} s): "
                               f"{lit(event['summary'])}")
            prog.advance(self.task)
        elif kind == "failed":
            prog.console.print(f"[bold red]failed[/] {lit(event['run'])}: {lit(event['error'])}")
            if event.get("traceback"):
                prog.console.print(f"[dim]{lit(event['traceback'])}[/]")
            prog.advance(self.task)

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()


def run_command(
    config: Path = typer.Argument(..., help="Experiment YAML (see configs/)."),
    workers: int | None = typer.Option(
        None, "--workers", "-w", min=1,
        help="Processes running pipelines in parallel (default: the config's 'workers')."),
    only: list[str] | None = typer.Option(
        None, "--only",
        help="Run only this pipeline (name such as 'ours', or label such as 'ours+entropy'); "
             "repeat for several."),
    seeds: str | None = typer.Option(
        None, "--seeds", help="Comma-separated seeds replacing the config's, e.g. 0,1,2."),
    threads: int | None = typer.Option(
        None, "--threads", min=1, help="Torch threads per process (default: cores / workers)."),
    executor: str = typer.Option(
        "local", "--executor",
        help="local: processes on this machine; ray: one Ray task per run (needs "
             "pip install 'labelrefine\\[ray]'); results are stored and resumed the same way."),
    address: str | None = typer.Option(
        None, "--address",
        help="Ray cluster to join, e.g. ray://head:10001 or auto (default: start a local Ray "
             "instance). Only with --executor ray."),
) -> None:
    """Run a sweep (seeds x noise settings x pipelines); finished runs are kept and skipped."""
    with friendly_errors():
        from labelrefine.config import load_config
        from labelrefine.experiments.runner import run_sweep
        from labelrefine.experiments.sweep import expand_runs

        cfg = load_config(config)
        from labelrefine.experiments.executors import check_executor

        check_executor(executor, address)
        seed_list = _parse_seeds(seeds)
        total = len(expand_runs(cfg, only=only, seeds=seed_list))
        display = _Display(total)
        try:
            summary = run_sweep(cfg, workers=workers, only=only, seeds=seed_list,
                                threads=threads, on_event=display, embed_progress=True,
                                executor=executor, address=address)
        finally:
            display.stop()
        console.print(
            f"{len(summary.finished)} runs finished, {len(summary.skipped)} skipped (done "
            f"before), {len(summary.failed)} failed in {summary.seconds:.0f} s "
            f"({summary.workers} worker{'s' if summary.workers > 1 else ''}; data and "
            f"features {summary.features_seconds:.0f} s, runs "
            f"{summary.seconds - summary.features_seconds:.0f} s). "
            f"Results: {lit(summary.run_dir)}/runs; next: labelrefine report "
            f"{lit(summary.run_dir)}"
        )
        if summary.failed:
            raise typer.Exit(code=1)


def report_command(
    run_dir: Path = typer.Argument(
        ..., help="Sweep folder made by 'labelrefine run' (<output_dir>/<config name>)."),
) -> None:
    """Write report.html, f1_vs_labels.png, results.md/csv and diagnostics.md/csv."""
    with friendly_errors():
        from labelrefine.experiments.report import write_report

        paths = write_report(run_dir)
        for name, path in paths.items():
            console.print(f"wrote {lit(path)}" if name != "report.html"
                          else f"[bold]wrote {lit(path)}[/]")
