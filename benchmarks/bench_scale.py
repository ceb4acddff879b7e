"""Scale simulation: embed a synthetic dataset of small generated images and rank its pool.

Generates ``--n`` images (default 100,000; ``--px`` pixels square, smooth random blobs in a few
classes), embeds them with the default CPU runtime (``--views`` augmented views + the plain
view at ``--size`` px) into a temporary cache, and reports

- embedding throughput (images/s and views/s) and the projected time at 224 px and 128 px;
- the cache's disk use (``.npz`` file) and in-memory size of the features (float16), and the
  process's peak resident memory;
- the time to rank the unlabelled pool with each active-learning sampler (entropy, margin,
  random on probabilities; coreset on the plain-view features with the clean set as centres)
  for one round's budget (2.2 % of the items, as in the paper's ISIC-2019 setting).

    python benchmarks/bench_scale.py                 # 100,000 images (minutes)
    python benchmarks/bench_scale.py --n 2000        # quick check
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from labelrefine.config import EncoderConfig
from labelrefine.data.dataset import ImageDataset
from labelrefine.models.cache import embed_dataset


def synthetic_dataset(n: int, px: int, classes: int = 7, seed: int = 0) -> ImageDataset:
    """``n`` small RGB images: a per-class colour and blob position plus noise (uint8)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, size=n)
    yy, xx = np.mgrid[0:px, 0:px] / px
    colours = rng.uniform(40, 215, size=(classes, 3))
    centres = rng.uniform(0.25, 0.75, size=(classes, 2))
    images = np.empty((n, px, px, 3), dtype=np.uint8)
    chunk = 10_000
    for lo in range(0, n, chunk):
        lab = labels[lo : lo + chunk]
        cy = centres[lab, 0, None, None] + rng.normal(0, 0.05, size=(len(lab), 1, 1))
        cx = centres[lab, 1, None, None] + rng.normal(0, 0.05, size=(len(lab), 1, 1))
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 0.02)[..., None]
        img = 30 + blob * colours[lab][:, None, None, :]
        img += rng.normal(0, 12, size=img.shape)
        images[lo : lo + chunk] = np.clip(img, 0, 255).astype(np.uint8)
    return ImageDataset(ids=tuple(f"syn{i:06d}" for i in range(n)), labels=labels,
                        class_names=tuple(f"c{k}" for k in range(classes)), images=images,
                        name=f"synthetic-{n}")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="synthetic images")
    parser.add_argument("--px", type=int, default=32, help="generated image size (px)")
    parser.add_argument("--size", type=int, default=32, help="encoder input size (px)")
    parser.add_argument("--views", type=int, default=2, help="augmented views per image")
    parser.add_argument("--budget", type=float, default=0.022, help="queries per round (share)")
    args = parser.parse_args()

    t0 = time.perf_counter()
    ds = synthetic_dataset(args.n, args.px)
    print(f"generated {args.n:,} images of {args.px} px in {time.perf_counter() - t0:.1f} s "
          f"({ds.images.nbytes / 2**20:.0f} MB of pixels); {torch.get_num_threads()} torch "
          "threads; the machine may be shared, so times are indicative")

    with tempfile.TemporaryDirectory() as tmp:
        cfg = EncoderConfig(image_size=args.size, views=args.views, cache_dir=Path(tmp))
        t0 = time.perf_counter()
        cpu0 = time.process_time()
        fs = embed_dataset(ds, cfg, device="cpu", progress=True)
        seconds = time.perf_counter() - t0
        views_total = args.n * (args.views + 1)
        assert fs.path is not None
        disk = fs.path.stat().st_size
        mem = fs.views.nbytes + fs.plain.nbytes
        print(f"\n[1] embedding ({fs.meta['runtime']}, {fs.meta['encoder']} at {args.size} px, "
              f"{args.views} + 1 views): {seconds:.1f} s wall, {args.n / seconds:.0f} images/s, "
              f"{views_total / seconds:.0f} views/s (driver CPU {time.process_time() - cpu0:.0f} "
              "s; the workers' CPU is not counted)")
        print(f"\n[2] cache: file {disk / 2**20:.0f} MB on disk for {args.n:,} images x "
              f"{args.views + 1} views x {fs.dim} dims float16 "
              f"({disk / views_total:.0f} B per view); features in memory "
              f"{mem / 2**20:.0f} MB; peak RSS of this process {_peak_rss_mb():.0f} MB")

    from labelrefine.active.samplers import ranked

    rng = np.random.default_rng(0)
    n, c = args.n, ds.num_classes
    logits = rng.normal(0, 2, size=(n, c))
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    clean = rng.choice(n, size=max(1, n // 10), replace=False)  # already clean: the centres
    pool = np.setdiff1d(np.arange(n), clean)
    k = max(1, round(args.budget * n))
    plain = fs.plain
    print(f"\n[3] ranking a pool of {pool.size:,} items for a round of k = {k} queries "
          f"(clean set of {clean.size:,} as coreset centres)")
    for sampler in ("random", "entropy", "margin", "coreset"):
        t0 = time.perf_counter()
        extra = {"pool_features": plain[pool], "center_features": plain[clean]} \
            if sampler == "coreset" else {}
        out = ranked(sampler, k, pool=pool, probs=probs[pool] if sampler != "coreset" else None,
                     seed=0, with_reasons=False, **extra)
        print(f"    {sampler:<8} {time.perf_counter() - t0:7.2f} s  ({len(out.items)} picked)")
    print(f"peak RSS {_peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
