"""Phase 1 as a library: build the batch source, prepare a noisy run, run phase 1.

:func:`build_source` is the one place a batch source is made from a dataset -- cached encoder
features (embedding mode) or images through the paper's transforms (fine-tune mode); the sweep
runner, ``campaign step`` and ``labelrefine lnl`` all call it. :func:`phase1_inputs` and
:func:`run_phase1` are what ``labelrefine lnl`` and the benchmarks run (docs/design.md,
"Phase 1").
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from labelrefine.config import (
    EncoderConfig,
    ExperimentConfig,
    LNLConfig,
    NoiseConfig,
    check_lnl_config,
)

if TYPE_CHECKING:  # torch is imported only when phase 1 runs
    from labelrefine.data.dataset import ImageDataset
    from labelrefine.data.prepare import PreparedData
    from labelrefine.lnl.trainer import LNLResult, ProgressFn


@dataclass
class Phase1Inputs:
    """Everything one phase-1 run reads: dataset, prepared labels, batch source."""

    dataset: ImageDataset
    data: PreparedData
    source: Any
    features_key: str | None = None


def build_source(dataset: ImageDataset, lnl: LNLConfig, encoder: EncoderConfig, *,
                 device: str = "cpu", progress: bool = False,
                 image_workers: int | None = None) -> tuple[Any, str | None]:
    """The batch source for ``lnl.mode`` and the feature cache key (None for images).

    Embedding mode embeds every image with ``encoder`` (augmentation seed 0; cached on disk,
    so a second call is a cache hit) and serves the features through
    :class:`~labelrefine.lnl.sources.FeatureSource`; fine-tune mode serves images through
    :class:`~labelrefine.lnl.sources.ImageSource` with ``image_workers`` loader processes
    (default: up to 8 on CUDA, none on CPU). Standardising features on a run's training split
    (``lnl.standardize``) is a separate step, :func:`labelrefine.lnl.sources.for_training`.
    """
    if lnl.mode == "embedding":
        from labelrefine.lnl.sources import FeatureSource
        from labelrefine.models import cache

        features = cache.embed_dataset(dataset, encoder, seed=0, device=device,
                                       progress=progress)
        return FeatureSource.from_features(features), features.key
    from labelrefine.lnl.sources import ImageSource

    if image_workers is None:
        image_workers = min(8, os.cpu_count() or 1) if device == "cuda" else 0
    return ImageSource(dataset, lnl.image_size, lnl.resize, num_workers=image_workers), None


def phase1_inputs(cfg: ExperimentConfig, noise: NoiseConfig, seed: int, *,
                  device: str = "cpu", progress: bool = True) -> Phase1Inputs:
    """Load the dataset, split it and inject ``noise`` (drawn with ``seed``), build the source
    (:func:`build_source`, standardised on the training split as ``cfg.lnl`` asks)."""
    from labelrefine.data.formats import load_dataset
    from labelrefine.data.prepare import prepare_data
    from labelrefine.lnl.sources import for_training

    dataset = load_dataset(cfg.dataset)
    data = prepare_data(dataset, cfg.split, noise, cfg.longtail, seed)
    source, key = build_source(dataset, cfg.lnl, cfg.encoder, device=device, progress=progress)
    return Phase1Inputs(dataset, data, for_training(source, data.train_idx, cfg.lnl), key)


def run_phase1(lnl: LNLConfig, inputs: Phase1Inputs, *, seed: int, tau: float,
               device: str = "cpu", progress: ProgressFn | None = None,
               epochs: int | None = None, track_vog: bool | None = True) -> LNLResult:
    """Phase 1 on prepared inputs (true labels known: diagnostics and precision are filled).

    VOG is tracked by default even when the selection does not use it (for the histograms).
    """
    from labelrefine.lnl.trainer import EvalSet, run_lnl

    check_lnl_config(lnl)
    d = inputs.data
    val = EvalSet(d.val_idx, d.true_labels[d.val_idx])
    test = EvalSet(d.test_idx, d.true_labels[d.test_idx]) if d.test_idx.size else None
    return run_lnl(lnl, inputs.source, d.train_idx, d.given_labels, num_classes=d.num_classes,
                   val=val, test=test, seed=seed, tau=tau, true_labels=d.true_labels,
                   device=device, progress=progress, class_names=d.class_names,
                   track_vog=track_vog, epochs=epochs)
