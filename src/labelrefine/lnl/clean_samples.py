"""Clean-sample rules of phase 1: which samples of one mini-batch count as clean (pure
functions). Not to be confused with the config key ``lnl.selection``, which says which weights
a CE fit keeps (:mod:`labelrefine.lnl.trainer`)."""

from __future__ import annotations

import math

import numpy as np

# Products such as (1 - 0.9) * 10 evaluate to 0.9999999999999998 in binary floating point;
# counts are floored after adding this tolerance so they match the exact decimal value.
_EPS = 1e-9


def _floor(x: float) -> int:
    return int(math.floor(x + _EPS))


def _as_scores(name: str, values: np.ndarray, size: int | None = None) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if size is not None and arr.shape[0] != size:
        raise ValueError(f"{name} has {arr.shape[0]} entries, loss has {size}")
    if not np.all(np.isfinite(arr)):
        bad = int(np.flatnonzero(~np.isfinite(arr))[0])
        raise ValueError(f"{name} has a non-finite value at batch position {bad}")
    return arr


def clean_counts(batch_size: int, tau: float, mix: float, exact: bool = False
                 ) -> tuple[int, int, int]:
    """``(R, R1, R2)``: R = floor((1-tau)*B), R1 = floor((1-mix)*R), R2 = floor(mix*R);
    with ``exact`` R2 = R - R1 (so that R1 + R2 = R always)."""
    if not 0.0 <= tau <= 1.0:
        raise ValueError(f"tau must be in [0, 1], got {tau}")
    if not 0.0 <= mix <= 1.0:
        raise ValueError(f"mix must be in [0, 1], got {mix}")
    r = _floor((1.0 - tau) * batch_size)
    r1 = _floor((1.0 - mix) * r)
    return r, r1, (r - r1) if exact else _floor(mix * r)


def select_clean(
    loss: np.ndarray, vog: np.ndarray | None, tau: float, mix: float = 0.0,
    exact: bool = False,
) -> np.ndarray:
    """Batch positions selected as clean (sorted ascending, int64).

    Co-teaching small-loss rule regularised by Variance of Gradients (CT_VOG):
    with B = len(loss), R = floor((1 - tau) * B), R1 = floor((1 - mix) * R) and
    R2 = floor(mix * R) (``exact``: R2 = R - R1), the selection is the R1 smallest-loss
    samples together with the R2 smallest-VOG samples among the rest of the batch.
    ``vog=None`` means the plain small-loss rule with R samples (``mix`` is then ignored).
    Ties are broken by batch position (a stable sort), so the result is deterministic.
    """
    loss_arr = _as_scores("loss", loss)
    b = loss_arr.shape[0]
    if vog is None:
        r, _, _ = clean_counts(b, tau, 0.0)
        return np.sort(np.argsort(loss_arr, kind="stable")[:r]).astype(np.int64)
    vog_arr = _as_scores("vog", vog, size=b)
    _, r1, r2 = clean_counts(b, tau, mix, exact)
    by_loss = np.argsort(loss_arr, kind="stable")
    first = by_loss[:r1]
    rest = np.sort(by_loss[r1:])  # remaining positions in index order, so VOG ties go by index
    second = rest[np.argsort(vog_arr[rest], kind="stable")[:r2]]
    return np.sort(np.concatenate([first, second])).astype(np.int64)
