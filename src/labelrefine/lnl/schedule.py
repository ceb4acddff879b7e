"""Forget-rate schedule of Co-teaching (Han et al., 2018)."""

from __future__ import annotations

import numpy as np


def forget_rates(tau: float, epochs: int, warmup: int = 10, c: float = 1.0) -> np.ndarray:
    """Per-epoch forget rate, shape ``(epochs,)``.

    During the first ``warmup`` epochs the rate grows from 0 to ``tau`` as
    ``tau * linspace(0, 1, warmup) ** c`` (for ``c = 1`` exactly ``linspace(0, tau, warmup)``);
    afterwards it stays at ``tau``. The array is sized by the number of epochs actually run:
    a run shorter than the warm-up is simply cut, a longer one continues at ``tau``.
    """
    if not 0.0 <= tau < 1.0:
        raise ValueError(f"tau must be in [0, 1), got {tau}")
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if warmup < 0:
        raise ValueError(f"warmup must be >= 0, got {warmup}")
    if c <= 0:
        raise ValueError(f"c must be > 0, got {c}")
    rates = np.full(epochs, float(tau), dtype=np.float64)
    if warmup == 0:  # no warm-up: tau from the first epoch
        return rates
    ramp = float(tau) * np.linspace(0.0, 1.0, warmup) ** float(c)
    n = min(warmup, epochs)
    rates[:n] = ramp[:n]
    return rates
