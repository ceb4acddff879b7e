"""Every config shipped in configs/ loads, and names only pipelines and samplers that exist."""

from __future__ import annotations

from pathlib import Path

import pytest

from labelrefine.active.registry import SAMPLER_NAMES
from labelrefine.config import load_config
from labelrefine.experiments.sweep import expand_runs
from labelrefine.pipelines import PIPELINES

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


def test_configs_are_shipped() -> None:
    assert {p.name for p in CONFIGS} >= {"ham10000-demo.yaml", "ham10000-paper-analog.yaml"}


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_shipped_config_loads_and_expands(path: Path) -> None:
    cfg = load_config(path)
    runs = expand_runs(cfg)
    assert runs, f"{path.name} plans no run"
    for key in runs:
        assert key.spec.name in PIPELINES
        if key.spec.sampler is not None:
            assert key.spec.sampler in SAMPLER_NAMES
    names = [k.name for k in runs]
    assert len(names) == len(set(names)), f"{path.name} plans a run twice"
