"""Training schedule derived from the training-set size, so that 300 and 50,000 items both
train sensibly without a config.

Anchored on the measured setting for the bundled HAM10000 split (4,188 training items: batch
64, lr 0.05, 40 phase-1 epochs with a 10-epoch warm-up, 25 epochs per round):

- ``batch_size`` = the power of two nearest ``sqrt(n)``, within [16, 256] (small sets get
  small batches, hence enough optimiser steps per epoch);
- ``lr`` = ``0.05 * sqrt(batch_size / 64)`` (square-root scaling with the batch);
- ``epochs`` = about :data:`TARGET_STEPS` optimiser steps in all, within [20, 200];
- ``warmup`` = a quarter of the epochs (the Co-teaching forget rate ramps up over it, so
  the forget schedule follows the same rule);
- ``epochs_per_round`` = 5/8 of the phase-1 epochs (phase 2 trains on the clean set).

Pure functions; :func:`apply_adaptive` fills only the fields a config does not set.
"""

from __future__ import annotations

import math
from typing import Any

#: Optimiser steps of a phase-1 run (4,188 items / batch 64 x 40 epochs = 2,640).
TARGET_STEPS = 2600


def adaptive_schedule(n_train: int) -> dict[str, Any]:
    """``batch_size``, ``lr``, ``epochs``, ``warmup`` and ``epochs_per_round`` for
    ``n_train`` training items (see the module docstring)."""
    if n_train < 1:
        raise ValueError(f"n_train must be >= 1, got {n_train}")
    batch = int(min(256, max(16, 2 ** round(math.log2(math.sqrt(n_train))))))
    steps_per_epoch = math.ceil(n_train / batch)
    epochs = int(min(200, max(20, round(TARGET_STEPS / steps_per_epoch))))
    return {
        "batch_size": batch,
        "lr": round(0.05 * math.sqrt(batch / 64), 4),
        "epochs": epochs,
        **_follow(epochs),
    }


def _follow(epochs: int) -> dict[str, int]:
    """``warmup`` and ``epochs_per_round`` for a phase 1 of ``epochs`` epochs."""
    return {"warmup": max(1, round(epochs / 4)), "epochs_per_round": max(1, round(epochs * 5 / 8))}


def adapt(lnl: Any, active: Any, n_train: int) -> tuple[Any, Any]:
    """``(lnl, active)`` (:class:`~labelrefine.config.LNLConfig`,
    :class:`~labelrefine.config.ActiveConfig`) with their schedule fields from
    :func:`adaptive_schedule` where they are not set explicitly (fields written in a config
    always win; with ``epochs`` set, the derived warm-up and epochs per round follow it);
    unchanged when ``lnl.auto_schedule`` is off."""
    if not lnl.auto_schedule:
        return lnl, active
    auto = adaptive_schedule(n_train)
    lnl_set, act_set = lnl.model_fields_set, active.model_fields_set
    if "epochs" in lnl_set:  # warm-up and rounds follow the epochs that will really run
        auto |= _follow(int(lnl.epochs))
    lnl_up = {k: auto[k] for k in ("batch_size", "lr", "epochs", "warmup") if k not in lnl_set}
    act_up = {}
    if "epochs_per_round" not in act_set:
        act_up["epochs_per_round"] = auto["epochs_per_round"]
    if "lr" not in act_set:
        act_up["lr"] = lnl_up.get("lr", lnl.lr)
    return lnl.model_copy(update=lnl_up), active.model_copy(update=act_up)


def apply_adaptive(cfg: Any, n_train: int) -> Any:
    """A copy of the :class:`labelrefine.config.ExperimentConfig` ``cfg`` with :func:`adapt`
    applied to its ``lnl`` and ``active`` sections; ``cfg`` itself when ``lnl.auto_schedule``
    is off."""
    if not cfg.lnl.auto_schedule:
        return cfg
    lnl, active = adapt(cfg.lnl, cfg.active, n_train)
    return cfg.model_copy(update={"lnl": lnl, "active": active})
