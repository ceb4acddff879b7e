"""A folder of DICOM files (mixed 8/16-bit, MONOCHROME1/2) through ``campaign init`` ->
``campaign step`` -> the reading page's image route -> export; bad DICOM files stop ``init``
with one line naming the file, and nothing is written."""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from dicom_files import write_dicom
from labelrefine.campaign.ledger import Ledger
from labelrefine.cli import app
from labelrefine.data.images import read_image

CLASSES = ("benign", "malignant", "normal")


def run(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def make_dicom_folder(root: Path, n: int = 36, flip: int = 6,
                      seed: int = 0) -> tuple[Path, Path, list[str]]:
    """``n`` DICOM files whose brightness pattern follows the true class; ``flip`` labels are
    wrong. Even items 16-bit (12 bits stored, rescaled, some with a window), odd items 8-bit;
    every third MONOCHROME1 (stored inverted, so it looks like its MONOCHROME2 siblings)."""
    rng = np.random.default_rng(seed)
    images = root / "dicom"
    true = np.arange(n) % 3
    given = true.copy()
    wrong = rng.choice(n, size=flip, replace=False)
    given[wrong] = (true[wrong] + 1) % 3
    y, x = np.mgrid[0:32, 0:32]
    patterns = [x / 31.0, y / 31.0, ((x - 16) ** 2 + (y - 16) ** 2) / 512.0]
    rows = []
    for i in range(n):
        level = np.clip(patterns[true[i]] + rng.normal(0, 0.05, (32, 32)), 0, 1)
        mono1 = i % 3 == 0
        if mono1:
            level = 1 - level
        kw: dict = {"photometric": "MONOCHROME1" if mono1 else "MONOCHROME2",
                    "patient_id": f"P{i:03d}"}
        if i % 2 == 0:
            stored = np.rint(level * 4095).astype(np.uint16)
            kw.update(bits_stored=12, slope=1.0, intercept=-1024.0)
            if i % 4 == 0:
                kw["window"] = (1024.0, 4096.0)
        else:
            stored = np.rint(level * 255).astype(np.uint8)
        write_dicom(images / f"case{i:03d}.dcm", stored, **kw)
        rows.append({"image_id": f"case{i:03d}", "dx": CLASSES[given[i]]})
    csv = root / "labels.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    return images, csv, [CLASSES[t] for t in true]


def write_config(root: Path, images: Path, csv: Path, cache_dir: Path) -> Path:
    cfg = root / "train.yaml"
    cfg.write_text(
        f"dataset: {{format: csv, images: {images}, labels: {csv}, image_suffix: .dcm}}\n"
        f"encoder: {{views: 1, image_size: 32, batch_size: 32, cache_dir: {cache_dir}}}\n"
        "lnl: {epochs: 3, warmup: 1, batch_size: 16, hidden: 16, vog: {window: 2}, "
        "mix_counts: floor}\n"
        "active: {epochs_per_round: 2, budget_per_round: 4}\n"
        "noise: [{kind: symmetric, rate: 0.2}]\n"
    )
    return cfg


def client_for(db: Path):
    from labelrefine.web.app import create_app

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    return TestClient(create_app(db, token="t"), headers={"X-Token": "t"})


def served(client, idx: int) -> np.ndarray:
    r = client.get(f"/image/{idx}")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    return np.asarray(Image.open(io.BytesIO(r.content)).convert("RGB"))


def test_dicom_folder_through_init_step_serve_and_export(tmp_path):
    images, csv, truth = make_dicom_folder(tmp_path)
    db = tmp_path / "campaign.db"
    res = run("campaign", "init", "--images", images, "--labels", csv, "--out", db,
              "--suffix", ".dcm", "--val-fraction", "0.25",
              "--keep-tags", "PatientID,StudyInstanceUID")
    assert res.exit_code == 0, res.output
    ledger = Ledger(db)
    items = ledger.items()
    assert len(items) == 36 and ledger.class_names == CLASSES
    assert (items["path"] == items["key"] + ".dcm").all()
    assert "intensity" not in ledger.meta()  # the default setting

    cfg = write_config(tmp_path, images, csv, tmp_path / "cache")
    res = run("campaign", "step", db, "--config", cfg, "--device", "cpu")
    assert res.exit_code == 0, res.output
    q = ledger.queue()
    assert len(q) == 4
    for idx in q["item"]:
        ledger.submit(int(idx), CLASSES.index(truth[int(idx)]), annotator="dr-a",
                      submission_id=f"a-{idx}")

    # the reading page shows each file as the model saw it: windowed, MONOCHROME1 inverted
    client = client_for(db)
    for idx in range(6):
        path = ledger.resolve_image(idx)
        got = served(client, idx)
        np.testing.assert_array_equal(got, np.asarray(read_image(path)))
    # 16-bit MONOCHROME1 with a window (item 0): by hand, DICOM LINEAR window then inverted
    import pydicom

    ds = pydicom.dcmread(ledger.resolve_image(0))
    x = ds.pixel_array.astype(float) - 1024.0
    c, w = 1024.0, 4096.0
    want = np.rint(np.clip((x - (c - 0.5)) / (w - 1) + 0.5, 0, 1) * 255)
    np.testing.assert_array_equal(served(client, 0)[:, :, 0], 255 - want)
    # item 1: 8-bit MONOCHROME2 without a window, shown as stored
    np.testing.assert_array_equal(served(client, 1)[:, :, 0],
                                  pydicom.dcmread(ledger.resolve_image(1)).pixel_array)
    # MONOCHROME1 files were stored inverted: shown, they look like their class siblings
    same = [served(client, i)[:, :, 0].astype(float) for i in (3, 6)]  # class 0, M1 and M2
    assert np.corrcoef(same[0].ravel(), same[1].ravel())[0, 1] > 0.8

    out = tmp_path / "cleaned.csv"
    res = run("campaign", "export", db, "--format", "csv", "--out", out)
    assert res.exit_code == 0, res.output
    df = pd.read_csv(out, keep_default_na=False).set_index("item")
    assert len(df) == 36 and df["path"].str.endswith(".dcm").all()
    assert list(df.columns[-2:]) == ["PatientID", "StudyInstanceUID"]  # kept at init
    assert df.loc["case007", "PatientID"] == "P007"
    assert df.loc["case007", "StudyInstanceUID"] == str(
        pydicom.dcmread(images / "case007.dcm").StudyInstanceUID)
    for idx in q["item"]:
        key = ledger.item(int(idx))["key"]
        assert df.loc[key, "cleaned_label"] == truth[int(idx)]


def test_init_keeps_a_dataset_window_and_the_page_uses_it(tmp_path):
    images, csv, _ = make_dicom_folder(tmp_path, n=9, flip=0)
    db = tmp_path / "c.db"
    res = run("campaign", "init", "--images", images, "--labels", csv, "--out", db,
              "--suffix", ".dcm", "--intensity", "window", "--window", "0,1000")
    assert res.exit_code == 0, res.output
    ledger = Ledger(db)
    assert json.loads(ledger.meta()["intensity"])["center"] == 0
    import pydicom

    ds = pydicom.dcmread(ledger.resolve_image(0))  # 16-bit MONOCHROME1, own window ignored
    x = ds.pixel_array.astype(float) - 1024.0
    want = np.rint(np.clip(x / 1000 + 0.5, 0, 1) * 255)
    np.testing.assert_array_equal(served(client_for(db), 0)[:, :, 0], 255 - want)
    from labelrefine.campaign.create import campaign_dataset

    np.testing.assert_array_equal(np.asarray(campaign_dataset(ledger).load_image(0))[:, :, 0],
                                  255 - want)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--intensity", "window"), "needs --window CENTER,WIDTH"),
        (("--window", "1,2"), "--window applies to --intensity window"),
        (("--intensity", "window", "--window", "1"), "expected two numbers"),
        (("--intensity", "window", "--window", "1,0"), "width"),
        (("--percentiles", "90,10"), "must be below high"),
        (("--intensity", "gamma"), "mode"),
        (("--keep-tags", "PatientID,PatientShoeSize"), "'PatientShoeSize' is not a DICOM"),
    ],
)
def test_bad_init_options_fail_with_one_line(tmp_path, args, says):
    images, csv, _ = make_dicom_folder(tmp_path, n=6, flip=0)
    db = tmp_path / "c.db"
    res = run("campaign", "init", "--images", images, "--labels", csv, "--out", db,
              "--suffix", ".dcm", *args)
    assert res.exit_code == 2 and says in res.output and not db.exists()


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        ("frames", "multi-frame DICOM (3 frames) is not supported"),
        ("syntax", "transfer syntax MPEG2"),
        ("junk", "not a DICOM file"),
    ],
)
def test_bad_dicom_files_stop_init_with_one_line_and_nothing_is_written(tmp_path, damage,
                                                                         says):
    images, csv, _ = make_dicom_folder(tmp_path, n=9, flip=0)
    bad = images / "case004.dcm"
    stored = np.zeros((32, 32), dtype=np.uint16)
    if damage == "frames":
        write_dicom(bad, stored, frames=3)
    elif damage == "syntax":
        write_dicom(bad, stored, transfer_syntax="1.2.840.10008.1.2.4.100")
    else:
        bad.write_bytes(b"\x00" * 64 + b"a text file renamed to .dcm")
    out = tmp_path / "out" / "campaign.db"
    res = run("campaign", "init", "--images", images, "--labels", csv, "--out", out,
              "--suffix", ".dcm")
    assert res.exit_code == 2
    assert says in res.output and "'case004'" in res.output and "case004.dcm" in res.output
    assert "Traceback" not in res.output
    assert not out.exists() and not (tmp_path / "out").exists()


def test_embed_reads_a_dicom_folder_and_keys_the_cache_by_intensity(tmp_path):
    images, csv, _ = make_dicom_folder(tmp_path, n=9, flip=0)
    cache = tmp_path / "cache"

    def embed(intensity: str) -> None:
        cfg = tmp_path / "embed.yaml"
        cfg.write_text(
            f"dataset: {{format: csv, images: {images}, labels: {csv}, image_suffix: .dcm"
            f"{intensity}}}\n"
            f"encoder: {{views: 1, image_size: 32, batch_size: 16, cache_dir: {cache}}}\n"
        )
        res = run("embed", cfg, "--device", "cpu", "--workers", "0")
        assert res.exit_code == 0, res.output

    embed("")
    embed(", intensity: {mode: minmax}")
    assert len(list(cache.glob("*.npz"))) == 2  # DICOM rendering depends on the setting
    embed(", intensity: {mode: minmax}")
    assert len(list(cache.glob("*.npz"))) == 2  # the same setting: a cache hit


def test_data_info_checks_a_dicom_folder(tmp_path):
    images, csv, _ = make_dicom_folder(tmp_path, n=6, flip=0)
    args = ("data", "info", "--images", images, "--labels", csv, "--suffix", ".dcm")
    res = run(*args)
    assert res.exit_code == 0, res.output
    write_dicom(images / "case002.dcm", np.zeros((8, 8), dtype=np.uint16), frames=2)
    res = run(*args)
    assert res.exit_code == 2 and "'case002'" in res.output and "multi-frame" in res.output


def test_label_studio_export_says_which_images_it_cannot_show(tmp_path):
    images, csv, _ = make_dicom_folder(tmp_path, n=6, flip=0)
    db = tmp_path / "c.db"
    assert run("campaign", "init", "--images", images, "--labels", csv, "--out", db,
               "--suffix", ".dcm").exit_code == 0
    res = run("campaign", "export", db, "--format", "labelstudio", "--scope", "train",
              "--out", tmp_path / "ls")
    assert res.exit_code == 0, res.output
    n = len(json.loads((tmp_path / "ls" / "tasks.json").read_text()))
    assert n > 0 and f"{n} of the {n} images are DICOM" in res.output
    assert "labelrefine serve" in res.output
