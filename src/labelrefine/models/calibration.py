"""Temperature scaling (Guo et al. 2017): one scalar ``T`` that rescales a network's logits so
its softmax probabilities match observed frequencies on held-out data.

Pure functions over numpy arrays. ``T`` is fitted by minimising the negative log-likelihood of
the validation split's labels; it does not change the argmax, only how confident the
probabilities are (which drives uncertainty sampling, reasons and stopping estimates).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax

from labelrefine.validation import check_labels

#: Range searched for ``T`` (log-uniform bounds); beyond it the data cannot tell values apart.
T_MIN, T_MAX = 0.05, 100.0


def _check(logits: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim != 2:
        raise ValueError(f"logits must be (n, C), got shape {z.shape}")
    y = check_labels(labels, z.shape[1], n=z.shape[0])
    if not np.all(np.isfinite(z)):
        bad = int(np.flatnonzero(~np.isfinite(z).all(axis=1))[0])
        raise ValueError(f"logits of row {bad} are not finite")
    return z, y


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of ``labels`` under ``softmax(logits / temperature)``."""
    z, y = _check(logits, labels)
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if y.size == 0:
        return float("nan")
    return float(-log_softmax(z / temperature, axis=1)[np.arange(y.size), y].mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature ``T`` in ``[T_MIN, T_MAX]`` that minimises the NLL of ``labels``.

    Returns 1.0 (no change) when there are fewer than two labelled rows. Deterministic: a
    bounded scalar search over ``log T``.
    """
    z, y = _check(logits, labels)
    if y.size < 2:
        return 1.0
    rows = np.arange(y.size)

    def objective(log_t: float) -> float:
        return float(-log_softmax(z / np.exp(log_t), axis=1)[rows, y].mean())

    res = minimize_scalar(objective, bounds=(np.log(T_MIN), np.log(T_MAX)), method="bounded",
                          options={"xatol": 1e-4})
    t = float(np.exp(res.x))
    # Never worse than leaving the logits alone (the search is on a bounded interval).
    return t if objective(res.x) <= objective(0.0) else 1.0


def softmax_with_temperature(logits: np.ndarray, temperature: float) -> np.ndarray:
    """Row-wise ``softmax(logits / temperature)`` as float64."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    z = np.asarray(logits, dtype=np.float64) / temperature
    return np.exp(log_softmax(z, axis=1))


def temperature_at_bound(t: float) -> bool:
    """Whether a fitted temperature sits at its search bound (within 1 % of ``T_MIN`` or
    ``T_MAX``): the calibration failed (the validation data could not pin it down), so
    estimates from it are withheld."""
    return bool(t <= T_MIN * 1.01 or t >= T_MAX * 0.99)
