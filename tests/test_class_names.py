"""Class display names (``dataset.class_names``, ``campaign init / configure --class-names``)
shown beside the codes on the reading page, and the page's zoomable image viewer markup."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from labelrefine.campaign.create import campaign_class_names
from labelrefine.campaign.ledger import Ledger
from labelrefine.cli import app
from labelrefine.config import ConfigError, DatasetConfig, parse_config
from labelrefine.data.dataset import DataError
from labelrefine.data.formats import load_dataset

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

CLASSES = ("akiec", "bcc", "nv")
NAMES = {"akiec": "actinic keratosis / Bowen's", "nv": "<b>naevus</b>"}


def run(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def folder(root: Path, n: int = 12) -> tuple[Path, Path]:
    images = root / "images"
    images.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (64, 48, 3), dtype=np.uint8)).save(
            images / f"im{i:02d}.png")
    csv = root / "labels.csv"
    pd.DataFrame({"image_id": [f"im{i:02d}" for i in range(n)],
                  "dx": [CLASSES[i % 3] for i in range(n)]}).to_csv(csv, index=False)
    return images, csv


def names_file(root: Path, text: str) -> Path:
    path = root / "names.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def queued_campaign(db: Path) -> Ledger:
    """Write a hand-made round 0 queueing every training item (no training)."""
    ledger = Ledger(db)
    n = len(ledger.items())
    probs = np.tile([0.2, 0.5, 0.3], (n, 1))
    train = ledger.items().query("role == 'train'")["idx"].tolist()
    ledger.write_round(0, kind="phase1", sampler="entropy", budget=len(train), seed=0,
                       settings={}, metrics={}, probs=probs, scored_items=np.arange(n),
                       clean=np.zeros(n, bool), pool_scores={},
                       queue=[(i, 1.0, "model predicts bcc") for i in train])
    return ledger


def page(db: Path) -> str:
    from labelrefine.web.app import create_app

    client = TestClient(create_app(db, token="t"), headers={"X-Token": "t"})
    r = client.get("/partials/item")
    assert r.status_code == 200
    return r.text


def test_init_keeps_display_names_and_the_page_shows_them_escaped(tmp_path):
    images, csv = folder(tmp_path)
    f = names_file(tmp_path, "akiec: \"actinic keratosis / Bowen's\"\nnv: <b>naevus</b>\n")
    db = tmp_path / "c.db"
    res = run("campaign", "init", "--images", images, "--labels", csv, "--out", db,
              "--suffix", ".png", "--class-names", f)
    assert res.exit_code == 0, res.output
    ledger = queued_campaign(db)
    assert campaign_class_names(ledger) == NAMES
    html = page(db)
    assert '<span class="display-name">actinic keratosis / Bowen&#39;s</span>' in html
    assert "&lt;b&gt;naevus&lt;/b&gt;" in html and "<b>naevus</b>" not in html
    assert html.count('class="display-name"') >= 4  # buttons, top-3 (and the given label)
    # buttons keep the codes as their answers
    assert 'data-label="akiec"' in html and 'data-label="nv"' in html

    # configure replaces them; an empty mapping removes them
    res = run("campaign", "configure", db, "--class-names",
              names_file(tmp_path, "bcc: basal cell carcinoma\n"))
    assert res.exit_code == 0 and "bcc = basal cell carcinoma" in res.output
    assert campaign_class_names(ledger) == {"bcc": "basal cell carcinoma"}
    assert "basal cell carcinoma" in page(db) and "Bowen" not in page(db)
    assert run("campaign", "configure", db, "--class-names",
               names_file(tmp_path, "{}\n")).exit_code == 0
    assert campaign_class_names(ledger) == {} and 'class="display-name"' not in page(db)


def test_names_from_a_config_file(tmp_path):
    images, csv = folder(tmp_path)
    cfg = names_file(tmp_path, f"dataset: {{format: csv, images: {images}, labels: {csv}, "
                               "class_names: {bcc: basal cell carcinoma}}\n")
    db = tmp_path / "c.db"
    res = run("campaign", "init", "--images", images, "--labels", csv, "--out", db,
              "--suffix", ".png", "--class-names", cfg)
    assert res.exit_code == 0, res.output
    assert campaign_class_names(Ledger(db)) == {"bcc": "basal cell carcinoma"}


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("mel: melanoma\n", "'mel' is not a class of the data"),
        ("nv: '  '\n", "display name of 'nv' is empty"),
        ("- nv\n- bcc\n", "expected a mapping of class codes"),
        ("nv: [a, b]\n", "expected a mapping of class codes"),
        ("nv: 'open\n", "not a YAML mapping"),
        ("dataset: {format: csv}\n", "dataset.class_names is not set"),
    ],
)
def test_bad_names_are_refused_with_one_line_and_nothing_is_written(tmp_path, text, says):
    images, csv = folder(tmp_path, n=6)
    db = tmp_path / "c.db"
    res = run("campaign", "init", "--images", images, "--labels", csv, "--out", db,
              "--suffix", ".png", "--class-names", names_file(tmp_path, text))
    assert res.exit_code == 2 and says in res.output and not db.exists()
    # configure: refused before anything changes
    ok = tmp_path / "ok"
    images, csv = folder(ok, n=6)
    assert run("campaign", "init", "--images", images, "--labels", csv, "--out", ok / "c.db",
               "--suffix", ".png").exit_code == 0
    res = run("campaign", "configure", ok / "c.db", "--blind", "--class-names",
              names_file(tmp_path, text))
    assert res.exit_code == 2 and says in res.output
    assert not Ledger(ok / "c.db").blind


def test_missing_names_file_is_named(tmp_path):
    images, csv = folder(tmp_path, n=6)
    res = run("campaign", "init", "--images", images, "--labels", csv, "--out",
              tmp_path / "c.db", "--suffix", ".png", "--class-names", tmp_path / "nope.yaml")
    assert res.exit_code == 2 and "class names file not found" in res.output


def test_dataset_class_names_in_the_config(tmp_path):
    images, csv = folder(tmp_path, n=6)
    base = {"format": "csv", "images": str(images), "labels": str(csv), "image_suffix": ".png"}
    cfg = DatasetConfig.model_validate({**base, "class_names": {"nv": "naevus"}})
    assert cfg.model_dump()["class_names"] == {"nv": "naevus"}
    assert "class_names" not in DatasetConfig.model_validate(base).model_dump()
    load_dataset(cfg, check_images=False)
    with pytest.raises(DataError, match="dataset.class_names: 'mel' is not a class"):
        load_dataset(DatasetConfig.model_validate({**base, "class_names": {"mel": "x"}}),
                     check_images=False)
    with pytest.raises(ConfigError, match="display name of 'nv' is empty"):
        parse_config({"dataset": {**base, "class_names": {"nv": " "}}})
    numeric = DatasetConfig.model_validate({**base, "class_names": {0: "normal"}})
    assert numeric.class_names == {"0": "normal"}


def test_reading_page_has_the_zoomable_viewer(tmp_path):
    images, csv = folder(tmp_path)
    db = tmp_path / "c.db"
    assert run("campaign", "init", "--images", images, "--labels", csv, "--out", db,
               "--suffix", ".png").exit_code == 0
    queued_campaign(db)
    html = page(db)
    assert '<div class="viewer"' in html and 'draggable="false"' in html
    assert 'data-zoom="1:1"' in html and 'target="_blank"' in html
    from labelrefine.web.app import create_app

    client = TestClient(create_app(db, token="t"), headers={"X-Token": "t"})
    full = client.get("/")
    assert '<script src="/static/viewer.js"></script>' in full.text
    js = client.get("/static/viewer.js")
    assert js.status_code == 200 and "zoomAt" in js.text
    # the image is served at its stored resolution (64 x 48 here), not resized
    import io

    idx = int(html.split('data-idx="')[1].split('"')[0])
    assert Image.open(io.BytesIO(client.get(f"/image/{idx}").content)).size == (48, 64)
