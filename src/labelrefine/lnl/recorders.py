"""VOG recorders: when and from which forward pass the per-sample gradients are stored.

A recorder keeps one :class:`~labelrefine.lnl.vog.VOGTracker` per network and is driven by the
training engine (:func:`labelrefine.lnl.trainer.train_lnl`): :meth:`VOGRecorder.on_batch` after
every training batch's update, :meth:`VOGRecorder.end_epoch` after the epoch's last batch.
Recording starts ``window`` epochs before VOG is first needed (``max(0, min(warmup, E) -
window)``), so the window is full at the end of the warm-up. Recorders are registered by
``lnl.vog.pass``:

- ``inline``: gradients of the training forward pass itself (no extra cost in forward passes).
  Last-layer gradients depend only on that pass's features and probabilities, so they are
  gathered per batch and computed and stored once per epoch; input-feature gradients use the
  weights of the moment (after the batch's update).
- ``extra``: an extra end-of-epoch pass over the augmented training data in train mode, without
  gradients (the official protocol); it draws its batches from the engine's data stream.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import ClassVar

import numpy as np
import torch

from labelrefine.config import LNLConfig
from labelrefine.lnl.vog import VOGTracker, input_feature_gradients, last_layer_gradients
from labelrefine.models.heads import Classifier

Forward = Callable[[Classifier, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
"""``forward(net, x) -> (features h, logits)`` as the engine runs it (device, autocast)."""

TrainBatch = tuple[np.ndarray, np.ndarray, torch.Tensor, torch.Tensor]
"""``(item indices, positions in the training set, x, y)``, x and y on the engine's device."""

Batches = Callable[[], Iterator[TrainBatch]]
"""Starts a fresh pass over the (shuffled, augmented) training data."""


def vog_dim(model: Classifier, gradient: str) -> int:
    """Width of the per-sample gradient ``gradient`` of ``model``."""
    if gradient == "input_features":
        layer = model.input_layer
        if layer is None:
            raise ValueError(
                "vog.gradient 'input_features' needs an MLP head in embedding mode (for a "
                "linear layer the gradient is W[y], the same for every sample of a class)"
            )
        return int(layer.in_features)
    return model.embed_dim + 1


def vog_gradients(model: Classifier, gradient: str, h: torch.Tensor, logits: torch.Tensor,
                  y: torch.Tensor) -> torch.Tensor:
    """Per-sample gradients ``(B, vog_dim)`` from a forward pass's features and logits."""
    h = h.detach().float()
    if gradient == "input_features":
        layer = model.input_layer
        assert layer is not None
        return input_feature_gradients(h, y, model.fc.weight.detach().float(),
                                       layer.weight.detach().float())
    probs = torch.softmax(logits.detach().float(), dim=1)
    return last_layer_gradients(h, probs, y)


class NoVOG:
    """Records nothing (the method does not use VOG and no diagnostics were asked for)."""

    ready = False

    def on_batch(self, epoch: int, pos: np.ndarray,
                 outs: list[tuple[torch.Tensor, torch.Tensor]], y: torch.Tensor) -> None:
        pass

    def end_epoch(self, epoch: int, batches: Batches, forward: Forward) -> None:
        pass

    def scores(self) -> list[np.ndarray]:
        raise RuntimeError("VOG is not recorded in this run")

    def last_scores(self) -> np.ndarray | None:
        return None


class VOGRecorder:
    """VOG trackers for ``nets`` over ``num_samples`` training positions (base class)."""

    name: ClassVar[str]

    def __init__(self, nets: list[Classifier], num_samples: int, cfg: LNLConfig,
                 epochs: int) -> None:
        self.nets = nets
        self.gradient = cfg.vog.gradient
        dim = vog_dim(nets[0], self.gradient)
        self.trackers = [VOGTracker(num_samples, dim, cfg.vog.window, cfg.vog.dtype)
                         for _ in nets]
        self.start = max(0, min(cfg.warmup, epochs) - cfg.vog.window)

    def recording(self, epoch: int) -> bool:
        return epoch >= self.start

    @property
    def ready(self) -> bool:
        """True once every network's window is full."""
        return all(t.ready for t in self.trackers)

    def scores(self) -> list[np.ndarray]:
        """Each network's VOG per training position, over the last closed window."""
        return [t.scores() for t in self.trackers]

    def last_scores(self) -> np.ndarray | None:
        """The first network's VOG scores, or None before its window is full."""
        return self.trackers[0].scores() if self.trackers[0].ready else None

    def on_batch(self, epoch: int, pos: np.ndarray,
                 outs: list[tuple[torch.Tensor, torch.Tensor]], y: torch.Tensor) -> None:
        """After a training batch's update: ``outs[k]`` is network k's ``(h, logits)``."""

    def end_epoch(self, epoch: int, batches: Batches, forward: Forward) -> None:
        """After the epoch's last batch (and the schedulers' step): close the epoch."""
        if not self.recording(epoch):
            return
        self._finish_epoch(batches, forward)
        for t in self.trackers:
            t.end_epoch()

    def _finish_epoch(self, batches: Batches, forward: Forward) -> None:
        pass


class InlineVOG(VOGRecorder):
    """Gradients from the training forward pass."""

    name = "inline"

    def __init__(self, nets: list[Classifier], num_samples: int, cfg: LNLConfig,
                 epochs: int) -> None:
        super().__init__(nets, num_samples, cfg, epochs)
        self.deferred = self.gradient == "last_layer"
        self._pending: list[list[tuple]] = [[] for _ in nets]

    def on_batch(self, epoch: int, pos: np.ndarray,
                 outs: list[tuple[torch.Tensor, torch.Tensor]], y: torch.Tensor) -> None:
        if not self.recording(epoch):
            return
        if self.deferred:
            for k, (h, logits) in enumerate(outs):
                self._pending[k].append((pos, h.detach(), logits.detach(), y))
            return
        for k, (h, logits) in enumerate(outs):
            self.trackers[k].update(pos, vog_gradients(self.nets[k], self.gradient, h, logits, y))

    def _finish_epoch(self, batches: Batches, forward: Forward) -> None:
        if not self.deferred:
            return
        for k, parts in enumerate(self._pending):
            pos_all = np.concatenate([q[0] for q in parts])
            grads = vog_gradients(self.nets[k], self.gradient,
                                  *(torch.cat([q[i] for q in parts]) for i in (1, 2, 3)))
            self.trackers[k].update(pos_all, grads)
            parts.clear()


class ExtraPassVOG(VOGRecorder):
    """Gradients from an extra end-of-epoch pass over the augmented data in train mode."""

    name = "extra"

    @torch.no_grad()
    def _finish_epoch(self, batches: Batches, forward: Forward) -> None:
        for net in self.nets:
            net.train()
        for _, pos, x, y in batches():
            for net, tracker in zip(self.nets, self.trackers, strict=True):
                h, logits = forward(net, x)
                tracker.update(pos, vog_gradients(net, self.gradient, h, logits, y))


RECORDERS: dict[str, type[VOGRecorder]] = {"inline": InlineVOG, "extra": ExtraPassVOG}
"""Recorder per ``lnl.vog.pass``."""


def make_recorder(cfg: LNLConfig, nets: list[Classifier], num_samples: int, epochs: int,
                  track: bool) -> VOGRecorder | NoVOG:
    """The recorder for ``cfg.vog.pass`` (or :class:`NoVOG` when ``track`` is False)."""
    if not track:
        return NoVOG()
    cls = RECORDERS.get(cfg.vog.pass_)
    if cls is None:
        raise ValueError(f"unknown vog.pass {cfg.vog.pass_!r}; known: {', '.join(RECORDERS)}")
    return cls(nets, num_samples, cfg, epochs)
