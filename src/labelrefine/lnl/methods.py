"""LNL methods: how many networks, how each batch is selected and who updates whom.

A method sees one mini-batch at a time (:class:`BatchLosses`: every network's per-sample
cross-entropy, the forget rate ``tau_e`` and, when the method uses it, every network's VOG of the
batch's samples) and answers with a :class:`BatchStep`: the batch positions counted as clean for
the partition and the loss each network minimises. The training engine
(:func:`labelrefine.lnl.trainer.train_lnl`) owns everything else: networks, optimisers, batches,
VOG recording, evaluation and logs. Methods are registered by name (:func:`register_method`);
``lnl.method`` in the config picks one (:func:`get_method`), and the config's allowed values and
the ``labelrefine lnl --method`` choices are :func:`method_names`. This module imports torch
only when a method runs, so the config can read the registry.

Phase 1 of ``ours``, ``ours_plus``, ``ours_find`` and of campaigns is CT_VOG (plain Co-teaching
when the mix ratio is 0) whatever ``lnl.method`` says; they refuse another method
(:attr:`labelrefine.config.RunSettings.phase1_method`). ``lnl.method`` is for
``labelrefine lnl``.

With ``B`` the batch size, ``R = floor((1 - tau_e) B)`` (see
:func:`~labelrefine.lnl.clean_samples.select_clean`):

- ``ce``: one network f, trained with CE on the whole batch; the clean set is f's ``R``
  smallest-loss samples.
- ``coteaching``: networks f and g; each selects its ``R`` smallest-loss samples and the peer
  trains on them (f on g's selection, g on f's); the clean set is f's selection.
- ``ct_vog``: Co-teaching whose selection is the ``floor((1 - m) R)`` smallest-loss samples plus
  the ``floor(m R)`` smallest-VOG samples among the rest (``m = lnl.mix``), once VOG is
  available; ``m = 0`` is Co-teaching.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from labelrefine import extensions
from labelrefine.lnl.clean_samples import select_clean

if TYPE_CHECKING:
    import torch

    from labelrefine.config import LNLConfig


@dataclass
class BatchLosses:
    """What a method sees of one mini-batch.

    ``losses[k]``: network k's per-sample cross-entropy ``(B,)`` (with its autograd graph);
    ``loss_np[k]``: the same values detached, float64; ``vog[k]``: network k's VOG of the batch's
    samples, or None while VOG is not in use; ``rate``: the epoch's forget rate ``tau_e``.
    """

    losses: list[torch.Tensor]
    loss_np: list[np.ndarray]
    vog: list[np.ndarray] | None
    rate: float

    @property
    def size(self) -> int:
        return int(self.loss_np[0].shape[0])


@dataclass
class BatchStep:
    """A method's answer for one batch.

    ``clean``: batch positions counted as clean (the last epoch's make the partition);
    ``updates[k]``: the loss network k minimises, or None to leave it unchanged on this batch;
    ``sizes[k]``: how many samples ``updates[k]`` averages (for the per-epoch loss logs).
    """

    clean: np.ndarray
    updates: list[torch.Tensor | None]
    sizes: list[int]


class LNLMethod(ABC):
    """One learning-with-noisy-labels method (stateless between batches)."""

    name: ClassVar[str]
    num_networks: ClassVar[int]

    def __init__(self, cfg: LNLConfig) -> None:
        self.cfg = cfg

    @property
    def uses_vog(self) -> bool:
        """Whether the selection reads VOG scores (the engine then records them)."""
        return False

    @abstractmethod
    def step(self, batch: BatchLosses) -> BatchStep:
        """Select the batch's clean samples and say which loss each network minimises."""


METHODS: dict[str, type[LNLMethod]] = {}


def register_method(cls: type[LNLMethod]) -> type[LNLMethod]:
    """Class decorator: make ``cls`` available as ``lnl.method: <cls.name>``."""
    if cls.name in METHODS:
        raise ValueError(f"LNL method {cls.name!r} is already registered")
    if cls.num_networks < 1:
        raise ValueError(f"LNL method {cls.name!r}: num_networks must be >= 1")
    METHODS[cls.name] = cls
    return cls


def method_names() -> tuple[str, ...]:
    """The registered method names, in registration order."""
    return tuple(METHODS)


def get_method(cfg: LNLConfig) -> LNLMethod:
    """The registered method named by ``cfg.method``, set up from ``cfg``."""
    cls = METHODS.get(cfg.method)
    if cls is None:
        raise ValueError(
            f"unknown LNL method {cfg.method!r}; known: {', '.join(sorted(METHODS))}"
        )
    return cls(cfg)


def _rows(loss: torch.Tensor, positions: np.ndarray) -> torch.Tensor:
    import torch

    return loss[torch.from_numpy(positions).to(loss.device)]


@register_method
class SmallLossCE(LNLMethod):
    """CE baseline: one network trained on every sample; the clean set is its small-loss R."""

    name = "ce"
    num_networks = 1

    def step(self, batch: BatchLosses) -> BatchStep:
        clean = select_clean(batch.loss_np[0], None, batch.rate)
        return BatchStep(clean=clean, updates=[batch.losses[0].mean()], sizes=[batch.size])


@register_method
class CoTeaching(LNLMethod):
    """Co-teaching (Han et al., 2018): each network trains on its peer's small-loss selection."""

    name = "coteaching"
    num_networks = 2
    mix: float = 0.0
    exact: bool = False  # R2 = R - R1 (lnl.mix_counts 'exact')

    def select(self, batch: BatchLosses) -> list[np.ndarray]:
        """Each network's clean selection (batch positions)."""
        return [
            select_clean(batch.loss_np[k], None if batch.vog is None else batch.vog[k],
                         batch.rate, self.mix, self.exact)
            for k in range(self.num_networks)
        ]

    def step(self, batch: BatchLosses) -> BatchStep:
        sel = self.select(batch)
        # cross update: f trains on g's selection, g on f's
        picked = [_rows(batch.losses[0], sel[1]), _rows(batch.losses[1], sel[0])]
        updates = [u.mean() if u.numel() else None for u in picked]
        return BatchStep(clean=sel[0], updates=updates, sizes=[sel[1].size, sel[0].size])


@register_method
class CoTeachingVOG(CoTeaching):
    """CT_VOG: Co-teaching whose selection mixes small loss and small VOG (``lnl.mix``)."""

    name = "ct_vog"

    def __init__(self, cfg: LNLConfig) -> None:
        super().__init__(cfg)
        self.mix = float(cfg.mix)
        self.exact = cfg.mix_counts == "exact"

    @property
    def uses_vog(self) -> bool:
        return self.mix > 0


extensions.offer(method_names=method_names)
