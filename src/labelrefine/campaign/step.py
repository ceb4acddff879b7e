"""One campaign round: train, rank the unanswered items, write the next queue.

Strategy ``find`` (the default for new campaigns; fixed at the first step) queues for the
expert's time: every round scores **every training item without an answer** -- phase 1's clean
set included, which holds most of the wrong labels phase 1 could not see -- with the finder
(:mod:`labelrefine.active.finding`: cleanlab's label quality on cross-fitted logistic
probabilities of the cached features, plus neighbour label agreement), and queues the top
scores plus a stratified random audit share (``find.audit_share``, default 10 %; mixed into the
queue, the same kind of reason as every other item) from which ``campaign status`` estimates
how many wrong labels are left in the whole training set (:mod:`labelrefine.active.audit`). The
network is trained as under ``plus`` (below) and gives the model F1. ``paper`` and ``plus``
are described next.

Round 0 (the first ``campaign step``) embeds the images (embedding mode; cached on disk) and runs
phase 1 -- CT_VOG, or Co-teaching when the mix ratio is 0 -- on the given labels of the ``train``
items. Its clean set is trusted with its *given* labels; the rest is the suspect pool.

Round r >= 1 loads round r-1's network and fine-tunes it with cross-entropy (fresh optimiser,
``epochs_per_round`` epochs, best-validation weights kept) on the trusted set: phase 1's clean
set plus every item an expert has labeled so far, with the experts' labels. ``unsure`` answers
leave an item out of both the training set and the pool.

Strategy ``plus`` (fixed at the first step, ``--strategy plus``) applies the two changes that
carry the simulated ``ours_plus`` pipeline's gain: the pool is every training item without a
current answer, not only phase 1's suspects, and each round r >= 1 is fitted twice from round
r-1's network -- on the trusted set and on the expert labels only -- keeping the fit with the
higher validation macro-F1 (``metrics.trained_on`` says which). ``paper`` (the default) is the
paper's method as described above.

Every round then ranks the pool -- phase-1 suspects without a current answer -- with the chosen
sampler and queues the top ``budget`` items with a reason each, and records the calibrated
model's expected number of wrong given labels in the pool and in the queue
(:mod:`labelrefine.campaign.estimates`). The round (metrics, per-item
probabilities, queue, network weights) is written in one transaction at the very end, so a
crash mid-step leaves the campaign as it was and rerunning the step redoes the same round; a
finished round is never repeated (a concurrent second step fails to write it).

The computation mirrors the simulated ``ours`` pipeline step for step (same seeds, same
sampler inputs, same fine-tuning), so with a scripted expert who answers with the true labels a
campaign reproduces the pipeline's per-round numbers.

Validation: model selection uses the ``val`` items with their labels as given in the CSV (a
stratified hold-out made at ``campaign init``, or an expert-verified subset marked by a split
column). ``test`` items, when present, are only reported.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from labelrefine import seeding
from labelrefine.active.finding import (
    RoundPlan,
    finding_reason,
    plan_round,
    plan_round_from_probs,
)
from labelrefine.active.registry import SAMPLER_NAMES, get_sampler
from labelrefine.active.round import propose, refit_select
from labelrefine.active.state import CleaningState
from labelrefine.active.strategies import TRAIN_ON, Strategy, campaign_strategy
from labelrefine.campaign import DEFAULT_STRATEGY, STRATEGIES
from labelrefine.campaign.create import (
    campaign_dataset,
    campaign_features,
    campaign_pred_probs,
    campaign_trusted,
)
from labelrefine.campaign.estimates import finder_estimate, model_estimate
from labelrefine.campaign.ledger import CampaignError, Ledger
from labelrefine.config import (
    ActiveConfig,
    EncoderConfig,
    ExperimentConfig,
    FindConfig,
    LNLConfig,
    load_config,
)
from labelrefine.data.dataset import ImageDataset
from labelrefine.lnl.guard import fallback_queue
from labelrefine.lnl.phase1 import build_source
from labelrefine.lnl.sources import for_training
from labelrefine.lnl.trainer import (
    EvalSet,
    FitResult,
    continue_from_best,
    predict,
    run_lnl,
    source_features,
)
from labelrefine.models.calibration import temperature_at_bound
from labelrefine.models.heads import Classifier, build_model
from labelrefine.runtime import resolve_device
from labelrefine.settings import CAMPAIGN_NOISE_RATE, DEFAULT_SAMPLERS
from labelrefine.settings import resolve as resolve_run

#: Samplers ``campaign step`` accepts: every registered one.
SAMPLERS = SAMPLER_NAMES


@dataclass
class StepOptions:
    """Options of one ``campaign step``.

    ``seed``, ``views``, ``epochs`` (phase 1), ``noise_rate`` and ``config`` / ``experiment``
    only matter at the first step; they are stored with round 0 and reused afterwards.
    ``budget``, ``sampler``, ``epochs`` (fine-tune), ``device`` and ``force`` apply per step.
    """

    budget: int | None = None
    sampler: str = DEFAULT_SAMPLERS["campaign"]
    seed: int = 0
    views: int | None = None
    epochs: int | None = None
    noise_rate: float = CAMPAIGN_NOISE_RATE
    config: Path | None = None
    experiment: ExperimentConfig | None = None
    device: str = "auto"
    force: bool = False
    strategy: str | None = None  # "find" / "paper" / "plus"; fixed at the first step
    audit_share: float | None = None  # find: random audit share of each round (first step)
    info_share: float | None = None  # find: share spent on high-entropy items (first step)


@dataclass
class StepResult:
    """What one step did."""

    round: int
    kind: str
    queued: int
    metrics: dict[str, Any]
    queue: list[tuple[str, str]] = field(default_factory=list)  # (item id, reason)
    temperature: float = 1.0  # calibration of the probabilities the estimate uses
    model_estimate: dict[str, Any] = field(default_factory=dict)  # (campaign.estimates)


@dataclass(frozen=True)
class Settings:
    """Training settings fixed at the first step (stored with round 0)."""

    encoder: EncoderConfig
    lnl: LNLConfig
    active: ActiveConfig
    seed: int
    tau: float
    strategy: str = "paper"
    find: FindConfig = field(default_factory=FindConfig)

    def as_dict(self) -> dict[str, Any]:
        return {
            "encoder": self.encoder.model_dump(mode="json"),
            "lnl": self.lnl.model_dump(mode="json", by_alias=True),
            "active": self.active.model_dump(mode="json"),
            "seed": self.seed,
            "tau": self.tau,
            "strategy": self.strategy,
            "find": self.find.model_dump(mode="json"),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Settings:
        return cls(
            encoder=EncoderConfig.model_validate(d["encoder"]),
            lnl=LNLConfig.model_validate(d["lnl"]),
            active=ActiveConfig.model_validate(d["active"]),
            seed=int(d["seed"]),
            tau=float(d["tau"]),
            strategy=str(d.get("strategy", "paper")),  # campaigns made before strategies
            find=FindConfig.model_validate(d.get("find", {})),
        )


def first_settings(opts: StepOptions, n_train: int) -> Settings:
    """Settings for round 0 from the options (an experiment config's encoder / lnl / active
    sections when given; its single noise setting supplies tau, mix and budget overrides),
    resolved as every run is (:func:`labelrefine.settings.resolve`: the override rules, then
    the schedule derived from the ``n_train`` training items)."""
    cfg = opts.experiment
    if cfg is None and opts.config is not None:
        cfg = load_config(opts.config)
    if cfg is None:
        encoder, lnl, active, noise = EncoderConfig(), LNLConfig(), ActiveConfig(), None
    else:  # a single noise setting supplies tau, mix and budget overrides
        encoder, lnl, active = cfg.encoder, cfg.lnl, cfg.active
        noise = cfg.noise[0] if len(cfg.noise) == 1 else None
    if opts.views is not None:
        encoder = encoder.model_copy(update={"views": int(opts.views)})
    if opts.epochs is not None:  # before the schedule: warm-up follows the epochs that run
        lnl = lnl.model_copy(update={"epochs": int(opts.epochs)})
    try:
        run = resolve_run(lnl, active, n_train=n_train, seed=int(opts.seed), noise=noise,
                          noise_rate=opts.noise_rate)
    except ValueError as err:
        raise CampaignError(str(err)) from None
    shares = {k: v for k, v in (("audit_share", opts.audit_share),
                                ("info_share", opts.info_share)) if v is not None}
    try:
        find = FindConfig.model_validate(shares)
    except ValueError as err:
        raise CampaignError(f"find options: {err}") from None
    return Settings(encoder=encoder, lnl=run.lnl.model_copy(update={"method": run.phase1_method}),
                    active=run.active, seed=run.seed, tau=run.tau,
                    strategy=opts.strategy or DEFAULT_STRATEGY, find=find)


def batch_source(dataset: ImageDataset, settings: Settings, device: str, progress: bool,
                 own: np.ndarray | None = None) -> Any:
    """Cached features (embedding mode) or an image source (fine-tune mode)
    (:func:`labelrefine.lnl.phase1.build_source`); ``own``: the team's own ``(N, D)``
    features (``campaign init --features / --encoder``), served as the plain view."""
    if own is not None:
        from labelrefine.lnl.sources import FeatureSource

        if settings.lnl.mode != "embedding":
            raise CampaignError("a campaign with its own features trains in embedding mode; "
                                "lnl.mode finetune does not apply")
        x = np.asarray(own, dtype=np.float32)
        return FeatureSource(np.zeros((0, *x.shape), dtype=np.float32), x)
    return build_source(dataset, settings.lnl, settings.encoder, device=device,
                        progress=progress)[0]


def model_bytes(model: Classifier) -> bytes:
    """The network's weights as bytes (``torch.save`` of the state dict, on CPU)."""
    buf = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buf)
    return buf.getvalue()


def load_model(data: bytes, settings: Settings, num_classes: int, in_dim: int | None) -> Classifier:
    """Rebuild a network from :func:`model_bytes` output."""
    model = build_model(settings.lnl, num_classes, in_dim, seed=0)
    state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return model


@dataclass
class _CampaignState:
    """The campaign's arrays for one step."""

    train_idx: np.ndarray
    val: EvalSet
    test: EvalSet | None
    given: np.ndarray
    labels: np.ndarray  # given labels with the experts' current labels applied
    labeled: np.ndarray  # train items with a current expert label
    answered: np.ndarray  # train items with any current answer (label or unsure)
    trusted: np.ndarray  # train items whose labels the team trusts (never queued)

    @property
    def settled(self) -> np.ndarray:
        """Train items never queued again: answered or trusted."""
        return np.union1d(self.answered, self.trusted)


def _state(ledger: Ledger) -> _CampaignState:
    items = ledger.items()
    role = items["role"].to_numpy()
    given = items["given_label"].to_numpy(dtype=np.int64)
    train_idx = np.flatnonzero(role == "train").astype(np.int64)
    val_idx = np.flatnonzero(role == "val").astype(np.int64)
    test_idx = np.flatnonzero(role == "test").astype(np.int64)
    if val_idx.size == 0:
        raise CampaignError(
            "the campaign has no validation items (role 'val'); create it with --val-fraction > 0"
            " or a split column that marks some items 'val'"
        )
    answers = ledger.final_answers()  # agreed / adjudicated labels; conflicts not trained on
    labels = given.copy()
    lab = answers[answers["kind"] == "label"]
    lab_items = lab["item"].to_numpy(dtype=np.int64)
    labels[lab_items] = lab["label"].to_numpy(dtype=np.int64)
    return _CampaignState(
        train_idx=train_idx,
        val=EvalSet(indices=val_idx, labels=given[val_idx]),
        test=EvalSet(indices=test_idx, labels=given[test_idx]) if test_idx.size else None,
        given=given,
        labels=labels,
        labeled=np.intersect1d(lab_items, train_idx),
        answered=np.intersect1d(answers["item"].to_numpy(dtype=np.int64), train_idx),
        trusted=np.intersect1d(campaign_trusted(ledger), train_idx),
    )


def _summary(fit: FitResult) -> dict[str, Any]:
    def num(x: float) -> float | None:
        return None if x is None or not np.isfinite(x) else float(x)

    out: dict[str, Any] = {
        "val_f1": num(fit.best_val_f1),
        "test_f1": num(fit.test_f1),
        "best_epoch": int(fit.best_epoch),
    }
    if fit.guard is not None:  # sanity check against trivial baselines (lnl.guard)
        out["guard"] = fit.guard.status
        out["guard_message"] = fit.guard.message
    return out


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[str, int], Callable[[int, int, dict], None]]]:
    """A rich progress display; yields ``task(description, total) -> epoch callback``."""
    if not enabled:
        yield lambda _d, _t: lambda _i, _n, _r: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        console=console,
    ) as bar:

        def task(description: str, total: int) -> Callable[[int, int, dict], None]:
            tid = bar.add_task(description, total=total, info="")

            def update(done: int, n: int, row: dict) -> None:
                f1 = row.get("val_f1", row.get("val_f1_f"))
                info = "" if f1 is None else f"val F1 {float(f1):.3f}"
                bar.update(tid, completed=done, total=n, info=info)

            return update

        yield task


def run_step(
    campaign: str | Path, opts: StepOptions | None = None, *, progress: bool = False
) -> StepResult:
    """Run the campaign's next round (see the module docstring) and return what it did."""
    opts = opts or StepOptions()
    try:
        get_sampler(opts.sampler)
    except ValueError as err:
        raise CampaignError(str(err)) from None
    if opts.strategy is not None and opts.strategy not in STRATEGIES:
        raise CampaignError(f"unknown strategy {opts.strategy!r}; choose one of "
                            f"{', '.join(STRATEGIES)}")
    ledger = Ledger(campaign)
    rounds = ledger.rounds()
    rnd = len(rounds)
    if rnd and not opts.force:
        done, total = ledger.progress(rnd - 1)
        if done < total:
            raise CampaignError(
                f"round {rnd - 1} still has {total - done} of {total} queued items unanswered; "
                "answer them first, or pass --force to step anyway (they return to the pool)"
            )
    st = _state(ledger)
    n_train = int(st.train_idx.size)
    if rnd == 0:
        settings = first_settings(opts, n_train)
    else:
        settings = Settings.from_dict(rounds["settings"].iloc[0])
        if opts.strategy is not None and opts.strategy != settings.strategy:
            raise CampaignError(f"the strategy is fixed at the first step; this campaign uses "
                                f"{settings.strategy!r}, not {opts.strategy!r}")
    strategy = campaign_strategy(settings.strategy, settings.find.train_on)
    device = str(resolve_device(opts.device))
    names = ledger.class_names
    c = len(names)
    budget = int(opts.budget) if opts.budget is not None else settings.active.budget(n_train)
    if budget < 1:
        raise CampaignError(f"budget must be >= 1, got {budget}")
    given_probs = campaign_pred_probs(ledger)
    if given_probs is not None:  # the team's own probabilities: nothing to train
        return _step_on_given_probs(ledger, settings, st, rnd, budget, given_probs)
    dataset = campaign_dataset(ledger)
    own = campaign_features(ledger, dataset, device=device, progress=progress)
    source = for_training(batch_source(dataset, settings, device, progress, own), st.train_idx,
                          settings.lnl)
    in_dim = getattr(source, "in_dim", None)
    seed = settings.seed

    with _progress(progress) as task:
        if rnd == 0:
            kind = "phase1"
            lnl = settings.lnl
            res = run_lnl(
                lnl,
                source,
                st.train_idx,
                st.given,
                num_classes=c,
                val=st.val,
                test=st.test,
                seed=seed,
                tau=settings.tau,
                device=device,
                class_names=names,
                progress=task(f"phase 1 ({lnl.method})", lnl.epochs),
            )
            model = res.model
            if settings.active.protocol == "equal":  # as the simulated pipelines do
                res.fit = continue_from_best(model, res.fit, source, st.train_idx, st.given,
                                             st.val, device=device)
            # trusted labels are always in the clean set
            phase1_clean = np.union1d(np.asarray(res.clean_idx, dtype=np.int64), st.trusted)
            metrics = _summary(res.fit)
            epochs = lnl.epochs
        else:
            kind = "finetune"
            data = ledger.checkpoint(rnd - 1)
            if data is None:
                raise CampaignError(f"round {rnd - 1} stored no network to fine-tune")
            s0 = ledger.scores(0)
            s0 = s0[s0["clean"].to_numpy()]
            phase1_clean = np.intersect1d(s0["item"].to_numpy(dtype=np.int64), st.train_idx)
            epochs = (
                int(opts.epochs) if opts.epochs is not None else settings.active.epochs_per_round
            )
            state = _cleaning_state(strategy, st, phase1_clean)
            candidates = _candidates(strategy, state)
            trained_on, model, fit = refit_select(  # each from round r-1's network
                lambda: load_model(data, settings, c, in_dim),
                source,
                candidates,
                state.labels,
                active=settings.active,
                lnl=settings.lnl,
                val=st.val,
                test=st.test,
                seed=seed,
                rnd=rnd,
                device=device,
                epochs=epochs,
                progress=lambda name: task(
                    f"round {rnd}: fine-tune" + (f" on {name}" if len(candidates) > 1 else ""),
                    epochs,
                ),
            )
            trained = candidates[trained_on]
            metrics = _summary(fit)
            if len(candidates) > 1:
                metrics["trained_on"] = trained_on

    if rnd == 0:
        state = _cleaning_state(strategy, st, phase1_clean)
        trained = state.trusted
    pool = state.pool
    all_idx = np.arange(len(st.given), dtype=np.int64)
    probs_all, emb_all = predict(model, source, all_idx, device=device)
    k = min(budget, int(pool.size))
    queue: list[tuple[int, float | None, str]] = []
    finder: dict[str, Any] | None = None
    fallback = (settings.strategy != "find" and settings.active.guard_fallback
                and metrics.get("guard", "ok") != "ok")
    features = source_features(source, all_idx) if fallback else None
    if k > 0 and settings.strategy == "find":
        x = source_features(source, all_idx)
        queue, finder = _find_queue(settings.find, emb_all if x is None else x, st, k, seed,
                                    rnd, names)
        metrics["queue_ranking"] = "finder (out-of-sample label quality + neighbours)"
    elif k > 0 and features is not None:
        # The model failed its sanity check: its probabilities would rank the pool by noise.
        items, scores, reasons = fallback_queue(features, st.labels, st.train_idx, pool, k,
                                                class_names=names)
        queue = [(int(i), float(s), r) for i, s, r in zip(items, scores, reasons, strict=True)]
        metrics["queue_ranking"] = "model-free (neighbour label disagreement)"
    elif k > 0:
        # The simulated loop's round, on the same arrays (the pool, the trusted set) and with
        # the same sampler seed (this step draws the queue of round rnd + 1).
        ranking = propose(
            model,
            source,
            pool=pool,
            trusted=state.trusted,
            labels=state.labels,
            sampler=opts.sampler,
            k=k,
            seed=seed,
            rnd=seeding.queue_round(rnd),
            device=device,
            class_names=names,
            with_reasons=True,
        )
        queue = [
            (int(i), float(s), str(r))
            for i, s, r in zip(ranking.items, ranking.scores, ranking.reasons, strict=True)
        ]
    # The calibrated model's expected wrong given labels in the pool and in the queue.
    estimate = model_estimate(probs_all, st.given, pool=pool,
                              queue=np.array([i for i, _, _ in queue], dtype=np.int64),
                              class_names=names)
    estimate["calibrated"] = bool(model.options.calibrate)
    temperature = float(getattr(model, "temperature", 1.0))
    estimate["temperature_at_bound"] = temperature_at_bound(temperature)
    if finder is not None:
        metrics["audit"] = finder["audit"]
        estimate["finder"] = finder["estimate"]
    metrics |= {
        "epochs": int(epochs),
        "labels_bought": int(st.labeled.size),
        "answered": int(st.answered.size),
        "n_clean": int(trained.size),
        "n_pool": int(pool.size),
        "n_phase1_clean": int(phase1_clean.size),
    }
    if st.trusted.size:
        metrics["n_trusted"] = int(st.trusted.size)
    # Round 0 records phase 1's clean set exactly (later rounds read it back); later rounds
    # record the set they trained on.
    clean_mask = np.zeros(len(st.given), dtype=bool)
    clean_mask[phase1_clean if rnd == 0 else trained] = True
    ledger.write_round(
        rnd,
        kind=kind,
        sampler=opts.sampler,
        budget=budget,
        seed=seed,
        settings=settings.as_dict(),
        metrics=metrics,
        probs=probs_all,
        scored_items=all_idx,
        clean=clean_mask,
        pool_scores={i: s for i, s, _ in queue if s is not None},
        queue=queue,
        checkpoint=model_bytes(model),
        temperature=temperature,
        model_estimate=estimate,
    )
    keys = ledger.items()["key"].tolist()
    metrics.pop("audit", None)  # the audit design is the ledger's, never shown
    return StepResult(
        round=rnd,
        kind=kind,
        queued=len(queue),
        metrics=json.loads(json.dumps(metrics)),
        queue=[(keys[i], r) for i, _, r in queue],
        temperature=temperature,
        model_estimate=json.loads(json.dumps(estimate)),
    )


def _cleaning_state(strategy: Strategy, st: _CampaignState,
                    phase1_clean: np.ndarray) -> CleaningState:
    """The campaign's :class:`~labelrefine.active.state.CleaningState` as its ledger holds it:
    the experts' labels applied, the strategy's pool without the settled items, the trusted
    set phase 1's clean set plus the expert-labeled items."""
    return strategy.start(st.labels, train=st.train_idx, clean=phase1_clean,
                          settled=st.settled, answered=st.labeled)


def _candidates(strategy: Strategy, state: CleaningState) -> dict[str, np.ndarray]:
    """The training sets a fine-tuning round fits from the same weights (the better-validating
    is kept): the strategy's (:mod:`labelrefine.active.strategies`); the ``pruned``
    candidates are simulated only (``ours_find``)."""
    if "pruned" in TRAIN_ON[strategy.train_on]:
        raise CampaignError("find.train_on with 'pruned' is simulated only (ours_find)")
    return strategy.candidates(state)


def _find_queue(opts: FindConfig, features: np.ndarray, st: _CampaignState, k: int, seed: int,
                rnd: int, names: Any) -> tuple[list[tuple[int, float | None, str]],
                                               dict[str, Any]]:
    """The ``find`` strategy's queue (:func:`labelrefine.active.finding.plan_round` over every
    unanswered training item, seeded as the simulated ``ours_find`` round that buys it), with
    a plain-words reason per item, and what the ledger keeps for the audit estimate."""
    plan = plan_round(np.asarray(features), st.labels, st.train_idx, st.settled, k,
                      len(names), seed=seeding.sampler_seed(seed, seeding.queue_round(rnd)),
                      audit_share=opts.audit_share, info_share=opts.info_share,
                      weight=opts.weight, c=opts.c, k=opts.neighbours, folds=opts.folds,
                      dims=opts.dims)
    queue, audit = _queue_and_audit(plan, st, names, neighbours=opts.neighbours)
    fnd = plan.finding
    unanswered = np.flatnonzero(~np.isin(plan.train_idx, st.settled))
    return queue, {
        "audit": audit,
        "estimate": finder_estimate(fnd.probs[unanswered], st.labels[plan.train_idx][unanswered]),
    }


def _queue_and_audit(plan: RoundPlan, st: _CampaignState, names: Any, *,
                     neighbours: int | None) -> tuple[list[tuple[int, float | None, str]],
                                                      dict[str, Any]]:
    """A finding round's queue in order, each item with its score and plain-words reason
    (with the neighbour count when ``neighbours`` is given), and the audit design the ledger
    keeps (population, strata, audit items, the recalibrated wrong-probabilities)."""
    fnd = plan.finding
    row = {int(i): r for r, i in enumerate(plan.train_idx)}
    queue = [(int(i), float(fnd.scores[row[int(i)]]),
              finding_reason(fnd.probs[row[int(i)]], int(st.labels[i]),
                             None if neighbours is None else float(fnd.agreement[row[int(i)]]),
                             neighbours or 0, names))
             for i in plan.queue.order]
    answer = np.full(st.given.size, -1, dtype=np.int64)
    answer[st.labeled] = st.labels[st.labeled]
    audit = plan.audit_round(st.given, answer)
    return queue, {**plan.queue.design(), "m": [round(float(v), 6) for v in audit.m]}


def _step_on_given_probs(ledger: Ledger, settings: Settings, st: _CampaignState, rnd: int,
                         budget: int, probs: np.ndarray) -> StepResult:
    """A round of a campaign on the team's own out-of-sample probabilities (``campaign init
    --pred-probs``): no network, no retraining. The queue is the ``find`` strategy's over
    every unanswered, untrusted training item, ranked by cleanlab's self-confidence label
    quality of the given probabilities, with the audit share; the round stores the
    probabilities as its scores, no weights."""
    if settings.strategy != "find":
        raise CampaignError("a campaign on given probabilities queues with --strategy find "
                            f"(it trains nothing), not {settings.strategy!r}")
    names = ledger.class_names
    opts = settings.find
    pool = campaign_strategy("find").pool_of(st.train_idx, np.zeros(0, dtype=np.int64),
                                             settled=st.settled)
    k = min(budget, int(pool.size))
    all_idx = np.arange(len(st.given), dtype=np.int64)
    metrics: dict[str, Any] = {
        "retrained": False, "queue_ranking": "your probabilities (cleanlab self-confidence)",
        "labels_bought": int(st.labeled.size), "answered": int(st.answered.size),
        "n_pool": int(pool.size), "n_clean": 0, "n_phase1_clean": 0, "epochs": 0,
    }
    if st.trusted.size:
        metrics["n_trusted"] = int(st.trusted.size)
    queue: list[tuple[int, float | None, str]] = []
    if k > 0:
        plan = plan_round_from_probs(
            probs, st.labels, st.train_idx, st.settled, k,
            seed=seeding.sampler_seed(settings.seed, seeding.queue_round(rnd)),
            audit_share=opts.audit_share, info_share=opts.info_share)
        queue, metrics["audit"] = _queue_and_audit(plan, st, names, neighbours=None)
    estimate = model_estimate(probs, st.given, pool=pool,
                              queue=np.array([i for i, _, _ in queue], dtype=np.int64),
                              class_names=names)
    estimate["finder"] = finder_estimate(probs[pool], st.labels[pool])
    estimate["calibrated"] = False
    ledger.write_round(
        rnd, kind="given", sampler="find", budget=budget, seed=settings.seed,
        settings=settings.as_dict(), metrics=metrics, probs=probs, scored_items=all_idx,
        clean=np.zeros(len(st.given), dtype=bool),
        pool_scores={i: s for i, s, _ in queue if s is not None}, queue=queue,
        checkpoint=None, temperature=None, model_estimate=estimate,
    )
    metrics.pop("audit", None)
    keys = ledger.items()["key"].tolist()
    return StepResult(round=rnd, kind="given", queued=len(queue),
                      metrics=json.loads(json.dumps(metrics)),
                      queue=[(keys[i], r) for i, _, r in queue], temperature=1.0,
                      model_estimate=json.loads(json.dumps(estimate)))
