"""Embedding speed and parity of the CPU runtimes on the bundled HAM10000 images (128 px).

Prints, in one run (settings interleaved, medians of ``--passes`` repetitions):

1. encoder forward throughput (images/s) on pre-decoded plain views, EfficientNet-Lite0 with
   BatchNorm folded, for each runtime: eager torch (channels-last), ONNX Runtime and OpenVINO
   (both on the same ONNX export), with 1 thread and with all cores in one process;
2. end-to-end ``embed_dataset`` throughput (decode + augmentations + forward) for each runtime,
   single worker (one process, one thread) and multi-worker (one single-threaded encoding
   worker per core, the default);
3. parity of each runtime's features with eager torch on every bundled image (plain view):
   the smallest per-image cosine similarity and the largest absolute difference;
4. the runtime ``runtime="auto"`` picks (the fastest one meeting cosine >= 0.999) and its
   speed-up over eager torch, plus the projected time to embed the demo's views.

    python benchmarks/bench_embed.py                       # 600 images timed, parity on all
    python benchmarks/bench_embed.py --images 200 --passes 1 --parity-images 500   # quick
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from labelrefine.config import DatasetConfig, EncoderConfig
from labelrefine.data.dataset import ImageDataset
from labelrefine.data.formats import load_dataset
from labelrefine.models.augment import eval_transform
from labelrefine.models.cache import default_num_workers, embed_dataset
from labelrefine.models.encoders import (
    CPU_RUNTIME_ORDER,
    RUNTIMES,
    build_runtime_encoder,
    runtime_available,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "ham10000"
COSINE_BOUND = 0.999


def _load() -> ImageDataset:
    return load_dataset(
        DatasetConfig(images=DATA / "images", labels=DATA / "labels.csv"), check_images=False
    )


def _encoders(size: int, export_dir: Path, runtimes: list[str]) -> dict:
    return {
        r: build_runtime_encoder("efficientnet_lite0", image_size=size, export_dir=export_dir,
                                 runtime=r, device="cpu")[0]
        for r in runtimes
    }


def _forward_rate(encoder, x: torch.Tensor, batch: int) -> float:  # noqa: ANN001
    start = time.perf_counter()
    for i in range(0, len(x), batch):
        encoder(x[i : i + batch])
    return len(x) / (time.perf_counter() - start)


def bench_forward(ds: ImageDataset, size: int, batch: int, passes: int, runtimes: list[str],
                  export_dir: Path) -> dict[tuple[str, int], float]:
    cores = torch.get_num_threads()
    tf = eval_transform(size)
    x = torch.stack([tf(ds.load_image(i)) for i in range(len(ds))])
    print(f"\n[1] encoder forward, {len(ds)} plain views, {size} px, batch {batch}; median of "
          f"{passes} passes, runtimes interleaved")
    rates: dict[tuple[str, int], list[float]] = {}
    threads_list = sorted({1, cores})
    for threads in threads_list:
        torch.set_num_threads(threads)
        encs = _encoders(size, export_dir, runtimes)
        for enc in encs.values():
            if hasattr(enc, "threads"):
                enc.threads = threads
            enc(x[:batch])  # warm-up: session creation, kernel selection
        for _ in range(passes):
            for r, enc in encs.items():
                rates.setdefault((r, threads), []).append(_forward_rate(enc, x, batch))
    torch.set_num_threads(cores)
    med = {k: statistics.median(v) for k, v in rates.items()}
    for threads in threads_list:
        base = med[("torch", threads)]
        for r in runtimes:
            rate = med[(r, threads)]
            print(f"  {r:<12} {threads} thread{'s' if threads > 1 else ' '}  {rate:7.1f} "
                  f"images/s   {rate / base:5.2f}x torch")
    return med


def _embed_rate(ds: ImageDataset, cfg: EncoderConfig, workers: int, runtime: str,
                export_dir: Path) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        # keep the exported models between runs: link the shared export folder in
        (Path(tmp) / "models").symlink_to(export_dir, target_is_directory=True)
        cfg = cfg.model_copy(update={"cache_dir": Path(tmp)})
        start = time.perf_counter()
        embed_dataset(ds, cfg, device="cpu", progress=False, num_workers=workers,
                      num_threads=1, runtime=runtime)
        seconds = time.perf_counter() - start
    return len(ds) * (cfg.views + 1) / seconds


def bench_pipeline(ds: ImageDataset, size: int, batch: int, views: int, passes: int,
                   runtimes: list[str], export_dir: Path) -> dict[tuple[str, int], float]:
    workers = default_num_workers(torch.device("cpu"))
    settings = sorted({0, workers})
    print(f"\n[2] embed_dataset end to end (decode + {views} augmented views + plain view + "
          f"forward), {len(ds)} images, {size} px, batch {batch} views; median of {passes} "
          "passes, runtimes interleaved")
    cfg = EncoderConfig(image_size=size, views=views, batch_size=batch)
    rates: dict[tuple[str, int], list[float]] = {}
    for _ in range(passes):
        for w in settings:
            for r in runtimes:
                rates.setdefault((r, w), []).append(_embed_rate(ds, cfg, w, r, export_dir))
    med = {k: statistics.median(v) for k, v in rates.items()}
    for w in settings:
        base = med[("torch", w)]
        label = "single worker (1 process, 1 thread)" if w == 0 else \
            f"{w} workers x 1 thread (default)"
        print(f"  {label}")
        for r in runtimes:
            rate = med[(r, w)]
            print(f"    {r:<12} {rate:7.1f} views/s ({rate / (views + 1):6.1f} images/s)   "
                  f"{rate / base:5.2f}x torch")
    return med


def bench_parity(ds: ImageDataset, size: int, batch: int, runtimes: list[str],
                 export_dir: Path) -> dict[str, tuple[float, float]]:
    print(f"\n[3] parity with eager torch on {len(ds)} images (plain view, {size} px, float32 "
          "features before float16 storage)")
    tf = eval_transform(size)
    encs = _encoders(size, export_dir, runtimes)
    for enc in encs.values():
        if hasattr(enc, "threads"):
            enc.threads = torch.get_num_threads()
    worst = {r: (1.0, 0.0) for r in runtimes if r != "torch"}
    for start in range(0, len(ds), batch):
        x = torch.stack([tf(ds.load_image(i)) for i in range(start, min(start + batch, len(ds)))])
        ref = encs["torch"](x).numpy().astype(np.float64)
        for r in worst:
            out = encs[r](x).numpy().astype(np.float64)
            cos = (out * ref).sum(1) / (np.linalg.norm(out, axis=1) * np.linalg.norm(ref, axis=1))
            c, d = worst[r]
            worst[r] = (min(c, float(cos.min())), max(d, float(np.abs(out - ref).max())))
    for r, (c, d) in worst.items():
        ok = "meets" if c >= COSINE_BOUND else "FAILS"
        print(f"  {r:<12} min cosine {c:.7f}  max |diff| {d:.2e}  ({ok} cosine >= "
              f"{COSINE_BOUND})")
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=600, help="bundled images timed")
    parser.add_argument("--passes", type=int, default=3, help="repetitions (median counts)")
    parser.add_argument("--size", type=int, default=128, help="encoder input size (px)")
    parser.add_argument("--batch", type=int, default=EncoderConfig().batch_size,
                        help="views per forward pass")
    parser.add_argument("--views", type=int, default=2, help="augmented views for part 2")
    parser.add_argument("--parity-images", type=int, default=0,
                        help="bundled images for the parity check (0: all)")
    args = parser.parse_args()

    full = _load()
    timed = full.subset(np.arange(min(args.images, len(full))))
    runtimes = [r for r in RUNTIMES if runtime_available(r)]
    missing = sorted(set(RUNTIMES) - set(runtimes))
    print(f"bundled data: {len(full)} images; timing {len(timed)}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}; runtimes {', '.join(runtimes)}"
          + (f" (not installed: {', '.join(missing)})" if missing else ""))
    with tempfile.TemporaryDirectory() as export_tmp:
        export_dir = Path(export_tmp)
        t0 = time.perf_counter()
        _encoders(args.size, export_dir, runtimes)
        print(f"ONNX export (once per encoder, image size and weights; cached): "
              f"{time.perf_counter() - t0:.1f} s")
        fwd = bench_forward(timed, args.size, args.batch, args.passes, runtimes, export_dir)
        e2e = bench_pipeline(timed, args.size, args.batch, args.views, args.passes, runtimes,
                             export_dir)
        n_par = len(full) if args.parity_images <= 0 else min(args.parity_images, len(full))
        parity = bench_parity(full.subset(np.arange(n_par)), args.size, 64, runtimes,
                              export_dir)

    workers = default_num_workers(torch.device("cpu"))
    ok = ["torch"] + [r for r, (c, _) in parity.items() if c >= COSINE_BOUND]
    fastest = max(ok, key=lambda r: e2e[(r, workers)])
    auto = next(r for r in CPU_RUNTIME_ORDER if runtime_available(r))
    speedup = e2e[(fastest, workers)] / e2e[("torch", workers)]
    print(f"\n[4] fastest runtime meeting parity, end to end with {workers} workers: {fastest} "
          f"({speedup:.2f}x eager torch; forward alone, 1 thread: "
          f"{fwd[(fastest, 1)] / fwd[('torch', 1)]:.2f}x). runtime='auto' picks: {auto}"
          + ("" if auto == fastest else "  <-- differs: update CPU_RUNTIME_ORDER"))
    rate = e2e[(fastest, workers)]  # views/s
    for v in (2, 3, 8):
        total = len(full) * (v + 1)
        print(f"  projection: all {len(full)} bundled images x {v + 1} views = {total:,} views "
              f"at {rate:.0f} views/s -> {total / rate:.0f} s")


if __name__ == "__main__":
    main()
