"""Phase-1 speed on the bundled HAM10000 data (embedding mode, features cached).

Prints, measured in one run:
- phase-1 wall time of the config's LNL settings (CT_VOG, inline VOG) at the first noise rate;
- the VOG overhead ratio, epoch time with VOG / without (Co-teaching with no VOG tracking),
  for ``vog.pass: inline`` and ``vog.pass: extra``, over the epochs in which VOG is tracked
  and over the whole run, in wall time and in process CPU time (the latter is robust when other
  jobs share the cores), and from the fastest epoch of each variant (least disturbed). Runs are
  interleaved (order rotated) and repeated; medians are reported.

Targets: phase 1 <= 20 s on 2 cores; inline overhead <= 1.10. The features are computed first
(and cached) when missing; that time is not counted.

    python benchmarks/bench_lnl.py [--config configs/ham10000-paper-analog.yaml] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from labelrefine.config import load_config
from labelrefine.lnl.phase1 import phase1_inputs, run_phase1

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "configs" / "ham10000-paper-analog.yaml"))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads (cores)")
    ap.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    cfg = load_config(args.config)
    noise = cfg.noise[0]
    tau = cfg.lnl.tau if cfg.lnl.tau is not None else noise.rate
    t0 = time.perf_counter()
    inputs = phase1_inputs(cfg, noise, cfg.seeds[0], device="cpu", progress=True)
    prep_s = time.perf_counter() - t0
    n_train = inputs.data.train_idx.size
    print(f"data + features: {prep_s:.1f} s ({len(inputs.dataset)} images, {n_train} train, "
          f"features {inputs.features_key})")

    lnl = cfg.lnl.model_copy(update={"mode": "embedding"})
    variants = {
        "no_vog": lnl.model_copy(update={"method": "coteaching"}),
        "inline": lnl.model_copy(update={"method": "ct_vog", "vog": lnl.vog.model_copy(
            update={"pass_": "inline"})}),
        "extra": lnl.model_copy(update={"method": "ct_vog", "vog": lnl.vog.model_copy(
            update={"pass_": "extra"})}),
    }
    tracked_from = max(0, min(lnl.warmup, lnl.epochs) - lnl.vog.window)
    wall: dict[str, list[float]] = {k: [] for k in variants}
    epoch_all: dict[str, list[float]] = {k: [] for k in variants}
    epoch_vog: dict[str, list[float]] = {k: [] for k in variants}
    cpu_vog: dict[str, list[float]] = {k: [] for k in variants}
    epoch_min: dict[str, float] = {k: float("inf") for k in variants}
    run_phase1(variants["no_vog"], inputs, seed=0, tau=tau, epochs=2)  # warm-up (allocations)
    names = list(variants)
    for rep in range(args.repeats):
        for name in names[rep % 3:] + names[: rep % 3]:  # rotate the order across repeats
            v = variants[name]
            t = time.perf_counter()
            res = run_phase1(v, inputs, seed=rep, tau=tau, track_vog=name != "no_vog")
            wall[name].append(time.perf_counter() - t)
            times = np.array([h["time_s"] for h in res.fit.history])
            epoch_all[name].append(float(times.mean()))
            epoch_vog[name].append(float(times[tracked_from:].mean()))
            cpu = np.array([h["cpu_s"] for h in res.fit.history])
            cpu_vog[name].append(float(cpu[tracked_from:].mean()))
            epoch_min[name] = min(epoch_min[name], float(times[tracked_from:].min()))

    med = {k: statistics.median(v) for k, v in wall.items()}
    e_all = {k: statistics.median(v) for k, v in epoch_all.items()}
    e_vog = {k: statistics.median(v) for k, v in epoch_vog.items()}
    c_vog = {k: statistics.median(v) for k, v in cpu_vog.items()}
    out = {
        "config": Path(args.config).name,
        "threads": args.threads,
        "train_items": int(n_train),
        "epochs": lnl.epochs,
        "head": lnl.head,
        "phase1_wall_s": med["inline"],
        "phase1_wall_s_extra": med["extra"],
        "phase1_wall_s_no_vog": med["no_vog"],
        "overhead_inline_vog_epochs": e_vog["inline"] / e_vog["no_vog"],
        "overhead_extra_vog_epochs": e_vog["extra"] / e_vog["no_vog"],
        "overhead_inline_all_epochs": e_all["inline"] / e_all["no_vog"],
        "overhead_extra_all_epochs": e_all["extra"] / e_all["no_vog"],
        "overhead_inline_min_epoch": epoch_min["inline"] / epoch_min["no_vog"],
        "overhead_extra_min_epoch": epoch_min["extra"] / epoch_min["no_vog"],
        "overhead_inline_vog_epochs_cpu": c_vog["inline"] / c_vog["no_vog"],
        "overhead_extra_vog_epochs_cpu": c_vog["extra"] / c_vog["no_vog"],
        "repeats": args.repeats,
    }
    print(f"phase 1 (CT_VOG m={lnl.mix:g}, inline VOG, {lnl.epochs} epochs, {n_train} train "
          f"items, {args.threads} threads): {med['inline']:.2f} s  [target <= 20 s]")
    print(f"  without VOG (Co-teaching): {med['no_vog']:.2f} s; extra-pass VOG: "
          f"{med['extra']:.2f} s")
    print(f"VOG overhead, epochs with VOG tracked (>= {tracked_from}): "
          f"inline {out['overhead_inline_vog_epochs']:.3f}  [target <= 1.10], "
          f"extra {out['overhead_extra_vog_epochs']:.3f}")
    print(f"VOG overhead, all epochs: inline {out['overhead_inline_all_epochs']:.3f}, "
          f"extra {out['overhead_extra_all_epochs']:.3f}")
    print(f"VOG overhead, fastest VOG-tracked epoch over all repeats (least disturbed by "
          f"other jobs): inline {out['overhead_inline_min_epoch']:.3f}, "
          f"extra {out['overhead_extra_min_epoch']:.3f}")
    print(f"VOG overhead in process CPU time (robust on a shared machine), epochs with VOG "
          f"tracked: inline {out['overhead_inline_vog_epochs_cpu']:.3f}, "
          f"extra {out['overhead_extra_vog_epochs_cpu']:.3f}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.json.with_suffix(".tmp")
        tmp.write_text(json.dumps(out, indent=1))
        tmp.replace(args.json)


if __name__ == "__main__":
    main()
