"""One run of a sweep and the per-process state it runs in, shared by every executor.

A :class:`RunState` holds what one process needs: the dataset, its batch source and the
per-(noise, seed) pipeline contexts. :func:`compute_run` runs one key and returns its result;
:func:`run_group` runs several one after the other, storing each result atomically as it
finishes and reporting events. :mod:`labelrefine.experiments.executors` decides where groups
run; :mod:`labelrefine.experiments.runner` plans the sweep.
"""

from __future__ import annotations

import datetime as _dt
import os
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labelrefine.config import ExperimentConfig
from labelrefine.experiments.sweep import (
    RunKey,
    is_finished,
    read_run,
    run_fingerprint,
    run_path,
    write_json,
)

#: Called with one event dict per status change: ``{"kind": "status" | "done" | "failed", ...}``.
EventFn = Callable[[dict[str, Any]], None]


@dataclass
class RunState:
    """One process's dataset, batch source and pipeline contexts (one per noise x seed)."""

    cfg: ExperimentConfig
    run_dir: Path
    device: str
    dataset: Any
    source: Any
    contexts: dict[tuple[int, int], Any] = field(default_factory=dict)
    emit: EventFn | None = None



def load_source(cfg: ExperimentConfig, dataset: Any, device: str, *,
                progress: bool = False) -> Any:
    """The batch source for the config's mode: cached features or images
    (:func:`labelrefine.lnl.phase1.build_source`)."""
    from labelrefine.lnl.phase1 import build_source

    return build_source(dataset, cfg.lnl, cfg.encoder, device=device, progress=progress)[0]


def make_state(cfg: ExperimentConfig, run_dir: Path, device: str, emit: EventFn | None, *,
                dataset: Any = None, source: Any = None, check_images: bool = True) -> RunState:
    from labelrefine.data.formats import load_dataset

    if dataset is None:
        dataset = load_dataset(cfg.dataset, check_images=check_images)
    if source is None:
        source = load_source(cfg, dataset, device)
    return RunState(cfg=cfg, run_dir=run_dir, device=device, dataset=dataset, source=source,
                  emit=emit)


def context(state: RunState, key: RunKey) -> Any:
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


def run_one(state: RunState, key: RunKey) -> dict[str, Any]:
    """Run one key, store its JSON, return the stored result."""
    result = compute_run(state, key)
    write_json(run_path(state.run_dir, key), result)
    return result


def compute_run(state: RunState, key: RunKey) -> dict[str, Any]:
    """Run one key and return its result without storing it (executors store it)."""
    import torch

    from labelrefine.pipelines import run_pipeline

    ctx = context(state, key)
    emit = state.emit
    ctx.progress = (lambda msg: emit({"kind": "status", "run": key.name, "message": msg})
                    ) if emit else None
    result = reuse_clean(state, key, ctx) or run_pipeline(key.spec, ctx)
    result.update({
        "key": key.name,
        "fingerprint": run_fingerprint(state.cfg, key),
        "config_name": state.cfg.name,
        "finished_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "device": state.device,
        "torch_threads": torch.get_num_threads(),
    })
    return result


def reuse_clean(state: RunState, key: RunKey, ctx: Any) -> dict[str, Any] | None:
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


def run_group(state: RunState, keys: Sequence[RunKey]) -> None:
    for key in keys:
        emit = state.emit
        if emit:
            emit({"kind": "status", "run": key.name, "message": "starting"})
        t0 = time.perf_counter()
        try:
            result = run_one(state, key)
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


def default_threads(workers: int) -> int:
    """Torch threads per process: the cores shared out between the workers."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) // max(1, workers))
