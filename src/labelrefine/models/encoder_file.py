"""Your own image encoder from a local file: TorchScript (``.pt`` / ``.ts``) or ONNX
(``.onnx``), embedded and cached like the built-in encoders.

The encoder maps ``(B, 3, S, S)`` float32 images -- resized (short side) to ``S``,
centre-cropped, scaled to ``[0, 1]`` and normalised ``(x - mean) / std`` per channel -- to
``(B, D)`` features (a ``(B, D, h, w)`` output is averaged over ``h, w``). ``S``, ``mean`` and
``std`` come from options, else from a YAML file next to the model (``model.onnx.yaml`` or
``model.yaml``: keys ``image_size``, ``mean``, ``std``), else ``S`` from the ONNX file's fixed
input size and ``mean`` / ``std`` ImageNet's. TorchScript runs in torch (CPU or CUDA); ONNX
in ONNX Runtime when installed, else in OpenVINO (CPU).

Features are cached in the feature cache folder (:func:`labelrefine.models.cache.
resolve_cache_dir`) as ``file-<stem>-<S>px-<hash>.npz`` in the built-in cache's format (plain
view only); the hash covers the images (ids and bytes, as the built-in key), the model file's
sha256, ``S``, ``mean`` and ``std``, so a changed model or setting is a new entry.
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from labelrefine.config import EncoderConfig
from labelrefine.data.dataset import DataError, ImageDataset
from labelrefine.models.augment import IMAGENET_MEAN, IMAGENET_STD
from labelrefine.models.cache import (
    CacheError,
    FeatureSet,
    _atomic_save_npz,
    content_fingerprint,
    load_features,
    progress_bar,
    resolve_cache_dir,
)
from labelrefine.models.encoders import weights_identity

#: bump when the stored arrays or the way images are prepared change
FORMAT_VERSION = 1
TORCHSCRIPT_SUFFIXES = (".pt", ".ts", ".pth", ".torchscript")
ONNX_SUFFIXES = (".onnx",)
SPEC_KEYS = ("image_size", "mean", "std")

EncoderKind = Literal["torchscript", "onnx"]
Triple = tuple[float, float, float]


@dataclass(frozen=True)
class EncoderFileSpec:
    """A model file and how images are prepared for it."""

    path: Path
    kind: EncoderKind
    image_size: int
    mean: Triple
    std: Triple

    @property
    def sha256(self) -> str:
        return weights_identity(self.path)


def encoder_kind(path: Path) -> EncoderKind:
    """``torchscript`` or ``onnx`` from the file name's ending."""
    suffix = path.suffix.lower()
    if suffix in TORCHSCRIPT_SUFFIXES:
        return "torchscript"
    if suffix in ONNX_SUFFIXES:
        return "onnx"
    raise DataError(f"encoder {path.name}: expected a TorchScript "
                    f"({', '.join(TORCHSCRIPT_SUFFIXES)}) or ONNX (.onnx) file")


def spec_file(path: Path) -> Path | None:
    """The YAML next to the model: ``<file>.yaml``, else ``<stem>.yaml``; None if neither."""
    for cand in (path.with_name(path.name + ".yaml"), path.with_suffix(".yaml")):
        if cand.is_file():
            return cand
    return None


def _triple(value: Any, key: str, where: str) -> Triple:
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    try:
        vals = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise DataError(f"{where}: {key} must be three numbers, got {value!r}") from None
    if len(vals) != 3 or not all(np.isfinite(vals)):
        raise DataError(f"{where}: {key} must be three finite numbers, got {value!r}")
    if key == "std" and min(vals) <= 0:
        raise DataError(f"{where}: std must be positive, got {value!r}")
    return vals  # type: ignore[return-value]


def _read_spec_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise DataError(f"{path.name}: not readable YAML ({err})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path.name}: expected a mapping with {', '.join(SPEC_KEYS)}")
    unknown = [k for k in data if k not in SPEC_KEYS]
    if unknown:
        raise DataError(f"{path.name}: unknown key {unknown[0]!r} (keys: {', '.join(SPEC_KEYS)})")
    return data


def _onnx_input_size(path: Path) -> int | None:
    """The fixed square input size of an ONNX model's first input, if it has one."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as err:  # any unreadable file gets the same clear message
        raise DataError(f"encoder {path.name}: not a readable ONNX model ({err})") from None
    dims = model.graph.input[0].type.tensor_type.shape.dim
    vals = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    if len(vals) == 4 and vals[2] and vals[2] == vals[3]:
        return int(vals[2])
    return None


def read_encoder_spec(path: str | Path, *, image_size: int | None = None,
                      mean: Any = None, std: Any = None) -> EncoderFileSpec:
    """The :class:`EncoderFileSpec` of model file ``path``: options first, then the YAML
    next to it (:func:`spec_file`), then the ONNX input size and ImageNet's mean / std."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"encoder file not found: {p}")
    kind = encoder_kind(p)
    side = spec_file(p)
    data = _read_spec_yaml(side) if side is not None else {}
    where = side.name if side is not None else p.name
    size = image_size if image_size is not None else data.get("image_size")
    if size is None and kind == "onnx":
        size = _onnx_input_size(p)
    if size is None:
        raise DataError(f"encoder {p.name}: input size unknown; give --image-size or "
                        f"image_size in {p.name}.yaml")
    if not isinstance(size, int) or isinstance(size, bool) or size < 8:
        raise DataError(f"{where}: image_size must be an integer >= 8, got {size!r}")
    m = _triple(mean if mean is not None else data.get("mean", IMAGENET_MEAN), "mean", where)
    s = _triple(std if std is not None else data.get("std", IMAGENET_STD), "std", where)
    return EncoderFileSpec(path=p, kind=kind, image_size=int(size), mean=m, std=s)


def _as_features(out: Any, path: Path) -> np.ndarray:
    if isinstance(out, (tuple, list)):
        out = out[0]
    arr = out.detach().float().cpu().numpy() if isinstance(out, torch.Tensor) else np.asarray(out)
    if arr.ndim == 4:
        arr = arr.mean(axis=(2, 3))
    if arr.ndim != 2:
        raise DataError(f"encoder {path.name}: output must be (batch, features), got shape "
                        f"{arr.shape}")
    return np.asarray(arr, dtype=np.float32)


def load_encoder_file(spec: EncoderFileSpec,
                      device: str = "cpu") -> Callable[[np.ndarray], np.ndarray]:
    """A function ``(B, 3, S, S)`` float32 array -> ``(B, D)`` float32 features."""
    p = spec.path
    if spec.kind == "torchscript":
        try:
            with warnings.catch_warnings():  # "torch.jit.load is deprecated"
                warnings.simplefilter("ignore", FutureWarning)
                module = torch.jit.load(str(p), map_location=device)
        except Exception as err:  # any unreadable file gets the same clear message
            raise DataError(f"encoder {p.name}: not a readable TorchScript model ({err})") from None
        module.eval()

        def run_ts(x: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                return _as_features(module(torch.from_numpy(x).to(device)), p)

        return run_ts
    import importlib.util

    if importlib.util.find_spec("onnxruntime") is not None:
        import onnxruntime as ort

        try:
            sess = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
        except Exception as err:  # any unreadable file gets the same clear message
            raise DataError(f"encoder {p.name}: not a readable ONNX model ({err})") from None
        name = sess.get_inputs()[0].name
        fixed = sess.get_inputs()[0].shape[0]
        return _fixed_batch(lambda x: _as_features(sess.run(None, {name: x})[0], p),
                            fixed if isinstance(fixed, int) else None)
    import openvino as ov

    core = ov.Core()
    try:
        compiled = core.compile_model(core.read_model(str(p)), "CPU")
    except Exception as err:  # any unreadable file gets the same clear message
        raise DataError(f"encoder {p.name}: not a readable ONNX model ({err})") from None
    dim0 = compiled.inputs[0].get_partial_shape()[0]
    fixed_ov = dim0.get_length() if dim0.is_static else None
    return _fixed_batch(lambda x: _as_features(compiled({0: x})[0], p), fixed_ov)


def _fixed_batch(run: Callable[[np.ndarray], np.ndarray],
                 size: int | None) -> Callable[[np.ndarray], np.ndarray]:
    """``run`` for any batch size, when the model only takes batches of ``size`` (padded)."""
    if size is None:
        return run

    def chunked(x: np.ndarray) -> np.ndarray:
        parts = []
        for i in range(0, x.shape[0], size):
            part = x[i:i + size]
            pad = size - part.shape[0]
            if pad:
                part = np.concatenate([part, np.zeros((pad, *part.shape[1:]), part.dtype)])
            parts.append(run(part)[: size - pad])
        return np.concatenate(parts)

    return chunked


def encoder_file_cache_key(dataset: ImageDataset | str, spec: EncoderFileSpec) -> str:
    """Cache key of ``dataset`` (or its content fingerprint) embedded with ``spec``."""
    fingerprint = dataset if isinstance(dataset, str) else content_fingerprint(dataset)
    payload = {"format": FORMAT_VERSION, "images": fingerprint, "kind": spec.kind,
               "model": spec.sha256, "image_size": spec.image_size,
               "mean": list(spec.mean), "std": list(spec.std)}
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]
    stem = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in spec.path.stem)[:40]
    return f"file-{stem}-{spec.image_size}px-{digest}"


def transform(spec: EncoderFileSpec) -> Callable[[Any], torch.Tensor]:
    """PIL image -> ``(3, S, S)`` float32 tensor as the encoder expects it."""
    from torchvision.transforms import v2

    return v2.Compose([
        v2.Resize(spec.image_size, antialias=True),
        v2.CenterCrop(spec.image_size),
        v2.ToImage(),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(mean=list(spec.mean), std=list(spec.std)),
    ])


def embed_with_encoder_file(dataset: ImageDataset, spec: EncoderFileSpec, *,
                            cache_dir: str | Path | None = None, batch_size: int = 32,
                            device: str = "cpu", progress: bool = True) -> FeatureSet:
    """Features of every item's plain view under the encoder file ``spec``, cached
    (module docstring); ``hit=True`` when read from the cache (the model is not loaded).
    Non-finite features or an inconsistent output size are a :class:`DataError` naming the
    first item."""
    if len(dataset) == 0:
        raise DataError("cannot embed an empty dataset")
    if batch_size < 1:
        raise DataError(f"batch size must be >= 1, got {batch_size}")
    key = encoder_file_cache_key(dataset, spec)
    path = resolve_cache_dir(EncoderConfig(cache_dir=cache_dir)) / f"{key}.npz"
    if path.is_file():
        try:
            return load_features(path, dataset)
        except CacheError:
            pass
    start = time.perf_counter()
    run = load_encoder_file(spec, device=device)
    prep = transform(spec)
    n = len(dataset)
    plain: np.ndarray | None = None
    with progress_bar(progress, n, f"embedding {n} images with {spec.path.name}") as advance:
        for lo in range(0, n, batch_size):
            idx = range(lo, min(lo + batch_size, n))
            x = torch.stack([prep(dataset.load_image(i)) for i in idx]).numpy()
            f = run(np.ascontiguousarray(x, dtype=np.float32))
            if f.shape[0] != len(idx) or (plain is not None and f.shape[1] != plain.shape[1]):
                raise DataError(f"encoder {spec.path.name}: returned shape {f.shape} for a "
                                f"batch of {len(idx)} images")
            bad = ~np.isfinite(f).all(axis=1)
            if bad.any():
                item = dataset.ids[lo + int(np.flatnonzero(bad)[0])]
                raise DataError(f"encoder {spec.path.name}: non-finite features for item "
                                f"{item!r}; nothing was cached")
            if plain is None:
                plain = np.empty((n, f.shape[1]), dtype=np.float32)
            plain[lo:lo + len(idx)] = f
            advance(len(idx))
    assert plain is not None
    meta = {"format": FORMAT_VERSION, "encoder": f"file:{spec.path.name}",
            "weights": spec.sha256[:16], "image_size": spec.image_size, "views": 0,
            "mean": list(spec.mean), "std": list(spec.std), "dataset": dataset.name,
            "runtime": spec.kind, "device": device,
            "seconds": round(time.perf_counter() - start, 2)}
    views = np.zeros((0, n, plain.shape[1]), dtype=np.float32)
    _atomic_save_npz(path, views=views, plain=plain, ids=np.asarray(dataset.ids, dtype=str),
                     meta=np.asarray(json.dumps(meta)))
    return FeatureSet(views=views, plain=plain, ids=tuple(dataset.ids), key=key, path=path,
                      hit=False, meta=meta)
