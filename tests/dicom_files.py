"""Writing small DICOM files for tests (pydicom), 8- or 16-bit, MONOCHROME1/2 or RGB."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def write_dicom(
    path: Path,
    pixels: np.ndarray,
    *,
    photometric: str = "MONOCHROME2",
    bits_stored: int | None = None,
    slope: float | None = None,
    intercept: float | None = None,
    window: tuple[float, float] | None = None,
    voi_function: str | None = None,
    voi_lut: tuple[Sequence[int], Sequence[int]] | None = None,
    frames: int = 1,
    transfer_syntax: str | None = None,
    patient_id: str = "P001",
) -> Path:
    """Write ``pixels`` (``(H, W)`` uint8/uint16/int16, or ``(H, W, 3)`` uint8 for RGB) as a
    DICOM file at ``path``.

    ``voi_lut``: ``(descriptor [entries, first mapped value, bits], data)``. ``frames > 1``
    stacks ``pixels`` that many times. ``transfer_syntax``: written into the file meta as it is
    with the raw pixels as a stand-in payload; RLE Lossless is really compressed.
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence as DicomSequence
    from pydicom.uid import (
        UID,
        ExplicitVRLittleEndian,
        RLELossless,
        SecondaryCaptureImageStorage,
        generate_uid,
    )

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.PatientID = patient_id
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "OT"
    arr = np.stack([pixels] * frames) if frames > 1 else pixels
    gray = photometric.startswith("MONOCHROME")
    ds.set_pixel_data(arr, photometric_interpretation=photometric,
                      bits_stored=bits_stored or (8 if arr.dtype.itemsize == 1 else 16))
    if not gray:
        ds.PlanarConfiguration = 0
    if slope is not None:
        ds.RescaleSlope = slope
    if intercept is not None:
        ds.RescaleIntercept = intercept
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    if voi_function is not None:
        ds.VOILUTFunction = voi_function
    if voi_lut is not None:
        item = Dataset()
        item.add_new(0x00283002, "US", [int(v) for v in voi_lut[0]])  # LUT Descriptor
        item.add_new(0x00283006, "US", [int(v) for v in voi_lut[1]])  # LUT Data
        ds.VOILUTSequence = DicomSequence([item])
    if transfer_syntax == RLELossless:
        ds.compress(RLELossless)
    elif transfer_syntax is not None:  # a stand-in payload, encapsulated as the syntax requires
        from pydicom.encaps import encapsulate

        ds.PixelData = encapsulate([arr.tobytes()])
        ds["PixelData"].VR = "OB"
        ds.file_meta.TransferSyntaxUID = UID(transfer_syntax)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path
