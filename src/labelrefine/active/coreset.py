"""The coreset sampler's engine: exact greedy k-center with bounded memory (torch).

:func:`coreset_select` picks pool rows farthest from the clean set (the initial centres) and
from each other; :func:`nearest_center_distances` gives each pool row's distance to the clean
set (used in the reasons). The large-pool approximation (seeded subsample and/or random
projection) is chosen by :func:`pick_for_ranking` (the ``coreset`` sampler of
:mod:`labelrefine.active.registry`) from :data:`CORESET_EXACT_WORK`. See docs/design.md, "Samplers".
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from labelrefine.active.scores import Metric, _as_features

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


def pick_for_ranking(pool_features: np.ndarray, center_features: np.ndarray, m: int, seed: int,
                     *, metric: Metric = "euclidean",
                     exact_work: float | None = CORESET_EXACT_WORK,
                     project_dim: int | None = CORESET_PROJECT_DIM, max_pool: int | None = None,
                     device: str | torch.device = "cpu"
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``coreset`` sampler (:class:`labelrefine.active.registry.Coreset`): ``m`` picks.

    ``pool_features`` are the rows ranked (ascending item order, excluded items dropped).
    Greedy k-center is exact while ``rows * D * (centres + m) <= exact_work`` (times 100 on a
    non-CPU device; None = always exact); above it, ``project_dim`` and ``max_pool`` apply (see
    :func:`coreset_select`). Returns positions into the rows in pick order, their pick
    distances and every row's distance to the nearest clean centre.
    """
    feats = _as_features(pool_features, "pool_features")
    n_centres = np.shape(center_features)[0]
    work = float(feats.shape[0]) * feats.shape[1] * (n_centres + m)
    limit = exact_work
    if limit is not None and torch.device(device).type != "cpu":
        limit *= 100
    large = limit is not None and work > limit
    run = _coreset(feats, center_features, m, seed, metric=metric,
                   max_pool=max_pool if large else None,
                   project_dim=project_dim if large else None, device=device)
    return run.positions, run.pick_dist, run.clean_dist
