"""Loaders: every layout on generated files and the bundled data, and every bad-input case."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import Result
from typer.testing import CliRunner

from conftest import ClassFolders, CsvFolder, write_image
from labelrefine.cli import app
from labelrefine.config import DatasetConfig
from labelrefine.data import (
    DataError,
    ImageDataset,
    load_csv_folder,
    load_dataset,
    load_isic2019,
    load_medmnist,
    load_nct_crc,
)

# ---------------------------------------------------------------------------------------------
# bundled data
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ham(ham10000_dir: Path) -> ImageDataset:
    return load_csv_folder(ham10000_dir / "images", ham10000_dir / "labels.csv")


def test_bundled_ham10000_loads_with_image_check(ham: ImageDataset) -> None:
    assert len(ham) == 5984
    assert ham.class_names == ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")
    counts = dict(zip(ham.class_names, ham.class_counts().tolist(), strict=True))
    assert counts == {
        "akiec": 183, "bcc": 264, "bkl": 583, "df": 60, "mel": 491, "nv": 4323, "vasc": 80
    }
    assert ham.ids[0] == "ISIC_0024306"
    assert ham.labels[0] == ham.class_names.index("nv")
    assert ham.paths is not None and ham.paths[0].name == "ISIC_0024306.jpg"
    assert ham.name == "ham10000"
    im = ham.load_image(0)
    assert im.mode == "RGB" and im.size == (128, 128)


def test_bundled_ham10000_via_config(ham10000_dir: Path, ham: ImageDataset) -> None:
    cfg = DatasetConfig(images=ham10000_dir / "images", labels=ham10000_dir / "labels.csv")
    ds = load_dataset(cfg, check_images=False)
    assert ds.ids == ham.ids
    np.testing.assert_array_equal(ds.labels, ham.labels)


# ---------------------------------------------------------------------------------------------
# image folder + CSV
# ---------------------------------------------------------------------------------------------


def test_csv_folder_keeps_csv_order_and_sorted_classes(csv_folder: CsvFolder) -> None:
    ds = load_csv_folder(csv_folder.images, csv_folder.csv)
    assert ds.ids == tuple(csv_folder.ids)
    assert ds.class_names == ("a", "b", "c")
    assert [ds.class_names[k] for k in ds.labels] == csv_folder.labels
    assert ds.labels.dtype == np.int64
    assert ds.paths is not None
    assert [p.name for p in ds.paths] == [f"{i}.jpg" for i in csv_folder.ids]
    assert ds.class_counts().tolist() == [4, 6, 2]
    assert ds.load_image(3).size == (8, 8)


def test_image_check_reports_progress(csv_folder: CsvFolder) -> None:
    calls: list[tuple[int, int]] = []
    load_csv_folder(csv_folder.images, csv_folder.csv, progress=lambda d, t: calls.append((d, t)))
    assert calls and calls[-1] == (12, 12)
    calls.clear()
    load_csv_folder(csv_folder.images, csv_folder.csv, check_images=False,
                    progress=lambda d, t: calls.append((d, t)))
    assert calls == []


def test_csv_folder_class_list_fixes_order(csv_folder: CsvFolder) -> None:
    ds = load_csv_folder(csv_folder.images, csv_folder.csv, classes=["c", "b", "a", "d"])
    assert ds.class_names == ("c", "b", "a", "d")
    assert ds.class_counts().tolist() == [2, 6, 4, 0]
    assert [ds.class_names[k] for k in ds.labels] == csv_folder.labels


def test_csv_folder_ids_with_suffix_and_other_columns(tmp_path: Path) -> None:
    write_image(tmp_path / "im" / "x1.png", seed=1)
    write_image(tmp_path / "im" / "x2.jpg", seed=2)
    write_image(tmp_path / "im" / "x3.jpg", seed=3)
    csv = tmp_path / "meta.csv"
    csv.write_text("file, diagnosis\nx1.png, tumour\nx2.jpg,normal\nx3,normal\n")
    ds = load_csv_folder(
        tmp_path / "im", csv, id_column="file", label_column="diagnosis", name="mine"
    )
    assert ds.ids == ("x1.png", "x2.jpg", "x3")
    assert ds.paths is not None
    assert [p.name for p in ds.paths] == ["x1.png", "x2.jpg", "x3.jpg"]
    assert ds.class_names == ("normal", "tumour")
    assert ds.labels.tolist() == [1, 0, 0]
    assert ds.name == "mine"


def test_csv_folder_custom_suffix(tmp_path: Path) -> None:
    for i in range(4):
        write_image(tmp_path / "im" / f"s{i}.png", seed=i)
    csv = tmp_path / "l.csv"
    csv.write_text("image_id,dx\ns0,a\ns1,b\ns2,a\ns3,b\n")
    ds = load_csv_folder(tmp_path / "im", csv, suffix=".png")
    assert len(ds) == 4 and ds.class_counts().tolist() == [2, 2]


def _write_csv(path: Path, rows: list[str], header: str = "image_id,dx") -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_csv_missing_image_names_item(csv_folder: CsvFolder) -> None:
    (csv_folder.images / f"{csv_folder.ids[4]}.jpg").unlink()
    with pytest.raises(DataError, match=rf"'{csv_folder.ids[4]}'.*not found"):
        load_csv_folder(csv_folder.images, csv_folder.csv)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_csv_corrupt_image_names_item(csv_folder: CsvFolder, damage: str) -> None:
    bad = csv_folder.ids[7]
    path = csv_folder.images / f"{bad}.jpg"
    if damage == "garbage":
        path.write_bytes(b"this is not an image at all")
    elif damage == "truncated":
        write_image(path, seed=99, size=64)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    else:
        path.write_bytes(b"")
    with pytest.raises(DataError, match=rf"unreadable image for item '{bad}'"):
        load_csv_folder(csv_folder.images, csv_folder.csv)
    # Without the check the (cheap) load succeeds: the check is what catches it.
    assert len(load_csv_folder(csv_folder.images, csv_folder.csv, check_images=False)) == 12


def test_csv_empty_label_names_item(tmp_path: Path, csv_folder: CsvFolder) -> None:
    rows = [f"{i},{y}" for i, y in zip(csv_folder.ids, csv_folder.labels, strict=True)]
    rows[5] = f"{csv_folder.ids[5]},  "
    csv = _write_csv(tmp_path / "x.csv", rows)
    with pytest.raises(DataError, match=rf"'{csv_folder.ids[5]}'.*empty label"):
        load_csv_folder(csv_folder.images, csv)


def test_csv_unknown_label_names_item(csv_folder: CsvFolder) -> None:
    with pytest.raises(DataError, match=r"item '\w+' .*unknown label.*'c'"):
        load_csv_folder(csv_folder.images, csv_folder.csv, classes=["a", "b"])


def test_csv_duplicate_id_names_it(tmp_path: Path, csv_folder: CsvFolder) -> None:
    rows = [f"{i},{y}" for i, y in zip(csv_folder.ids, csv_folder.labels, strict=True)]
    rows.append(f"{csv_folder.ids[2]},a")
    csv = _write_csv(tmp_path / "dup.csv", rows)
    expected = rf"duplicate image_id '{csv_folder.ids[2]}' \(line 4 and line 14\)"
    with pytest.raises(DataError, match=expected):
        load_csv_folder(csv_folder.images, csv)


def test_csv_empty_id_names_line(tmp_path: Path, csv_folder: CsvFolder) -> None:
    csv = _write_csv(tmp_path / "e.csv", [f"{csv_folder.ids[0]},a", ",b"])
    with pytest.raises(DataError, match=r"line 3: empty 'image_id'"):
        load_csv_folder(csv_folder.images, csv)


def test_csv_missing_column_lists_present(csv_folder: CsvFolder) -> None:
    with pytest.raises(DataError, match=r"missing column 'label'.*'image_id', 'dx', 'extra'"):
        load_csv_folder(csv_folder.images, csv_folder.csv, label_column="label")
    with pytest.raises(DataError, match=r"missing column 'file'"):
        load_csv_folder(csv_folder.images, csv_folder.csv, id_column="file")


def test_csv_single_class_rejected(tmp_path: Path, csv_folder: CsvFolder) -> None:
    csv = _write_csv(tmp_path / "one.csv", [f"{i},b" for i in csv_folder.ids])
    with pytest.raises(DataError, match=r"same class 'b'"):
        load_csv_folder(csv_folder.images, csv)


def test_csv_file_problems(tmp_path: Path, csv_folder: CsvFolder) -> None:
    with pytest.raises(DataError, match="label CSV not found"):
        load_csv_folder(csv_folder.images, tmp_path / "nope.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match="empty"):
        load_csv_folder(csv_folder.images, tmp_path / "empty.csv")
    _write_csv(tmp_path / "header.csv", [])
    with pytest.raises(DataError, match="no rows"):
        load_csv_folder(csv_folder.images, tmp_path / "header.csv")
    with pytest.raises(DataError, match="image folder not found"):
        load_csv_folder(tmp_path / "no_images", csv_folder.csv)


def test_csv_duplicate_class_list_rejected(csv_folder: CsvFolder) -> None:
    with pytest.raises(DataError, match="duplicates"):
        load_csv_folder(csv_folder.images, csv_folder.csv, classes=["a", "b", "c", "a"])


# ---------------------------------------------------------------------------------------------
# ISIC-2019
# ---------------------------------------------------------------------------------------------

ISIC_HEADER = "image,MEL,NV,BCC,AK,BKL,DF,VASC,SCC,UNK"


def _isic(tmp_path: Path, rows: list[tuple[str, str]], header: str = ISIC_HEADER) -> Path:
    """Write an ISIC-2019 ground truth; rows are (image, class column set to 1)."""
    cols = header.split(",")[1:]
    lines = [header]
    for image, cls in rows:
        lines.append(",".join([image] + ["1.0" if c == cls else "0.0" for c in cols]))
        if not (tmp_path / "isic" / f"{image}.jpg").exists():
            write_image(tmp_path / "isic" / f"{image}.jpg", seed=len(lines))
    path = tmp_path / "gt.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


ISIC_ROWS = [("ISIC_1", "NV"), ("ISIC_2", "MEL"), ("ISIC_3", "NV"), ("ISIC_4", "SCC")]


def test_isic2019_drops_unused_unk_and_keeps_official_order(tmp_path: Path) -> None:
    gt = _isic(tmp_path, ISIC_ROWS)
    ds = load_isic2019(tmp_path / "isic", gt)
    assert ds.class_names == ("MEL", "NV", "BCC", "AK", "BKL", "DF", "VASC", "SCC")
    assert ds.ids == ("ISIC_1", "ISIC_2", "ISIC_3", "ISIC_4")
    assert ds.labels.tolist() == [1, 0, 1, 7]
    assert ds.name == "isic2019"


def test_isic2019_keeps_unk_when_used_and_without_unk_column(tmp_path: Path) -> None:
    ds = load_isic2019(tmp_path / "isic", _isic(tmp_path, [*ISIC_ROWS, ("ISIC_5", "UNK")]))
    assert ds.class_names[-1] == "UNK" and ds.labels[-1] == 8
    header = ISIC_HEADER.removesuffix(",UNK")
    ds = load_isic2019(tmp_path / "isic", _isic(tmp_path, ISIC_ROWS, header=header))
    assert ds.num_classes == 8


def test_isic2019_class_subset(tmp_path: Path) -> None:
    gt = _isic(tmp_path, ISIC_ROWS)
    ds = load_isic2019(tmp_path / "isic", gt, classes=["NV", "MEL", "SCC"])
    assert ds.class_names == ("NV", "MEL", "SCC")
    assert ds.labels.tolist() == [0, 1, 0, 2]
    with pytest.raises(DataError, match=r"'ISIC_4'.*unknown label 'SCC'"):
        load_isic2019(tmp_path / "isic", gt, classes=["NV", "MEL"])


def test_isic2019_two_labels_names_item(tmp_path: Path) -> None:
    gt = _isic(tmp_path, ISIC_ROWS)
    lines = gt.read_text().splitlines()
    lines[2] = "ISIC_2,1.0,1.0,0,0,0,0,0,0,0"
    gt.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"'ISIC_2'.*2 labels \['MEL', 'NV'\]"):
        load_isic2019(tmp_path / "isic", gt)


def test_isic2019_empty_label_and_bad_value(tmp_path: Path) -> None:
    gt = _isic(tmp_path, ISIC_ROWS)
    lines = gt.read_text().splitlines()
    lines[3] = "ISIC_3,0,0,0,0,0,0,0,0,0"
    gt.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"'ISIC_3'.*empty label"):
        load_isic2019(tmp_path / "isic", gt)
    lines[3] = "ISIC_3,0,yes,0,0,0,0,0,0,0"
    gt.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"'ISIC_3'.*'yes' in column 'NV'"):
        load_isic2019(tmp_path / "isic", gt)


def test_isic2019_missing_column_and_image(tmp_path: Path) -> None:
    gt = _isic(tmp_path, ISIC_ROWS, header="image,MEL,NV,BCC,AK,BKL,DF,SCC")
    with pytest.raises(DataError, match=r"missing column 'VASC'.*'image', 'MEL'"):
        load_isic2019(tmp_path / "isic", gt)
    gt = _isic(tmp_path, ISIC_ROWS)
    (tmp_path / "isic" / "ISIC_3.jpg").unlink()
    with pytest.raises(DataError, match=r"'ISIC_3'.*not found"):
        load_isic2019(tmp_path / "isic", gt)


def test_isic2019_single_class_and_duplicates(tmp_path: Path) -> None:
    gt = _isic(tmp_path, [("ISIC_1", "NV"), ("ISIC_2", "NV")])
    with pytest.raises(DataError, match="same class 'NV'"):
        load_isic2019(tmp_path / "isic", gt)
    gt = _isic(tmp_path, [("ISIC_1", "NV"), ("ISIC_2", "MEL"), ("ISIC_1", "MEL")])
    with pytest.raises(DataError, match="duplicate image 'ISIC_1'"):
        load_isic2019(tmp_path / "isic", gt)


# ---------------------------------------------------------------------------------------------
# NCT-CRC (class subfolders)
# ---------------------------------------------------------------------------------------------


def test_nct_crc_layout(class_folders: ClassFolders) -> None:
    ds = load_nct_crc(class_folders.root)
    assert ds.class_names == ("ADI", "MUC", "TUM")
    assert ds.class_counts().tolist() == [3, 2, 4]
    assert ds.ids[:3] == ("ADI/ADI-0.tif", "ADI/ADI-1.tif", "ADI/ADI-2.tif")
    assert list(ds.ids) == sorted(ds.ids)
    assert "TUM/notes.txt" not in ds.ids
    assert ds.name == "nct"
    assert all(ds.load_image(i).size == (8, 8) for i in range(len(ds)))


def test_nct_crc_class_list(class_folders: ClassFolders) -> None:
    ds = load_nct_crc(class_folders.root, classes=["TUM", "ADI", "MUC", "STR"])
    assert ds.class_counts().tolist() == [4, 3, 2, 0]
    with pytest.raises(DataError, match=r"'MUC/MUC-0.png'.*unknown class folder 'MUC'"):
        load_nct_crc(class_folders.root, classes=["TUM", "ADI"])


def test_nct_crc_bad_inputs(tmp_path: Path, class_folders: ClassFolders) -> None:
    (class_folders.root / "EMPTY").mkdir()
    with pytest.raises(DataError, match=r"EMPTY holds no images"):
        load_nct_crc(class_folders.root)
    (class_folders.root / "EMPTY").rmdir()
    (class_folders.root / "MUC" / "MUC-0.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(DataError, match=r"unreadable image for item 'MUC/MUC-0.png'"):
        load_nct_crc(class_folders.root)
    (tmp_path / "flat").mkdir()
    with pytest.raises(DataError, match="no class subfolders"):
        load_nct_crc(tmp_path / "flat")
    with pytest.raises(DataError, match="not found"):
        load_nct_crc(tmp_path / "missing")
    write_image(tmp_path / "one" / "A" / "a.png")
    with pytest.raises(DataError, match="same class 'A'"):
        load_nct_crc(tmp_path / "one")


# ---------------------------------------------------------------------------------------------
# MedMNIST .npz
# ---------------------------------------------------------------------------------------------


def test_medmnist_all_and_single_split(medmnist_npz: Path) -> None:
    ds = load_medmnist(medmnist_npz)
    assert len(ds) == 20
    assert ds.ids[0] == "train_0" and ds.ids[10] == "val_0" and ds.ids[-1] == "test_5"
    assert ds.class_names == ("0", "1", "2")
    assert ds.images is not None and ds.images.shape == (20, 8, 8)
    assert ds.paths is None
    with np.load(medmnist_npz) as z:
        np.testing.assert_array_equal(ds.labels[:10], z["train_labels"].ravel())
        np.testing.assert_array_equal(ds.images[14:], z["test_images"])
    im = ds.load_image(0)
    assert im.mode == "RGB" and im.size == (8, 8)
    train = load_medmnist(medmnist_npz, "train", classes=["x", "y", "z"])
    assert len(train) == 10 and train.class_names == ("x", "y", "z")
    assert len(load_medmnist(medmnist_npz, "test")) == 6


def test_medmnist_rgb_and_channel_last(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, size=(6, 4, 4, 3), dtype=np.uint8)
    np.savez(tmp_path / "rgb.npz", train_images=rgb, train_labels=np.array([0, 1, 2, 0, 1, 2]))
    ds = load_medmnist(tmp_path / "rgb.npz")
    assert ds.images is not None and ds.images.shape == (6, 4, 4, 3)
    np.testing.assert_array_equal(np.asarray(ds.load_image(2)), rgb[2])
    one = rng.integers(0, 256, size=(4, 4, 4, 1), dtype=np.uint8)
    np.savez(tmp_path / "one.npz", train_images=one, train_labels=np.array([[0], [1], [0], [1]]))
    assert load_medmnist(tmp_path / "one.npz").images.shape == (4, 4, 4)


def test_medmnist_bad_inputs(tmp_path: Path, medmnist_npz: Path) -> None:
    imgs = np.zeros((4, 4, 4), dtype=np.uint8)
    np.savez(tmp_path / "nolabels.npz", train_images=imgs)
    with pytest.raises(DataError, match=r"missing key 'train_labels'.*train_images"):
        load_medmnist(tmp_path / "nolabels.npz")
    np.savez(tmp_path / "other.npz", x=imgs)
    with pytest.raises(DataError, match=r"missing keys.*keys present: \['x'\]"):
        load_medmnist(tmp_path / "other.npz")
    with pytest.raises(DataError, match=r"missing key 'val_images'"):
        load_medmnist(tmp_path / "nolabels.npz", "val")
    np.savez(tmp_path / "multi.npz", train_images=imgs, train_labels=np.eye(4, dtype=np.uint8))
    with pytest.raises(DataError, match="multi-label"):
        load_medmnist(tmp_path / "multi.npz")
    np.savez(tmp_path / "single.npz", train_images=imgs, train_labels=np.zeros(4, dtype=int))
    with pytest.raises(DataError, match="same class '0'"):
        load_medmnist(tmp_path / "single.npz")
    np.savez(tmp_path / "short.npz", train_images=imgs, train_labels=np.array([0, 1]))
    with pytest.raises(DataError, match="2 labels for 4 images"):
        load_medmnist(tmp_path / "short.npz")
    with pytest.raises(DataError, match=r"'train_2'.*unknown label 2"):
        load_medmnist(medmnist_npz, "train", classes=["x", "y"])
    with pytest.raises(DataError, match="unknown MedMNIST split"):
        load_medmnist(medmnist_npz, "training")
    with pytest.raises(DataError, match="not found"):
        load_medmnist(tmp_path / "absent.npz")
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(DataError, match="cannot read"):
        load_medmnist(tmp_path / "junk.npz")


# ---------------------------------------------------------------------------------------------
# dispatch
# ---------------------------------------------------------------------------------------------


def test_load_dataset_dispatches_every_format(
    tmp_path: Path, csv_folder: CsvFolder, class_folders: ClassFolders, medmnist_npz: Path
) -> None:
    ds = load_dataset(DatasetConfig(format="csv", images=csv_folder.images, labels=csv_folder.csv,
                                    classes=["c", "b", "a"]))
    assert ds.class_names == ("c", "b", "a") and len(ds) == 12
    gt = _isic(tmp_path, ISIC_ROWS)
    ds = load_dataset(DatasetConfig(format="isic2019", images=tmp_path / "isic", labels=gt))
    assert ds.num_classes == 8 and len(ds) == 4
    ds = load_dataset(DatasetConfig(format="nct_crc", images=class_folders.root))
    assert ds.class_counts().tolist() == [3, 2, 4]
    ds = load_dataset(DatasetConfig(format="medmnist", npz=medmnist_npz, npz_split="val"))
    assert len(ds) == 4 and ds.ids[0] == "val_0"


# ---------------------------------------------------------------------------------------------
# `labelrefine data info`
# ---------------------------------------------------------------------------------------------


def _cli(*args: str) -> Result:
    return CliRunner().invoke(app, ["data", "info", *args], terminal_width=120)


def test_cli_data_info_bundled(ham10000_dir: Path) -> None:
    res = _cli("--images", str(ham10000_dir / "images"), "--labels",
               str(ham10000_dir / "labels.csv"), "--no-check-images")
    assert res.exit_code == 0, res.output
    out = res.stdout
    assert "nv" in out and "4,323" in out and "72.2 %" in out
    assert "df" in out and "60" in out
    assert "items: 5,984" in out and "classes: 7" in out
    assert "imbalance ratio (largest / smallest): 72.0" in out
    # largest class listed first
    assert out.index("4,323") < out.index("583") < out.index(" 60 ")


def test_cli_data_info_json_and_config(tmp_path: Path, ham10000_dir: Path) -> None:
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(
        f"dataset:\n  images: {ham10000_dir / 'images'}\n  labels: {ham10000_dir / 'labels.csv'}\n"
    )
    res = _cli("--config", str(cfg), "--json", "--no-check-images")
    assert res.exit_code == 0, res.output
    info = json.loads(res.stdout)
    assert info["items"] == 5984 and info["num_classes"] == 7
    counts = {c["name"]: c["count"] for c in info["classes"]}
    assert counts["nv"] == 4323 and counts["df"] == 60
    assert info["imbalance_ratio"] == pytest.approx(4323 / 60)


def test_cli_data_info_other_layouts(class_folders: ClassFolders, medmnist_npz: Path) -> None:
    res = _cli("--format", "nct-crc", "--images", str(class_folders.root), "--json")
    assert res.exit_code == 0, res.output
    info = json.loads(res.stdout)
    assert [c["count"] for c in info["classes"]] == [3, 2, 4]
    assert info["imbalance_ratio"] == 2.0
    res = _cli("--format", "medmnist", "--npz", str(medmnist_npz), "--npz-split", "train",
               "--classes", "x, y,z", "--json")
    assert res.exit_code == 0, res.output
    assert [c["name"] for c in json.loads(res.stdout)["classes"]] == ["x", "y", "z"]


def test_cli_data_info_class_without_items(csv_folder: CsvFolder) -> None:
    res = _cli("--images", str(csv_folder.images), "--labels", str(csv_folder.csv),
               "--classes", "a,b,c,d")
    assert res.exit_code == 0, res.output
    assert "undefined" in res.stdout


def test_cli_data_info_errors(tmp_path: Path, csv_folder: CsvFolder) -> None:
    res = _cli("--images", str(csv_folder.images), "--labels", str(csv_folder.csv),
               "--label-column", "diagnosis")
    assert res.exit_code == 2
    assert "missing column 'diagnosis'" in res.output
    res = _cli("--config", str(tmp_path / "x.yaml"), "--images", "somewhere")
    assert res.exit_code == 2 and "either --config or dataset options" in res.output
    res = _cli()
    assert res.exit_code == 2 and "--config" in res.output
    res = _cli("--format", "medmnist")
    assert res.exit_code == 2 and "needs 'npz'" in res.output
    (csv_folder.images / f"{csv_folder.ids[0]}.jpg").unlink()
    res = _cli("--images", str(csv_folder.images), "--labels", str(csv_folder.csv))
    assert res.exit_code == 2 and csv_folder.ids[0] in res.output


def test_isic2019_trusted_labels_are_read_by_its_image_column(tmp_path: Path) -> None:
    """``dataset.trusted`` on the ISIC-2019 layout matches rows by the CSV's ``image`` column
    (not ``dataset.id_column``, which that layout does not use)."""
    from labelrefine.config import DatasetConfig
    from labelrefine.data.formats import load_dataset

    gt = _isic(tmp_path, ISIC_ROWS)
    import pandas as pd

    frame = pd.read_csv(gt)
    frame["src"] = ["histo", "consensus", "histo", "consensus"]
    frame.to_csv(gt, index=False)
    cfg = DatasetConfig(format="isic2019", images=tmp_path / "isic", labels=gt,
                        trusted={"column": "src", "values": ["histo"]})
    ds = load_dataset(cfg, check_images=False)
    assert ds.trusted.tolist() == [True, False, True, False]
