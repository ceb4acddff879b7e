"""Process-level helpers: device choice and seeding."""

from __future__ import annotations

import random

import numpy as np
import torch


def resolve_device(name: str = "auto") -> torch.device:
    """Map ``auto`` / ``cpu`` / ``cuda`` to a torch device; ``cuda`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested but no CUDA GPU is available")
    if name not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {name!r} (use auto, cpu or cuda)")
    return torch.device(name)


def seed_everything(seed: int) -> np.random.Generator:
    """Seed python, numpy and torch; return a numpy Generator for explicit use."""
    random.seed(seed)
    np.random.seed(seed % (2**32))  # noqa: NPY002 - seeds third-party code using the legacy API
    torch.manual_seed(seed)
    return np.random.default_rng(seed)
