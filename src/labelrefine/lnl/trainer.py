"""The LNL training engine (phase 1: :func:`train_lnl` running a method registered in
:mod:`labelrefine.lnl.methods`, VOG from :mod:`labelrefine.lnl.recorders`), plus plain CE fitting.

One loop serves both execution modes; only the model (:func:`labelrefine.models.heads.build_model`)
and the batch source (:mod:`labelrefine.lnl.sources`) differ. Sources yield ``(indices, x)``
batches; labels are full-length ``(N,)`` arrays indexed by item.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from labelrefine.config import LNLConfig
from labelrefine.lnl.guard import GuardReport, sanity_check
from labelrefine.lnl.methods import BatchLosses, LNLMethod, get_method
from labelrefine.lnl.recorders import TrainBatch, make_recorder
from labelrefine.lnl.schedule import forget_rates
from labelrefine.metrics import (
    class_selection_diagnostics,
    macro_f1,
    per_class_recall,
    selection_precision_recall,
)
from labelrefine.models.calibration import fit_temperature
from labelrefine.models.heads import Classifier, build_model
from labelrefine.runtime import resolve_device
from labelrefine.validation import NonFiniteError, check_indices, check_labels

ProgressFn = Callable[[int, int, dict[str, Any]], None]
"""Called after every epoch with ``(epochs_done, epochs_total, history_row)``."""


def _non_finite(stage: str, what: str, epoch: int | None = None) -> NonFiniteError:
    at = f" at epoch {epoch}" if epoch is not None else ""
    return NonFiniteError(
        f"{stage}: {what} became non-finite{at}. Likely causes: a learning rate too large for "
        f"these features (lower lr), or feature dimensions that are nearly constant on the "
        f"standardisation statistics but not in the augmented views (use lnl.standardize: "
        f"train_views)"
    )


class BatchSource(Protocol):
    """What the engine needs from a source (FeatureSource or ImageSource)."""

    in_dim: int | None

    def train_batches(
        self, indices: np.ndarray, batch_size: int, rng: np.random.Generator
    ) -> Iterator[tuple[np.ndarray, torch.Tensor]]: ...

    def eval_batches(
        self, indices: np.ndarray, batch_size: int
    ) -> Iterator[tuple[np.ndarray, torch.Tensor]]: ...


@dataclass
class EvalSet:
    """Items to evaluate on and their (clean) labels, aligned with ``indices``."""

    indices: np.ndarray
    labels: np.ndarray

    def __post_init__(self) -> None:
        self.indices = np.asarray(self.indices, dtype=np.int64)
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if self.indices.shape != self.labels.shape:
            raise ValueError(
                f"EvalSet: {self.indices.shape[0]} indices but {self.labels.shape[0]} labels"
            )


@dataclass
class FitResult:
    """Per-epoch history and the best-validation checkpoint's scores."""

    history: list[dict]
    best_epoch: int
    best_val_f1: float
    test_f1: float
    test_recall: np.ndarray
    best_state: dict[str, torch.Tensor] | None = field(default=None, repr=False)
    guard: GuardReport | None = None  # sanity check of the returned model (lnl.guard)
    temperature: float = 1.0  # fitted on the validation split when the model calibrates


@dataclass
class LNLResult:
    """Output of phase 1 (see :func:`run_lnl`)."""

    model: Classifier
    peer: Classifier | None
    clean_idx: np.ndarray
    suspect_idx: np.ndarray
    fit: FitResult
    diagnostics: pd.DataFrame | None
    last_loss: np.ndarray
    last_vog: np.ndarray | None


# ----------------------------------------------------------------------------- helpers


def _device(device: str | torch.device) -> torch.device:
    return device if isinstance(device, torch.device) else resolve_device(device)


def _use_amp(model: Classifier, dev: torch.device, amp: bool | None) -> bool:
    """AMP (bfloat16 autocast) only for backbones on CUDA; ``amp=None`` decides automatically."""
    if dev.type != "cuda" or model.in_dim is not None:
        return False
    return True if amp is None else bool(amp)


def _autocast(enabled: bool) -> contextlib.AbstractContextManager:
    if enabled:
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@contextlib.contextmanager
def _head_threads(model: Classifier, dev: torch.device) -> Iterator[None]:
    """One intra-op thread while training small heads on CPU.

    The heads' matrix products are tiny; spreading them over threads costs more in
    synchronisation than it gains, and is several times slower on a loaded machine.
    """
    if dev.type != "cpu" or model.in_dim is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _to_device(model: Classifier, dev: torch.device) -> None:
    model.to(dev)
    if dev.type == "cuda" and model.in_dim is None:
        model.to(memory_format=torch.channels_last)


def _input(x: torch.Tensor, dev: torch.device) -> torch.Tensor:
    if dev.type == "cuda" and x.dim() == 4:
        return x.to(dev, non_blocking=True, memory_format=torch.channels_last)
    return x.to(dev, non_blocking=True)


def _state_copy(model: Classifier) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _set_seed_streams(seed: int, n: int) -> list[int]:
    return [int(s) for s in np.random.SeedSequence(seed).generate_state(n, dtype=np.uint32)]


# ----------------------------------------------------------------------------- prediction


@torch.no_grad()
def predict(
    model: Classifier,
    source: BatchSource,
    indices: np.ndarray,
    *,
    batch_size: int = 1024,
    device: str | torch.device = "cpu",
    amp: bool | None = None,
    logits: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Softmax probabilities ``(n, C)`` and penultimate embeddings ``(n, D)`` (float32).

    Eval mode, plain view, rows in the order of ``indices``; the model's train/eval mode is
    restored afterwards. Probabilities use the model's calibrated ``temperature`` (1.0 until
    calibration fitted one); ``logits=True`` returns the raw logits instead of probabilities.
    A non-finite output raises :class:`NonFiniteError`.
    """
    dev = _device(device)
    temperature = float(getattr(model, "temperature", 1.0))
    _to_device(model, dev)
    use_amp = _use_amp(model, dev, amp)
    was_training = model.training
    model.eval()
    probs, embs = [], []
    with _head_threads(model, dev):
        try:
            for _, x in source.eval_batches(np.asarray(indices, dtype=np.int64), batch_size):
                with _autocast(use_amp):
                    h = model.embed(_input(x, dev))
                    z = model.fc(h)
                z = z.float()
                if not bool(torch.isfinite(z).all()):
                    raise _non_finite("predict", "a network output")
                if logits:
                    probs.append(z.cpu())
                else:
                    if temperature != 1.0:
                        z = z / temperature
                    probs.append(torch.softmax(z, dim=1).cpu())
                embs.append(h.float().cpu())
        finally:
            model.train(was_training)
    if not probs:
        return (np.zeros((0, model.num_classes), np.float32),
                np.zeros((0, model.embed_dim), np.float32))
    return torch.cat(probs).numpy(), torch.cat(embs).numpy()


def _evaluate(
    model: Classifier, source: BatchSource, es: EvalSet | None, dev: torch.device,
    amp: bool | None,
) -> tuple[float, np.ndarray]:
    """Macro-F1 and per-class recall of ``model`` on ``es`` (nan / empty when ``es`` is None)."""
    c = model.num_classes
    if es is None or es.indices.size == 0:
        return float("nan"), np.full(c, np.nan)
    probs, _ = predict(model, source, es.indices, device=dev, amp=amp)
    pred = probs.argmax(axis=1)
    return macro_f1(es.labels, pred, c), per_class_recall(es.labels, pred, c)


class _BestTracker:
    """Keeps the best-validation epoch (earliest on ties) and its weights.

    The test split is evaluated once, on the kept weights, by :meth:`result` (not after every
    epoch): the same numbers for a third of the evaluation passes, and no per-epoch test curve
    in the history to be tempted by.
    """

    def __init__(self, num_classes: int) -> None:
        self.epoch, self.val_f1 = -1, -np.inf
        self.num_classes = num_classes
        self.state: dict[str, torch.Tensor] | None = None

    def offer(self, epoch: int, val_f1: float, model: Classifier) -> None:
        score = -np.inf if np.isnan(val_f1) else val_f1
        if self.epoch < 0 or score > self.val_f1:
            self.epoch, self.val_f1 = epoch, score
            self.state = _state_copy(model)

    def result(self, history: list[dict], model: Classifier, source: BatchSource,
               test: EvalSet | None, dev: torch.device, amp: bool | None) -> FitResult:
        """The fit's result; ``model``'s own weights are left as they are."""
        test_f1, test_recall = float("nan"), np.full(self.num_classes, np.nan)
        if self.state is not None and test is not None and test.indices.size:
            current = _state_copy(model)
            model.load_state_dict(self.state)
            test_f1, test_recall = _evaluate(model, source, test, dev, amp)
            model.load_state_dict(current)
        return FitResult(
            history=history,
            best_epoch=self.epoch,
            best_val_f1=float("nan") if np.isinf(self.val_f1) else float(self.val_f1),
            test_f1=float(test_f1),
            test_recall=np.asarray(test_recall, dtype=np.float64),
            best_state=self.state,
        )


class _WindowTracker:
    """Model selection over windows of ``k`` consecutive epochs (``smoothed`` / ``average_last``).

    ``smoothed`` keeps the window with the best mean validation macro-F1 (earliest on ties);
    ``average_last`` the last window. Either way the kept weights are the window's average,
    which is evaluated again (val and test) by :meth:`finish`. On a validation split of a few
    items per class, single-epoch F1 jumps by several points between epochs; picking its
    maximum mostly picks noise (and reports an optimistic score).
    """

    def __init__(self, num_classes: int, k: int, mode: str) -> None:
        self.k, self.mode = int(k), mode
        self.states: list[dict[str, torch.Tensor]] = []
        self.scores: list[float] = []
        self.best_mean, self.epoch = -np.inf, -1
        self.state: dict[str, torch.Tensor] | None = None
        self.num_classes = num_classes

    def offer(self, epoch: int, val_f1: float, model: Classifier) -> None:
        self.states.append(_state_copy(model))
        self.scores.append(-1.0 if np.isnan(val_f1) else float(val_f1))
        if len(self.states) > self.k:
            self.states.pop(0)
            self.scores.pop(0)
        mean = float(np.mean(self.scores))
        if self.mode == "average_last" or self.epoch < 0 or mean > self.best_mean:
            self.best_mean, self.epoch = mean, epoch
            self.state = _average_states(self.states)

    def finish(self, model: Classifier, source: BatchSource, val: EvalSet,
               test: EvalSet | None, dev: torch.device, amp: bool | None,
               history: list[dict]) -> FitResult:
        assert self.state is not None
        model.load_state_dict(self.state)
        val_f1, _ = _evaluate(model, source, val, dev, amp)
        test_f1, test_recall = _evaluate(model, source, test, dev, amp)
        return FitResult(history=history, best_epoch=self.epoch, best_val_f1=float(val_f1),
                         test_f1=float(test_f1), test_recall=np.asarray(test_recall, np.float64),
                         best_state=self.state)


def _average_states(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    out = {}
    for key, v in states[0].items():
        if v.is_floating_point():
            out[key] = torch.stack([s[key] for s in states]).mean(dim=0).to(v.dtype)
        else:  # counters (e.g. BatchNorm's num_batches_tracked): the latest value
            out[key] = states[-1][key].clone()
    return out


def _class_prior(labels: np.ndarray, train_idx: np.ndarray, num_classes: int) -> np.ndarray:
    counts = np.bincount(labels[train_idx], minlength=num_classes).astype(np.float64)
    return (counts + 1.0) / (counts.sum() + num_classes)  # add-one: no log(0)


def _loss_fn(kind: str, prior: np.ndarray, dev: torch.device
             ) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Training loss for ``HeadOptions.loss`` (``prior``: training-label class frequencies)."""
    if kind == "ce":
        return lambda z, y: F.cross_entropy(z, y)
    if kind == "balanced":
        w = torch.as_tensor(1.0 / (prior * prior.size), dtype=torch.float32, device=dev)
        return lambda z, y: F.cross_entropy(z, y, weight=w)
    if kind == "logit_adjusted":
        log_prior = torch.as_tensor(np.log(prior), dtype=torch.float32, device=dev)
        return lambda z, y: F.cross_entropy(z + log_prior, y)
    raise ValueError(f"unknown loss {kind!r}: expected ce, balanced or logit_adjusted")


def source_features(source: BatchSource, indices: np.ndarray) -> np.ndarray | None:
    """The (standardised) input features a feature source feeds the head; None for images."""
    if getattr(source, "in_dim", None) is None:
        return None
    idx = np.asarray(indices, dtype=np.int64)
    parts = [x.float().numpy() for _, x in source.eval_batches(idx, 4096)]
    return np.concatenate(parts) if parts else np.zeros((0, int(source.in_dim)), np.float32)


def finish_fit(model: Classifier, source: BatchSource, train_idx: np.ndarray,
               labels: np.ndarray, val: EvalSet, *, device: str | torch.device = "cpu",
               amp: bool | None = None, calibrate: bool | None = None
               ) -> tuple[float, GuardReport]:
    """After a fit: calibrate ``model`` on ``val`` (when its options ask for it; sets
    ``model.temperature``) and check it against trivial baselines (:mod:`labelrefine.lnl.guard`).

    Returns the temperature and the guard's report. The model's weights are not changed.
    """
    dev = _device(device)
    do_cal = model.options.calibrate if calibrate is None else calibrate
    if do_cal and val.indices.size >= 2:
        z, _ = predict(model, source, val.indices, device=dev, amp=amp, logits=True)
        model.temperature = fit_temperature(z, val.labels)
    probs, _ = predict(model, source, val.indices, device=dev, amp=amp)
    train_idx = np.asarray(train_idx, dtype=np.int64)
    train_x = source_features(source, train_idx)
    val_x = source_features(source, val.indices) if train_x is not None else None
    report = sanity_check(val.labels, probs.argmax(axis=1) if probs.size else
                          np.zeros(0, np.int64), train_labels=labels[train_idx],
                          num_classes=model.num_classes, train_x=train_x, val_x=val_x)
    return float(model.temperature), report


def continue_from_best(model: Classifier, fit: FitResult, source: BatchSource,
                       train_idx: np.ndarray, labels: np.ndarray, val: EvalSet, *,
                       device: str | torch.device = "cpu", amp: bool | None = None
                       ) -> FitResult:
    """Load ``fit``'s best-validation weights into ``model`` (phase 1 leaves the last epoch's)
    and redo calibration and the sanity guard for them; returns ``fit`` with the new
    temperature and guard report (``active.protocol: equal``)."""
    if fit.best_state is None:
        return fit
    model.load_state_dict(fit.best_state)
    temperature, guard = finish_fit(model, source, train_idx, labels, val, device=device,
                                    amp=amp)
    return dataclasses.replace(fit, temperature=temperature, guard=guard)


def _optimizer(model: Classifier, lr: float, momentum: float, weight_decay: float, epochs: int
               ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum,
                          weight_decay=weight_decay)
    return opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)


# ----------------------------------------------------------------------------- plain CE


def fit_ce(
    model: Classifier,
    source: BatchSource,
    train_idx: np.ndarray,
    labels: np.ndarray,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    val: EvalSet,
    test: EvalSet | None,
    seed: int,
    momentum: float = 0.9,
    weight_decay: float = 1e-4,
    device: str | torch.device = "cpu",
    progress: ProgressFn | None = None,
    amp: bool | None = None,
) -> FitResult:
    """Train ``model`` with cross-entropy on ``labels[train_idx]``.

    A fresh SGD optimiser with a per-epoch cosine schedule (``T_max = epochs``) is made on every
    call, so calling it again fine-tunes from the current weights. Val macro-F1 is evaluated
    after every epoch; the weights chosen by ``model.options.selection`` are restored into
    ``model`` before returning, and test macro-F1 is evaluated once, on them. The loss follows
    ``model.options.loss``; with ``model.options.calibrate`` a temperature is fitted on ``val``.
    The result carries the sanity guard's report. A non-finite loss raises
    :class:`NonFiniteError`.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    dev = _device(device)
    labels = check_labels(labels, model.num_classes).copy()  # writable, for torch
    train_idx = check_indices(train_idx, labels.shape[0], name="train_idx",
                              allow_empty=False, unique=True)
    _to_device(model, dev)
    use_amp = _use_amp(model, dev, amp)
    rng = np.random.default_rng(_set_seed_streams(seed, 1)[0])
    labels_t = torch.from_numpy(labels).to(dev)
    opt, sched = _optimizer(model, lr, momentum, weight_decay, epochs)
    options = model.options
    loss_fn = _loss_fn(options.loss, _class_prior(labels, train_idx, model.num_classes), dev)
    best = _BestTracker(model.num_classes)
    window = (None if options.selection == "best_val"
              else _WindowTracker(model.num_classes, options.window, options.selection))
    history: list[dict] = []
    with _head_threads(model, dev):
        for epoch in range(epochs):
            t0, c0 = time.perf_counter(), time.process_time()
            model.train()
            total, count = 0.0, 0
            lr_now = opt.param_groups[0]["lr"]
            for idx, x in source.train_batches(train_idx, batch_size, rng):
                y = labels_t[torch.from_numpy(idx).to(dev)]
                with _autocast(use_amp):
                    logits = model(_input(x, dev))
                loss = loss_fn(logits.float(), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                loss_value = float(loss.detach())
                if not np.isfinite(loss_value):
                    raise _non_finite("CE fit (fit_ce)", "the training loss", epoch)
                total += loss_value * idx.size
                count += idx.size
            sched.step()
            val_f1, _ = _evaluate(model, source, val, dev, amp)
            if window is None:
                best.offer(epoch, val_f1, model)
            else:
                window.offer(epoch, val_f1, model)
            row = {"epoch": epoch, "loss": total / max(count, 1), "val_f1": val_f1,
                   "lr": lr_now, "time_s": time.perf_counter() - t0,
                   "cpu_s": time.process_time() - c0}
            history.append(row)
            if progress is not None:
                progress(epoch + 1, epochs, row)
        if window is None:
            result = best.result(history, model, source, test, dev, amp)
            if result.best_state is not None:
                model.load_state_dict(result.best_state)
        else:
            result = window.finish(model, source, val, test, dev, amp, history)
    result.temperature, result.guard = finish_fit(model, source, train_idx, labels, val,
                                                  device=dev, amp=amp)
    return result


# ----------------------------------------------------------------------------- phase 1


@dataclass
class LNLData:
    """The problem phase 1 trains on (validated on construction).

    ``labels`` (the noisy, given labels) and ``true_labels`` are full-length ``(N,)`` arrays
    indexed by item; ``train_idx`` are the items trained on and partitioned; ``val`` / ``test``
    are evaluated after every epoch.
    """

    train_idx: np.ndarray
    labels: np.ndarray
    num_classes: int
    val: EvalSet
    test: EvalSet | None = None
    true_labels: np.ndarray | None = None
    class_names: Sequence[str] | None = None

    def __post_init__(self) -> None:
        self.labels = check_labels(self.labels, self.num_classes).copy()  # writable
        n_items = self.labels.shape[0]
        self.train_idx = check_indices(self.train_idx, n_items, name="train_idx",
                                       allow_empty=False, unique=True)
        if self.true_labels is not None:
            self.true_labels = check_labels(self.true_labels, self.num_classes,
                                            name="true_labels")
            if self.true_labels.shape != self.labels.shape:
                raise ValueError(
                    f"true_labels has {self.true_labels.shape[0]} items, labels {n_items}"
                )


def _phase1_seeds(seed: int, n_nets: int) -> tuple[list[int], int]:
    """Network seeds and the data-stream seed (streams 0, 1, 3, 4, ... and 2 of ``seed``)."""
    streams = _set_seed_streams(seed, max(3, n_nets + 1))
    return [*streams[:2], *streams[3:]][:n_nets], streams[2]


def _networks(method: LNLMethod, cfg: LNLConfig, source: BatchSource, num_classes: int,
              seeds: list[int], init: Sequence[Classifier | None] | None,
              dev: torch.device) -> list[Classifier]:
    n = method.num_networks
    if init is not None:
        if len(init) < n or any(net is None for net in init[:n]):
            count = {1: "one network", 2: "two networks"}.get(n, f"{n} networks")
            raise ValueError(f"init needs {count} for method {method.name!r}")
        nets = [net for net in init[:n] if net is not None]
    else:
        nets = [build_model(cfg, num_classes, source.in_dim, s) for s in seeds]
    for net in nets:
        if net.num_classes != num_classes:
            raise ValueError(f"network has {net.num_classes} outputs, num_classes={num_classes}")
        _to_device(net, dev)
    return nets


def train_lnl(
    method: LNLMethod,
    cfg: LNLConfig,
    source: BatchSource,
    data: LNLData,
    *,
    seed: int,
    tau: float,
    device: str | torch.device = "cpu",
    init: Sequence[Classifier | None] | None = None,
    epochs: int | None = None,
    progress: ProgressFn | None = None,
    track_vog: bool | None = None,
) -> LNLResult:
    """The phase-1 engine: train ``method``'s networks and partition ``data.train_idx``.

    Every epoch: the source's shuffled, augmented batches; per batch every network's forward
    pass and per-sample CE, the method's :class:`~labelrefine.lnl.methods.BatchStep` (clean
    positions and the loss each network minimises), one backward pass of the summed losses
    and a step of every updated network's SGD optimiser (cosine schedule over the epochs run);
    then the VOG recorder (:mod:`labelrefine.lnl.recorders`, chosen by ``cfg.vog.pass``) closes
    the epoch, and the first network is evaluated on ``data.val``; ``data.test`` only once, on
    the best-validation epoch's weights. VOG is
    recorded when the method selects by it (or ``track_vog`` asks for it) and handed to the
    method from epoch ``cfg.warmup`` on, once every network's window is full. The partition is
    the union of the method's clean positions over the last epoch's batches.

    Seeds: network k is initialised from stream k of ``SeedSequence(seed)`` (k >= 2 from stream
    k + 1) and the data order / views from stream 2.
    """
    n_epochs = int(epochs if epochs is not None else cfg.epochs)
    if n_epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {n_epochs}")
    dev = _device(device)
    rates = forget_rates(tau, n_epochs, cfg.warmup, cfg.c)
    track = method.uses_vog if track_vog is None else bool(track_vog)
    if method.uses_vog and not track:
        raise ValueError(f"method {method.name!r} selects by VOG (mix {cfg.mix:g}); it cannot "
                         f"run with track_vog=False")
    train_idx, labels, num_classes = data.train_idx, data.labels, data.num_classes
    n_items = labels.shape[0]
    net_seeds, s_data = _phase1_seeds(seed, method.num_networks)
    nets = _networks(method, cfg, source, num_classes, net_seeds, init, dev)
    use_amp = _use_amp(nets[0], dev, cfg.amp)

    pos_of = np.full(n_items, -1, dtype=np.int64)
    pos_of[train_idx] = np.arange(train_idx.size)
    recorder = make_recorder(cfg, nets, train_idx.size, n_epochs, track)
    opts = [_optimizer(n, cfg.lr, cfg.momentum, cfg.weight_decay, n_epochs) for n in nets]
    rng = np.random.default_rng(s_data)
    labels_t = torch.from_numpy(labels).to(dev)

    def batches() -> Iterator[TrainBatch]:
        for idx, x in source.train_batches(train_idx, cfg.batch_size, rng):
            x = _input(x, dev)
            y = labels_t[torch.from_numpy(idx).to(dev)]
            yield idx, pos_of[idx], x, y

    def forward(net: Classifier, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with _autocast(use_amp):
            h = net.embed(x)
            logits = net.fc(h)
        return h, logits

    best = _BestTracker(num_classes)
    history: list[dict] = []
    last_loss = np.full(n_items, np.nan)
    clean_parts: list[np.ndarray] = []

    with _head_threads(nets[0], dev):
        for epoch in range(n_epochs):
            t0, c0 = time.perf_counter(), time.process_time()
            rate = float(rates[epoch])
            vog_on = method.uses_vog and epoch >= cfg.warmup and recorder.ready
            scores = recorder.scores() if vog_on else []
            lr_now = opts[0][0].param_groups[0]["lr"]
            for net in nets:
                net.train()
            # each network's update loss, then the first network's loss on all samples
            sums = np.zeros(len(nets) + 1)
            counts = np.zeros(len(nets) + 1)
            clean_parts = []
            for idx, pos, x, y in batches():
                outs, losses = [], []
                for net in nets:
                    h, logits = forward(net, x)
                    outs.append((h, logits))
                    losses.append(F.cross_entropy(logits.float(), y, reduction="none"))
                loss_np = [v.detach().cpu().numpy().astype(np.float64) for v in losses]
                if not all(np.isfinite(v).all() for v in loss_np):
                    raise _non_finite(f"phase 1 ({method.name})", "the training loss", epoch)
                vog = [s[pos] for s in scores] if vog_on else None
                step = method.step(BatchLosses(losses, loss_np, vog, rate))
                if len(step.updates) != len(nets) or len(step.sizes) != len(nets):
                    raise ValueError(f"method {method.name!r} returned {len(step.updates)} "
                                     f"updates for {len(nets)} networks")
                for opt, _ in opts:
                    opt.zero_grad(set_to_none=True)
                total = sum(u for u in step.updates if u is not None)
                if isinstance(total, torch.Tensor):
                    total.backward()
                    for (opt, _), u in zip(opts, step.updates, strict=True):
                        if u is not None:
                            opt.step()
                for k, u in enumerate(step.updates):
                    if u is not None:
                        sums[k] += float(u.detach()) * step.sizes[k]
                        counts[k] += step.sizes[k]
                sums[-1] += loss_np[0].sum()
                counts[-1] += idx.size
                last_loss[idx] = loss_np[0]
                clean_parts.append(idx[step.clean])
                recorder.on_batch(epoch, pos, outs, y)
            for _, sched in opts:
                sched.step()
            recorder.end_epoch(epoch, batches, forward)

            selected = np.concatenate(clean_parts) if clean_parts else np.zeros(0, np.int64)
            val_f1, _ = _evaluate(nets[0], source, data.val, dev, cfg.amp)
            best.offer(epoch, val_f1, nets[0])
            row: dict[str, Any] = {
                "epoch": epoch,
                "loss": sums[0] / counts[0] if counts[0] else float("nan"),
                "loss_peer": (sums[1] / counts[1] if counts[1] else float("nan"))
                if len(nets) > 1 else float("nan"),
                "loss_all": sums[-1] / counts[-1],
                "forget_rate": rate,
                "vog_used": bool(vog_on),
                "n_selected": int(selected.size),
            }
            if data.true_labels is not None:
                prec, rec = selection_precision_recall(selected, train_idx, labels,
                                                       data.true_labels)
                row["sel_precision"], row["sel_recall"] = prec, rec
            row.update({"val_f1": val_f1, "lr": lr_now,
                        "time_s": time.perf_counter() - t0,
                        "cpu_s": time.process_time() - c0})
            history.append(row)
            if progress is not None:
                progress(epoch + 1, n_epochs, row)

    clean_idx = np.unique(np.concatenate(clean_parts)) if clean_parts else np.zeros(0, np.int64)
    suspect_idx = np.setdiff1d(train_idx, clean_idx)
    diagnostics = None
    if data.true_labels is not None:
        names = (list(data.class_names) if data.class_names is not None
                 else [str(c) for c in range(num_classes)])
        diagnostics = class_selection_diagnostics(clean_idx, train_idx, labels,
                                                  data.true_labels, names)
    last_vog = None
    scores_f = recorder.last_scores()
    if scores_f is not None:
        last_vog = np.full(n_items, np.nan)
        last_vog[train_idx] = scores_f
    fit = best.result(history, nets[0], source, data.test, dev, cfg.amp)
    # the guard (and calibration) judge the network phase 2 continues from
    fit.temperature, fit.guard = finish_fit(nets[0], source, train_idx, labels, data.val,
                                            device=dev, amp=cfg.amp)
    return LNLResult(
        model=nets[0],
        peer=nets[1] if len(nets) > 1 else None,
        clean_idx=clean_idx.astype(np.int64),
        suspect_idx=suspect_idx.astype(np.int64),
        fit=fit,
        diagnostics=diagnostics,
        last_loss=last_loss,
        last_vog=last_vog,
    )


def run_lnl(
    cfg: LNLConfig,
    source: BatchSource,
    train_idx: np.ndarray,
    labels: np.ndarray,
    *,
    num_classes: int,
    val: EvalSet,
    test: EvalSet | None,
    seed: int,
    tau: float,
    true_labels: np.ndarray | None = None,
    device: str | torch.device = "cpu",
    init: tuple[Classifier, Classifier] | None = None,
    epochs: int | None = None,
    progress: ProgressFn | None = None,
    class_names: Sequence[str] | None = None,
    track_vog: bool | None = None,
) -> LNLResult:
    """Phase 1: train with noisy ``labels`` and split ``train_idx`` into clean and suspect.

    Runs the method registered as ``cfg.method`` (:mod:`labelrefine.lnl.methods`: ``ce``,
    ``coteaching``, ``ct_vog``) on the engine :func:`train_lnl`. The forget rate ``tau_e``
    follows :func:`forget_rates` sized by the epochs run (``epochs`` overrides ``cfg.epochs``).
    VOG gradients come from the training forward pass (``vog.pass: inline``) or an extra
    end-of-epoch pass over the augmented training data in train mode (``extra``, the official
    protocol). ``track_vog`` forces VOG tracking on or off (default: only when the selection
    uses it); tracking starts ``window`` epochs before it is needed. ``init`` continues training
    from the given networks (``init[0]`` alone for ``ce``). Per-epoch history: losses, forget
    rate, selected-set precision/recall (when ``true_labels`` is given), val macro-F1 of the
    first network (test macro-F1: once, for the best-validation epoch's weights).
    """
    method = get_method(cfg)
    data = LNLData(train_idx, labels, num_classes, val, test, true_labels, class_names)
    return train_lnl(method, cfg, source, data, seed=seed, tau=tau, device=device, init=init,
                     epochs=epochs, progress=progress, track_vog=track_vog)
