"""Phase 1: learning with noisy labels (CE, Co-teaching, Co-teaching regularised by VOG).

Pure parts: :mod:`.schedule` (forget rates), :mod:`.selection` (clean-sample rule),
:mod:`.vog` (per-sample gradients and the VOG window). Methods: :mod:`.methods` (registry keyed
by ``lnl.method``: how many networks, how each batch is selected, who updates whom) and
:mod:`.recorders` (VOG recording, keyed by ``lnl.vog.pass``). Engine: :mod:`.sources` (batch
sources for embedding and fine-tune mode) and :mod:`.trainer` (``predict``, ``fit_ce``,
``train_lnl`` and its entry point ``run_lnl``).
"""

from labelrefine.lnl.schedule import forget_rates
from labelrefine.lnl.selection import select_clean
from labelrefine.lnl.vog import VOGTracker, input_feature_gradients, last_layer_gradients

__all__ = [
    "VOGTracker",
    "forget_rates",
    "input_feature_gradients",
    "last_layer_gradients",
    "select_clean",
]
