"""What a sweep consists of, and where its results live. Pure and light: no torch import.

A sweep (one :class:`~labelrefine.config.ExperimentConfig`) expands into run keys, one per
noise setting x pipeline x seed. Each finished run is one JSON file
``<output_dir>/<name>/runs/<key>.json`` carrying a fingerprint of every config part that can
change its numbers; a file whose fingerprint matches is a finished run and is not redone.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from labelrefine.config import (
    ConfigError,
    ExperimentConfig,
    NoiseConfig,
    PipelineSpec,
)

# write_json / atomic_write_* are re-exported for the modules that import them from here
from labelrefine.io import atomic_write_bytes as atomic_write_bytes
from labelrefine.io import atomic_write_text as atomic_write_text
from labelrefine.io import write_json as write_json
from labelrefine.settings import phase1_identity, pipeline_sampler

RESULT_FORMAT = 1
_SAFE = re.compile(r"[^A-Za-z0-9._+=-]+")



@dataclass(frozen=True)
class RunKey:
    """One run of a sweep: a noise setting, a pipeline and a seed."""

    noise_index: int
    noise: NoiseConfig
    spec: PipelineSpec
    seed: int

    @property
    def name(self) -> str:
        """File-name-safe identifier, unique within a sweep."""
        return safe_name(f"{self.noise.tag}__{self.spec.display}__seed{self.seed}")

    @property
    def context_id(self) -> tuple[int, int]:
        """Runs with the same context id share prepared data (split, noise, long tail)."""
        return (self.noise_index, self.seed)


def safe_name(text: str) -> str:
    """Replace every character outside ``[A-Za-z0-9._+=-]`` by ``_``."""
    return _SAFE.sub("_", text).strip("_") or "run"


def phase1_group(cfg: ExperimentConfig, key: RunKey) -> tuple | None:
    """Identity of the phase-1 computation a run starts from (None: nothing shareable), the
    same :func:`labelrefine.settings.phase1_identity` the pipelines' cache is keyed on.

    ``ours`` with m = 0 and ``alc_coteaching`` both start from plain Co-teaching; ``ce_al`` and
    ``noisy_ce`` both start from CE on the noisy labels.
    """
    name = key.spec.name
    settings = cfg.resolve(key.noise, key.spec)
    tau, epochs = settings.tau, cfg.lnl.epochs
    if name in ("ce_al", "noisy_ce"):
        return phase1_identity("ce", 0.0, tau, epochs)
    if name == "alc_coteaching":
        return phase1_identity("coteaching", 0.0, tau, epochs)
    if name in ("ours", "ours_plus", "ours_find"):
        return phase1_identity(settings.phase1_method, settings.mix, tau, epochs)
    return None


def expand_runs(
    cfg: ExperimentConfig,
    *,
    only: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
) -> list[RunKey]:
    """All run keys of a sweep, in config order (noise, then seed, then pipeline).

    ``only`` keeps pipelines whose name or display label is listed; ``seeds`` replaces the
    config's seeds. A name in ``only`` that matches nothing is an error naming it.
    """
    specs = list(cfg.pipelines)
    for spec in specs:  # a sampler a pipeline would ignore fails before any work
        try:
            pipeline_sampler(spec)
        except ValueError as err:
            raise ConfigError(f"pipelines: {err}") from None
    if only:
        wanted = set(only)
        known = {s.name for s in specs} | {s.display for s in specs}
        missing = sorted(wanted - known)
        if missing:
            raise ConfigError(
                f"--only {', '.join(missing)}: not a pipeline of this config "
                f"(have: {', '.join(s.display for s in specs)})"
            )
        specs = [s for s in specs if s.name in wanted or s.display in wanted]
    run_seeds = list(seeds) if seeds is not None else list(cfg.seeds)
    keys = [
        RunKey(i, noise, spec, seed)
        for i, noise in enumerate(cfg.noise)
        for seed in run_seeds
        for spec in specs
    ]
    names = [k.name for k in keys]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(
            f"pipelines: two runs would share the name {dupes[0]!r}; "
            "give one of the pipelines a distinct 'label'"
        )
    return keys


def run_fingerprint(cfg: ExperimentConfig, key: RunKey) -> str:
    """Hash of every config part that can change this run's numbers."""
    parts: dict[str, Any] = {
        "format": RESULT_FORMAT,
        "dataset": cfg.dataset.model_dump(mode="json"),
        "split": cfg.split.model_dump(mode="json"),
        "noise": key.noise.model_dump(mode="json"),
        "longtail": None if cfg.longtail is None else cfg.longtail.model_dump(mode="json"),
        "lnl": cfg.lnl.model_dump(mode="json", by_alias=True),
        "active": cfg.active.model_dump(mode="json"),
        "spec": key.spec.model_dump(mode="json"),
        "seed": key.seed,
    }
    if cfg.lnl.mode == "embedding":
        enc = cfg.encoder.model_dump(mode="json")
        enc.pop("cache_dir", None)
        enc.pop("batch_size", None)
        parts["encoder"] = enc
    blob = json.dumps(parts, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


# ----------------------------------------------------------------------------- storage


def sweep_dir(cfg: ExperimentConfig) -> Path:
    """``<output_dir>/<name>``: where a sweep's config, runs and report go."""
    return Path(cfg.output_dir) / safe_name(cfg.name)


def run_path(run_dir: Path, key: RunKey) -> Path:
    return Path(run_dir) / "runs" / f"{key.name}.json"


def read_run(path: Path) -> dict[str, Any] | None:
    """A stored run, or None when the file is missing or unreadable (treated as not done)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_finished(cfg: ExperimentConfig, run_dir: Path, key: RunKey) -> bool:
    """True when the run's JSON exists and was produced by the same settings."""
    data = read_run(run_path(run_dir, key))
    return data is not None and data.get("fingerprint") == run_fingerprint(cfg, key)


def save_config(cfg: ExperimentConfig, run_dir: Path) -> Path:
    """Write the resolved config (every default filled in) as ``config.yaml``."""
    path = Path(run_dir) / "config.yaml"
    data = cfg.model_dump(mode="json", by_alias=True)
    atomic_write_text(path, yaml.safe_dump(data, sort_keys=False))
    return path


def load_saved_config(run_dir: Path) -> ExperimentConfig:
    """Read ``config.yaml`` saved by :func:`save_config`."""
    from labelrefine.config import load_config

    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise ConfigError(
            f"{run_dir}: no config.yaml here; is it a folder made by 'labelrefine run'?"
        )
    return load_config(path)


def stored_seeds(run_dir: Path) -> set[int]:
    """Seeds of the run files present (runs made with ``--seeds`` beyond the config's)."""
    seeds = set()
    for path in sorted((Path(run_dir) / "runs").glob("*.json")):
        data = read_run(path)
        if data is not None and isinstance(data.get("seed"), int):
            seeds.add(int(data["seed"]))
    return seeds


def load_runs(cfg: ExperimentConfig, run_dir: Path, keys: Iterable[RunKey] | None = None
              ) -> tuple[list[dict[str, Any]], list[str]]:
    """Finished runs of the sweep (in key order) and the names of stale or missing ones.

    Without ``keys``: every run of the config, over its seeds plus any seed found in the stored
    run files (so runs made with ``labelrefine run --seeds`` are included).
    """
    if keys is None:
        keys = expand_runs(cfg, seeds=sorted(set(cfg.seeds) | stored_seeds(run_dir)))
    found, skipped = [], []
    for key in keys:
        data = read_run(run_path(run_dir, key))
        if data is not None and data.get("fingerprint") == run_fingerprint(cfg, key):
            found.append(data)
        else:
            skipped.append(key.name)
    return found, skipped
