"""Ranking time and peak memory of each sampler on a large synthetic pool.

Default: 1,000,000 pool items with 512-d float32 features and C = 8 class probabilities,
1,000 clean items as coreset centres, k = 500 picks, each sampler through
``labelrefine.active.samplers.select`` (for coreset on this pool that means the large-pool
approximation: random projection to 64-d). Targets: every sampler <= 30 s and <= 4 GB.
Other coreset settings (exact in 512-d, seeded subsamples) are timed through
``coreset_select``, and the covering radius of each is compared on a smaller pool.

Memory is the peak resident set size (RSS, sampled every millisecond from /proc, falling back
to ``ru_maxrss``) above the RSS just before the call ("extra"), and the process total at that
peak ("process", which includes the ~2 GB of input features).

Usage: ``python benchmarks/bench_samplers.py [--n 1000000] [--dim 512] [--device cuda]
[--quick]``. Other benchmarks can ``import bench_samplers`` and call
:func:`run_ranking_benchmark` and :func:`format_table`.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from labelrefine.active.samplers import (
    CORESET_EXACT_WORK,
    CORESET_PROJECT_DIM,
    SCORE_SAMPLERS,
    coreset_select,
    nearest_center_distances,
    sampler_needs,
    select,
)

TARGET_SECONDS = 30.0
TARGET_MB = 4096.0


# --------------------------------------------------------------------------- measurement


def _rss_mb() -> float | None:
    """Current resident set size in MB (Linux /proc), None where unavailable."""
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
    except OSError:
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _maxrss_mb() -> float:
    """Peak RSS of the process so far in MB (``ru_maxrss``: bytes on macOS, KiB elsewhere)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def measure(fn: Callable[[], Any]) -> tuple[Any, float, float, float]:
    """Run ``fn``; return (result, seconds, peak extra MB above the start, peak process MB)."""
    start = _rss_mb()
    if start is None:  # no /proc: high-water mark delta (0 when below an earlier peak)
        before = _maxrss_mb()
        t0 = time.perf_counter()
        out = fn()
        secs = time.perf_counter() - t0
        after = _maxrss_mb()
        return out, secs, max(0.0, after - before), after
    peak = [start]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            rss = _rss_mb()
            if rss is not None and rss > peak[0]:
                peak[0] = rss
            time.sleep(0.001)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    t0 = time.perf_counter()
    try:
        out = fn()
    finally:
        secs = time.perf_counter() - t0
        stop.set()
        thread.join()
    end = _rss_mb() or start
    peak[0] = max(peak[0], end)
    return out, secs, peak[0] - start, peak[0]


# --------------------------------------------------------------------------- data


@dataclass
class Pool:
    """A synthetic pool: clustered features, class probabilities and given labels."""

    items: np.ndarray  # (n,) item indices
    features: np.ndarray  # (n, D) float32
    probs: np.ndarray  # (n, C) float32
    given: np.ndarray  # (n,) int64
    centers: np.ndarray  # (m, D) float32, the clean set's features


def make_pool(n: int, dim: int, classes: int, n_centers: int, seed: int = 0,
              block: int = 65_536) -> Pool:
    """Features = class mean + unit Gaussian noise (1 % of items from far "rare" clusters);
    probabilities = softmax of random logits leaning to the item's class; 20 % of given labels
    flipped. Built in blocks so the only large allocation is the feature matrix itself."""
    rng = np.random.default_rng(seed)
    means = rng.standard_normal((classes, dim), dtype=np.float32) * 2.0
    rare = rng.standard_normal((4, dim), dtype=np.float32) * 6.0
    true = rng.integers(0, classes, size=n)
    feats = np.empty((n, dim), dtype=np.float32)
    for i in range(0, n, block):
        rows = slice(i, min(n, i + block))
        m = rows.stop - rows.start
        feats[rows] = rng.standard_normal((m, dim), dtype=np.float32)
        feats[rows] += means[true[rows]]
        is_rare = rng.random(m) < 0.01
        feats[rows][is_rare] += rare[rng.integers(0, 4, size=int(is_rare.sum()))]
    logits = rng.standard_normal((n, classes)).astype(np.float32)
    logits[np.arange(n), true] += 2.0
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    probs /= probs.sum(axis=1, keepdims=True)
    given = true.copy()
    flip = rng.random(n) < 0.2
    given[flip] = (true[flip] + rng.integers(1, classes, size=int(flip.sum()))) % classes
    centers = (means[rng.integers(0, classes, size=n_centers)]
               + rng.standard_normal((n_centers, dim), dtype=np.float32))
    return Pool(items=np.arange(n, dtype=np.int64), features=feats, probs=probs, given=given,
                centers=centers)


# --------------------------------------------------------------------------- benchmark


@dataclass
class Row:
    """One line of the table."""

    sampler: str
    seconds: float
    extra_mb: float
    process_mb: float
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.seconds <= TARGET_SECONDS and self.process_mb <= TARGET_MB


def _select(pool: Pool, sampler: str, k: int, device: str) -> Callable[[], np.ndarray]:
    return lambda: select(sampler, k, pool=pool.items, probs=pool.probs, given_labels=pool.given,
                          pool_features=pool.features, center_features=pool.centers, seed=0,
                          device=device)


#: Coreset settings measured besides the ``select`` default, through ``coreset_select``.
CORESET_VARIANTS: dict[str, dict[str, int]] = {
    "coreset exact (512-d, all items)": {},
    "coreset sub100k (512-d)": {"max_pool": 100_000},
    "coreset sub200k+proj64": {"max_pool": 200_000, "project_dim": 64},
}


def _gpu_mb(device: str) -> str:
    if torch.device(device).type != "cuda":
        return ""
    mb = torch.cuda.max_memory_allocated() / 2**20
    torch.cuda.reset_peak_memory_stats()
    return f"GPU peak {mb:,.0f} MB"


def _sync(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def run_ranking_benchmark(n: int = 1_000_000, dim: int = 512, classes: int = 8,
                          n_centers: int = 1000, k: int = 500, seed: int = 0,
                          device: str = "cpu", variants: bool = True,
                          log: Callable[[str], None] = print) -> list[Row]:
    """Time each sampler through :func:`select` on one synthetic pool, then (``variants``)
    the other coreset settings of :data:`CORESET_VARIANTS`."""
    t0 = time.perf_counter()
    pool = make_pool(n, dim, classes, n_centers, seed)
    log(f"pool: {n:,} x {dim} float32 features ({pool.features.nbytes / 2**20:,.0f} MB), "
        f"C={classes}, {n_centers} centres, k={k}, device {device}; "
        f"built in {time.perf_counter() - t0:.1f} s")
    rows: list[Row] = []
    work = float(n) * dim * (n_centers + k)
    limit = CORESET_EXACT_WORK * (1 if torch.device(device).type == "cpu" else 100)
    # the neighbour sampler's exact k-NN is quadratic; it is not a million-item sampler
    model_scores = tuple(s for s in SCORE_SAMPLERS if "pool_features" not in sampler_needs(s))
    for sampler in model_scores + ("coreset",):
        def run(sampler: str = sampler) -> np.ndarray:
            out = select(sampler, k, pool=pool.items, probs=pool.probs, given_labels=pool.given,
                         pool_features=pool.features, center_features=pool.centers, seed=0,
                         device=device)
            _sync(device)
            return out
        out, secs, extra, proc = measure(run)
        assert len(out) == min(k, n) and len(set(out.tolist())) == len(out)
        name = sampler
        if sampler == "coreset":
            mode = f"proj{CORESET_PROJECT_DIM}" if work > limit else "exact"
            name += f" (select default: {mode})"
        rows.append(Row(name, secs, extra, proc, _gpu_mb(device)))
        log(f"  {name:<36} {secs:7.2f} s")
    for name, kw in (CORESET_VARIANTS.items() if variants else ()):
        def run_variant(kw: dict[str, int] = kw) -> np.ndarray:
            out = coreset_select(pool.features, pool.centers, k, seed=0, device=device, **kw)
            _sync(device)
            return out
        out, secs, extra, proc = measure(run_variant)
        rows.append(Row(name, secs, extra, proc, _gpu_mb(device)))
        log(f"  {name:<36} {secs:7.2f} s")
    return rows


QualityRow = tuple[str, float, float, float]


def covering_quality(n: int = 50_000, dim: int = 512, classes: int = 8, n_centers: int = 1000,
                     k: int = 500, seed: int = 1, device: str = "cpu") -> list[QualityRow]:
    """Covering radius (max over the pool of the distance to the nearest centre or pick) and
    mean nearest distance after each coreset setting (subsample sizes scaled to the same share of
    the pool as at 1M items) and after random picks.

    Returns (name, seconds, radius, mean distance) rows.
    """
    pool = make_pool(n, dim, classes, n_centers, seed)
    scale = n / 1_000_000
    runs: dict[str, dict[str, int]] = {f"proj{CORESET_PROJECT_DIM} (select default at 1M)":
                                       {"project_dim": CORESET_PROJECT_DIM}}
    for name, kw in CORESET_VARIANTS.items():
        scaled = {key: max(k, round(v * scale)) if key == "max_pool" else v
                  for key, v in kw.items()}
        label = name.removeprefix("coreset ")
        if "max_pool" in scaled:
            label += f", {scaled['max_pool']:,} of {n:,} items"
        runs[label] = scaled
    out: list[QualityRow] = []
    for name, kw in runs.items():
        t0 = time.perf_counter()
        picks = coreset_select(pool.features, pool.centers, k, seed=0, device=device, **kw)
        secs = time.perf_counter() - t0
        d = nearest_center_distances(pool.features,
                                     np.concatenate([pool.centers, pool.features[picks]]),
                                     device=device)
        out.append((name, secs, float(d.max()), float(d.mean())))
    picks = np.random.default_rng(0).choice(n, size=k, replace=False)
    d = nearest_center_distances(pool.features,
                                 np.concatenate([pool.centers, pool.features[picks]]),
                                 device=device)
    out.append(("random picks", 0.0, float(d.max()), float(d.mean())))
    return out


def format_table(rows: list[Row]) -> str:
    """Markdown table of the measured rows."""
    lines = ["| sampler | seconds | extra MB | process MB | target met | note |",
             "|---|---:|---:|---:|:---:|---|"]
    for r in rows:
        lines.append(f"| {r.sampler} | {r.seconds:.2f} | {r.extra_mb:,.0f} | "
                     f"{r.process_mb:,.0f} | {'yes' if r.ok else 'NO'} | {r.note} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="pool size")
    parser.add_argument("--dim", type=int, default=512, help="feature dimension")
    parser.add_argument("--classes", type=int, default=8, help="number of classes C")
    parser.add_argument("--centers", type=int, default=1000, help="clean items (coreset centres)")
    parser.add_argument("--k", type=int, default=500, help="items to pick")
    parser.add_argument("--quality-n", type=int, default=50_000,
                        help="pool size for the exact-vs-approximate covering comparison "
                             "(0 skips it)")
    parser.add_argument("--no-variants", action="store_true",
                        help="only the samplers as select() runs them")
    parser.add_argument("--device", default="cpu", help="torch device for coreset (cpu, cuda)")
    parser.add_argument("--quick", action="store_true", help="small smoke run (n=20,000)")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.k, args.centers = 20_000, 50, 100
        args.quality_n = min(args.quality_n, 5_000)
    gpu = ""
    if torch.device(args.device).type == "cuda":
        gpu = f", GPU {torch.cuda.get_device_name()}"
    print(f"machine: {platform.machine()} {platform.system()}, {os.cpu_count()} CPUs{gpu}, "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads), numpy {np.__version__}")
    rows = run_ranking_benchmark(args.n, args.dim, args.classes, args.centers, args.k,
                                 device=args.device, variants=not args.no_variants)
    print()
    print(f"Ranking {args.n:,} items ({args.dim}-d features, C={args.classes}), k={args.k}, "
          f"{args.centers} clean centres; targets <= {TARGET_SECONDS:.0f} s, "
          f"<= {TARGET_MB / 1024:.0f} GB")
    print(format_table(rows))
    if args.quality_n:
        print()
        print(f"Covering quality on {args.quality_n:,} items (same generator, k={args.k}; "
              "subsample sizes scaled to the same share of the pool; lower = better coverage):")
        print("| method | seconds | covering radius | mean distance |")
        print("|---|---:|---:|---:|")
        for name, secs, radius, mean in covering_quality(args.quality_n, args.dim, args.classes,
                                                         args.centers, args.k,
                                                         device=args.device):
            print(f"| {name} | {secs:.2f} | {radius:.2f} | {mean:.2f} |")
    return 0 if all(r.ok for r in rows[:6]) else 1  # the samplers as select() runs them


if __name__ == "__main__":
    raise SystemExit(main())
