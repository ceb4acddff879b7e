"""Did a code change alter any result? Two sweep folders of the same config, record by record.

Reads every run record (``runs/*.json``) of two ``labelrefine run`` outputs of the same config
and seeds (e.g. one made before a change, one after) and lists each field that differs: test
and validation F1 per round, query precision, the number of labels changed, items queried per
class, the phase-1 selection, ... Floats compare at relative 1e-6 (this is a check of
behaviour, not of the last bits of a BLAS build); wall and CPU times, dates, thread counts,
fingerprints and whether a phase 1 was shared with another run (order-dependent) are left out.
Exit status 1 when a record differs or is missing.

    labelrefine run CONFIG.yaml            # before the change, output_dir A
    labelrefine run CONFIG.yaml            # after it, output_dir B
    python benchmarks/same_results.py A/NAME/runs B/NAME/runs
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

#: Fields that measure the machine or the order of work, not the result.
NOT_RESULTS = frozenset({"time_s", "cpu_s", "seconds", "timings", "finished_at",
                         "torch_threads", "fingerprint", "key", "config_name", "shared"})


def differences(a: Any, b: Any, where: str = "", rel: float = 1e-6) -> list[str]:
    """Every path at which the JSON values ``a`` and ``b`` differ (``NOT_RESULTS`` left out)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for k in sorted(set(a) | set(b)):
            if k in NOT_RESULTS:
                continue
            if k not in a or k not in b:
                out.append(f"{where}.{k}: only in {'the second' if k in b else 'the first'}")
            else:
                out += differences(a[k], b[k], f"{where}.{k}", rel)
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{where}: {len(a)} entries vs {len(b)}"]
        return [d for i, (u, v) in enumerate(zip(a, b, strict=True))
                for d in differences(u, v, f"{where}[{i}]", rel)]
    if isinstance(a, float) or isinstance(b, float):
        if isinstance(a, int | float) and isinstance(b, int | float) and (
                math.isclose(a, b, rel_tol=rel, abs_tol=1e-12)
                or (math.isnan(a) and math.isnan(b))):
            return []
    elif a == b:
        return []
    return [f"{where}: {a!r} vs {b!r}"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("first", type=Path, help="runs/ folder of the first sweep")
    ap.add_argument("second", type=Path, help="runs/ folder of the second sweep")
    args = ap.parse_args(argv)
    files = sorted(args.first.glob("*.json"))
    if not files:
        print(f"{args.first}: no run records (*.json)", file=sys.stderr)
        return 2
    bad = 0
    for f in files:
        other = args.second / f.name
        if not other.exists():
            print(f"{f.name}: missing from {args.second}")
            bad += 1
            continue
        diff = differences(json.loads(f.read_text()), json.loads(other.read_text()))
        if diff:
            bad += 1
            print(f"{f.name}: {len(diff)} differences, e.g. " + "; ".join(diff[:3]))
    extra = sorted({g.name for g in args.second.glob("*.json")} - {f.name for f in files})
    for name in extra:
        print(f"{name}: missing from {args.first}")
    bad += len(extra)
    print(f"{len(files)} run records compared, {bad} differ or are missing")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
