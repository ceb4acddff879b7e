"""Run a sweep: seeds x noise settings x pipelines, resumable, optionally on several processes.

Data and features are loaded once (features come from the embedding cache). Runs that share a
phase-1 computation (e.g. ``ours`` with three samplers) form one group and run one after the
other in the same process, reusing that phase 1; groups are spread over ``workers`` processes,
longest first. Every finished run is written at once, atomically, to
``<output_dir>/<name>/runs/<key>.json``; a rerun skips runs whose file matches the settings.
"""

from __future__ import annotations

import datetime as _dt
import os
import queue as _queue
import time
import traceback
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labelrefine.config import ExperimentConfig, PipelineSpec
from labelrefine.experiments.sweep import (
    RunKey,
    expand_runs,
    is_finished,
    phase1_group,
    read_run,
    run_fingerprint,
    run_path,
    save_config,
    sweep_dir,
    write_json,
)

#: Called with one event dict per status change: ``{"kind": "status" | "done" | "failed", ...}``.
EventFn = Callable[[dict[str, Any]], None]

# Rough relative costs, used only to start the longest groups first.
_COST = {"ours": 3.0, "alc_coteaching": 4.0, "ce_al": 2.0, "al_only": 1.5, "clean": 1.0,
         "noisy_ce": 1.0, "cleanlab_prune": 2.0, "cleanlab_relabel": 10.0, "ours_plus": 3.0,
         "ours_find": 4.0}


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
    return sorted(groups.values(), key=lambda g: -sum(_COST.get(k.spec.name, 1.0) for k in g))


# ----------------------------------------------------------------------------- execution state
# One per process: the dataset, its batch source and the per-(noise, seed) contexts.


@dataclass
class _State:
    cfg: ExperimentConfig
    run_dir: Path
    device: str
    dataset: Any
    source: Any
    contexts: dict[tuple[int, int], Any] = field(default_factory=dict)
    emit: EventFn | None = None


_STATE: _State | None = None


def load_source(cfg: ExperimentConfig, dataset: Any, device: str, *,
                progress: bool = False) -> Any:
    """The batch source for the config's mode: cached features or images
    (:func:`labelrefine.lnl.phase1.build_source`)."""
    from labelrefine.lnl.phase1 import build_source

    return build_source(dataset, cfg.lnl, cfg.encoder, device=device, progress=progress)[0]


def _make_state(cfg: ExperimentConfig, run_dir: Path, device: str, emit: EventFn | None, *,
                dataset: Any = None, source: Any = None, check_images: bool = True) -> _State:
    from labelrefine.data.loaders import load_dataset

    if dataset is None:
        dataset = load_dataset(cfg.dataset, check_images=check_images)
    if source is None:
        source = load_source(cfg, dataset, device)
    return _State(cfg=cfg, run_dir=run_dir, device=device, dataset=dataset, source=source,
                  emit=emit)


def _context(state: _State, key: RunKey) -> Any:
    from labelrefine.data.prepare import prepare_data
    from labelrefine.pipelines import PipelineContext

    if key.context_id not in state.contexts:
        data = prepare_data(state.dataset, state.cfg.split, key.noise, state.cfg.longtail,
                            key.seed)
        from labelrefine.lnl.adaptive import apply_adaptive
        from labelrefine.lnl.sources import for_training

        cfg = apply_adaptive(state.cfg, int(data.train_idx.size))
        source = for_training(state.source, data.train_idx, cfg.lnl)
        state.contexts[key.context_id] = PipelineContext(
            cfg=cfg, data=data, source=source, noise=key.noise, seed=key.seed,
            device=state.device,
        )
    return state.contexts[key.context_id]


def _run_one(state: _State, key: RunKey) -> dict[str, Any]:
    """Run one key, store its JSON, return the stored result."""
    result = compute_run(state, key)
    write_json(run_path(state.run_dir, key), result)
    return result


def compute_run(state: _State, key: RunKey) -> dict[str, Any]:
    """Run one key and return its result without storing it (executors store it)."""
    import torch

    from labelrefine.pipelines import run_pipeline

    ctx = _context(state, key)
    emit = state.emit
    ctx.progress = (lambda msg: emit({"kind": "status", "run": key.name, "message": msg})
                    ) if emit else None
    result = _reuse_clean(state, key, ctx) or run_pipeline(key.spec, ctx)
    result.update({
        "key": key.name,
        "fingerprint": run_fingerprint(state.cfg, key),
        "config_name": state.cfg.name,
        "finished_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "device": state.device,
        "torch_threads": torch.get_num_threads(),
    })
    return result


def _reuse_clean(state: _State, key: RunKey, ctx: Any) -> dict[str, Any] | None:
    """The ``clean`` reference trains on the true labels, so it is the same for every noise
    setting of a seed: reuse a finished sibling's rounds instead of training it again."""
    if key.spec.name != "clean":
        return None
    from labelrefine.pipelines.common import make_result

    for i, noise in enumerate(state.cfg.noise):
        sibling = RunKey(i, noise, key.spec, key.seed)
        if i != key.noise_index and is_finished(state.cfg, state.run_dir, sibling):
            done = read_run(run_path(state.run_dir, sibling)) or {}
            return make_result(ctx, key.spec, done.get("rounds", []),
                               seconds=done.get("timings"),
                               extra={"reference": "upper_bound", "reused_from": sibling.name})
    return None


def _run_group(state: _State, keys: Sequence[RunKey]) -> None:
    for key in keys:
        emit = state.emit
        if emit:
            emit({"kind": "status", "run": key.name, "message": "starting"})
        t0 = time.perf_counter()
        try:
            result = _run_one(state, key)
        except Exception as err:  # one failed run must not stop the sweep
            if emit:
                emit({"kind": "failed", "run": key.name,
                      "error": f"{type(err).__name__}: {err}",
                      "traceback": traceback.format_exc()})
            continue
        if emit:
            emit({"kind": "done", "run": key.name, "seconds": time.perf_counter() - t0,
                  "summary": summarize(result)})


def summarize(result: dict[str, Any]) -> str:
    """One line about a finished run: F1 at the first and last round, labels bought."""
    rounds = result.get("rounds") or []
    if not rounds:
        return "no rounds"
    first, last = rounds[0], rounds[-1]
    f0, f1 = first.get("test_f1"), last.get("test_f1")
    def fmt(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.3f}"

    if len(rounds) == 1:
        return f"test F1 {fmt(f1)}"
    return (f"test F1 {fmt(f0)} -> {fmt(f1)} after {last.get('labels_bought')} labels "
            f"({len(rounds) - (1 if first.get('round') == 0 else 0)} rounds)")


# ----------------------------------------------------------------------------- worker processes


def _worker_init(cfg_data: ExperimentConfig, run_dir: str, device: str, threads: int,
                 events: Any) -> None:
    global _STATE
    import torch

    torch.set_num_threads(threads)
    cfg = ExperimentConfig.model_validate(cfg_data)
    _STATE = _make_state(cfg, Path(run_dir), device, events.put, check_images=False)


def _worker_group(payload: list[tuple[int, dict[str, Any], int]]) -> int:
    assert _STATE is not None
    keys = [RunKey(i, _STATE.cfg.noise[i], PipelineSpec.model_validate(spec), seed)
            for i, spec, seed in payload]
    _run_group(_STATE, keys)
    return len(keys)


def _payload(keys: Sequence[RunKey]) -> list[tuple[int, dict[str, Any], int]]:
    return [(k.noise_index, k.spec.model_dump(mode="json"), k.seed) for k in keys]


# ----------------------------------------------------------------------------- the sweep


def default_threads(workers: int) -> int:
    """Torch threads per process: the cores shared out between the workers."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) // max(1, workers))


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
    from labelrefine.data.loaders import load_dataset

    dataset = load_dataset(cfg.dataset)
    previous_threads = torch.get_num_threads()
    try:
        torch.set_num_threads(default_threads(1))
        source = load_source(cfg, dataset, device, progress=embed_progress)
        summary.features_seconds = time.perf_counter() - t_start
        if executor != "local":  # e.g. Ray: labelrefine.experiments.executors
            from labelrefine.experiments.executors import get_executor

            get_executor(executor, address=address).run_sweep(
                cfg, run_dir, device, groups, dataset=dataset, source=source, record=record)
        elif n_workers == 1:
            torch.set_num_threads(n_threads)
            state = _make_state(cfg, run_dir, device, record, dataset=dataset, source=source)
            for group in groups:
                _run_group(state, group)
        else:
            del source
            _run_parallel(cfg, run_dir, device, groups, n_workers, n_threads, record)
    finally:
        torch.set_num_threads(previous_threads)
    summary.seconds = time.perf_counter() - t_start
    return summary


def _run_parallel(cfg: ExperimentConfig, run_dir: Path, device: str,
                  groups: list[list[RunKey]], n_workers: int, n_threads: int,
                  record: EventFn) -> None:
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    events = ctx.Queue()
    # the model itself (pickled), not a dump: a dump marks every field as set by the user,
    # which would switch off settings derived from unset fields (lnl.auto_schedule)
    cfg_data = cfg
    pending: dict[Future, list[RunKey]] = {}

    def drain() -> None:
        while True:
            try:
                record(events.get_nowait())
            except _queue.Empty:
                return

    with ProcessPoolExecutor(max_workers=n_workers, mp_context=ctx, initializer=_worker_init,
                             initargs=(cfg_data, str(run_dir), device, n_threads, events)
                             ) as pool:
        for group in groups:
            pending[pool.submit(_worker_group, _payload(group))] = group
        while pending:
            done, _ = wait(list(pending), timeout=0.3, return_when=FIRST_COMPLETED)
            drain()
            for fut in done:
                group = pending.pop(fut)
                err = fut.exception()
                if err is not None:  # the worker itself died: mark what did not finish
                    for key in group:
                        if not is_finished(cfg, run_dir, key):
                            record({"kind": "failed", "run": key.name,
                                    "error": f"worker process failed: {err}"})
        time.sleep(0.05)
        drain()
