"""Run a sweep: seeds x noise settings x pipelines, resumable, optionally on several processes.

Data and features are loaded once (features come from the embedding cache). Runs that share a
phase-1 computation (e.g. ``ours`` with three samplers) form one group and run one after the
other in the same process, reusing that phase 1; an executor
(:mod:`labelrefine.experiments.executors`: ``workers`` local processes, or Ray) runs the
groups, longest first; one run is :mod:`labelrefine.experiments.runs`. Every finished run is
written at once, atomically, to ``<output_dir>/<name>/runs/<key>.json``; a rerun skips runs
whose file matches the settings.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labelrefine.config import ExperimentConfig
from labelrefine.experiments.executors import get_executor
from labelrefine.experiments.runs import EventFn, default_threads, load_source
from labelrefine.experiments.sweep import (
    RunKey,
    expand_runs,
    is_finished,
    phase1_group,
    save_config,
    sweep_dir,
)


@dataclass
class SweepSummary:
    """What :func:`run_sweep` did."""

    run_dir: Path
    planned: list[str]
    skipped: list[str] = field(default_factory=list)  # already finished before this call
    finished: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # run name -> error text
    seconds: float = 0.0
    workers: int = 1
    features_seconds: float = 0.0  # loading the data and computing (or reading) the features


def group_runs(cfg: ExperimentConfig, keys: Sequence[RunKey]) -> list[list[RunKey]]:
    """Group runs that share a phase-1 computation; biggest groups first."""
    groups: dict[tuple, list[RunKey]] = defaultdict(list)
    for key in keys:
        p1 = phase1_group(cfg, key)
        gid = (key.context_id, p1) if p1 is not None else (key.context_id, ("own", key.name))
        if key.spec.name == "clean":  # one clean reference per seed: see _reuse_clean
            gid = (("clean", key.seed), key.spec.display)
        groups[gid].append(key)
    from labelrefine.pipelines import PIPELINES  # light: the registry, not the pipelines

    return sorted(groups.values(),
                  key=lambda g: -sum(PIPELINES[k.spec.name].cost for k in g))


def run_sweep(
    cfg: ExperimentConfig,
    *,
    workers: int | None = None,
    only: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
    threads: int | None = None,
    on_event: EventFn | None = None,
    embed_progress: bool = False,
    executor: str = "local",
    address: str | None = None,
) -> SweepSummary:
    """Run every unfinished run of the sweep and store each result as soon as it finishes.

    Args:
        workers: processes (default ``cfg.workers``); capped by the number of run groups, and 1
            on a GPU.
        only: pipeline names or display labels to run (default all).
        seeds: replaces the config's seeds.
        threads: torch threads per process (default: cores / workers).
        on_event: receives ``status``, ``done``, ``failed`` and ``skip`` events for display.
        embed_progress: show the encoder's progress bar while features are computed.
        executor: ``local`` (this machine's process pool) or ``ray`` (one Ray task per run;
            ``address`` joins an existing cluster, else a local Ray instance is started).
    """
    import torch

    from labelrefine.runtime import resolve_device

    t_start = time.perf_counter()
    emit = on_event or (lambda _e: None)
    keys = expand_runs(cfg, only=only, seeds=seeds)
    run_dir = sweep_dir(cfg)
    save_config(cfg, run_dir)
    summary = SweepSummary(run_dir=run_dir, planned=[k.name for k in keys])
    todo = []
    for key in keys:
        if is_finished(cfg, run_dir, key):
            summary.skipped.append(key.name)
            emit({"kind": "skip", "run": key.name})
        else:
            todo.append(key)
    if not todo:
        summary.seconds = time.perf_counter() - t_start
        return summary

    device = resolve_device(cfg.device).type
    groups = group_runs(cfg, todo)
    n_workers = max(1, min(workers or cfg.workers, len(groups)))
    if device == "cuda":
        n_workers = 1
    summary.workers = n_workers
    n_threads = threads or default_threads(n_workers)

    def record(event: dict[str, Any]) -> None:
        if event["kind"] == "done":
            summary.finished.append(event["run"])
        elif event["kind"] == "failed":
            summary.failed[event["run"]] = event["error"]
        emit(event)

    # Parent: load the data and compute (or hit) the feature cache once.
    emit({"kind": "status", "run": "", "message": "loading data and features"})
    from labelrefine.data.formats import load_dataset

    dataset = load_dataset(cfg.dataset)
    previous_threads = torch.get_num_threads()
    try:
        torch.set_num_threads(default_threads(1))
        source = load_source(cfg, dataset, device, progress=embed_progress)
        summary.features_seconds = time.perf_counter() - t_start
        runs_on = get_executor(executor, address=address, workers=n_workers, threads=n_threads)
        if not runs_on.shares_source:
            source = None  # the workers load the cached features themselves
        runs_on.run_sweep(cfg, run_dir, device, groups, dataset=dataset, source=source,
                          record=record)
    finally:
        torch.set_num_threads(previous_threads)
    summary.seconds = time.perf_counter() - t_start
    return summary
