"""One round of active label cleaning, shared by the simulated loop and ``campaign step``.

A round has two halves (docs/design.md, "A round"):

* :func:`propose` -- model outputs on the pool (what the sampler needs), then the sampler's
  ranking of the pool with a score and a reason per item: the queue.
* :func:`refit` -- fine-tune the network with cross-entropy on the trusted set (phase 1's
  clean set plus every answered item, with the answers as labels): fresh SGD optimiser,
  ``active.epochs_per_round`` epochs, best-validation weights kept. :func:`refit_select`
  fits several candidate training sets from the same weights and keeps the best-validating
  (``ours_plus`` and ``campaign step --strategy plus``).

Between the two, answers arrive: from a simulated oracle in :func:`labelrefine.active.loop.
active_loop` and the simulated pipelines, from experts through the campaign ledger in
:mod:`labelrefine.campaign.step`; :meth:`labelrefine.active.state.CleaningState.apply` updates
labels, pool and trusted set, and a :class:`~labelrefine.active.strategies.Strategy` says which
items may be queried and which candidate training sets a round fits. Both sides call these
functions with the same arrays and seeds (:mod:`labelrefine.seeding`), so a campaign whose
expert answers with the true labels reproduces its simulated twin round for round.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from labelrefine import seeding
from labelrefine.active.samplers import Ranking, ranked
from labelrefine.config import ActiveConfig, LNLConfig
from labelrefine.lnl.trainer import EvalSet, FitResult, ProgressFn, fit_ce, predict
from labelrefine.models.heads import Classifier

#: Samplers that rank without any model output (used before a first model exists).
MODEL_FREE_SAMPLER = "random"


def sampler_inputs(model: Classifier, source: Any, pool: np.ndarray, trusted: np.ndarray,
                   labels: np.ndarray, needs: Sequence[str], *,
                   device: str = "cpu") -> dict[str, Any]:
    """The model outputs named in ``needs``, aligned with ``pool``.

    ``probs`` / ``given_labels``: pool probabilities and current labels; ``pool_features`` /
    ``center_features``: penultimate-layer embeddings of the pool and of the ``trusted`` set
    (coreset's initial centres; an empty ``(0, D)`` array when nothing is trusted yet).
    """
    needs = set(needs)
    if not needs:
        return {}
    probs, emb = predict(model, source, pool, device=device)
    inputs: dict[str, Any] = {"probs": probs, "given_labels": labels[pool]}
    if needs & {"pool_features", "center_features"}:
        if trusted.size:
            _, centers = predict(model, source, trusted, device=device)
        else:
            centers = np.zeros((0, emb.shape[1]), dtype=emb.dtype)
        inputs["pool_features"] = emb
        inputs["center_features"] = centers
    return inputs


def propose(model: Classifier | None, source: Any, *, pool: np.ndarray, trusted: np.ndarray,
            labels: np.ndarray, sampler: str, k: int, seed: int, rnd: int,
            device: str = "cpu", class_names: Sequence[str] | None = None,
            with_reasons: bool = False) -> Ranking:
    """Rank ``pool`` with ``sampler`` and return the top ``k`` (the queue bought in ``rnd``).

    Args:
        model: the current network; None before any exists (then the ranking is random).
        pool: items that may be queried; trusted: items trained on (coreset's centres).
        labels: ``(N,)`` current labels (the given ones with answers applied).
        seed, rnd: run seed and the round that buys this queue; the sampler is seeded with
            :func:`labelrefine.seeding.sampler_seed` ``(seed, rnd)``.
        with_reasons: also explain each pick (the model's probabilities are then computed
            for every sampler, the random one included, to say what the model predicts).
    """
    from labelrefine.active.samplers import sampler_needs

    pool = np.asarray(pool, dtype=np.int64)
    name = sampler if model is not None else MODEL_FREE_SAMPLER
    needs = set(sampler_needs(name))
    if with_reasons:
        needs |= {"probs", "given_labels"}
    inputs = ({} if model is None else
              sampler_inputs(model, source, pool, np.asarray(trusted, dtype=np.int64), labels,
                             sorted(needs), device=device))
    return ranked(name, min(int(k), int(pool.size)), pool=pool,
                  seed=seeding.sampler_seed(seed, rnd), class_names=class_names,
                  with_reasons=with_reasons, device=device, **inputs)


def refit(model: Classifier, source: Any, trusted: np.ndarray, labels: np.ndarray, *,
          active: ActiveConfig, lnl: LNLConfig, val: EvalSet, test: EvalSet | None, seed: int,
          rnd: int, device: str = "cpu", epochs: int | None = None,
          progress: ProgressFn | None = None) -> FitResult:
    """Fine-tune ``model`` in place with CE on ``trusted`` (fresh SGD, best-val weights kept).

    ``epochs`` defaults to ``active.epochs_per_round``; learning rate ``active.lr``; batch
    size, momentum and weight decay from ``lnl``; seeded with
    :func:`labelrefine.seeding.round_seed` ``(seed, rnd)``.
    """
    return fit_ce(
        model, source, trusted, labels,
        epochs=epochs if epochs is not None else active.epochs_per_round,
        lr=active.lr, batch_size=lnl.batch_size, val=val, test=test,
        seed=seeding.round_seed(seed, rnd), momentum=lnl.momentum,
        weight_decay=lnl.weight_decay, device=device, progress=progress,
    )


def refit_select(make_net: Callable[[], Classifier], source: Any,
                 candidates: Mapping[str, np.ndarray], labels: np.ndarray, *,
                 progress: Callable[[str], ProgressFn | None] | None = None,
                 **refit_kw: Any) -> tuple[str, Classifier, FitResult]:
    """:func:`refit` a fresh network (``make_net()``, the same starting weights each time) on
    every candidate training set; return the name, network and fit with the highest
    validation macro-F1 (the first candidate on ties). Validation decides, never test."""
    best: tuple[str, Classifier, FitResult] | None = None
    for name, items in candidates.items():
        net = make_net()
        fit = refit(net, source, items, labels,
                    progress=None if progress is None else progress(name), **refit_kw)
        if best is None or fit.best_val_f1 > best[2].best_val_f1:
            best = (name, net, fit)
    if best is None:
        raise ValueError("no candidate training set")
    return best
