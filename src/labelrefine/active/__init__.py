"""Phase 2: active label cleaning (samplers, oracles, one round, the simulated loop).

Names are loaded on first use, so importing a light submodule (e.g.
:mod:`labelrefine.active.registry`, which the config uses to check sampler names) does not
import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "UNSURE": "oracle",
    "SimulatedOracle": "oracle",
    "SyncOracle": "oracle",
    "SAMPLERS": "samplers",
    "Ranking": "ranking",
    "explain": "ranking",
    "ranked": "ranking",
    "select": "ranking",
    "confidence_scores": "scores",
    "entropy_scores": "scores",
    "joint_scores": "scores",
    "margin_scores": "scores",
    "random_scores": "scores",
    "coreset_select": "coreset",
    "nearest_center_distances": "coreset",
    "REGISTRY": "registry",
    "SAMPLER_NAMES": "registry",
    "get_sampler": "registry",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'labelrefine.active' has no attribute {name!r}")
    return getattr(importlib.import_module(f"labelrefine.active.{module}"), name)
