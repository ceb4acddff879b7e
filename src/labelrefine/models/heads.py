"""Trainable networks of the LNL engine: heads on cached features, or a full backbone."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from labelrefine.config import LNLConfig
from labelrefine.models.backbones import build_backbone


@dataclass(frozen=True)
class HeadOptions:
    """How a network is fitted and read out (from :class:`LNLConfig`).

    ``loss``: ``ce`` (plain cross-entropy), ``balanced`` (cross-entropy weighted by inverse
    class frequency of the training labels) or ``logit_adjusted`` (Menon et al. 2021: the log
    class prior is added to the logits in the loss only, so predictions are balanced).
    ``calibrate``: fit a temperature on the validation split after every fit.
    ``selection``: which weights a fit keeps: ``best_val`` (the best-validation epoch),
    ``smoothed`` (the ``window`` consecutive epochs with the best mean validation macro-F1,
    their weights averaged) or ``average_last`` (the last ``window`` epochs' weights averaged).
    """

    loss: str = "ce"
    calibrate: bool = False
    selection: str = "best_val"
    window: int = 3

    @classmethod
    def from_config(cls, cfg: LNLConfig) -> HeadOptions:
        return cls(loss=cfg.loss, calibrate=cfg.calibrate, selection=cfg.selection,
                   window=cfg.select_window)


class Classifier(nn.Module):
    """``logits = fc(embed(x))``: a feature trunk followed by one linear layer.

    ``kind`` is ``linear`` (identity trunk on input features), ``mlp`` (one hidden ReLU layer on
    input features) or the name of a torchvision backbone (fine-tune mode). The last layer
    ``fc`` is what the closed-form VOG gradient refers to.

    ``temperature`` divides the logits when probabilities are read out (1.0: none; set by
    calibration); ``options`` says how the trainer fits this network.
    """

    def __init__(self, trunk: nn.Module, fc: nn.Linear, kind: str, in_dim: int | None) -> None:
        super().__init__()
        self.trunk = trunk
        self.fc = fc
        self.kind = kind
        self.in_dim = in_dim
        self.temperature = 1.0
        self.options = HeadOptions()

    @property
    def embed_dim(self) -> int:
        """Width of the penultimate features (the input of ``fc``)."""
        return int(self.fc.in_features)

    @property
    def num_classes(self) -> int:
        return int(self.fc.out_features)

    @property
    def input_layer(self) -> nn.Linear | None:
        """The hidden layer of an MLP head (for input-feature VOG gradients), else None."""
        if self.kind == "mlp":
            layer = self.trunk[0]
            assert isinstance(layer, nn.Linear)
            return layer
        return None

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features ``(B, D)``."""
        return self.trunk(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.embed(x))


def build_model(cfg: LNLConfig, num_classes: int, in_dim: int | None, seed: int) -> Classifier:
    """A fresh network for ``cfg.mode``, initialised deterministically from ``seed``.

    Embedding mode: a linear or MLP (``cfg.hidden`` units) head on ``in_dim`` input features.
    Fine-tune mode: torchvision ``cfg.backbone`` with weights from ``cfg.backbone_weights`` when
    given (a local file; never downloaded) and a new ``num_classes`` output layer. The global
    torch random state is left untouched. The network carries ``cfg``'s :class:`HeadOptions`.
    """
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    model = _build(cfg, num_classes, in_dim, seed)
    model.options = HeadOptions.from_config(cfg)
    return model


def _build(cfg: LNLConfig, num_classes: int, in_dim: int | None, seed: int) -> Classifier:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if cfg.mode == "embedding":
            if in_dim is None or in_dim < 1:
                raise ValueError("embedding mode needs the input feature width in_dim")
            if cfg.head == "linear":
                return Classifier(nn.Identity(), nn.Linear(in_dim, num_classes), "linear", in_dim)
            trunk = nn.Sequential(nn.Linear(in_dim, cfg.hidden), nn.ReLU())
            return Classifier(trunk, nn.Linear(cfg.hidden, num_classes), "mlp", in_dim)
        trunk, dim = build_backbone(cfg.backbone, cfg.backbone_weights)
        return Classifier(trunk, nn.Linear(dim, num_classes), cfg.backbone, None)
