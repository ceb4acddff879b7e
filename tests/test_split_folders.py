"""The ``split_folders`` dataset format: ``root/<split>/<class>/<image>``, no CSV."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import write_image
from labelrefine.cli import app
from labelrefine.config import ConfigError, DatasetConfig, SplitConfig, check_split_source
from labelrefine.data.dataset import DataError
from labelrefine.data.formats import load_dataset
from labelrefine.data.formats.split_folders import load_split_folders
from labelrefine.data.prepare import own_split

#: split folder -> class -> images
LAYOUT = {"train": {"ADI": 3, "TUM": 2}, "Valid": {"ADI": 1, "TUM": 1}, "test": {"TUM": 2}}


def _tree(root: Path, layout: dict[str, dict[str, int]] = LAYOUT) -> Path:
    seed = 0
    for part, classes in layout.items():
        for cls, n in classes.items():
            for i in range(n):
                write_image(root / part / cls / f"img{i}.png", seed=seed)
                seed += 1
    (root / "train" / "ADI" / "notes.txt").write_text("not an image")
    return root


def test_split_folders_load_ids_labels_and_the_own_split(tmp_path: Path) -> None:
    root = _tree(tmp_path / "data")
    ds = load_dataset(DatasetConfig(format="split_folders", images=root))
    assert ds.class_names == ("ADI", "TUM")
    assert len(ds) == 9 and ds.name == "data"
    assert ds.ids[0] == "Valid/ADI/img0.png"  # sorted folders; notes.txt ignored
    assert ds.class_counts().tolist() == [4, 5]
    assert ds.splits is not None
    assert [ds.splits.count(p) for p in ("train", "val", "test")] == [5, 2, 2]
    train, val, test = own_split(ds)
    assert sorted(ds.ids[i] for i in test) == ["test/TUM/img0.png", "test/TUM/img1.png"]
    assert np.all(ds.labels[test] == 1) and train.size == 5 and val.size == 2
    assert ds.load_image(0).size == (8, 8)


def test_split_folders_carry_their_own_split_for_keep_dataset(tmp_path: Path) -> None:
    cfg = DatasetConfig(format="split_folders", images=tmp_path)
    check_split_source(cfg, SplitConfig(keep_dataset=True))  # no error
    with pytest.raises(ConfigError, match="format 'nct_crc' carries no.*split_folders"):
        check_split_source(DatasetConfig(format="nct_crc", images=tmp_path),
                           SplitConfig(keep_dataset=True))
    with pytest.raises(ValueError, match="format 'split_folders' needs 'images'"):
        DatasetConfig(format="split_folders")
    with pytest.raises(ValueError, match="split_column applies to formats csv and isic2019"):
        DatasetConfig(format="split_folders", images=tmp_path, split_column="part")


def test_split_folders_class_list_and_bad_layouts(tmp_path: Path) -> None:
    root = _tree(tmp_path / "data")
    ds = load_split_folders(root, classes=["TUM", "ADI"], check_images=False)
    assert ds.class_names == ("TUM", "ADI") and ds.class_counts().tolist() == [5, 4]
    with pytest.raises(DataError, match="unknown class folder 'ADI'"):
        load_split_folders(root, classes=["TUM", "MUC"])
    (root / "extra").mkdir()
    with pytest.raises(DataError, match=r"folder .*extra is not a split folder"):
        load_split_folders(root)
    (root / "extra").rmdir()
    (root / "val").mkdir()
    with pytest.raises(DataError, match="are both the val split"):
        load_split_folders(root)
    (root / "val").rmdir()
    (root / "test" / "EMPTY").mkdir()
    with pytest.raises(DataError, match="class folder .*EMPTY holds no images"):
        load_split_folders(root)
    with pytest.raises(DataError, match="split folder root not found"):
        load_split_folders(tmp_path / "missing")
    (tmp_path / "flat").mkdir()
    with pytest.raises(DataError, match="no split folders found"):
        load_split_folders(tmp_path / "flat")
    write_image(root / "train" / "ADI" / "broken.png").write_bytes(b"not a png")
    (root / "test" / "EMPTY").rmdir()
    with pytest.raises(DataError, match="broken.png"):
        load_split_folders(root)


def test_cli_data_info_reads_split_folders(tmp_path: Path) -> None:
    root = _tree(tmp_path / "data")
    res = CliRunner().invoke(app, ["data", "info", "--format", "split-folders", "--images",
                                   str(root), "--json"], terminal_width=120)
    assert res.exit_code == 0, res.output
    info = json.loads(res.stdout)
    assert [c["count"] for c in info["classes"]] == [4, 5]
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(f"dataset:\n  format: split_folders\n  images: {root}\n"
                   "split:\n  keep_dataset: true\n")
    res = CliRunner().invoke(app, ["data", "info", "--config", str(cfg), "--json"],
                             terminal_width=120)
    assert res.exit_code == 0, res.output
    split = json.loads(res.stdout)["split"]
    assert split["source"] == "the train/val/test folders of data" and split["used"] is True
    assert split["sizes"] == {"train": 5, "val": 2, "test": 2}
