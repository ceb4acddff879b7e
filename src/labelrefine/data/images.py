"""Every image read goes through :func:`read_image`: DICOM and ordinary files alike.

One function turns a file into the 8-bit RGB picture that is embedded and displayed:

- **8-bit files** (JPEG, 8-bit PNG / TIFF, palette, RGBA, ...) go through PIL's conversion,
  unchanged from before any intensity setting existed.
- **High-bit-depth files** (16-bit PNG / TIFF, 32-bit integer or float TIFF) keep their values
  until they are mapped to 0..255 by the dataset's :class:`~labelrefine.config.IntensityConfig`:
  percentile clipping (default 0.5..99.5), the image's own minimum..maximum, or a fixed window.
- **DICOM** (``.dcm`` / ``.dicom``, or any file with the ``DICM`` marker) is read by pydicom:
  stored values -> rescale slope / intercept (modality values, e.g. Hounsfield units) -> the
  file's VOI LUT, else its first window centre / width, else the dataset's intensity setting
  (a dataset-level ``mode: window`` overrides the file) -> 0..255, inverted for MONOCHROME1.
  16-bit values are kept as floats until that last step. RGB (and YCbCr, converted by pydicom)
  8-bit files are shown as stored. Multi-frame files, transfer syntaxes without an installed
  decoder, other photometric interpretations and modality LUT sequences are refused with an
  :class:`UnsupportedImageError` naming the file and what is not supported.

The windowing functions are pure functions over numpy arrays; their formulas are those of the
DICOM standard (PS3.3 C.11.2.1.2 "Window Center and Window Width").
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

from labelrefine.config import IntensityConfig
from labelrefine.data.errors import DataError

DICOM_SUFFIXES: tuple[str, ...] = (".dcm", ".dicom")
"""File name endings (case-insensitive) always read as DICOM."""

HIGH_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")
"""PIL modes holding more than 8 bits per pixel (16-bit and 32-bit integer, 32-bit float)."""

DEFAULT_INTENSITY = IntensityConfig()

BROWSER_FORMATS = frozenset({"JPEG", "PNG", "GIF", "WEBP", "BMP"})
"""Formats a browser shows as they are (when in one of :data:`BROWSER_MODES`)."""
BROWSER_MODES = frozenset({"1", "L", "LA", "P", "RGB", "RGBA"})

RENDER_VERSION = 1
"""Bump when the mapping of high-bit or DICOM values to 8 bits changes (part of cache keys)."""

VoiFunction = Literal["LINEAR", "LINEAR_EXACT", "SIGMOID"]


class UnsupportedImageError(DataError):
    """A file that is (or claims to be) an image in a form this library does not read; the
    message names the file and what is unsupported (``reason``)."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = Path(path)
        self.reason = reason

    def __reduce__(self) -> tuple[type, tuple[Path, str]]:  # picklable across processes
        return (type(self), (self.path, self.reason))


# ----------------------------------------------------------------------------------------------
# pure functions over arrays
# ----------------------------------------------------------------------------------------------


def rescale(stored: np.ndarray, slope: float = 1.0, intercept: float = 0.0) -> np.ndarray:
    """Modality values from stored values (DICOM Rescale Slope / Intercept, PS3.3 C.11.1.1.2):

    ``y = slope * x + intercept`` (float64), e.g. Hounsfield units for CT.
    """
    return np.asarray(stored, dtype=np.float64) * float(slope) + float(intercept)


def window_linear(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """DICOM ``LINEAR`` window (PS3.3 C.11.2.1.2.1) onto 0..255, as float64.

    With ``c = center``, ``w = width`` (``w >= 1``)::

        y = 0                                  if x <= c - 0.5 - (w - 1) / 2
        y = 255                                if x >  c - 0.5 + (w - 1) / 2
        y = ((x - (c - 0.5)) / (w - 1) + 0.5) * 255   otherwise

    ``w == 1`` is a threshold at ``c - 0.5``.
    """
    x = np.asarray(values, dtype=np.float64)
    c, w = float(center), float(width)
    if w < 1:
        raise ValueError(f"LINEAR window width must be >= 1, got {w:g}")
    if w == 1:
        return np.where(x > c - 0.5, 255.0, 0.0)
    return np.clip((x - (c - 0.5)) / (w - 1) + 0.5, 0.0, 1.0) * 255.0


def window_linear_exact(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """DICOM ``LINEAR_EXACT`` window (PS3.3 C.11.2.1.3.2) onto 0..255, as float64.

    ``y = clip((x - c) / w + 0.5, 0, 1) * 255`` with ``w > 0`` (0 at ``x <= c - w/2``, 255 above
    ``c + w/2``). This is also the dataset-level window (``intensity.mode: window``), for DICOM
    and other files alike.
    """
    x = np.asarray(values, dtype=np.float64)
    c, w = float(center), float(width)
    if w <= 0:
        raise ValueError(f"window width must be > 0, got {w:g}")
    return np.clip((x - c) / w + 0.5, 0.0, 1.0) * 255.0


def window_sigmoid(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """DICOM ``SIGMOID`` window (PS3.3 C.11.2.1.3.1) onto 0..255, as float64:

    ``y = 255 / (1 + exp(-4 (x - c) / w))`` with ``w > 0``.
    """
    x = np.asarray(values, dtype=np.float64)
    c, w = float(center), float(width)
    if w <= 0:
        raise ValueError(f"window width must be > 0, got {w:g}")
    with np.errstate(over="ignore"):
        return 255.0 / (1.0 + np.exp(-4.0 * (x - c) / w))


def apply_window(
    values: np.ndarray, center: float, width: float, function: VoiFunction = "LINEAR"
) -> np.ndarray:
    """``values`` through the window ``center`` / ``width`` with the DICOM VOI LUT function
    ``function`` (:func:`window_linear`, :func:`window_linear_exact`, :func:`window_sigmoid`)."""
    if function == "LINEAR":
        return window_linear(values, center, width)
    if function == "LINEAR_EXACT":
        return window_linear_exact(values, center, width)
    if function == "SIGMOID":
        return window_sigmoid(values, center, width)
    raise ValueError(f"unknown VOI LUT function {function!r}")


def voi_lut_lookup(values: np.ndarray, table: np.ndarray, first: int, bits: int) -> np.ndarray:
    """A DICOM VOI LUT (PS3.3 C.11.2.1.1) onto 0..255, as float64.

    With the LUT's ``n`` entries ``table``, first mapped value ``first`` and output ``bits``::

        y = table[clip(round(x) - first, 0, n - 1)] / (2**bits - 1) * 255

    (inputs below ``first`` take the first entry, inputs past the end the last).
    """
    x = np.rint(np.asarray(values, dtype=np.float64))
    lut = np.asarray(table, dtype=np.float64)
    if lut.ndim != 1 or len(lut) == 0:
        raise ValueError("empty VOI LUT")
    if not 1 <= int(bits) <= 16:
        raise ValueError(f"{bits} bits per LUT entry")
    idx = np.clip(x - int(first), 0, len(lut) - 1).astype(np.int64)
    return lut[idx] / float(2 ** int(bits) - 1) * 255.0


def scale_range(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Linear map of ``low..high`` onto 0..255, clipped, as float64:

    ``y = clip((x - low) / (high - low), 0, 1) * 255``; all zeros when ``high <= low``.
    """
    x = np.asarray(values, dtype=np.float64)
    if not high > low:
        return np.zeros(x.shape)
    return np.clip((x - low) / (high - low), 0.0, 1.0) * 255.0


def intensity_range(values: np.ndarray, mode: str, low: float = 0.5,
                    high: float = 99.5) -> tuple[float, float]:
    """The value range that :func:`scale_range` maps onto 0..255 for ``mode``, over the finite
    values: ``minmax`` -> (minimum, maximum); ``percentile`` -> the ``low``-th and ``high``-th
    percentiles (linear interpolation). (0, 0) when no value is finite."""
    x = np.asarray(values, dtype=np.float64)
    finite = x[np.isfinite(x)]
    if finite.size == 0:
        return 0.0, 0.0
    if mode == "minmax":
        return float(finite.min()), float(finite.max())
    if mode == "percentile":
        lo, hi = np.percentile(finite, [low, high])
        return float(lo), float(hi)
    raise ValueError(f"intensity mode {mode!r} has no data-derived range")


def to_uint8(scaled: np.ndarray) -> np.ndarray:
    """Round 0..255 floats to uint8 (``clip(rint(y), 0, 255)``)."""
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def render_gray(values: np.ndarray, intensity: IntensityConfig = DEFAULT_INTENSITY) -> np.ndarray:
    """High-bit grayscale values -> uint8 by ``intensity`` (mode ``percentile``, ``minmax`` or
    ``window`` with :func:`window_linear_exact`). Non-finite values count as the lowest value
    (they become 0); a constant image becomes black."""
    x = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(x)
    if intensity.mode == "window":
        assert intensity.center is not None and intensity.width is not None
        out = window_linear_exact(x, intensity.center, intensity.width)
        return to_uint8(np.where(finite, out, 0.0))
    lo, hi = intensity_range(x, intensity.mode, intensity.low, intensity.high)
    return to_uint8(scale_range(np.where(finite, x, lo), lo, hi))


def invert(gray: np.ndarray) -> np.ndarray:
    """MONOCHROME1 display: the lowest value is white, ``y = 255 - x`` (uint8)."""
    return (255 - np.asarray(gray, dtype=np.uint8)).astype(np.uint8)


# ----------------------------------------------------------------------------------------------
# PIL images
# ----------------------------------------------------------------------------------------------


def to_rgb8(im: Image.Image, intensity: IntensityConfig | None = None) -> Image.Image:
    """An 8-bit RGB copy of ``im``.

    High-bit-depth grayscale images (:data:`HIGH_BIT_MODES`) are mapped by ``intensity``
    (:func:`render_gray`; default: 0.5..99.5 percentile clipping) -- a plain
    ``convert("RGB")`` would clip them (a 16-bit image becomes almost all white). Other modes
    (palette, alpha, CMYK, 8-bit gray) go through PIL's conversion.
    """
    if im.mode not in HIGH_BIT_MODES:
        return im.convert("RGB")
    gray = render_gray(np.asarray(im), intensity or DEFAULT_INTENSITY)
    return Image.fromarray(gray, mode="L").convert("RGB")


def is_dicom(path: str | Path, head: bytes | None = None) -> bool:
    """Whether ``path`` is read as DICOM: its ending is ``.dcm`` / ``.dicom``, or its bytes
    carry the ``DICM`` marker after the 128-byte preamble (``head``: the file's first bytes,
    when already read)."""
    if Path(path).suffix.lower() in DICOM_SUFFIXES:
        return True
    if head is None:
        try:
            with open(path, "rb") as fh:
                head = fh.read(132)
        except OSError:
            return False
    return len(head) >= 132 and head[128:132] == b"DICM"


def read_image(path: str | Path, intensity: IntensityConfig | None = None) -> Image.Image:
    """The 8-bit RGB picture of the image file ``path`` (see the module docstring).

    Raises :class:`FileNotFoundError` for a missing file, :class:`UnsupportedImageError` for a
    DICOM file that cannot be shown (naming the file and the reason), and PIL's errors for
    other unreadable files.
    """
    path = Path(path)
    if is_dicom(path):
        return Image.fromarray(read_dicom(path, intensity), mode="RGB")
    with Image.open(path) as im:
        return to_rgb8(im, intensity)


def browser_ready(path: str | Path) -> bool:
    """Whether a browser shows the file ``path`` as it is (an 8-bit JPEG, PNG, GIF, WebP or
    BMP); DICOM, high-bit-depth, TIFF and CMYK files are not. Reads the header only."""
    if is_dicom(path):
        return False
    with Image.open(path) as im:
        return im.format in BROWSER_FORMATS and im.mode in BROWSER_MODES


def browser_png(path: str | Path, intensity: IntensityConfig | None = None) -> bytes | None:
    """PNG bytes of ``path`` rendered by :func:`read_image` when a browser cannot show the file
    as it is (DICOM, high bit depth, TIFF, CMYK, ...); ``None`` when the file itself can be
    served."""
    if browser_ready(path):
        return None
    buf = io.BytesIO()
    read_image(path, intensity).save(buf, format="PNG")
    return buf.getvalue()


def image_problem(path: str | Path) -> str | None:
    """Why ``path`` is not a readable image (without the path), or ``None`` when it is fine.

    DICOM files are decoded completely (every refusal of :func:`read_dicom` is found here).
    Others: PIL's ``verify`` checks the container (and PNG checksums); JPEGs are additionally
    decoded at reduced scale (``draft``), which is cheap and catches truncated files.
    """
    try:
        if is_dicom(path):
            read_dicom(Path(path))
            return None
        with Image.open(path) as im:
            im.verify()
        with Image.open(path) as im:
            if im.format == "JPEG":
                im.draft("RGB", (max(1, im.width // 8), max(1, im.height // 8)))
                im.load()
    except UnsupportedImageError as err:
        return err.reason
    except Exception as err:  # PIL raises many types for bad files
        return f"{type(err).__name__}: {err}"
    return None


def rendering_tag(path: str | Path, data: bytes, intensity: IntensityConfig | None) -> str:
    """What, beyond the file's bytes ``data``, its rendering depends on: ``""`` for 8-bit files
    (their pixels do not depend on any setting), else the render version and the intensity
    setting. Part of embedding cache keys, so changing the setting re-embeds only the datasets
    it affects."""
    if data[:3] == b"\xff\xd8\xff":  # JPEG: 8-bit in PIL
        return ""
    if not is_dicom(path, data[:132]):
        try:
            with Image.open(io.BytesIO(data)) as im:
                if im.mode not in HIGH_BIT_MODES:
                    return ""
        except Exception:  # unreadable: reading the image will say so
            return ""
    it = intensity or DEFAULT_INTENSITY
    return f"render{RENDER_VERSION}:{it.model_dump_json()}"


# ----------------------------------------------------------------------------------------------
# DICOM
# ----------------------------------------------------------------------------------------------

_GRAY = ("MONOCHROME1", "MONOCHROME2")
_COLOR = ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT")


@dataclass(frozen=True)
class DicomWindow:
    """A file's VOI window: its first Window Center / Width and VOI LUT Function."""

    center: float
    width: float
    function: VoiFunction = "LINEAR"


def _first(value: Any) -> float | None:
    if value is None:
        return None
    try:
        seq = list(value)
    except TypeError:
        seq = [value]
    if not seq:
        return None
    try:
        out = float(seq[0])
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def dicom_window(ds: Any) -> DicomWindow | None:
    """The file's first usable window (Window Center / Window Width, VOI LUT Function), or
    ``None`` when it has none (or only an invalid one: width < 1 for LINEAR, <= 0 otherwise)."""
    center = _first(ds.get("WindowCenter"))
    width = _first(ds.get("WindowWidth"))
    if center is None or width is None:
        return None
    function = str(ds.get("VOILUTFunction", "LINEAR") or "LINEAR").upper()
    if function not in ("LINEAR", "LINEAR_EXACT", "SIGMOID"):
        function = "LINEAR"
    if width < (1 if function == "LINEAR" else np.finfo(float).tiny):
        return None
    return DicomWindow(center, width, function)  # type: ignore[arg-type]


def _refuse(path: Path, what: str) -> UnsupportedImageError:
    return UnsupportedImageError(path, what)


def read_dicom(path: Path, intensity: IntensityConfig | None = None) -> np.ndarray:
    """The ``(H, W, 3)`` uint8 RGB picture of the single-frame DICOM file ``path``.

    Grayscale (MONOCHROME1 / MONOCHROME2): stored values -> :func:`rescale` -> the file's VOI
    LUT Sequence (first LUT, scaled from its output bits to 0..255), else its first window
    (:func:`apply_window`), else ``intensity`` (:func:`render_gray`); a dataset-level
    ``mode: window`` replaces the file's VOI. MONOCHROME1 is then inverted (:func:`invert`).
    Stored 8-bit unsigned values with no rescale and no VOI are shown as stored, like an 8-bit
    PNG. Color (RGB; YCbCr converted to RGB by pydicom), 8 bits per sample: as stored.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    intensity = intensity or DEFAULT_INTENSITY
    try:
        ds = pydicom.dcmread(path)
    except FileNotFoundError:
        raise
    except InvalidDicomError:
        raise _refuse(path, "not a DICOM file (no DICM marker after the 128-byte preamble)") \
            from None
    except Exception as err:  # pydicom raises many types for damaged files
        raise _refuse(path, f"unreadable DICOM file ({type(err).__name__}: {err})") from None
    if "PixelData" not in ds:
        what = ("float pixel data is not supported"
                if "FloatPixelData" in ds or "DoubleFloatPixelData" in ds
                else "DICOM file has no pixel data (not an image)")
        raise _refuse(path, what)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames > 1:
        raise _refuse(path, f"multi-frame DICOM ({frames} frames) is not supported; "
                            "export one frame per file")
    photometric = str(ds.get("PhotometricInterpretation", "")).strip().upper()
    if photometric not in _GRAY + _COLOR:
        raise _refuse(path, f"photometric interpretation {photometric or '(missing)'!r} is not "
                            f"supported (supported: {', '.join(_GRAY + _COLOR)})")
    _check_transfer_syntax(ds, path)
    try:
        stored = ds.pixel_array
    except Exception as err:
        raise _refuse(path, f"cannot decode pixel data ({type(err).__name__}: {err})") from None
    if photometric in _COLOR:
        bits = int(ds.get("BitsAllocated", 8))
        if stored.ndim != 3 or stored.shape[-1] != 3 or bits != 8:
            raise _refuse(path, f"{photometric} with {bits} bits per sample is not supported "
                                "(only 8-bit color)")
        return np.ascontiguousarray(stored.astype(np.uint8))
    if stored.ndim != 2:
        raise _refuse(path, f"pixel array of shape {stored.shape} is not a single grayscale "
                            "frame")
    if "ModalityLUTSequence" in ds:
        raise _refuse(path, "a modality LUT sequence is not supported (only rescale slope / "
                            "intercept)")
    gray = _render_dicom_gray(ds, stored, intensity, path)
    if photometric == "MONOCHROME1":
        gray = invert(gray)
    return np.repeat(gray[:, :, None], 3, axis=2)


def check_dicom_keywords(names: Sequence[str]) -> None:
    """Raise :class:`DataError` naming the first of ``names`` that is not a DICOM keyword."""
    from pydicom.datadict import tag_for_keyword

    for name in names:
        if tag_for_keyword(name) is None:
            raise DataError(f"{name!r} is not a DICOM attribute keyword (e.g. PatientID, "
                            "StudyInstanceUID, SeriesInstanceUID, Modality)")


def dicom_tags(path: str | Path, names: Sequence[str]) -> dict[str, str]:
    """The values of the DICOM attributes ``names`` (keywords) in ``path`` as text; ``""`` for
    an attribute the file lacks, and for every name when the file is not DICOM."""
    import pydicom

    if not names or not is_dicom(path):
        return {n: "" for n in names}
    ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=list(names))
    return {n: "" if ds.get(n) is None else str(ds.get(n)) for n in names}


def _check_transfer_syntax(ds: Any, path: Path) -> None:
    from pydicom.pixels.decoders.base import get_decoder
    from pydicom.uid import UID

    meta = getattr(ds, "file_meta", None)
    uid = UID(str(meta.get("TransferSyntaxUID", ""))) if meta is not None else UID("")
    if not uid:
        return  # pydicom assumes implicit VR little endian
    name = f"{uid.name} ({uid})" if uid.name != uid else str(uid)
    try:
        decoder = get_decoder(uid)
    except NotImplementedError:
        raise _refuse(path, f"transfer syntax {name} is not supported") from None
    if not decoder.is_available:
        missing = "; ".join(str(m) for m in decoder.missing_dependencies)
        raise _refuse(path, f"transfer syntax {name} needs a decoder that is not installed"
                            + (f" ({missing})" if missing else ""))


def _render_dicom_gray(ds: Any, stored: np.ndarray, intensity: IntensityConfig,
                       path: Path) -> np.ndarray:
    slope = _first(ds.get("RescaleSlope"))
    intercept = _first(ds.get("RescaleIntercept"))
    slope = 1.0 if slope is None else slope
    intercept = 0.0 if intercept is None else intercept
    values = rescale(stored, slope, intercept)
    if intensity.mode == "window":
        assert intensity.center is not None and intensity.width is not None
        return to_uint8(window_linear_exact(values, intensity.center, intensity.width))
    lut = ds.get("VOILUTSequence")
    if lut:
        return _voi_lut(ds, values, path)
    window = dicom_window(ds)
    if window is not None:
        return to_uint8(apply_window(values, window.center, window.width, window.function))
    as_stored = (stored.dtype.kind == "u" and int(ds.get("BitsStored", 16)) <= 8
                 and slope == 1.0 and intercept == 0.0)
    if as_stored:
        return stored.astype(np.uint8)
    return render_gray(values, intensity)


def _voi_lut(ds: Any, values: np.ndarray, path: Path) -> np.ndarray:
    """The file's first VOI LUT (:func:`voi_lut_lookup`) applied to its modality values."""
    item = ds.VOILUTSequence[0]
    try:
        entries, first, bits = (int(v) for v in item.LUTDescriptor)
        entries = entries or 65536
        if first > 32767 and int(ds.get("PixelRepresentation", 0)) == 1:
            first -= 65536  # read as US, meant as SS for signed pixels
        raw = item.LUTData
        if isinstance(raw, bytes):
            syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
            little = True if syntax is None else bool(syntax.is_little_endian)
            table = np.frombuffer(raw, dtype="<u2" if little else ">u2")[:entries]
        else:
            table = np.asarray(list(raw) if not isinstance(raw, int) else [raw])
        if len(table) != entries:
            raise ValueError(f"{len(table)} LUT entries, descriptor says {entries}")
        return to_uint8(voi_lut_lookup(values, table, first, bits))
    except (ValueError, TypeError, AttributeError) as err:
        raise _refuse(path, f"cannot apply its VOI LUT ({err})") from None
