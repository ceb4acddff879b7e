"""Phase 2, simulated: rounds of active label cleaning (docs/design.md, "A round").

Round 0 evaluates the model phase 2 starts from. Each round 1..M ranks the pool (items not yet
relabeled) with a sampler (:func:`labelrefine.active.round.propose`), sends the top ``budget``
to the oracle, replaces their labels by the answers, moves them into the trusted set
(:meth:`~labelrefine.active.state.CleaningState.apply`) and fine-tunes the model
(:func:`~labelrefine.active.round.refit`) on the trusted set; then it evaluates. Every
simulated pipeline runs its rounds with :func:`cleaning_rounds` (its own queue and fit steps)
and writes them with :func:`round_zero` and :func:`round_record`. The clean set
keeps its *given* labels: only queried items get the oracle's answer. ``oracle_leak=True``
reproduces the official code's leak (the clean set's labels replaced by ground truth) and is
an upper bound, not a method.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from labelrefine import seeding
from labelrefine.active.oracle import SyncOracle
from labelrefine.active.round import propose, refit
from labelrefine.active.state import AnswerStep, CleaningState
from labelrefine.config import ActiveConfig, LNLConfig
from labelrefine.data.prepare import PreparedData
from labelrefine.lnl.trainer import EvalSet, FitResult, predict
from labelrefine.metrics import macro_f1, per_class_recall, query_precision
from labelrefine.models.heads import Classifier

#: ``train_fn(model, trusted, labels, round) -> FitResult``: one round of phase-2 training.
TrainFn = Callable[[Classifier, np.ndarray, np.ndarray, int], FitResult]


@dataclass
class LoopResult:
    """What phase 2 returns: one record per round plus the final state."""

    records: list[dict[str, Any]]
    labels: np.ndarray  # (N,) labels after the last round
    trusted: np.ndarray  # final trusted set: what the last fit trained on (sorted)
    queried: list[np.ndarray] = field(default_factory=list)  # items bought, per round
    model: Classifier | None = None


def eval_sets(data: PreparedData) -> tuple[EvalSet, EvalSet | None]:
    """Validation and test sets with their true labels (both splits are noise-free)."""
    val = EvalSet(indices=data.val_idx, labels=data.true_labels[data.val_idx])
    test = None
    if data.test_idx.size:
        test = EvalSet(indices=data.test_idx, labels=data.true_labels[data.test_idx])
    return val, test


def evaluate(model: Classifier, source: Any, data: PreparedData, *, batch_size: int = 1024,
             device: str = "cpu") -> dict[str, Any]:
    """Val and test macro-F1 and per-class test recall of ``model`` as it is now."""
    c = data.num_classes
    val_probs, _ = predict(model, source, data.val_idx, batch_size=batch_size, device=device)
    out: dict[str, Any] = {
        "val_f1": macro_f1(data.true_labels[data.val_idx], val_probs.argmax(1), c),
        "test_f1": float("nan"),
        "test_recall": [],
    }
    if data.test_idx.size:
        probs, _ = predict(model, source, data.test_idx, batch_size=batch_size, device=device)
        y = data.true_labels[data.test_idx]
        out["test_f1"] = macro_f1(y, probs.argmax(1), c)
        out["test_recall"] = per_class_recall(y, probs.argmax(1), c).tolist()
    return out


def fit_summary(fit: FitResult) -> dict[str, Any]:
    """The per-round numbers of a :class:`FitResult` (test F1 at the best-val epoch)."""
    return {
        "val_f1": float(fit.best_val_f1),
        "test_f1": float(fit.test_f1),
        "test_recall": np.asarray(fit.test_recall, dtype=np.float64).tolist(),
        "best_epoch": int(fit.best_epoch),
        "guard": None if fit.guard is None else fit.guard.status,
    }


def round_zero(fit: FitResult | dict[str, Any], *, n_clean: int, labels_bought: int = 0,
               seconds: float = 0.0) -> dict[str, Any]:
    """The record of round 0 (the model phase 2 starts from; nothing queried yet), the one
    shape every pipeline writes: ``fit`` a :class:`FitResult` or its :func:`fit_summary`."""
    summary = fit if isinstance(fit, dict) else fit_summary(fit)
    return {"round": 0, "labels_bought": int(labels_bought), **summary,
            "query_precision": None, "n_clean": int(n_clean), "n_queried": 0, "n_changed": 0,
            "oracle_wrong": 0, "seconds": float(seconds)}


def round_record(rnd: int, step: AnswerStep, fit: FitResult, *, bought: int, n_trained: int,
                 given: np.ndarray, true: np.ndarray, seconds: float,
                 **extra: Any) -> dict[str, Any]:
    """The record of round ``rnd`` >= 1, the one shape every simulated pipeline writes:
    cumulative ``labels_bought``, the fit's numbers, ``query_precision`` (share of bought items
    whose ``given`` label was wrong), ``n_clean`` (items the fit trained on), ``n_queried``,
    ``n_changed``, ``oracle_wrong`` (sure answers that differ from ``true``), ``n_unsure``,
    the pipeline's ``extra`` columns and ``seconds``."""
    picked, answers, sure = step.picked, step.answers, step.sure
    return {
        "round": int(rnd),
        "labels_bought": int(bought),
        **fit_summary(fit),
        "query_precision": query_precision(picked, given, true),
        "n_clean": int(n_trained),
        "n_queried": int(picked.size),
        "n_changed": int(step.n_changed),
        "oracle_wrong": int(np.sum(answers[sure] != true[picked[sure]])),
        "n_unsure": int(np.sum(~sure)),
        **extra,
        "seconds": float(seconds),
    }


@dataclass(frozen=True)
class Fitted:
    """What a round's fit step returns: the state after the round (a strategy may re-split
    it), the fit, how many items it trained on and the pipeline's own record columns."""

    state: CleaningState
    fit: FitResult
    n_trained: int
    extra: dict[str, Any] = field(default_factory=dict)


#: ``queue(state, round) -> items``: the round's queue from the state's pool.
QueueFn = Callable[[CleaningState, int], np.ndarray]
#: ``fit(state, step, round) -> Fitted``: train after the answers were applied.
FitFn = Callable[[CleaningState, AnswerStep, int], Fitted]


@dataclass
class Rounds:
    """What :func:`cleaning_rounds` returns."""

    records: list[dict[str, Any]]
    state: CleaningState
    queried: list[np.ndarray]


def cleaning_rounds(state: CleaningState, *, rounds: int, oracle: SyncOracle, queue: QueueFn,
                    fit: FitFn, data: PreparedData,
                    say: Callable[[str], None] | None = None) -> Rounds:
    """Rounds ``1..rounds`` of simulated label cleaning, the one loop every simulated
    pipeline drives: ``queue`` picks from ``state.pool``, the oracle answers,
    :meth:`CleaningState.apply` applies the answers, ``fit`` trains; each round writes a
    :func:`round_record`. Stops early when the pool is empty."""
    records: list[dict[str, Any]] = []
    queried: list[np.ndarray] = []
    bought = 0
    for rnd in range(1, rounds + 1):
        if state.pool.size == 0:
            break
        t0 = time.perf_counter()
        picked = np.asarray(queue(state, rnd), dtype=np.int64)
        state, step = state.apply(picked, oracle.query(picked))
        bought += int(picked.size)
        queried.append(picked)
        done = fit(state, step, rnd)
        state = done.state
        records.append(round_record(rnd, step, done.fit, bought=bought,
                                    n_trained=done.n_trained, given=data.given_labels,
                                    true=data.true_labels, seconds=time.perf_counter() - t0,
                                    **done.extra))
        if say:
            say(f"round {rnd}: {bought} labels, test F1 {records[-1]['test_f1']:.3f}")
    return Rounds(records=records, state=state, queried=queried)


@dataclass(frozen=True)
class LoopSettings:
    """What every round of the simulated loop uses, resolved once by the caller: the phase-2
    settings ``active`` (rounds, epochs per round, lr), the ``lnl`` training settings (batch
    size, momentum, weight decay), the labels bought per round ``budget`` (checked here, the
    one check), the run ``seed`` and the ``device``."""

    active: ActiveConfig
    lnl: LNLConfig
    budget: int
    seed: int
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.budget < 1:
            raise ValueError(f"active_loop: budget must be >= 1, got {self.budget}")


def ce_round_trainer(source: Any, data: PreparedData, settings: LoopSettings, *,
                     epochs: int | None = None) -> TrainFn:
    """Default phase-2 training: CE on the trusted set, ``epochs_per_round`` epochs, fresh
    SGD."""
    val, test = eval_sets(data)

    def train(model: Classifier, trusted: np.ndarray, labels: np.ndarray, rnd: int) -> FitResult:
        return refit(model, source, trusted, labels, active=settings.active, lnl=settings.lnl,
                     val=val, test=test, seed=settings.seed, rnd=rnd, device=settings.device,
                     epochs=epochs)

    return train


def active_loop(
    model: Classifier | None,
    source: Any,
    data: PreparedData,
    *,
    trusted: np.ndarray,
    pool_idx: np.ndarray,
    sampler: str,
    oracle: SyncOracle,
    settings: LoopSettings,
    labels: np.ndarray | None = None,
    round0: FitResult | None = None,
    train_fn: TrainFn | None = None,
    model_factory: Callable[[], Classifier] | None = None,
    first_fit_epochs: int | None = None,
    oracle_leak: bool = False,
    progress: Callable[[str], None] | None = None,
) -> LoopResult:
    """Run round 0 and rounds ``1..cfg.rounds`` of active label cleaning.

    Args:
        model: network phase 2 starts from (fine-tuned in place), or None when there is none
            yet (active learning from scratch: the first round then buys a random seed set and
            trains ``model_factory()`` on it for ``first_fit_epochs``; round 0 is skipped).
        trusted: items trained on in phase 2 before any purchase (LNL's clean set; may be
            empty). Items answered with a label join it.
        pool_idx: items that may be queried (each at most once).
        sampler: ``random``, ``entropy``, ``margin``, ``coreset`` or ``joint``.
        oracle: answers queries (:class:`labelrefine.active.oracle.SimulatedOracle`); an
            "unsure" answer removes the item from the pool without changing its label.
        settings: rounds, training, labels bought per round (``a_l``; the last rounds buy fewer
            if the pool runs out), seed and device (:class:`LoopSettings`).
        labels: starting (N,) labels; default ``data.given_labels``. Never modified in place.
        round0: phase-1 fit whose best-val numbers are round 0 (default: evaluate ``model``).
        train_fn: per-round training; default CE on the clean set (:func:`ce_round_trainer`).
        oracle_leak: replace the clean set's labels by ground truth first (upper bound only).
        progress: called with a short status line after each round.

    Returns:
        :class:`LoopResult` whose records hold, per round: ``round``, ``labels_bought``
        (cumulative), ``test_f1`` (at the best-val epoch), ``val_f1``, ``test_recall``,
        ``query_precision`` (share of bought items whose given label was wrong), ``n_clean``,
        ``n_queried``, ``n_changed`` (answers that differ from the label they replace),
        ``oracle_wrong`` (answers that differ from the truth) and ``seconds``.
    """
    if model is None and model_factory is None:
        raise ValueError("active_loop: model is None and no model_factory was given")
    cfg, seed, device = settings.active, settings.seed, settings.device
    labels = (data.given_labels if labels is None else labels).astype(np.int64, copy=True)
    trusted = np.unique(np.asarray(trusted, dtype=np.int64))
    if oracle_leak and trusted.size:
        labels[trusted] = data.true_labels[trusted]
    state = CleaningState.start(labels, pool=pool_idx, trusted=trusted)
    train = train_fn or ce_round_trainer(source, data, settings)

    records: list[dict[str, Any]] = []
    if model is not None:
        t0 = time.perf_counter()
        ev = fit_summary(round0) if round0 is not None else evaluate(model, source, data,
                                                                    device=device)
        records.append(round_zero(ev, n_clean=int(state.trusted.size),
                                  seconds=time.perf_counter() - t0))
        if progress:
            progress(f"round 0: test F1 {ev['test_f1']:.3f}")

    def queue(state: CleaningState, rnd: int) -> np.ndarray:
        return propose(model, source, pool=state.pool, trusted=state.trusted,
                       labels=state.labels, sampler=sampler, k=settings.budget, seed=seed,
                       rnd=rnd, device=device).items

    def fit_round(state: CleaningState, step: AnswerStep, rnd: int) -> Fitted:
        nonlocal model
        if model is None:
            assert model_factory is not None
            torch.manual_seed(seeding.round_seed(seed, rnd))
            model = model_factory()
            fit = ce_round_trainer(source, data, settings, epochs=first_fit_epochs)(
                model, state.trusted, state.labels, rnd)
        else:
            fit = train(model, state.trusted, state.labels, rnd)
        return Fitted(state, fit, n_trained=int(state.trusted.size))

    done = cleaning_rounds(state, rounds=cfg.rounds, oracle=oracle, queue=queue, fit=fit_round,
                           data=data, say=progress)
    records += done.records
    state, queried = done.state, done.queried
    return LoopResult(records=records, labels=state.labels, trusted=state.trusted,
                      queried=queried, model=model)
