"""Phase 2: active label cleaning (samplers, oracles, the round loop)."""

from labelrefine.active.oracle import UNSURE, Oracle, SimulatedOracle, SyncOracle
from labelrefine.active.samplers import (
    SAMPLERS,
    Ranking,
    class_quota_select,
    confidence_scores,
    coreset_select,
    entropy_scores,
    explain,
    joint_scores,
    margin_scores,
    nearest_center_distances,
    random_scores,
    ranked,
    select,
)

__all__ = [
    "SAMPLERS",
    "UNSURE",
    "Oracle",
    "Ranking",
    "SimulatedOracle",
    "SyncOracle",
    "class_quota_select",
    "confidence_scores",
    "coreset_select",
    "entropy_scores",
    "explain",
    "joint_scores",
    "margin_scores",
    "nearest_center_distances",
    "random_scores",
    "ranked",
    "select",
]
