"""DICOM files (written here with pydicom) become the pictures the windowing formulas say:
rescale slope / intercept, the file's window or VOI LUT, the dataset's intensity setting,
MONOCHROME1 inverted; files that cannot be shown are refused with one line naming the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from dicom_files import write_dicom
from labelrefine.config import IntensityConfig
from labelrefine.data.dataset import DataError
from labelrefine.data.images import (
    UnsupportedImageError,
    apply_window,
    browser_png,
    image_problem,
    read_image,
    window_linear,
)
from labelrefine.data.loaders import load_csv_folder, load_nct_crc


def ramp16(h: int = 24, w: int = 32) -> np.ndarray:
    """12-bit stored values 0..4095 in a smooth ramp."""
    return np.rint(np.linspace(0, 4095, h * w)).astype(np.uint16).reshape(h, w)


def linear_by_hand(x: np.ndarray, c: float, w: float) -> np.ndarray:
    """PS3.3 C.11.2.1.2.1, written out branch by branch."""
    out = np.empty(x.shape)
    for i, v in np.ndenumerate(x):
        if v <= c - 0.5 - (w - 1) / 2:
            out[i] = 0
        elif v > c - 0.5 + (w - 1) / 2:
            out[i] = 255
        else:
            out[i] = ((v - (c - 0.5)) / (w - 1) + 0.5) * 255
    return np.rint(out)


def gray(path: Path, intensity: IntensityConfig | None = None) -> np.ndarray:
    img = np.asarray(read_image(path, intensity))
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    assert (img[:, :, 0] == img[:, :, 1]).all() and (img[:, :, 1] == img[:, :, 2]).all()
    return img[:, :, 0].astype(np.int64)


# ------------------------------------------------------------------------------------ rendering


def test_16_bit_rescale_and_window_follow_the_dicom_formula(tmp_path):
    stored = ramp16()
    path = write_dicom(tmp_path / "ct.dcm", stored, bits_stored=12, slope=2.0,
                       intercept=-1024.0, window=(400.0, 2001.0))
    hu = stored.astype(np.float64) * 2.0 - 1024.0  # modality values
    want = linear_by_hand(hu, 400.0, 2001.0)
    np.testing.assert_array_equal(gray(path), want)
    assert want.min() == 0 and want.max() == 255 and len(np.unique(want)) > 150
    # the same file as MONOCHROME1: the lowest value is white
    inv = write_dicom(tmp_path / "inv.dcm", stored, bits_stored=12, slope=2.0,
                      intercept=-1024.0, window=(400.0, 2001.0), photometric="MONOCHROME1")
    np.testing.assert_array_equal(gray(inv), 255 - want)


def test_16_bit_values_are_kept_until_windowing(tmp_path):
    stored = ramp16()  # steps of about 5.3 between neighbours
    path = write_dicom(tmp_path / "narrow.dcm", stored, window=(2000.0, 201.0))
    got = gray(path)
    np.testing.assert_array_equal(got, linear_by_hand(stored.astype(float), 2000, 201))
    # about 38 stored values fall in the window, each its own gray level; quantising to 8 bits
    # first (steps of 16) would have left about 13
    assert len(np.unique(got[(got > 0) & (got < 255)])) >= 35


def test_signed_16_bit_values_and_multi_valued_window(tmp_path):
    stored = (ramp16().astype(np.int32) - 2048).astype(np.int16)  # CT-like, negative values
    path = write_dicom(tmp_path / "s.dcm", stored, bits_stored=16, intercept=0.0,
                       window=([-100.0, 40.0], [800.0, 400.0]))
    np.testing.assert_array_equal(gray(path), linear_by_hand(stored.astype(float), -100, 800))


def test_without_a_window_16_bit_uses_the_dataset_setting(tmp_path):
    stored = ramp16()
    stored[0, 0] = 65535  # one hot pixel
    path = write_dicom(tmp_path / "nowin.dcm", stored, slope=0.5, intercept=10.0)
    values = stored.astype(np.float64) * 0.5 + 10.0
    lo, hi = np.percentile(values, [0.5, 99.5])
    want = np.rint(np.clip((values - lo) / (hi - lo), 0, 1) * 255)
    np.testing.assert_array_equal(gray(path), want)  # default: percentile clipping
    lo, hi = values.min(), values.max()
    np.testing.assert_array_equal(gray(path, IntensityConfig(mode="minmax")),
                                  np.rint((values - lo) / (hi - lo) * 255))
    inv = write_dicom(tmp_path / "inv.dcm", stored, slope=0.5, intercept=10.0,
                      photometric="MONOCHROME1")
    lo, hi = np.percentile(values, [0.5, 99.5])
    np.testing.assert_array_equal(
        gray(inv), 255 - np.rint(np.clip((values - lo) / (hi - lo), 0, 1) * 255))


def test_a_dataset_window_replaces_the_files_window(tmp_path):
    stored = ramp16()
    path = write_dicom(tmp_path / "w.dcm", stored, intercept=-1000.0, window=(0.0, 100.0))
    setting = IntensityConfig(mode="window", center=1000.0, width=2000.0)
    values = stored.astype(np.float64) - 1000.0
    want = np.rint(np.clip((values - 1000.0) / 2000.0 + 0.5, 0, 1) * 255)  # LINEAR_EXACT
    np.testing.assert_array_equal(gray(path, setting), want)
    assert not np.array_equal(gray(path), want)  # without it: the file's own narrow window


def test_8_bit_files_as_stored_or_windowed(tmp_path):
    stored = np.arange(24 * 32, dtype=np.int64).reshape(24, 32) % 256
    stored = stored.astype(np.uint8)
    plain = write_dicom(tmp_path / "p.dcm", stored)
    np.testing.assert_array_equal(gray(plain), stored)  # like an 8-bit PNG: as stored
    np.testing.assert_array_equal(gray(plain, IntensityConfig(mode="minmax")), stored)
    inv = write_dicom(tmp_path / "i.dcm", stored, photometric="MONOCHROME1")
    np.testing.assert_array_equal(gray(inv), 255 - stored.astype(int))
    win = write_dicom(tmp_path / "w.dcm", stored, window=(128.0, 64.0))
    np.testing.assert_array_equal(gray(win), linear_by_hand(stored.astype(float), 128, 64))


def test_voi_lut_and_voi_functions(tmp_path):
    stored = ramp16()
    table = (np.arange(4096) // 4) % 1024  # 10-bit output, a saw
    path = write_dicom(tmp_path / "lut.dcm", stored, window=(0.0, 10.0),
                       voi_lut=([4096, 0, 10], table.tolist()))
    want = np.rint(table[stored] / 1023 * 255)  # the LUT wins over the window
    np.testing.assert_array_equal(gray(path), want)
    # first mapped value: inputs below it take the first entry, above the end the last
    shifted = write_dicom(tmp_path / "lut2.dcm", stored,
                          voi_lut=([256, 1000, 8], list(range(256))))
    idx = np.clip(stored.astype(int) - 1000, 0, 255)
    np.testing.assert_array_equal(gray(shifted), idx)
    # LUT data stored as OW words instead of a US list
    import pydicom

    ds = pydicom.dcmread(path)
    ds.VOILUTSequence[0].add_new(0x00283006, "OW", table.astype("<u2").tobytes())
    ds.save_as(tmp_path / "ow.dcm")
    np.testing.assert_array_equal(gray(tmp_path / "ow.dcm"), want)

    x = stored.astype(np.float64)
    exact = write_dicom(tmp_path / "e.dcm", stored, window=(2000.0, 1000.0),
                        voi_function="LINEAR_EXACT")
    np.testing.assert_array_equal(
        gray(exact), np.rint(np.clip((x - 2000) / 1000 + 0.5, 0, 1) * 255))
    sig = write_dicom(tmp_path / "g.dcm", stored, window=(2000.0, 1000.0),
                      voi_function="SIGMOID")
    np.testing.assert_array_equal(gray(sig), np.rint(255 / (1 + np.exp(-4 * (x - 2000) / 1000))))


def test_window_formulas_at_their_edges():
    c, w = 100.0, 11.0
    lo, hi = c - 0.5 - (w - 1) / 2, c - 0.5 + (w - 1) / 2  # 94.5, 104.5
    out = window_linear(np.array([lo - 1, lo, (lo + hi) / 2, hi, hi + 0.01]), c, w)
    np.testing.assert_allclose(out, [0, 0, 127.5, 255, 255])
    np.testing.assert_array_equal(window_linear(np.array([99.4, 99.6]), 100.0, 1.0), [0, 255])
    with pytest.raises(ValueError, match=">= 1"):
        window_linear(np.zeros(2), 0.0, 0.5)
    with pytest.raises(ValueError, match="unknown VOI"):
        apply_window(np.zeros(2), 0.0, 2.0, "GAMMA")  # type: ignore[arg-type]


def test_rgb_and_compressed_files(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, size=(16, 20, 3), dtype=np.uint8)
    path = write_dicom(tmp_path / "rgb.dcm", rgb, photometric="RGB")
    np.testing.assert_array_equal(np.asarray(read_image(path)), rgb)
    from pydicom.uid import RLELossless

    stored = ramp16()
    rle = write_dicom(tmp_path / "rle.dcm", stored, window=(2000.0, 3000.0),
                      transfer_syntax=RLELossless)
    raw = write_dicom(tmp_path / "raw.dcm", stored, window=(2000.0, 3000.0))
    import pydicom

    assert pydicom.dcmread(rle).file_meta.TransferSyntaxUID == RLELossless
    np.testing.assert_array_equal(gray(rle), gray(raw))
    # JPEG 2000 lossless (decoded by pylibjpeg-openjpeg), 16-bit
    from pydicom.uid import JPEG2000Lossless

    big = np.rint(np.linspace(0, 4095, 64 * 64)).astype(np.uint16).reshape(64, 64)
    raw = write_dicom(tmp_path / "raw64.dcm", big, bits_stored=12, window=(2000.0, 3000.0))
    ds = pydicom.dcmread(raw)
    ds.compress(JPEG2000Lossless)
    ds.save_as(tmp_path / "j2k.dcm")
    np.testing.assert_array_equal(gray(tmp_path / "j2k.dcm"), gray(raw))
    np.testing.assert_array_equal(gray(raw), linear_by_hand(big.astype(float), 2000, 3000))
    # YCbCr: converted to RGB by pydicom (within rounding)
    from pydicom.pixels import convert_color_space

    ybr = write_dicom(tmp_path / "ybr.dcm", convert_color_space(rgb, "RGB", "YBR_FULL"),
                      photometric="YBR_FULL")
    assert np.abs(np.asarray(read_image(ybr)).astype(int) - rgb).max() <= 1


def test_dicom_without_the_dcm_ending_is_recognised(tmp_path):
    stored = ramp16()
    path = write_dicom(tmp_path / "IM0001", stored, window=(2000.0, 1000.0))
    np.testing.assert_array_equal(gray(path), linear_by_hand(stored.astype(float), 2000, 1000))


def test_browser_png_renders_dicom_and_passes_jpeg_through(tmp_path):
    stored = ramp16()
    path = write_dicom(tmp_path / "a.dcm", stored, window=(2000.0, 1000.0))
    png = browser_png(path)
    assert png is not None and png[:8] == b"\x89PNG\r\n\x1a\n"
    import io

    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(png)))[:, :, 0],
                                  gray(path))
    Image.fromarray(np.zeros((4, 4, 3), dtype=np.uint8)).save(tmp_path / "a.jpg")
    assert browser_png(tmp_path / "a.jpg") is None


# ------------------------------------------------------------------------------------- refusals


def refused(path: Path) -> str:
    with pytest.raises(UnsupportedImageError) as err:
        read_image(path)
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg
    assert isinstance(err.value, DataError) and isinstance(err.value, ValueError)
    assert msg == f"{path}: {image_problem(path)}"
    return msg


def test_bad_files_are_refused_with_one_line_naming_the_file(tmp_path, monkeypatch):
    stored = ramp16()
    assert "multi-frame DICOM (3 frames)" in refused(
        write_dicom(tmp_path / "multi.dcm", stored, frames=3))
    msg = refused(write_dicom(tmp_path / "mpeg.dcm", stored,
                              transfer_syntax="1.2.840.10008.1.2.4.100"))
    assert "transfer syntax MPEG2" in msg and "1.2.840.10008.1.2.4.100" in msg
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"not a dicom file at all " * 20)
    assert "not a DICOM file" in refused(junk)

    import pydicom

    palette = write_dicom(tmp_path / "pal.dcm", stored.astype(np.uint8))
    ds = pydicom.dcmread(palette)
    ds.PhotometricInterpretation = "PALETTE COLOR"
    ds.save_as(palette)
    assert "photometric interpretation 'PALETTE COLOR' is not supported" in refused(palette)

    nopix = write_dicom(tmp_path / "nopix.dcm", stored)
    ds = pydicom.dcmread(nopix)
    del ds.PixelData
    ds.save_as(nopix)
    assert "no pixel data" in refused(nopix)

    mlut = write_dicom(tmp_path / "mlut.dcm", stored)
    ds = pydicom.dcmread(mlut)
    item = pydicom.Dataset()
    item.add_new(0x00283002, "US", [4096, 0, 16])
    item.add_new(0x00283006, "US", list(range(4096)))
    ds.ModalityLUTSequence = pydicom.Sequence([item])
    ds.save_as(mlut)
    assert "modality LUT sequence is not supported" in refused(mlut)

    # a compressed syntax whose decoder is not installed
    from pydicom.pixels.decoders import base

    class Missing:
        is_available = False
        missing_dependencies = ["pylibjpeg - requires pylibjpeg-openjpeg"]

    monkeypatch.setattr(base, "get_decoder", lambda uid: Missing())
    msg = refused(write_dicom(tmp_path / "j2k.dcm", stored,
                              transfer_syntax="1.2.840.10008.1.2.4.90"))
    assert "JPEG 2000" in msg and "decoder that is not installed" in msg
    assert "pylibjpeg-openjpeg" in msg


# -------------------------------------------------------------------------------------- loaders


def dicom_folder(root: Path) -> tuple[Path, Path, list[str]]:
    """Six DICOM files, mixed 8/16-bit and MONOCHROME1/2, with a label CSV (ids: stems)."""
    images = root / "dicom"
    ids, labels = [], []
    for i in range(6):
        base = ramp16() if i % 2 else (ramp16() // 16).astype(np.uint8)
        write_dicom(images / f"case{i}.dcm", base,
                    photometric="MONOCHROME1" if i % 3 == 0 else "MONOCHROME2",
                    window=(2000.0, 1000.0) if i == 1 else None)
        ids.append(f"case{i}")
        labels.append("a" if i < 3 else "b")
    csv = root / "labels.csv"
    pd.DataFrame({"image_id": ids, "dx": labels}).to_csv(csv, index=False)
    return images, csv, ids


def test_csv_folder_of_dicom_files(tmp_path):
    images, csv, ids = dicom_folder(tmp_path)
    ds = load_csv_folder(images, csv, suffix=".dcm")
    assert ds.ids == tuple(ids) and all(p.suffix == ".dcm" for p in ds.paths or ())
    for i in range(len(ds)):
        assert ds.load_image(i).size == (32, 24)
    write_dicom(images / "case4.dcm", ramp16(), frames=2)
    with pytest.raises(DataError, match=r"'case4'.*case4\.dcm.*multi-frame") as err:
        load_csv_folder(images, csv, suffix=".dcm")
    assert "\n" not in str(err.value)


def test_class_folders_of_dicom_files(tmp_path):
    for cls in ("x", "y"):
        for i in range(2):
            write_dicom(tmp_path / "root" / cls / f"{cls}{i}.dcm", ramp16())
    ds = load_nct_crc(tmp_path / "root")
    assert ds.ids == ("x/x0.dcm", "x/x1.dcm", "y/y0.dcm", "y/y1.dcm")
    assert ds.load_image(3).mode == "RGB"
