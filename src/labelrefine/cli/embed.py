"""``labelrefine embed CONFIG``: embed a dataset with a frozen encoder and cache the features."""

from __future__ import annotations

import time
from pathlib import Path
from typing import get_args

import typer
from rich.console import Console

from labelrefine.cli._common import friendly_errors
from labelrefine.config import ConfigError, EncoderConfig, load_config

# The config's encoder choices (importing the encoders would import torch for --help).
ENCODER_NAMES: tuple[str, ...] = get_args(EncoderConfig.model_fields["name"].annotation)

_FLAGS = {
    "views": "--views",
    "image_size": "--image-size",
    "name": "--encoder",
    "weights": "--weights",
    "batch_size": "--batch-size",
    "cache_dir": "--cache-dir",
}


def _override(cfg: EncoderConfig, **options: object) -> EncoderConfig:
    """``cfg`` with the given (non-None) options replaced, validated like the YAML."""
    given = {k: v for k, v in options.items() if v is not None}
    if not given:
        return cfg
    from pydantic import ValidationError

    try:
        return EncoderConfig.model_validate({**cfg.model_dump(), **given})
    except ValidationError as err:
        msgs = "; ".join(
            f"{_FLAGS.get(str(e['loc'][0]), str(e['loc'][0])) if e['loc'] else 'encoder'}: "
            f"{e['msg']}"
            for e in err.errors()
        )
        raise ConfigError(msgs) from None


def embed_command(
    config: Path = typer.Argument(
        ..., help="Experiment YAML; its 'dataset' and 'encoder' sections are used."
    ),
    views: int | None = typer.Option(
        None, "--views", help="Augmented views per image, plus one plain view (default: config)."
    ),
    image_size: int | None = typer.Option(
        None, "--image-size", help="Encoder input size in pixels (default: config)."
    ),
    encoder: str | None = typer.Option(
        None, "--encoder", help=f"Encoder: {', '.join(ENCODER_NAMES)} (default: config)."
    ),
    weights: Path | None = typer.Option(
        None, "--weights", help="Local weights file (needed for the torchvision ResNets)."
    ),
    batch_size: int | None = typer.Option(
        None, "--batch-size", help="Views per encoder forward pass (default: config)."
    ),
    cache_dir: Path | None = typer.Option(
        None, "--cache-dir",
        help="Folder of the feature cache (default: the config's encoder.cache_dir, else "
        "$LABELREFINE_CACHE_DIR, else the user cache folder; see 'labelrefine cache info').",
    ),
    device: str | None = typer.Option(
        None, "--device", help="auto, cpu or cuda (default: the config's device)."
    ),
    seed: int = typer.Option(0, "--seed", min=0, max=2**32 - 1,
                             help="Seed of the augmented views."),
    workers: int | None = typer.Option(
        None,
        "--workers",
        help="Processes that read, augment and (on CPU) encode images "
        "(0: all in this process; default: one per CPU core).",
    ),
    threads: int | None = typer.Option(
        None,
        "--threads",
        help="Torch threads per encoding process on CPU (default: 1 with workers, all cores "
        "without).",
    ),
    runtime: str | None = typer.Option(
        None,
        "--runtime",
        help="What runs the encoder on CPU: auto (fastest installed: OpenVINO, then ONNX "
        "Runtime, then torch), torch, onnxruntime or openvino (default: $LABELREFINE_RUNTIME "
        "or auto). Features agree across runtimes (cosine >= 0.999), so the cache is shared.",
    ),
    executor: str = typer.Option(
        "local", "--executor",
        help="local: processes on this machine; ray: shards over Ray workers (needs "
        "pip install 'labelrefine\\[ray]'); the driver writes the same cache file.",
    ),
    address: str | None = typer.Option(
        None, "--address",
        help="Ray cluster to join, e.g. ray://head:10001 or auto (default: a local Ray "
        "instance). Only with --executor ray.",
    ),
    shards: int | None = typer.Option(
        None, "--shards", min=1,
        help="Ray shards (default: the cluster's CPU count). Only with --executor ray.",
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Compute (or load from the cache) the features of every image: V augmented views plus
    one plain view, stored as float16 in CACHE_DIR/KEY.npz."""
    from labelrefine.data.formats import load_dataset
    from labelrefine.models.cache import embed_dataset

    out = Console()
    with friendly_errors():
        cfg = load_config(config)
        enc = _override(
            cfg.encoder,
            views=views,
            image_size=image_size,
            name=encoder,
            weights=weights,
            batch_size=batch_size,
            cache_dir=cache_dir,
        )
        if workers is not None and workers < 0:
            raise ConfigError(f"--workers: must be >= 0, got {workers}")
        if threads is not None and threads < 1:
            raise ConfigError(f"--threads: must be >= 1, got {threads}")
        from labelrefine.runtime import resolve_device

        try:
            dev = resolve_device(device or cfg.device)
        except (ValueError, RuntimeError) as err:
            raise ConfigError(f"--device: {err}") from None
        from labelrefine.experiments.executors import check_executor
        from labelrefine.experiments.ray_embed import embed_with_ray

        check_executor(executor, address)
        if shards is not None and executor != "ray":
            raise ConfigError("--shards: only meaningful with --executor ray")
        if executor == "ray" and dev.type != "cpu":
            raise ConfigError("--executor ray: embeds on CPU workers; use --device cpu")
        dataset = load_dataset(cfg.dataset)
        start = time.perf_counter()
        try:
            fs = embed_with_ray(
                dataset, enc, seed=seed, address=address, shards=shards, runtime=runtime,
                progress=progress,
            ) if executor == "ray" else embed_dataset(
                dataset,
                enc,
                seed=seed,
                device=dev.type,
                progress=progress,
                num_workers=workers,
                num_threads=threads,
                runtime=runtime,
            )
        except ValueError as err:
            raise ConfigError(str(err)) from None
        seconds = time.perf_counter() - start
    n, v = len(fs), fs.num_views
    status = "hit" if fs.hit else "miss (computed)"
    out.print(f"cache: {status}")
    if not fs.hit:
        out.print(f"runtime: {fs.meta.get('runtime')}")
    out.print(f"path: {fs.path}")
    out.print(f"key: {fs.key}")
    out.print(f"features: views {tuple(fs.views.shape)}, plain {tuple(fs.plain.shape)} float16")
    rate = "" if fs.hit else (f" ({n / max(seconds, 1e-9):.0f} images/s, "
                              f"{n * (v + 1) / max(seconds, 1e-9):.0f} views/s)")
    out.print(f"time: {seconds:.1f} s{rate}")
