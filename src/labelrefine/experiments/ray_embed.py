"""Embedding sharded over Ray workers (``labelrefine embed --executor ray``).

Each shard task gets its images' bytes and the exported encoder from the driver (no shared
filesystem needed), embeds its contiguous range of items (augmented views seeded by the global
item index, so they equal the single-process ones) and returns its part; the driver assembles
the parts and writes the cache file atomically, under the same key as the single-process
embedding (:mod:`labelrefine.models.cache`).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from labelrefine.config import EncoderConfig, IntensityConfig
from labelrefine.experiments.executors import _init_ray, check_executor


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
        cached_features,
        progress_bar,
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
    bar = progress_bar(progress, n * (v + 1),
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
