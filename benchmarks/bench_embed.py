"""Embedding speed on the bundled HAM10000 images (128 px) on this machine's CPU.

Prints, in one run:

1. encoder forward throughput (images/s) on pre-decoded plain views: EfficientNet-Lite0 and
   ResNet18 (random weights; speed only), channels-last vs contiguous memory format, and
   bfloat16 autocast where the CPU supports it;
2. end-to-end ``embed_dataset`` throughput (decode + transforms + forward), plain view only and
   with V augmented views, for several (DataLoader workers, torch threads) settings;
3. the projected time to embed all bundled images x (V + 1) views with the defaults.

    python benchmarks/bench_embed.py                 # 1,000 images x 2 passes
    python benchmarks/bench_embed.py --images 300 --passes 1 --views 4
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from labelrefine.config import DatasetConfig, EncoderConfig
from labelrefine.data.dataset import ImageDataset
from labelrefine.data.loaders import load_dataset
from labelrefine.models.augment import eval_transform
from labelrefine.models.cache import default_num_workers, embed_dataset
from labelrefine.models.encoders import build_encoder

DATA = Path(__file__).resolve().parents[1] / "data" / "ham10000"


def _load(n: int) -> tuple[ImageDataset, ImageDataset]:
    ds = load_dataset(
        DatasetConfig(images=DATA / "images", labels=DATA / "labels.csv"), check_images=False
    )
    return ds, ds.subset(np.arange(min(n, len(ds))))


def _forward_rate(encoder: torch.nn.Module, x: torch.Tensor, batch: int, passes: int) -> float:
    encoder(x[:batch])  # warm-up: kernel selection for this shape
    start = time.perf_counter()
    for _ in range(passes):
        for i in range(0, len(x), batch):
            encoder(x[i : i + batch])
    return passes * len(x) / (time.perf_counter() - start)


def bench_forward(ds: ImageDataset, size: int, batch: int, passes: int) -> None:
    tf = eval_transform(size)
    x = torch.stack([tf(ds.load_image(i)) for i in range(len(ds))])
    print(
        f"\n[1] encoder forward, {len(ds)} plain views x {passes} passes, {size} px, "
        f"batch {batch}, {torch.get_num_threads()} torch threads"
    )
    rows: list[tuple[str, float]] = []
    cores = torch.get_num_threads()
    for name in ("efficientnet_lite0", "resnet18"):
        random_init = name != "efficientnet_lite0"
        rates = {}
        for cl in (True, False):
            enc, _ = build_encoder(name, random_init=random_init, channels_last=cl)
            rates[cl] = _forward_rate(enc, x, batch, passes)
            rows.append((f"{name} fp32 {'channels_last' if cl else 'contiguous'}", rates[cl]))
        rows.append((f"{name} channels_last / contiguous", rates[True] / rates[False]))
        if cores > 1:
            enc, _ = build_encoder(name, random_init=random_init)
            torch.set_num_threads(1)
            rows.append(
                (f"{name} fp32 channels_last, 1 thread", _forward_rate(enc, x, batch, passes))
            )
            torch.set_num_threads(cores)
        try:
            enc, _ = build_encoder(name, random_init=random_init, precision="bf16")
        except ValueError:
            continue
        rows.append((f"{name} bf16 channels_last", _forward_rate(enc, x, batch, passes)))
    for label, value in rows:
        unit = "x" if "/" in label else "images/s"
        print(f"  {label:<45} {value:8.2f} {unit}")


def _embed_rate(ds: ImageDataset, cfg: EncoderConfig, workers: int, threads: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = cfg.model_copy(update={"cache_dir": Path(tmp)})
        start = time.perf_counter()
        embed_dataset(
            ds, cfg, device="cpu", progress=False, num_workers=workers, num_threads=threads
        )
        seconds = time.perf_counter() - start
    return len(ds) * (cfg.views + 1) / seconds


def bench_pipeline(
    ds: ImageDataset,
    size: int,
    batch: int,
    views: int,
    passes: int,
    settings: list[tuple[int, int]],
) -> dict[tuple[int, int, int], float]:
    print(
        f"\n[2] embed_dataset end to end (decode + transforms + forward), {len(ds)} images, "
        f"{size} px, batch {batch} views; best of {passes} passes (settings interleaved)"
    )
    results: dict[tuple[int, int, int], list[float]] = {}
    for _ in range(passes):
        for v in sorted({0, views}):
            cfg = EncoderConfig(image_size=size, views=v, batch_size=batch)
            for workers, threads in settings:
                rate = _embed_rate(ds, cfg, workers, threads)
                results.setdefault((v, workers, threads), []).append(rate)
    best = {k: max(r) for k, r in results.items()}
    for (v, workers, threads), rate in best.items():
        print(
            f"  views={v} (+1 plain)  workers={workers} threads={threads}  "
            f"{rate:7.1f} views/s   ({rate / (v + 1):6.1f} images/s)"
        )
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000, help="bundled images to use")
    parser.add_argument("--passes", type=int, default=2, help="repetitions (best one counts)")
    parser.add_argument("--size", type=int, default=128, help="encoder input size (px)")
    parser.add_argument(
        "--batch", type=int, default=EncoderConfig().batch_size, help="views per forward pass"
    )
    parser.add_argument("--views", type=int, default=4, help="augmented views for part 2")
    parser.add_argument("--skip-forward", action="store_true", help="skip part 1")
    args = parser.parse_args()

    full, ds = _load(args.images)
    print(
        f"bundled data: {len(full)} images; using {len(ds)}; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, CPU capability "
        f"{torch.backends.cpu.get_cpu_capability()}"
    )
    if not args.skip_forward:
        bench_forward(ds, args.size, args.batch, args.passes)
    cores = torch.get_num_threads()
    workers = default_num_workers(torch.device("cpu"))
    settings = sorted({(0, cores), (1, 1), (workers, 1)})
    best = bench_pipeline(ds, args.size, args.batch, args.views, args.passes, settings)

    rate = best[(args.views, workers, 1)]
    total = len(full) * (args.views + 1)
    print(
        f"\n[3] projection with the defaults ({workers} workers x 1 thread): {len(full)} images "
        f"x {args.views + 1} views = {total:,} views at {rate:.0f} views/s -> "
        f"{total / rate / 60:.1f} min"
    )
    plain_rate = best[(0, workers, 1)]
    print(
        f"EfficientNet-Lite0 at {args.size} px, plain view, end to end: {plain_rate:.0f} "
        "images/s (target >= 100)"
    )


if __name__ == "__main__":
    main()
