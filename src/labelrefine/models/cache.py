"""Embedding cache: features of V augmented views plus one plain view per image, on disk.

``embed_dataset`` runs a frozen encoder (:mod:`labelrefine.models.encoders`) over a dataset once
and stores the result as float16 in ``<cache_dir>/<key>.npz``. The key is a content hash of the
images (item ids and image bytes, in order), the encoder name, the weights file's content, the
image size, the number of views, the seed and the cache format version, so any change to those
gives a new file and an unchanged setting is a cache hit that never builds the encoder. Labels
and class names are *not* part of it: features do not depend on them, so correcting a label
(e.g. in a relabeling campaign) reuses the cache. Neither are the batch size, the device or
the runtime that executes the encoder (their features agree within float16 storage).

The cache folder is ``encoder.cache_dir`` when set, else ``$LABELREFINE_CACHE_DIR``, else the
user's cache folder (``platformdirs``, e.g. ``~/.cache/labelrefine/features`` on Linux), so
commands run from any working directory share one cache.

Each image is decoded once; its plain view and its V augmented views are made from that one
decoded copy. View ``v`` of image ``i`` depends only on ``(seed, i, v)``: the result does not
depend on the batch size or the number of workers.

Parallelism (measured with ``benchmarks/bench_embed.py`` on 2 cores). On CPU, each DataLoader
worker process decodes, augments *and* encodes whole batches with one torch thread, one worker
per core. That beat one process with two torch threads (with or without a separate
augmentation worker): a multi-threaded forward pass waits at every layer for its slowest
thread, so any other busy process on the cores (image augmentation, or other jobs) stalls it,
while single-threaded workers just share the cores. On CUDA, workers only prepare images and
the main process runs the encoder (float16 autocast).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from labelrefine.config import EncoderConfig
from labelrefine.data.dataset import ImageDataset
from labelrefine.io import atomic_open
from labelrefine.models.augment import eval_transform, train_transform
from labelrefine.models.encoders import (
    FrozenEncoder,
    RuntimeEncoder,
    build_runtime_encoder,
    resolve_weights,
    weights_identity,
)
from labelrefine.runtime import resolve_device

#: bump when the stored arrays or the way views are made change
FORMAT_VERSION = 1

#: environment variable that overrides the default cache folder
CACHE_DIR_ENV = "LABELREFINE_CACHE_DIR"
#: environment variable that sets the default CPU runtime (auto, torch, onnxruntime, openvino)
RUNTIME_ENV = "LABELREFINE_RUNTIME"


def default_cache_dir() -> Path:
    """``$LABELREFINE_CACHE_DIR`` when set, else ``<user cache dir>/labelrefine/features``."""
    env = os.environ.get(CACHE_DIR_ENV)
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("labelrefine", appauthor=False)) / "features"


def resolve_cache_dir(cfg: EncoderConfig | None = None) -> Path:
    """The cache folder of ``cfg``: its ``cache_dir`` when set, else :func:`default_cache_dir`."""
    configured = None if cfg is None else cfg.cache_dir
    return Path(configured).expanduser() if configured is not None else default_cache_dir()


def content_fingerprint(dataset: ImageDataset) -> str:
    """Hash of what the features depend on: item ids and image bytes, in order (not labels);
    for high-bit-depth and DICOM files also the dataset's intensity setting
    (:func:`labelrefine.data.images.rendering_tag`; 8-bit files hash as their bytes alone)."""
    from labelrefine.data.images import rendering_tag

    h = hashlib.sha256()
    h.update("\x1f".join(dataset.ids).encode())
    if dataset.images is not None:
        arr = np.ascontiguousarray(dataset.images)
        h.update(f"{arr.dtype}{arr.shape}".encode())
        h.update(arr.tobytes())
    else:
        assert dataset.paths is not None
        for p in dataset.paths:
            data = Path(p).read_bytes()
            h.update(data)
            tag = rendering_tag(p, data, dataset.intensity)
            if tag:
                h.update(tag.encode())
    return h.hexdigest()[:16]


def _cpu_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_num_workers(device: torch.device) -> int:
    """Worker processes for :func:`embed_dataset`.

    CPU: one per core (at most 16); each decodes, augments and encodes whole batches with one
    torch thread. CUDA: up to 8 (one core left to the main process), preparing images only.
    """
    cores = _cpu_cores()
    if device.type == "cuda":
        return max(1, min(8, cores - 1))
    return max(1, min(16, cores))


class CacheError(ValueError):
    """A cache file exists but cannot be used (corrupt, or for another dataset)."""


@dataclass(frozen=True)
class FeatureSet:
    """Cached encoder features of one dataset.

    ``views[v, i]`` is the feature of augmented view ``v`` of item ``i``; ``plain[i]`` the
    feature of its un-augmented view; ``ids`` are the dataset's item ids in order.
    """

    views: np.ndarray  # (V, N, D) float16
    plain: np.ndarray  # (N, D) float16
    ids: tuple[str, ...]
    key: str
    path: Path | None = None
    hit: bool = False
    meta: dict = field(default_factory=dict, compare=False)

    @property
    def num_views(self) -> int:
        return int(self.views.shape[0])

    @property
    def dim(self) -> int:
        return int(self.plain.shape[1])

    def __len__(self) -> int:
        return len(self.ids)


def cache_key(dataset: ImageDataset | str, cfg: EncoderConfig, *, seed: int = 0) -> str:
    """Cache key of ``dataset`` (or its :func:`content_fingerprint`) embedded with ``cfg``.

    Covers: item ids and image bytes (and the intensity setting of high-bit images), encoder
    name, weights file content, image size, views, seed and :data:`FORMAT_VERSION`. Labels,
    class names, batch size, device, runtime and cache directory are not part of it.
    """
    fingerprint = dataset if isinstance(dataset, str) else content_fingerprint(dataset)
    weights = resolve_weights(cfg.name, cfg.weights)
    payload = {
        "format": FORMAT_VERSION,
        "images": fingerprint,
        "encoder": cfg.name,
        "weights": weights_identity(weights),
        "image_size": cfg.image_size,
        "views": cfg.views,
        "seed": int(seed),
    }
    blob = json.dumps(payload, sort_keys=True).encode()
    return f"{cfg.name}-{cfg.image_size}px-v{cfg.views}-" + hashlib.sha256(blob).hexdigest()[:20]


def cache_path(cfg: EncoderConfig, key: str) -> Path:
    """Where the features with ``key`` live."""
    return resolve_cache_dir(cfg) / f"{key}.npz"


def _weights_name(cfg: EncoderConfig) -> str:
    path = resolve_weights(cfg.name, cfg.weights)
    return "random" if path is None else path.name


def _item_seed(seed: int, index: int) -> int:
    digest = hashlib.blake2b(f"{seed}:{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


class _ViewDataset(Dataset):
    """Item ``i`` -> ``(index, tensor (1 + V, 3, S, S))``: plain view first, then V views."""

    def __init__(
        self, dataset: ImageDataset, image_size: int, views: int, seed: int, index_base: int = 0
    ) -> None:
        self.dataset = dataset
        self.views = views
        self.seed = seed
        self.index_base = index_base  # item i of a shard is item index_base + i of the dataset
        self.plain_tf = eval_transform(image_size)
        self.train_tf = train_transform(image_size)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> tuple[int, torch.Tensor]:
        image = self.dataset.load_image(i)
        out = [self.plain_tf(image)]
        if self.views:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(_item_seed(self.seed, self.index_base + i))
                out.extend(self.train_tf(image) for _ in range(self.views))
        return i, torch.stack(out)


class _EncodedBatches(Dataset):
    """Batch ``k`` -> ``(indices, float16 features (b, 1 + V, D))``, encoded where it is read.

    Read by CPU worker processes, each with its own (fork-shared) copy of the frozen encoder.
    """

    def __init__(self, views: _ViewDataset, encoder: FrozenEncoder | RuntimeEncoder,
                 batches: list[np.ndarray]) -> None:
        self.views = views
        self.encoder = encoder
        self.batches = batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = self.batches[k]
        x = torch.stack([self.views[int(i)][1] for i in idx])
        feats = self.encoder(x.flatten(0, 1)).reshape(len(idx), x.shape[1], -1)
        return torch.from_numpy(idx), feats.to(torch.float16)


def _set_worker_threads(threads: int, _: int) -> None:
    torch.set_num_threads(threads)


def _cpu_batches(
    views: _ViewDataset,
    encoder: FrozenEncoder | RuntimeEncoder,
    images_per_batch: int,
    workers: int,
    threads: int,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Encoded batches on CPU: in ``workers`` processes, or in this one when ``workers == 0``."""
    n = len(views)
    batches = [np.arange(i, min(i + images_per_batch, n)) for i in range(0, n, images_per_batch)]
    ds = _EncodedBatches(views, encoder, batches)
    if workers == 0:
        with _torch_threads(threads):
            yield from (ds[k] for k in range(len(ds)))
        return
    yield from DataLoader(
        ds,
        batch_size=None,
        shuffle=False,
        num_workers=min(workers, len(batches)),
        worker_init_fn=partial(_set_worker_threads, threads),
        prefetch_factor=2,
        # a forked child that starts a multi-threaded pool the parent already used (OpenMP)
        # can deadlock; fresh interpreters cannot
        multiprocessing_context="spawn" if threads > 1 else None,
    )


def _cuda_batches(
    views: _ViewDataset, encoder: FrozenEncoder, images_per_batch: int, workers: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Encoded batches on CUDA: ``workers`` processes prepare images, this process encodes."""
    loader = DataLoader(
        views,
        batch_size=images_per_batch,
        shuffle=False,
        num_workers=workers,
        worker_init_fn=partial(_set_worker_threads, 1) if workers else None,
        prefetch_factor=4 if workers else None,
        pin_memory=True,
    )
    for idx, x in loader:
        feats = encoder(x.flatten(0, 1)).reshape(x.shape[0], x.shape[1], -1)
        yield idx, feats.to(torch.float16)


def _atomic_save_npz(path: Path, **arrays: np.ndarray) -> None:
    """Write ``arrays`` to ``path`` atomically, readable by others (the cache is shared)."""
    with atomic_open(path, "wb") as fh:
        np.savez(fh, **arrays)


def load_features(path: Path, dataset: ImageDataset | None = None) -> FeatureSet:
    """Read a cache file written by :func:`embed_dataset` (checks ids against ``dataset``)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            views, plain, ids = z["views"], z["plain"], tuple(str(s) for s in z["ids"])
            meta = json.loads(str(z["meta"]))
    except (OSError, KeyError, ValueError) as err:
        raise CacheError(f"cache file {path} is unreadable: {err}") from None
    if dataset is not None and ids != tuple(dataset.ids):
        raise CacheError(f"cache file {path} holds features of other items than the dataset")
    if plain.ndim != 2 or views.ndim != 3 or views.shape[1:] != plain.shape:
        raise CacheError(f"cache file {path} has inconsistent shapes {views.shape}, {plain.shape}")
    return FeatureSet(
        views=views, plain=plain, ids=ids, key=path.stem, path=path, hit=True, meta=meta
    )


def cached_features(
    dataset: ImageDataset, cfg: EncoderConfig, *, seed: int = 0
) -> tuple[str, Path, FeatureSet | None]:
    """``(key, path, features)`` of ``dataset``'s cache entry; ``features`` is None when the file
    is missing or unusable (the caller recomputes it and replaces the file atomically)."""
    if len(dataset) == 0:
        raise ValueError("cannot embed an empty dataset")
    key = cache_key(dataset, cfg, seed=seed)
    path = cache_path(cfg, key)
    if path.is_file():
        try:
            return key, path, load_features(path, dataset)
        except CacheError:
            pass
    return key, path, None


def embed_dataset(
    dataset: ImageDataset,
    cfg: EncoderConfig,
    *,
    seed: int = 0,
    device: str = "auto",
    progress: bool = True,
    num_workers: int | None = None,
    num_threads: int | None = None,
    runtime: str | None = None,
) -> FeatureSet:
    """Features of ``cfg.views`` augmented views plus the plain view of every item, cached.

    Returns the cached :class:`FeatureSet` when ``<cfg.cache_dir>/<cache_key>.npz`` exists
    (``hit=True``; the encoder is not built). Otherwise embeds in batches of about
    ``cfg.batch_size`` views with a progress bar and writes the file atomically.
    ``num_workers``: processes that read, augment and (on CPU) encode images (default
    :func:`default_num_workers`; 0 = all in this process). ``num_threads``: torch threads of
    each process that runs the encoder on CPU (default 1 with workers, all cores without).
    ``runtime``: what executes the encoder on CPU, ``auto`` (default, or ``$LABELREFINE_RUNTIME``;
    the fastest installed), ``torch``, ``onnxruntime`` or ``openvino``; CUDA uses torch. The
    runtime does not change the cache key: every runtime meets the parity bound with torch.
    """
    key, path, hit = cached_features(dataset, cfg, seed=seed)
    if hit is not None:
        return hit

    start = time.perf_counter()
    dev = resolve_device(device)
    workers = default_num_workers(dev) if num_workers is None else num_workers
    if workers < 0:
        raise ValueError(f"num_workers must be >= 0, got {workers}")
    threads = (1 if workers else torch.get_num_threads()) if num_threads is None else num_threads
    if threads < 1:
        raise ValueError(f"num_threads must be >= 1, got {threads}")
    encoder, dim, used_runtime = build_runtime_encoder(
        cfg.name,
        image_size=cfg.image_size,
        export_dir=resolve_cache_dir(cfg) / "models",
        runtime=runtime or os.environ.get(RUNTIME_ENV) or "auto",  # type: ignore[arg-type]
        weights=cfg.weights,
        device=dev,
    )
    bar = progress_bar(
        progress, len(dataset) * (cfg.views + 1),
        f"embedding {len(dataset)} images x {cfg.views + 1} views",
    )
    with bar as advance:
        plain, views = compute_features(
            dataset, cfg, encoder, dim, seed=seed, device=dev, workers=workers, threads=threads,
            advance=advance,
        )
    meta = {
        "device": str(dev),
        "precision": encoder.precision,
        "runtime": used_runtime,
        "seconds": round(time.perf_counter() - start, 2),
    }
    return store_features(dataset, cfg, key, plain, views, seed=seed, meta=meta)


def compute_features(
    dataset: ImageDataset,
    cfg: EncoderConfig,
    encoder: FrozenEncoder | RuntimeEncoder,
    dim: int,
    *,
    seed: int,
    device: torch.device,
    workers: int,
    threads: int,
    index_base: int = 0,
    advance: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(plain (N, D), views (V, N, D))`` float16 features of ``dataset`` (nothing stored).

    ``index_base``: ``dataset`` is items ``index_base ..`` of a larger dataset (a shard), so
    its augmented views equal those of the whole dataset's embedding.
    """
    n, v = len(dataset), cfg.views
    if isinstance(encoder, RuntimeEncoder):
        encoder.threads = threads  # each encoding process opens its session with these
    images_per_batch = max(1, cfg.batch_size // (v + 1))
    plain = np.empty((n, dim), dtype=np.float16)
    views = np.empty((v, n, dim), dtype=np.float16)
    ds = _ViewDataset(dataset, cfg.image_size, v, seed, index_base)
    if device.type == "cuda":
        batches = _cuda_batches(ds, encoder, images_per_batch, workers)
    else:
        batches = _cpu_batches(ds, encoder, images_per_batch, workers, threads)
    for idx, feats in batches:
        f = feats.cpu().numpy()
        ids = idx.numpy()
        plain[ids] = f[:, 0]
        if v:
            views[:, ids] = f[:, 1:].transpose(1, 0, 2)
        if advance is not None:
            advance(len(ids) * (v + 1))
    return plain, views


def store_features(
    dataset: ImageDataset,
    cfg: EncoderConfig,
    key: str,
    plain: np.ndarray,
    views: np.ndarray,
    *,
    seed: int,
    meta: dict,
) -> FeatureSet:
    """Check ``plain`` / ``views`` are finite and write them atomically as cache entry ``key``."""
    if not (np.isfinite(plain).all() and np.isfinite(views).all()):
        raise ValueError(
            f"encoder {cfg.name!r} produced non-finite features (float16 overflow?); "
            "nothing was cached"
        )
    meta = {
        "format": FORMAT_VERSION,
        "encoder": cfg.name,
        "weights": _weights_name(cfg),
        "image_size": cfg.image_size,
        "views": int(views.shape[0]),
        "seed": int(seed),
        "dataset": dataset.name,
        **meta,
    }
    path = cache_path(cfg, key)
    _atomic_save_npz(
        path,
        views=views,
        plain=plain,
        ids=np.asarray(dataset.ids, dtype=str),
        meta=np.asarray(json.dumps(meta)),
    )
    return FeatureSet(
        views=views, plain=plain, ids=tuple(dataset.ids), key=key, path=path, hit=False, meta=meta
    )


@contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``threads`` torch threads (``None``: unchanged), then restore."""
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextmanager
def progress_bar(enabled: bool, total: int, description: str) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(count)`` for a rich progress bar counting embedded views (or a no-op)."""
    if not enabled:
        yield lambda count: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    )
    task = bar.add_task(description, total=total, rate="")
    start = time.perf_counter()
    done = 0

    def advance(count: int) -> None:
        nonlocal done
        done += count
        rate = done / max(time.perf_counter() - start, 1e-9)
        bar.update(task, advance=count, rate=f"{rate:.0f} views/s")

    with bar:
        yield advance


@dataclass(frozen=True)
class CacheEntry:
    """One file of the cache folder, as listed by :func:`list_cache`."""

    path: Path
    bytes: int
    kind: str  # "features", "model" (an exported encoder) or "partial" (an interrupted write)
    meta: dict = field(default_factory=dict)


def list_cache(cache_dir: str | Path | None = None) -> list[CacheEntry]:
    """Files in the cache folder (default :func:`default_cache_dir`), features first.

    Feature files carry their stored meta (encoder, views, image size, dataset name, ...);
    an unreadable one is listed with ``meta == {"error": ...}``.
    """
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    if not root.is_dir():
        return []
    entries = []
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        size = path.stat().st_size
        if path.name.startswith(".") and path.suffix == ".tmp":
            entries.append(CacheEntry(path, size, "partial"))
        elif path.suffix == ".npz":
            try:
                meta = _read_meta(path)
            except (OSError, KeyError, ValueError, zipfile.BadZipFile) as err:
                meta = {"error": str(err)}
            entries.append(CacheEntry(path, size, "features", meta))
        elif path.suffix in (".onnx", ".xml", ".bin"):
            entries.append(CacheEntry(path, size, "model"))
    order = {"features": 0, "model": 1, "partial": 2}
    return sorted(entries, key=lambda e: (order[e.kind], str(e.path)))


def _read_meta(path: Path) -> dict:
    """A feature file's meta plus its item count, without loading the feature arrays."""
    with zipfile.ZipFile(path) as zf:
        with zf.open("meta.npy") as fh:
            meta = json.loads(str(np.lib.format.read_array(fh, allow_pickle=False)))
        with zf.open("plain.npy") as fh:
            version = np.lib.format.read_magic(fh)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape = read_header(fh)[0]
    meta["items"] = int(shape[0])
    return meta


def clear_cache(cache_dir: str | Path | None = None) -> tuple[int, int]:
    """Delete every cache file listed by :func:`list_cache`; return ``(files, bytes)`` freed.

    Only files the cache writes (``.npz`` features, exported encoder models, interrupted
    temporary files) are removed; anything else in the folder is left alone.
    """
    entries = list_cache(cache_dir)
    for entry in entries:
        entry.path.unlink(missing_ok=True)
    return len(entries), sum(e.bytes for e in entries)
