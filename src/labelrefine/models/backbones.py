"""torchvision backbones for fine-tune mode; weights only from a local file, never downloaded."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torchvision import models as tvm

_BUILDERS = {"resnet18": tvm.resnet18, "resnet34": tvm.resnet34, "resnet50": tvm.resnet50}
BACKBONES = tuple(_BUILDERS)


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise FileNotFoundError(f"backbone weights file not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # unreadable or not a torch file
        raise ValueError(f"{path}: not a readable torch state_dict ({err})") from None
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a state_dict mapping, got {type(obj).__name__}")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def build_backbone(name: str, weights: Path | str | None = None) -> tuple[nn.Module, int]:
    """A torchvision ResNet trunk (``fc`` replaced by identity) and its feature width.

    ``weights`` is a local ``state_dict`` file for the full torchvision model (e.g. the ImageNet
    checkpoint); its ``fc.*`` entries are ignored. Without ``weights`` the trunk is randomly
    initialised. Nothing is ever downloaded.
    """
    if name not in _BUILDERS:
        raise ValueError(f"unknown backbone {name!r} (use one of {', '.join(BACKBONES)})")
    net = _BUILDERS[name](weights=None)
    if weights is not None:
        path = Path(weights)
        state = {k: v for k, v in _read_state_dict(path).items() if not k.startswith("fc.")}
        try:
            result = net.load_state_dict(state, strict=False)
        except RuntimeError as err:  # shape mismatches
            first = str(err).strip().splitlines()[-1].strip()
            raise ValueError(f"{path}: does not match {name} ({first})") from None
        missing = [k for k in result.missing_keys if not k.startswith("fc.")]
        if missing or result.unexpected_keys:
            raise ValueError(
                f"{path}: does not match {name} (missing {missing[:3]}, "
                f"unexpected {list(result.unexpected_keys)[:3]})"
            )
    dim = int(net.fc.in_features)
    net.fc = nn.Identity()
    return net, dim
