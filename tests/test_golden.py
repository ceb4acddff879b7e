"""Results stay identical: a small simulated sweep and a small campaign against stored numbers.

``tests/golden/golden.json`` was written by ``tests/golden/make_golden.py``; rerun that script
only when a change is *meant* to change results, and say why in the commit. The comparison is
exact for integers, item lists and text, and to a relative 1e-6 for floats (last-digit
noise of float32 kernels differs between CPUs and BLAS builds; a real change moves far more).
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent / "golden"


def _load_generator() -> Any:
    spec = importlib.util.spec_from_file_location("make_golden", HERE / "make_golden.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _differences(want: Any, got: Any, path: str = "") -> list[str]:
    """Paths where ``got`` differs from ``want`` (floats to a relative 1e-6)."""
    if isinstance(want, dict) and isinstance(got, dict):
        out = [f"{path}.{k}: missing" for k in want if k not in got]
        out += [f"{path}.{k}: unexpected" for k in got if k not in want]
        for k in want:
            if k in got:
                out += _differences(want[k], got[k], f"{path}.{k}")
        return out
    if isinstance(want, list) and isinstance(got, list):
        if len(want) != len(got):
            return [f"{path}: length {len(got)} != {len(want)} ({got!r:.200} vs {want!r:.200})"]
        out = []
        for i, (w, g) in enumerate(zip(want, got, strict=True)):
            out += _differences(w, g, f"{path}[{i}]")
        return out
    if isinstance(want, float) and isinstance(got, int | float) and not isinstance(got, bool):
        if math.isclose(want, got, rel_tol=1e-6, abs_tol=1e-7):
            return []
    elif type(want) is type(got) and want == got:
        return []
    return [f"{path}: {got!r:.200} != {want!r:.200}"]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict]:
    want = json.loads((HERE / "golden.json").read_text())
    got = json.loads(json.dumps(_load_generator().compute(tmp_path_factory.mktemp("golden"))))
    return want, got


def test_simulated_sweep_is_unchanged(results: tuple[dict, dict]) -> None:
    want, got = results
    assert sorted(got["sweep"]) == sorted(want["sweep"])
    diffs = _differences(want["sweep"], got["sweep"], "sweep")
    assert not diffs, f"{len(diffs)} differences, first ones:\n" + "\n".join(diffs[:15])


def test_campaign_is_unchanged(results: tuple[dict, dict]) -> None:
    want, got = results
    diffs = _differences(want["campaign"], got["campaign"], "campaign")
    assert not diffs, f"{len(diffs)} differences, first ones:\n" + "\n".join(diffs[:15])


def test_the_comparison_catches_changes() -> None:
    assert _differences({"a": [1, 2.0]}, {"a": [1, 2.0 + 1e-12]}) == []
    assert [d.split(":")[0] for d in _differences({"a": [1, 2.0]}, {"a": [1, 2.1]})] == [".a[1]"]
    assert _differences({"a": [1, 2]}, {"a": [2, 1]}) != []
    assert _differences({"q": ["x"]}, {"q": ["x", "y"]}) != []
    assert _differences({"a": None}, {"a": 0.0}) != []
