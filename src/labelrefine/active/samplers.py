"""Samplers for active label cleaning (DESIGN.md section 4): arrays in, scores or indices out.

Every score function returns one score per row, **higher = query first**. ``probs`` is an
``(n, C)`` array of predicted class probabilities (rows sum to 1), ``given_labels`` an ``(n,)``
array of the labels the data currently carries. Logarithms are natural logarithms.

* :func:`random_scores` -- seeded uniform scores (a random ranking).
* :func:`entropy_scores` -- predictive entropy ``H(p) = -sum_c p_c log p_c``.
* :func:`margin_scores` -- ``1 - (p_(1) - p_(2))`` (smallest top-2 margin first).
* :func:`joint_scores` -- Bernhardt-style ranker
  ``CE(p, y)/log C - max(H(p)/log C - 0.3, 0)`` with ``CE(p, y) = -log p_y``: high when the
  model confidently disagrees with the given label and the item is not ambiguous.
* :func:`confidence_scores` -- confident-learning self-confidence ``1 - p_y`` (an extra).
* :func:`coreset_select` -- greedy k-center on feature vectors, centres initialised with the
  clean set; exact, with optional seeded subsample and/or random projection for huge pools
  (:func:`select` projects to 64-d when exact work would exceed :data:`CORESET_EXACT_WORK`).
* :func:`class_quota_select` -- class-aware quotas so minority classes get budget (an extra).

:func:`select` and :func:`ranked` are the front used by the active loop and the expert web
app: they take *item indices* (``pool``) plus arrays aligned with the pool, drop excluded
items, rank deterministically (ties broken by ascending item index, whatever order the pool was
given in) and never return an item twice. :func:`explain` turns a ranking into short reasons
for a human ("model predicts bcc at 0.93 against the given label nv").
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from scipy.special import entr

#: Samplers understood by :func:`select`, :func:`ranked` and :func:`explain`.
SAMPLERS: tuple[str, ...] = ("random", "entropy", "margin", "joint", "confidence", "coreset")
#: Samplers that rank by a per-item score (everything but ``coreset``).
SCORE_SAMPLERS: tuple[str, ...] = ("random", "entropy", "margin", "joint", "confidence")

Metric = Literal["euclidean", "cosine"]
QuotaBy = Literal["given", "predicted"]

#: Probabilities are clipped to ``[PROB_EPS, 1]`` before taking a logarithm.
PROB_EPS = 1e-12
#: Default ambiguity threshold of the joint ranker (on entropy normalised by ``log C``).
JOINT_THRESHOLD = 0.3
#: :func:`select` / :func:`ranked`: coreset is exact while ``n * D * (m + k)`` (pool size x
#: feature dim x (centres + picks), the multiply-adds of exact greedy at worst) is at most this
#: on CPU (about 10 s on 2 cores; 100 times more on a GPU); above it, the large-pool
#: approximation (random projection to :data:`CORESET_PROJECT_DIM` dimensions) is used.
CORESET_EXACT_WORK = 1e11
#: Feature dimension of the large-pool coreset approximation (random projection).
CORESET_PROJECT_DIM = 64
#: Greedy k-center first runs on (at least) this many rows farthest from the centres; see
#: :func:`_farthest_first` (exact: it widens the set when the result is not provably exact).
CORESET_CANDIDATES = 4096
#: Working memory (bytes) for one block of the chunked pool-to-centre distance computation.
WORKING_MEMORY = 64 * 2**20


# ----------------------------------------------------------------------------- validation


def _as_probs(probs: np.ndarray | None, n: int | None = None, name: str = "probs") -> np.ndarray:
    """Check an ``(n, C)`` probability array (finite, >= 0, rows sum to ~1); return float array."""
    if probs is None:
        raise ValueError(f"{name} is required for this sampler")
    arr = np.asarray(probs)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (n, C) array, got shape {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name} has {arr.shape[0]} rows but the pool has {n} items")
    if arr.shape[1] < 2:
        raise ValueError(f"{name} needs at least 2 classes (columns), got {arr.shape[1]}")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    elif arr.dtype == np.float16:
        arr = arr.astype(np.float32)
    if arr.size:
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} contains NaN or infinite values")
        if arr.min() < 0:
            raise ValueError(f"{name} contains negative values (pass probabilities, not logits)")
        sums = arr.sum(axis=1, dtype=np.float64)
        bad = np.flatnonzero(np.abs(sums - 1.0) > 1e-2)
        if bad.size:
            raise ValueError(
                f"{name} rows must sum to 1 (row {int(bad[0])} sums to {sums[bad[0]]:.4f}); "
                "pass softmax probabilities"
            )
    return arr


def _as_labels(labels: np.ndarray | None, n: int, num_classes: int,
               name: str = "given_labels") -> np.ndarray:
    """Check an ``(n,)`` integer label array with values in ``[0, num_classes)``."""
    if labels is None:
        raise ValueError(f"{name} is required for this sampler")
    arr = np.asarray(labels)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},), got {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must hold integer class indices, got dtype {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    if arr.size and (arr.min() < 0 or arr.max() >= num_classes):
        bad = int(np.flatnonzero((arr < 0) | (arr >= num_classes))[0])
        raise ValueError(
            f"{name}[{bad}] = {int(arr[bad])} is not a class index in [0, {num_classes})"
        )
    return arr


def _as_features(x: np.ndarray | None, name: str, n: int | None = None,
                 dim: int | None = None) -> np.ndarray:
    """Check a 2-D float feature array; float16 and integers are promoted to float32."""
    if x is None:
        raise ValueError(f"{name} is required for the coreset sampler")
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (n, D) array, got shape {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name} has {arr.shape[0]} rows but the pool has {n} items")
    if dim is not None and arr.shape[1] != dim:
        raise ValueError(f"{name} has {arr.shape[1]} columns, pool_features has {dim}")
    if arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float32)
    return np.ascontiguousarray(arr)


def _rank_desc(scores: np.ndarray) -> np.ndarray:
    """Positions sorted by descending score; ties keep ascending position (stable)."""
    return np.argsort(-scores, kind="stable")


# ----------------------------------------------------------------------------- scores


def random_scores(n: int, seed: int = 0) -> np.ndarray:
    """Uniform scores ``u_i ~ U[0, 1)`` from ``numpy.random.default_rng(seed)``, shape ``(n,)``.

    Ranking by these scores is a seeded random permutation (the ``random`` sampler).
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    return np.random.default_rng(seed).random(n)


def entropy_scores(probs: np.ndarray) -> np.ndarray:
    """Predictive entropy ``H(p_i) = -sum_c p_ic log p_ic`` (natural log, ``0 log 0 = 0``).

    Ranges from 0 (one-hot) to ``log C`` (uniform); higher = more uncertain = query first.
    """
    p = _as_probs(probs)
    return entr(p).sum(axis=1)


def margin_scores(probs: np.ndarray) -> np.ndarray:
    """``1 - (p_(1) - p_(2))`` where ``p_(1) >= p_(2)`` are the two largest probabilities.

    In ``[0, 1]``; higher = smaller top-2 margin = query first.
    """
    p = _as_probs(probs)
    if p.shape[0] == 0:
        return np.zeros(0, dtype=p.dtype)
    top2 = np.partition(p, p.shape[1] - 2, axis=1)[:, -2:]
    return 1.0 - (top2[:, 1] - top2[:, 0])


def joint_scores(probs: np.ndarray, given_labels: np.ndarray, *,
                 threshold: float = JOINT_THRESHOLD) -> np.ndarray:
    """Bernhardt-style joint ranker of likely-mislabeled, unambiguous items.

    ``score_i = CE(p_i, y_i) / log C - max(H(p_i) / log C - threshold, 0)`` with
    ``CE(p_i, y_i) = -log(clip(p_iy, 1e-12, 1))`` (the cross-entropy against the given label
    ``y_i``) and ``H`` the predictive entropy. High when the model confidently predicts a class
    other than the given one; the second term demotes items whose prediction is itself
    ambiguous (normalised entropy above ``threshold``, default 0.3).
    """
    p = _as_probs(probs)
    y = _as_labels(given_labels, p.shape[0], p.shape[1])
    log_c = math.log(p.shape[1])
    p_given = p[np.arange(p.shape[0]), y]
    ce = -np.log(np.clip(p_given, PROB_EPS, 1.0))
    h = entr(p).sum(axis=1)
    return ce / log_c - np.maximum(h / log_c - threshold, 0.0)


def confidence_scores(probs: np.ndarray, given_labels: np.ndarray) -> np.ndarray:
    """Confident-learning self-confidence ranking ``1 - p_iy`` (``y`` = given label).

    Higher = the model gives less probability to the given label = query first.
    """
    p = _as_probs(probs)
    y = _as_labels(given_labels, p.shape[0], p.shape[1])
    return 1.0 - p[np.arange(p.shape[0]), y]


# ----------------------------------------------------------------------------- coreset


def _tensor(x: np.ndarray) -> torch.Tensor:
    """Zero-copy tensor view of a contiguous array (read-only arrays are never written)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch warns on read-only arrays
        return torch.from_numpy(x)


def _prepare_metric(x: np.ndarray, metric: str) -> np.ndarray:
    if metric == "euclidean":
        return x
    if metric == "cosine":
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        return x / np.maximum(norms, np.finfo(x.dtype).tiny)
    raise ValueError(f"metric must be 'euclidean' or 'cosine', got {metric!r}")


def _min_sq_dists(x: torch.Tensor, x_sq: torch.Tensor, centers: torch.Tensor,
                  chunk: int | None) -> torch.Tensor:
    """Squared distance of each row of ``x`` to its nearest row of ``centers`` (chunked).

    ``||x - c||^2 = ||x||^2 + min_c (||c||^2 - 2 x.c)``: one matrix product per block of rows
    and centres, each block at most :data:`WORKING_MEMORY` bytes (``chunk`` rows when given),
    so memory stays bounded for any pool and clean-set size. ``inf`` without centres.
    """
    n = x.shape[0]
    out = torch.full((n,), math.inf, dtype=x.dtype, device=x.device)
    m = centers.shape[0]
    if m == 0 or n == 0:
        return out
    c_block = min(m, 8192)
    rows = chunk or max(1, WORKING_MEMORY // (c_block * x.element_size()))
    for j in range(0, m, c_block):
        c = centers[j:j + c_block]
        c_sq = (c * c).sum(1).unsqueeze(0)
        for i in range(0, n, rows):
            block = torch.addmm(c_sq, x[i:i + rows], c.T, beta=1.0, alpha=-2.0)
            torch.minimum(out[i:i + rows], block.min(dim=1).values, out=out[i:i + rows])
    return out.add_(x_sq).clamp_(min=0.0)


def _row_sq(x: torch.Tensor) -> torch.Tensor:
    """Squared L2 norm of each row, in row blocks (no full-size temporary)."""
    out = torch.empty(x.shape[0], dtype=x.dtype, device=x.device)
    rows = max(1, WORKING_MEMORY // max(1, x.shape[1] * x.element_size()))
    for i in range(0, x.shape[0], rows):
        block = x[i:i + rows]
        out[i:i + rows] = (block * block).sum(1)
    return out


def _check_finite(row_sq: torch.Tensor, name: str, rows: np.ndarray) -> None:
    """Raise naming the first row whose squared norm is NaN/inf (NaN or inf features)."""
    bad = torch.nonzero(~torch.isfinite(row_sq)).flatten()
    if bad.numel():
        raise ValueError(f"{name} row {int(rows[int(bad[0])])} contains NaN or infinite values")


def _greedy_cpu(xt: torch.Tensor, x_sq: np.ndarray, min_d: np.ndarray,
                k: int) -> tuple[np.ndarray, np.ndarray]:
    """``k`` farthest-first picks over all rows of ``xt`` given squared distances ``min_d``
    (updated in place). One matrix-vector product per pick (torch, multi-threaded); the cheap
    element-wise updates in numpy (single-threaded: robust on busy machines). Returns the
    picked positions and their squared distances at pick time."""
    picks = np.empty(k, dtype=np.int64)
    pick_sq = np.empty(k)
    for t in range(k):
        j = int(np.argmax(min_d))  # first maximum = lowest position on ties
        picks[t], pick_sq[t] = j, float(min_d[j])
        d = torch.mv(xt, xt[j]).numpy()
        d *= -2.0
        d += x_sq
        d += x_sq[j]
        np.minimum(min_d, d, out=min_d)
        min_d[j] = -math.inf
    return picks, pick_sq


def _greedy_torch(xt: torch.Tensor, x_sq: torch.Tensor, min_d: torch.Tensor,
                  k: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_greedy_cpu` with every step in torch (GPU devices)."""
    picks = torch.empty(k, dtype=torch.int64, device=xt.device)
    pick_sq = torch.empty(k, dtype=xt.dtype, device=xt.device)
    for t in range(k):
        j = torch.argmax(min_d)  # first maximum = lowest position on ties
        picks[t], pick_sq[t] = j, min_d[j]
        d = torch.addmv(x_sq + x_sq[j], xt, xt[j], alpha=-2.0)
        torch.minimum(min_d, d, out=min_d)
        min_d[j] = -math.inf
    return picks.cpu().numpy(), pick_sq.double().cpu().numpy()


def _farthest_first(xt: torch.Tensor, x_sq: torch.Tensor, min_d: torch.Tensor, k: int,
                    first: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact greedy k-center picks, run on the rows most likely to be picked.

    Distances to the centres only shrink, and pick distances never increase; so a row whose
    starting distance is below the last pick's distance ``r_k`` can never be picked. The
    greedy therefore runs on the ``M`` rows with the largest starting distances (``M`` =
    max(:data:`CORESET_CANDIDATES`, 2k)) and is accepted when every other row starts strictly
    below ``r_k`` -- then the picks (ties included) are those of the greedy over all rows.
    Otherwise ``M`` grows 4-fold and the greedy reruns (at most a few times; all rows at worst).
    ``first >= 0`` is a pick made before the greedy (the seeded start without centres).
    Returns positions and squared pick distances (``inf`` for ``first``).
    """
    n = xt.shape[0]
    pre: list[int] = []
    if first >= 0:
        min_d = torch.addmv(x_sq + x_sq[first], xt, xt[first], alpha=-2.0).clamp_(min=0.0)
        min_d[first] = -math.inf
        pre, k = [first], k - 1
    start = min_d.cpu().numpy()
    greedy = _greedy_cpu if xt.device.type == "cpu" else _greedy_torch
    m = max(CORESET_CANDIDATES, 2 * k)
    while True:
        if m >= n:
            cand = np.arange(n)
        else:
            threshold = np.partition(start, n - m)[n - m]  # m-th largest starting distance
            cand = np.flatnonzero(start >= threshold)
        if cand.size == n:  # no gather: the whole pool
            sub_x, sub_sq, sub_d = xt, x_sq, min_d.clone()
        else:
            rows = torch.from_numpy(cand).to(xt.device)
            sub_x, sub_sq, sub_d = xt[rows], x_sq[rows], min_d[rows]
        args = (sub_sq.numpy(), sub_d.numpy()) if xt.device.type == "cpu" else (sub_sq, sub_d)
        picks, pick_sq = greedy(sub_x, *args, k)
        if cand.size == n or k == 0:
            break
        outside = np.delete(start, cand)
        if outside.max() < pick_sq[-1]:
            break
        m *= 4
    positions = np.concatenate([np.asarray(pre, dtype=np.int64), cand[picks]])
    dists = np.concatenate([np.full(len(pre), math.inf), pick_sq])
    return positions, dists


@dataclass(frozen=True)
class _CoresetRun:
    positions: np.ndarray  # picked pool positions, in pick order
    pick_dist: np.ndarray  # distance to the nearest centre (clean or earlier pick) when picked
    clean_dist: np.ndarray  # (n,) distance to the nearest clean centre; NaN where not computed


def _coreset(pool_features: np.ndarray, center_features: np.ndarray, k: int, seed: int, *,
             metric: str = "euclidean", chunk: int | None = None, max_pool: int | None = None,
             project_dim: int | None = None, device: str | torch.device = "cpu") -> _CoresetRun:
    x = _as_features(pool_features, "pool_features")
    n, dim = x.shape
    c = _as_features(center_features, "center_features", dim=dim)
    if c.dtype != x.dtype:
        dtype = np.promote_types(c.dtype, x.dtype)
        x, c = x.astype(dtype, copy=False), c.astype(dtype, copy=False)
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    if max_pool is not None and max_pool < 1:
        raise ValueError(f"max_pool must be >= 1, got {max_pool}")
    if project_dim is not None and project_dim < 1:
        raise ValueError(f"project_dim must be >= 1, got {project_dim}")
    dev = torch.device(device)
    k = min(k, n)
    clean_dist = np.full(n, np.nan)
    if k == 0:
        return _CoresetRun(np.zeros(0, np.int64), np.zeros(0), clean_dist)

    rng = np.random.default_rng(seed)
    sub = np.arange(n)
    if max_pool is not None and n > max(max_pool, k):
        sub = np.sort(rng.choice(n, size=max(max_pool, k), replace=False))
        x = x[sub]
    x = _prepare_metric(x, metric)
    c = _prepare_metric(c, metric)
    xt, ct = _tensor(np.ascontiguousarray(x)).to(dev), _tensor(np.ascontiguousarray(c)).to(dev)
    if project_dim is not None and project_dim < dim:
        proj = rng.standard_normal((dim, project_dim)).astype(x.dtype) / math.sqrt(project_dim)
        pt = _tensor(proj).to(dev)
        xt, ct = xt @ pt, ct @ pt
    x_sq = _row_sq(xt)
    _check_finite(x_sq, "pool_features", sub)
    _check_finite(_row_sq(ct), "center_features", np.arange(ct.shape[0]))
    min_d = _min_sq_dists(xt, x_sq, ct, chunk)
    clean_dist[sub] = min_d.sqrt().cpu().numpy()

    first = int(rng.integers(xt.shape[0])) if ct.shape[0] == 0 else -1
    picks, pick_sq = _farthest_first(xt, x_sq, min_d, k, first)
    return _CoresetRun(sub[picks], np.sqrt(np.maximum(pick_sq, 0.0)), clean_dist)


def nearest_center_distances(pool_features: np.ndarray, center_features: np.ndarray, *,
                             metric: Metric = "euclidean", chunk: int | None = None,
                             device: str | torch.device = "cpu") -> np.ndarray:
    """Distance ``min_j ||x_i - c_j||`` of each pool row to its nearest centre, shape ``(n,)``.

    ``inf`` for every row when there are no centres. ``metric="cosine"`` uses the Euclidean
    distance between L2-normalised rows (``sqrt(2 - 2 cos)``, same order as cosine distance).
    Computed with torch on ``device`` in row x centre blocks of bounded size (``chunk`` rows
    per block when given).
    """
    x = _prepare_metric(_as_features(pool_features, "pool_features"), metric)
    c = _prepare_metric(_as_features(center_features, "center_features", dim=x.shape[1]), metric)
    dtype = np.promote_types(x.dtype, c.dtype)
    dev = torch.device(device)
    xt = _tensor(np.ascontiguousarray(x, dtype=dtype)).to(dev)
    ct = _tensor(np.ascontiguousarray(c, dtype=dtype)).to(dev)
    return _min_sq_dists(xt, _row_sq(xt), ct, chunk).sqrt().cpu().numpy()


def coreset_select(pool_features: np.ndarray, center_features: np.ndarray, k: int,
                   seed: int = 0, *, metric: Metric = "euclidean", chunk: int | None = None,
                   max_pool: int | None = None, project_dim: int | None = None,
                   device: str | torch.device = "cpu") -> np.ndarray:
    """Greedy k-center (farthest-first) selection of ``k`` pool rows.

    With ``d_i = min_{c in centres} ||x_i - c||`` (centres = ``center_features``, the clean
    set), repeat ``min(k, n)`` times: pick ``j = argmax_i d_i`` (the lowest position among
    ties), then ``d_i <- min(d_i, ||x_i - x_j||)`` and never pick ``j`` again. With no centres
    the first pick is ``numpy.random.default_rng(seed).integers(n)`` and the greedy continues
    from it. Distances are computed with torch (on ``device``; ``"cuda"`` for a GPU) as
    ``||x||^2 - 2 x.c + ||c||^2``, the pool-to-centre part in blocks of bounded size (see
    ``chunk``). Picks are made among the rows farthest from the centres first and widened
    until provably identical to the greedy over all rows (see :func:`_farthest_first`); each
    pick costs one pass over those rows. Exact greedy therefore costs ``O(n m D)`` for the
    distances to the ``m`` centres plus ``O(M k D)`` for the picks (``M`` candidate rows,
    ``n`` at worst), and ``O(n)`` memory beyond the inputs.

    Approximations for very large pools (both off by default = exact):

    * ``max_pool``: run the greedy on a seeded uniform subsample of ``max(max_pool, k)`` pool
      rows (sorted positions) instead of all ``n``; the picks are exact k-center picks *of the
      subsample* (points outside it are never picked, so a rare far-away group can be missed);
      cost and extra memory scale with the subsample.
    * ``project_dim``: Johnson-Lindenstrauss random projection of pool and centres to
      ``project_dim`` dimensions (seeded Gaussian matrix / sqrt(project_dim)) before the
      greedy; pairwise distances are preserved up to a factor ``1 +- O(1/sqrt(project_dim))``
      and every pool point stays a candidate.

    The subsample is drawn first, then the projection, then (without centres) the first pick,
    all from one ``default_rng(seed)``. ``metric="cosine"`` L2-normalises the rows first.

    Returns:
        ``(min(k, n),)`` int64 positions into ``pool_features``, in pick order.
    """
    return _coreset(pool_features, center_features, k, seed, metric=metric, chunk=chunk,
                    max_pool=max_pool, project_dim=project_dim, device=device).positions


# ----------------------------------------------------------------------------- quotas


def class_quota_select(scores: np.ndarray, classes: np.ndarray, k: int) -> np.ndarray:
    """Top-``k`` positions under equal per-class quotas (minority classes get their share).

    Items are ranked within their class by descending score (ties: lower position first).
    Selection then proceeds in rounds: round ``r`` takes the ``r``-th best item of every class
    that still has one, in descending score order, until ``k`` items are taken. Each class thus
    gets ``~k / (number of classes)`` items; a class with fewer items gives its unused share to
    the others, and the remainder goes to the highest scores.

    Args:
        scores: ``(n,)`` scores, higher = query first.
        classes: ``(n,)`` integer class of each item (given or predicted label).
        k: number of positions to return (at most ``n``).

    Returns:
        ``(min(k, n),)`` int64 positions into ``scores``, in selection order.
    """
    s = np.asarray(scores, dtype=np.float64)
    cls = np.asarray(classes)
    if s.ndim != 1:
        raise ValueError(f"scores must be 1-D, got shape {s.shape}")
    if cls.shape != s.shape:
        raise ValueError(f"classes must have shape {s.shape} like scores, got {cls.shape}")
    if cls.size and not np.issubdtype(cls.dtype, np.integer):
        raise ValueError(f"classes must hold integer class indices, got dtype {cls.dtype}")
    if np.isnan(s).any():
        raise ValueError("scores contain NaN")
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    n = s.size
    pos = np.arange(n)
    by_class = np.lexsort((pos, -s, cls))  # class, then score desc, then position
    sorted_cls = cls[by_class]
    starts = np.r_[0, np.flatnonzero(sorted_cls[1:] != sorted_cls[:-1]) + 1] if n else pos
    rank = np.empty(n, dtype=np.int64)
    first_of_run = np.zeros(n, dtype=np.int64)
    first_of_run[starts] = starts
    rank[by_class] = pos - np.maximum.accumulate(first_of_run)
    order = np.lexsort((pos, -s, rank))
    return order[: min(k, n)].astype(np.int64)


# ----------------------------------------------------------------------------- front


@dataclass(frozen=True)
class Ranking:
    """A ranked pool: the query-first order with scores and human-readable reasons.

    Attributes:
        items: item indices (from ``pool``), query first.
        positions: the same items as positions into the arrays passed with the pool
            (``probs``, ``given_labels``, ``pool_features``).
        scores: the sampler's score of each item (higher = query first); for ``coreset`` the
            distance to the nearest centre (clean item or earlier pick) when it was picked.
        reasons: one short reason per item (empty when not requested).
    """

    items: np.ndarray
    positions: np.ndarray
    scores: np.ndarray
    reasons: tuple[str, ...] = ()


def _pool_view(pool: np.ndarray, exclude: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Validated pool; positions of the kept items sorted by ascending item index."""
    p = np.asarray(pool)
    if p.ndim != 1:
        raise ValueError(f"pool must be a 1-D array of item indices, got shape {p.shape}")
    if p.size and not np.issubdtype(p.dtype, np.integer):
        raise ValueError(f"pool must hold integer item indices, got dtype {p.dtype}")
    p = p.astype(np.int64, copy=False)
    if p.size and p.min() < 0:
        raise ValueError(f"pool contains a negative item index ({int(p.min())})")
    order = np.argsort(p, kind="stable")
    sorted_items = p[order]
    dup = np.flatnonzero(sorted_items[1:] == sorted_items[:-1])
    if dup.size:
        raise ValueError(f"pool contains item {int(sorted_items[dup[0]])} more than once")
    if exclude is not None:
        ex = np.asarray(exclude)
        if ex.ndim != 1:
            raise ValueError(f"exclude must be a 1-D array of item indices, got shape {ex.shape}")
        if ex.size:
            if not np.issubdtype(ex.dtype, np.integer):
                raise ValueError(f"exclude must hold integer item indices, got dtype {ex.dtype}")
            order = order[~np.isin(sorted_items, ex)]
    return p, order


def _quota_classes(quota_by: str, probs: np.ndarray | None,
                   given: np.ndarray | None) -> np.ndarray:
    if quota_by == "given":
        if given is None:
            raise ValueError("quota_by='given' needs given_labels")
        return given
    if quota_by == "predicted":
        if probs is None:
            raise ValueError("quota_by='predicted' needs probs")
        return probs.argmax(axis=1)
    raise ValueError(f"quota_by must be 'given', 'predicted' or None, got {quota_by!r}")


def ranked(
    sampler: str,
    k: int | None = None,
    *,
    pool: np.ndarray,
    exclude: np.ndarray | None = None,
    probs: np.ndarray | None = None,
    given_labels: np.ndarray | None = None,
    pool_features: np.ndarray | None = None,
    center_features: np.ndarray | None = None,
    seed: int = 0,
    quota_by: QuotaBy | None = None,
    metric: Metric = "euclidean",
    coreset_exact_work: float | None = CORESET_EXACT_WORK,
    coreset_project_dim: int | None = CORESET_PROJECT_DIM,
    coreset_max_pool: int | None = None,
    device: str | torch.device = "cpu",
    class_names: Sequence[str] | None = None,
    with_reasons: bool = True,
) -> Ranking:
    """Rank the pool with ``sampler`` and return the top ``k`` (all when ``k`` is None).

    Args:
        sampler: one of :data:`SAMPLERS`.
        k: how many to return; at most the pool size minus the excluded items.
        pool: ``(n,)`` distinct non-negative item indices that may be queried.
        exclude: item indices never to return (e.g. already relabeled); may include items not
            in the pool.
        probs: ``(n, C)`` predicted probabilities aligned with ``pool`` (entropy, margin,
            joint, confidence; also used for reasons).
        given_labels: ``(n,)`` current labels aligned with ``pool`` (joint, confidence).
        pool_features: ``(n, D)`` features aligned with ``pool`` (coreset).
        center_features: ``(m, D)`` features of the clean set, the initial centres (coreset;
            ``m`` may be 0).
        seed: seeds ``random`` and coreset's subsample / projection / first pick.
        quota_by: apply :func:`class_quota_select` over the ``given`` or ``predicted`` class
            (score samplers only).
        metric: coreset distance, ``euclidean`` or ``cosine``.
        coreset_exact_work, coreset_project_dim, coreset_max_pool: the large-pool
            approximation of coreset. With ``n`` pool items (after ``exclude``), ``D``
            feature dimensions and ``m`` centres, greedy k-center is exact while
            ``n * D * (m + k) <= coreset_exact_work`` (default 1e11, times 100 on a non-CPU
            device; None = always exact). Above it, features are randomly projected to
            ``coreset_project_dim`` dimensions (default 64; None keeps them all) and, when
            ``coreset_max_pool`` is given, the greedy runs on a seeded subsample of that many
            items; see :func:`coreset_select`.
        device: torch device for coreset distances (``cpu``, ``cuda``).
        class_names: names for the reasons (default: class indices).
        with_reasons: compute :attr:`Ranking.reasons`.

    The result depends only on the *set* of pool items (with their aligned rows), not on the
    order they were given in: rows are first put in ascending item order, and ties in score are
    broken by ascending item index. ``coreset`` without ``k`` runs the greedy over the whole
    pool (quadratic; pass ``k`` for large pools).
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}")
    pool_arr, keep = _pool_view(pool, exclude)
    n = pool_arr.size
    if k is not None and k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    m = keep.size if k is None else min(k, keep.size)

    p = None if probs is None else _as_probs(probs, n)
    y = None
    if given_labels is not None:
        y = _as_labels(given_labels, n, p.shape[1] if p is not None else np.iinfo(np.int64).max)
    if sampler in ("entropy", "margin", "joint", "confidence") and p is None:
        raise ValueError(f"sampler {sampler!r} needs probs")
    if sampler in ("joint", "confidence") and y is None:
        raise ValueError(f"sampler {sampler!r} needs given_labels")
    kp = None if p is None else p[keep]
    ky = None if y is None else y[keep]

    distances = None
    if sampler == "coreset":
        if quota_by is not None:
            raise ValueError("quota_by applies to score samplers, not coreset")
        if pool_features is None or center_features is None:
            raise ValueError("sampler 'coreset' needs pool_features and center_features")
        feats = _as_features(pool_features, "pool_features", n=n)
        if not np.array_equal(keep, np.arange(n)):
            feats = feats[keep]  # rows in ascending item order, excluded items dropped
        n_centres = np.shape(center_features)[0]
        work = float(feats.shape[0]) * feats.shape[1] * (n_centres + m)
        limit = coreset_exact_work
        if limit is not None and torch.device(device).type != "cpu":
            limit *= 100
        large = limit is not None and work > limit
        run = _coreset(feats, center_features, m, seed, metric=metric,
                       max_pool=coreset_max_pool if large else None,
                       project_dim=coreset_project_dim if large else None, device=device)
        local = run.positions
        scores = run.pick_dist
        distances = run.clean_dist
    else:
        if sampler == "random":
            all_scores = random_scores(keep.size, seed)
        elif sampler == "entropy":
            all_scores = entropy_scores(kp)
        elif sampler == "margin":
            all_scores = margin_scores(kp)
        elif sampler == "joint":
            all_scores = joint_scores(kp, ky)
        else:
            all_scores = confidence_scores(kp, ky)
        if quota_by is not None:
            local = class_quota_select(all_scores, _quota_classes(quota_by, kp, ky), m)
        else:
            local = _rank_desc(all_scores)[:m]
        scores = all_scores[local]

    positions = keep[local].astype(np.int64)
    reasons: tuple[str, ...] = ()
    if with_reasons:
        reasons = tuple(explain(sampler, local, kp, ky, class_names, distances=distances,
                                scores=scores))
    return Ranking(items=pool_arr[positions], positions=positions,
                   scores=np.asarray(scores, dtype=np.float64), reasons=reasons)


def select(
    sampler: str,
    k: int,
    *,
    pool: np.ndarray,
    exclude: np.ndarray | None = None,
    probs: np.ndarray | None = None,
    given_labels: np.ndarray | None = None,
    pool_features: np.ndarray | None = None,
    center_features: np.ndarray | None = None,
    seed: int = 0,
    quota_by: QuotaBy | None = None,
    metric: Metric = "euclidean",
    coreset_exact_work: float | None = CORESET_EXACT_WORK,
    coreset_project_dim: int | None = CORESET_PROJECT_DIM,
    coreset_max_pool: int | None = None,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """Item indices (from ``pool``) to query next, query-first: the top ``k`` of :func:`ranked`.

    Returns ``min(k, |pool minus exclude|)`` distinct items, none of them in ``exclude``;
    deterministic for a given seed and independent of the pool's order. Raises ``ValueError``
    naming the argument when an input the sampler needs is missing or has the wrong shape.
    """
    return ranked(
        sampler, k, pool=pool, exclude=exclude, probs=probs, given_labels=given_labels,
        pool_features=pool_features, center_features=center_features, seed=seed,
        quota_by=quota_by, metric=metric, coreset_exact_work=coreset_exact_work,
        coreset_project_dim=coreset_project_dim, coreset_max_pool=coreset_max_pool,
        device=device, with_reasons=False,
    ).items


# ----------------------------------------------------------------------------- reasons


def _name(class_names: Sequence[str] | None, c: int) -> str:
    if class_names is not None and 0 <= c < len(class_names):
        return str(class_names[c])
    return str(c)


def explain(
    sampler: str,
    idx: np.ndarray,
    probs: np.ndarray | None = None,
    given_labels: np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
    *,
    distances: np.ndarray | None = None,
    scores: np.ndarray | None = None,
) -> list[str]:
    """One short human-readable reason per position in ``idx`` for why ``sampler`` ranks it.

    Args:
        sampler: one of :data:`SAMPLERS`.
        idx: positions into ``probs`` / ``given_labels`` / ``distances``.
        probs: ``(n, C)`` predicted probabilities (optional for random and coreset).
        given_labels: ``(n,)`` current labels.
        class_names: class names (default: indices).
        distances: coreset only: ``(n,)`` distance of each pool item to its nearest clean item
            (NaN where unknown, ``inf`` with no clean items); the pool median is their median.
        scores: coreset only: the pick-time distances aligned with ``idx`` (used when there
            are no clean items).

    Examples: ``"model predicts bcc at 0.93 against the given label nv"``, ``"high uncertainty
    (entropy 1.62 of max 1.95)"``, ``"unlike every clean sample (distance 4.1, pool median
    2.0)"``.
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}")
    ix = np.asarray(idx, dtype=np.int64).reshape(-1)
    p = None if probs is None else _as_probs(probs)
    y = None
    if given_labels is not None:
        y = np.asarray(given_labels, dtype=np.int64)
    if sampler in ("entropy", "margin", "joint", "confidence") and p is None:
        raise ValueError(f"explain({sampler!r}) needs probs")
    if sampler in ("joint", "confidence") and y is None:
        raise ValueError(f"explain({sampler!r}) needs given_labels")
    out: list[str] = []
    if sampler == "coreset":
        median = math.nan
        if distances is not None:
            finite = np.asarray(distances, dtype=np.float64)
            finite = finite[np.isfinite(finite)]
            if finite.size:
                median = float(np.median(finite))
        for t, i in enumerate(ix):
            d = math.nan if distances is None else float(distances[i])
            if math.isfinite(d):
                out.append(f"unlike every clean sample (distance {d:.3g}, pool median "
                           f"{median:.3g})")
            else:
                extra = ""
                if scores is not None and math.isfinite(float(scores[t])):
                    extra = f"; distance {float(scores[t]):.3g} to earlier picks"
                out.append(f"spread-out pick, no clean samples to compare with{extra}")
        return out
    log_c = math.log(p.shape[1]) if p is not None else math.nan
    for i in ix:
        if p is None:
            out.append("random pick (seeded)")
            continue
        row = p[i]
        top = np.argsort(-row, kind="stable")[:2]
        pred, pred_p = int(top[0]), float(row[top[0]])
        given = None if y is None else int(y[i])
        if sampler == "random":
            msg = f"random pick (seeded); model predicts {_name(class_names, pred)} at {pred_p:.2f}"
        elif sampler == "entropy":
            h = float(entr(row).sum())
            # Entropy ranks the pool; call it "high" only when it is, else say it is the
            # least certain left (a confident pick is ranked first in a confident pool).
            level = ("high uncertainty" if h / log_c > JOINT_THRESHOLD
                     else "least certain left in the pool")
            msg = (f"{level} (entropy {h:.2f} of max {log_c:.2f}; "
                   f"top {_name(class_names, pred)} {pred_p:.2f})")
        elif sampler == "margin":
            second = int(top[1])
            msg = (f"top two classes close: {_name(class_names, pred)} {pred_p:.2f} vs "
                   f"{_name(class_names, second)} {float(row[second]):.2f}")
        else:
            assert given is not None
            g = _name(class_names, given)
            if pred != given:
                msg = (f"model predicts {_name(class_names, pred)} at {pred_p:.2f} against the "
                       f"given label {g} ({float(row[given]):.2f})")
            else:
                msg = f"model agrees with the given label {g}, but only at {pred_p:.2f}"
            if sampler == "joint":
                h = float(entr(row).sum())
                if h / log_c > JOINT_THRESHOLD:
                    msg += f"; ambiguous prediction (entropy {h:.2f} of max {log_c:.2f})"
        if given is not None and sampler in ("random", "entropy", "margin"):
            msg += f"; given label {_name(class_names, given)}"
        out.append(msg)
    return out
