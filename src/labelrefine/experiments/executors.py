"""Where a sweep's runs execute: processes on this machine, or a Ray cluster.

An executor (:class:`Executor`) receives the sweep's groups of runs (runs that share a phase-1
computation) and runs them with :mod:`labelrefine.experiments.runs`, reporting events; the
runner (:func:`labelrefine.experiments.runner.run_sweep`) plans the sweep, loads data and
features once and picks the executor by name from :data:`EXECUTORS`.

- :class:`LocalExecutor` (``local``, the default): the groups in this process (``workers=1``)
  or in a pool of ``workers`` spawned processes.
- :class:`RayExecutor` (``ray``, ``pip install 'labelrefine[ray]'``): one Ray task per run.
  The driver computes (or loads) the features once and puts them in Ray's object store; each
  task runs one run (its phase 1 included) and returns the result; the driver writes each
  result as soon as it arrives, atomically, exactly where the local executor writes it. A
  sweep killed at any point therefore resumes like a local one: finished runs are skipped,
  nothing else is kept. The ``clean`` reference is trained once per seed and reused for the
  other noise settings.

Without an address a local Ray instance is started (all cores, or ``num_cpus``); with one
(``ray://head:10001`` or ``auto``) the driver joins that cluster, whose nodes need the same
labelrefine version installed. Embedding on Ray is :mod:`labelrefine.experiments.ray_embed`.
"""

from __future__ import annotations

import os
import queue as _queue
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any, Protocol

from labelrefine.config import ConfigError, ExperimentConfig, PipelineSpec
from labelrefine.experiments import runs
from labelrefine.experiments.runs import EventFn
from labelrefine.experiments.sweep import RunKey, is_finished, run_path, write_json


class Executor(Protocol):
    """Runs a sweep's groups; stores every result with :func:`~labelrefine.experiments.sweep.
    write_json` at :func:`~labelrefine.experiments.sweep.run_path` and reports ``status``,
    ``done`` and ``failed`` events to ``record``. A failed run must not stop the others."""

    #: whether it uses the parent's batch source (else the runner frees it before running)
    shares_source: bool

    def run_sweep(self, cfg: ExperimentConfig, run_dir: Path, device: str,
                  groups: Sequence[Sequence[RunKey]], *, dataset: Any, source: Any,
                  record: EventFn) -> None: ...


def ray_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("ray") is not None


def check_executor(name: str, address: str | None = None) -> None:
    """Raise :class:`ConfigError` naming the option when ``name`` / ``address`` cannot work."""
    if name not in EXECUTORS:
        raise ConfigError(f"--executor {name!r}: choose one of {', '.join(EXECUTORS)}")
    if address is not None and name != "ray":
        raise ConfigError("--address: only meaningful with --executor ray")
    if name == "ray" and not ray_available():
        raise ConfigError(
            "--executor ray: Ray is not installed (the 'ray' extra of labelrefine): pip install ray"
        )


def get_executor(name: str, *, address: str | None = None, workers: int = 1,
                 threads: int | None = None) -> Executor:
    """The executor called ``name`` (:data:`EXECUTORS`), checked first
    (:func:`check_executor`)."""
    check_executor(name, address)
    return EXECUTORS[name](address=address, workers=workers, threads=threads)


# ----------------------------------------------------------------------------- local


class LocalExecutor:
    """Run groups of runs on this machine: in this process (``workers=1``) or in a pool of
    ``workers`` spawned processes with ``threads`` torch threads each (each worker loads the
    data and the cached features itself)."""

    def __init__(self, workers: int = 1, threads: int | None = None) -> None:
        self.workers = workers
        self.threads = threads

    @property
    def shares_source(self) -> bool:
        return self.workers == 1

    def run_sweep(self, cfg: ExperimentConfig, run_dir: Path, device: str,
                  groups: Sequence[Sequence[RunKey]], *, dataset: Any, source: Any,
                  record: EventFn) -> None:
        import torch

        threads = self.threads or runs.default_threads(self.workers)
        if self.workers == 1:
            torch.set_num_threads(threads)
            state = runs.make_state(cfg, run_dir, device, record, dataset=dataset,
                                    source=source)
            for group in groups:
                runs.run_group(state, group)
        else:
            _run_parallel(cfg, run_dir, device, [list(g) for g in groups], self.workers,
                          threads, record)


# One per worker process.
_STATE: runs.RunState | None = None


def _worker_init(cfg_data: ExperimentConfig, run_dir: str, device: str, threads: int,
                 events: Any) -> None:
    global _STATE
    import torch

    torch.set_num_threads(threads)
    cfg = ExperimentConfig.model_validate(cfg_data)
    _STATE = runs.make_state(cfg, Path(run_dir), device, events.put, check_images=False)


def _worker_group(payload: list[tuple[int, dict[str, Any], int]]) -> int:
    assert _STATE is not None
    keys = [RunKey(i, _STATE.cfg.noise[i], PipelineSpec.model_validate(spec), seed)
            for i, spec, seed in payload]
    runs.run_group(_STATE, keys)
    return len(keys)


def _payload(keys: Sequence[RunKey]) -> list[tuple[int, dict[str, Any], int]]:
    return [(k.noise_index, k.spec.model_dump(mode="json"), k.seed) for k in keys]



def _run_parallel(cfg: ExperimentConfig, run_dir: Path, device: str,
                  groups: list[list[RunKey]], n_workers: int, n_threads: int,
                  record: EventFn) -> None:
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    events = ctx.Queue()
    pending: dict[Future, list[RunKey]] = {}

    def drain() -> None:
        while True:
            try:
                record(events.get_nowait())
            except _queue.Empty:
                return

    with ProcessPoolExecutor(max_workers=n_workers, mp_context=ctx, initializer=_worker_init,
                             # the model itself (pickled), not a dump: a dump marks every field
                             # as set, switching off what derives from unset ones (auto_schedule)
                             initargs=(cfg, str(run_dir), device, n_threads, events)
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


# ----------------------------------------------------------------------------- Ray


def _init_ray(address: str | None, num_cpus: int | None) -> None:
    import logging

    import ray

    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # never phone home
    if address is None:
        ray.init(num_cpus=num_cpus, include_dashboard=False, logging_level=logging.WARNING,
                 log_to_driver=False)
    else:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)


def _ray_run(cfg: ExperimentConfig, run_dir: str, device: str, threads: int, dataset: Any,
             source: Any, payload: tuple[int, dict, int]) -> dict[str, Any]:
    """One Ray task: compute one run and return its result (the driver stores it).

    ``cfg`` travels pickled, not as a dump: a dump would mark every field as set by the user
    and switch off the settings derived from unset ones (``lnl.auto_schedule``).
    """
    import torch

    torch.set_num_threads(threads)
    i, spec, seed = payload
    key = RunKey(i, cfg.noise[i], PipelineSpec.model_validate(spec), seed)
    state = runs.RunState(cfg=cfg, run_dir=Path(run_dir), device=device, dataset=dataset,
                          source=source)
    return runs.compute_run(state, key)


class RayExecutor:
    """One Ray task per run; results come back to the driver, which writes them (it keeps
    the parent's batch source: :attr:`shares_source`).

    ``address``: cluster to join (default: start a local instance with ``num_cpus`` CPUs).
    ``threads``: torch threads per task (each task reserves that many CPUs).
    """

    def __init__(self, address: str | None = None, num_cpus: int | None = None,
                 threads: int = 1, workers: int | None = None) -> None:
        self.address = address
        self.num_cpus = num_cpus
        self.threads = threads

    shares_source = True

    def run_sweep(self, cfg: ExperimentConfig, run_dir: Path, device: str,
                  groups: Sequence[Sequence[RunKey]], *, dataset: Any, source: Any,
                  record: EventFn) -> None:
        import ray

        _init_ray(self.address, self.num_cpus)
        task = ray.remote(num_cpus=self.threads, num_gpus=1 if device == "cuda" else 0,
                          max_retries=0)(_ray_run)
        cfg_ref, data_ref, source_ref = ray.put(cfg), ray.put(dataset), ray.put(source)
        pending: dict[Any, RunKey] = {}
        started: dict[str, float] = {}
        later: dict[tuple[int, str], list[RunKey]] = {}  # clean runs waiting for their seed's

        def submit(key: RunKey) -> None:
            payload = (key.noise_index, key.spec.model_dump(mode="json"), key.seed)
            ref = task.remote(cfg_ref, str(run_dir), device, self.threads, data_ref,
                              source_ref, payload)
            pending[ref] = key
            started[key.name] = time.perf_counter()
            record({"kind": "status", "run": key.name, "message": "running on Ray"})

        for group in groups:
            keys = list(group)
            if keys[0].spec.name == "clean" and len(keys) > 1:
                later[(keys[0].seed, keys[0].spec.display)] = keys[1:]
                keys = keys[:1]
            for key in keys:
                submit(key)
        local_state = None
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                key = pending.pop(ref)
                try:
                    result = ray.get(ref)
                except Exception as err:  # one failed run must not stop the sweep
                    cause = getattr(err, "cause", None) or err
                    record({"kind": "failed", "run": key.name,
                            "error": f"{type(cause).__name__}: {cause}"})
                    continue
                write_json(run_path(run_dir, key), result)
                record({"kind": "done", "run": key.name,
                        "seconds": time.perf_counter() - started[key.name],
                        "summary": runs.summarize(result)})
                siblings = later.pop((key.seed, key.spec.display), [])
                if siblings:  # the clean reference of the other noise settings: reuse it
                    if local_state is None:
                        local_state = runs.make_state(cfg, run_dir, device, record,
                                                         dataset=dataset, source=source)
                    runs.run_group(local_state, siblings)


#: name -> ``factory(address=, workers=, threads=)``; the ``--executor`` choices.
EXECUTORS: dict[str, Callable[..., Executor]] = {
    "local": lambda address, workers, threads: LocalExecutor(workers=workers, threads=threads),
    "ray": lambda address, workers, threads: RayExecutor(address=address),
}
