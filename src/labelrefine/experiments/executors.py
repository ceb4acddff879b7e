"""Where a sweep's runs and an embedding execute: processes on this machine, or a Ray cluster.

- :class:`LocalExecutor` (the default): run groups in this process or a pool of local worker
  processes, as :func:`labelrefine.experiments.runner.run_sweep` always did.
- :class:`RayExecutor` (``pip install 'labelrefine[ray]'``): one Ray task per run. The driver
  computes (or loads) the features once and puts them in Ray's object store; each task runs one
  run (its phase 1 included) and returns the result; the driver writes each result as soon as
  it arrives, atomically, exactly where the local executor writes it. A sweep killed at any
  point therefore resumes like a local one: finished runs are skipped, nothing else is kept.
  The ``clean`` reference is trained once per seed and reused for the other noise settings.
- :func:`embed_with_ray`: embedding sharded over Ray workers. Each shard task gets its images'
  bytes and the exported encoder from the driver (no shared filesystem needed), embeds its
  contiguous range of items (augmented views seeded by the global item index, so they equal
  the single-process ones) and returns its part; the driver assembles the parts and writes the
  cache file atomically.

Without an address a local Ray instance is started (all cores, or ``num_cpus``); with one
(``ray://head:10001`` or ``auto``) the driver joins that cluster, whose nodes need the same
labelrefine version installed.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from labelrefine.config import (
    ConfigError,
    EncoderConfig,
    ExperimentConfig,
    IntensityConfig,
    PipelineSpec,
)
from labelrefine.experiments.sweep import RunKey, run_path, write_json

EXECUTORS: tuple[str, ...] = ("local", "ray")
EventFn = Callable[[dict[str, Any]], None]


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


def get_executor(name: str, *, address: str | None = None, **options: Any) -> Any:
    """The executor called ``name`` (``local`` or ``ray``)."""
    check_executor(name, address)
    if name == "ray":
        return RayExecutor(address=address, **options)
    return LocalExecutor(**options)


# ----------------------------------------------------------------------------- local


class LocalExecutor:
    """Run groups of runs on this machine: in this process (``workers=1``) or in a pool of
    ``workers`` spawned processes with ``threads`` torch threads each."""

    def __init__(self, workers: int = 1, threads: int | None = None) -> None:
        self.workers = workers
        self.threads = threads

    def run_sweep(self, cfg: ExperimentConfig, run_dir: Path, device: str,
                  groups: Sequence[Sequence[RunKey]], *, dataset: Any, source: Any,
                  record: EventFn) -> None:
        import torch

        from labelrefine.experiments import runner

        threads = self.threads or runner.default_threads(self.workers)
        if self.workers == 1:
            torch.set_num_threads(threads)
            state = runner._make_state(cfg, run_dir, device, record, dataset=dataset,
                                       source=source)
            for group in groups:
                runner._run_group(state, group)
        else:
            runner._run_parallel(cfg, run_dir, device, [list(g) for g in groups],
                                 self.workers, threads, record)


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

    from labelrefine.experiments import runner

    torch.set_num_threads(threads)
    i, spec, seed = payload
    key = RunKey(i, cfg.noise[i], PipelineSpec.model_validate(spec), seed)
    state = runner._State(cfg=cfg, run_dir=Path(run_dir), device=device, dataset=dataset,
                          source=source)
    return runner.compute_run(state, key)


class RayExecutor:
    """One Ray task per run; results come back to the driver, which writes them.

    ``address``: cluster to join (default: start a local instance with ``num_cpus`` CPUs).
    ``threads``: torch threads per task (each task reserves that many CPUs).
    """

    def __init__(self, address: str | None = None, num_cpus: int | None = None,
                 threads: int = 1, workers: int | None = None) -> None:
        self.address = address
        self.num_cpus = num_cpus
        self.threads = threads

    def run_sweep(self, cfg: ExperimentConfig, run_dir: Path, device: str,
                  groups: Sequence[Sequence[RunKey]], *, dataset: Any, source: Any,
                  record: EventFn) -> None:
        import ray

        from labelrefine.experiments import runner

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
                        "summary": runner.summarize(result)})
                siblings = later.pop((key.seed, key.spec.display), [])
                if siblings:  # the clean reference of the other noise settings: reuse it
                    if local_state is None:
                        local_state = runner._make_state(cfg, run_dir, device, record,
                                                         dataset=dataset, source=source)
                    runner._run_group(local_state, siblings)


# ----------------------------------------------------------------------------- embedding


def _ray_embed_shard(cfg_data: dict, seed: int, start: int, ids: tuple[str, ...],
                     images: Any, suffixes: Sequence[str] | None, model: bytes | None,
                     runtime: str, threads: int, intensity: dict | None = None,
                     ) -> tuple[int, np.ndarray, np.ndarray]:
    """One Ray task: features of items ``start .. start + len(ids)`` (float16); ``intensity``:
    the dataset's :class:`~labelrefine.config.IntensityConfig` as a dict."""
    import torch

    from labelrefine.data.dataset import ImageDataset
    from labelrefine.models.cache import compute_features
    from labelrefine.models.encoders import FEATURE_DIMS, RuntimeEncoder, build_encoder

    torch.set_num_threads(threads)
    cfg = EncoderConfig.model_validate(cfg_data)
    labels = np.zeros(len(ids), dtype=np.int64)  # features do not depend on labels
    with tempfile.TemporaryDirectory(prefix="labelrefine-shard-") as tmp:
        if suffixes is None:  # pixel arrays
            ds = ImageDataset(ids=ids, labels=labels, class_names=("_",), images=images)
        else:  # image file bytes from the driver: no shared filesystem needed
            paths = []
            for i, (blob, suffix) in enumerate(zip(images, suffixes, strict=True)):
                path = Path(tmp) / f"{i}{suffix}"
                path.write_bytes(blob)
                paths.append(path)
            ds = ImageDataset(ids=ids, labels=labels, class_names=("_",), paths=tuple(paths),
                              intensity=None if intensity is None
                              else IntensityConfig.model_validate(intensity))
        dim = FEATURE_DIMS[cfg.name]
        if model is not None:
            model_path = Path(tmp) / "encoder.onnx"
            model_path.write_bytes(model)
            encoder: Any = RuntimeEncoder(model_path, dim, cfg.name, runtime, cfg.image_size,
                                          threads)
        else:
            encoder, dim = build_encoder(cfg.name, weights=cfg.weights, device="cpu")
        plain, views = compute_features(ds, cfg, encoder, dim, seed=seed,
                                        device=torch.device("cpu"), workers=0, threads=threads,
                                        index_base=start)
    return start, plain, views


def embed_with_ray(dataset: Any, cfg: EncoderConfig, *, seed: int = 0,
                   address: str | None = None, num_cpus: int | None = None,
                   shards: int | None = None, runtime: str | None = None,
                   progress: bool = True) -> Any:
    """:func:`labelrefine.models.cache.embed_dataset`, sharded over Ray workers (CPU).

    Same cache key and file as the single-process embedding; a cache hit returns at once
    without starting Ray. ``shards`` defaults to the cluster's CPU count (at most one shard per
    item). Features agree with single-process embedding within the runtimes' parity bound
    (identical inputs; only the batch composition differs).
    """
    import ray

    from labelrefine.models.cache import (
        RUNTIME_ENV,
        _progress_bar,
        cached_features,
        resolve_cache_dir,
        store_features,
    )
    from labelrefine.models.encoders import build_runtime_encoder

    key, path, hit = cached_features(dataset, cfg, seed=seed)
    if hit is not None:
        return hit
    check_executor("ray", address)
    start_time = time.perf_counter()
    # export once on the driver; the shards get the model file's bytes
    encoder, dim, used = build_runtime_encoder(
        cfg.name, image_size=cfg.image_size, export_dir=resolve_cache_dir(cfg) / "models",
        runtime=runtime or os.environ.get(RUNTIME_ENV) or "auto",  # type: ignore[arg-type]
        weights=cfg.weights, device="cpu",
    )
    model = None if used == "torch" else Path(encoder.model_path).read_bytes()
    _init_ray(address, num_cpus)
    n, v = len(dataset), cfg.views
    n_shards = max(1, min(n, shards or int(ray.cluster_resources().get("CPU", 1))))
    task = ray.remote(num_cpus=1, max_retries=1)(_ray_embed_shard)
    cfg_data = cfg.model_dump(mode="json")
    model_ref = ray.put(model)
    refs = []
    for part in np.array_split(np.arange(n), n_shards):
        lo, hi = int(part[0]), int(part[-1]) + 1
        ids = tuple(dataset.ids[lo:hi])
        if dataset.images is not None:
            images, suffixes = dataset.images[lo:hi], None
        else:
            files = dataset.paths[lo:hi]
            images = [Path(p).read_bytes() for p in files]
            suffixes = [Path(p).suffix for p in files]
        intensity = (None if dataset.intensity is None
                     else dataset.intensity.model_dump(mode="json"))
        refs.append(task.remote(cfg_data, seed, lo, ids, images, suffixes, model_ref, used, 1,
                                intensity))
    plain = np.empty((n, dim), dtype=np.float16)
    views = np.empty((v, n, dim), dtype=np.float16)
    bar = _progress_bar(progress, n * (v + 1),
                        f"embedding {n} images x {v + 1} views in {n_shards} Ray shards")
    with bar as advance:
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            lo, p, w = ray.get(done[0])
            plain[lo : lo + len(p)] = p
            views[:, lo : lo + len(p)] = w
            advance(len(p) * (v + 1))
    meta = {"device": "cpu", "precision": "fp32", "runtime": used, "executor": "ray",
            "shards": n_shards, "seconds": round(time.perf_counter() - start_time, 2)}
    return store_features(dataset, cfg, key, plain, views, seed=seed, meta=meta)
