"""Samplers for active label cleaning: one import for everything the topic modules hold.

* :mod:`labelrefine.active.scores` -- per-item query scores (random, entropy, margin, joint,
  confidence) and the input checks.
* :mod:`labelrefine.active.coreset` -- the coreset engine (exact greedy k-center, torch).
* :mod:`labelrefine.active.registry` -- name -> sampler (what it needs, how it ranks a pool
  view, its reasons).
* :mod:`labelrefine.active.ranking` -- :func:`ranked` / :func:`select` / :func:`explain` over
  item indices.

The formulas are in docs/design.md ("Samplers").
"""

from __future__ import annotations

from labelrefine.active.coreset import (
    CORESET_CANDIDATES,
    CORESET_EXACT_WORK,
    CORESET_PROJECT_DIM,
    WORKING_MEMORY,
    coreset_select,
    nearest_center_distances,
)
from labelrefine.active.ranking import Ranking, explain, ranked, select
from labelrefine.active.registry import (
    REGISTRY,
    SAMPLER_NAMES,
    SCORE_SAMPLER_NAMES,
    Coreset,
    Neighbours,
    PoolView,
    get_sampler,
    sampler_needs,
)
from labelrefine.active.scores import (
    JOINT_THRESHOLD,
    PROB_EPS,
    Metric,
    confidence_scores,
    entropy_scores,
    joint_scores,
    margin_scores,
    random_scores,
)

#: Samplers understood by :func:`select`, :func:`ranked` and :func:`explain` (the registry).
SAMPLERS: tuple[str, ...] = SAMPLER_NAMES
#: Samplers that rank by a per-item score (everything but set samplers such as ``coreset``).
SCORE_SAMPLERS: tuple[str, ...] = SCORE_SAMPLER_NAMES

__all__ = [
    "CORESET_CANDIDATES", "CORESET_EXACT_WORK", "CORESET_PROJECT_DIM", "JOINT_THRESHOLD",
    "PROB_EPS", "REGISTRY", "SAMPLERS", "SAMPLER_NAMES", "SCORE_SAMPLERS", "WORKING_MEMORY",
    "Coreset", "Metric", "Neighbours", "PoolView", "Ranking", "confidence_scores",
    "coreset_select", "entropy_scores", "explain", "get_sampler", "joint_scores",
    "margin_scores", "nearest_center_distances", "random_scores", "ranked", "sampler_needs",
    "select",
]
