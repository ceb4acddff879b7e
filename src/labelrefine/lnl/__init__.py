"""Phase 1: learning with noisy labels (CE, Co-teaching, Co-teaching regularised by VOG).

Pure parts: :mod:`.schedule` (forget rates), :mod:`.clean_samples` (clean-sample rule),
:mod:`.vog` (per-sample gradients and the VOG window). Methods: :mod:`.methods` (registry keyed
by ``lnl.method``: how many networks, how each batch is selected, who updates whom) and
:mod:`.recorders` (VOG recording, keyed by ``lnl.vog.pass``). Engine: :mod:`.sources` (batch
sources for embedding and fine-tune mode) and :mod:`.trainer` (``predict``, ``fit_ce``,
``train_lnl`` and its entry point ``run_lnl``).

Names are loaded on first use, so the config can read the method registry
(:mod:`labelrefine.lnl.methods`, light at import) without importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "VOGTracker": "vog",
    "forget_rates": "schedule",
    "input_feature_gradients": "vog",
    "last_layer_gradients": "vog",
    "select_clean": "clean_samples",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'labelrefine.lnl' has no attribute {name!r}")
    return getattr(importlib.import_module(f"labelrefine.lnl.{module}"), name)
