"""A campaign on the team's own model: ``campaign init --features FILE`` or ``--encoder FILE``
(TorchScript); every step trains and ranks on those features; bad files are one line and
write nothing; the file cannot change under the campaign."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from labelrefine.campaign.ledger import Ledger
from test_campaign_cli import COLOURS, make_folder, run
from test_find_cli import TinyEncoder


def _config(root, images, csv):
    cfg = root / "train.yaml"
    cfg.write_text(
        f"dataset: {{format: csv, images: {images}, labels: {csv}}}\n"
        "lnl: {epochs: 3, warmup: 1, batch_size: 16, hidden: 16, vog: {window: 2}, "
        "mix_counts: floor}\n"
        "active: {epochs_per_round: 2, budget_per_round: 6}\n"
        "noise: [{kind: symmetric, rate: 0.2}]\n"
    )
    return cfg


def _features(csv, truth, root):
    """Embeddings that separate the true classes (the colour each image was drawn from)."""
    ids = pd.read_csv(csv)["image_id"].tolist()
    rng = np.random.default_rng(1)
    true = np.array([("akiec", "bcc", "nv").index(t) for t in truth])
    x = COLOURS[true] / 255.0 + rng.normal(0, 0.05, (len(ids), 3))
    x = np.concatenate([x, rng.normal(0, 0.05, (len(ids), 5))], axis=1)
    order = rng.permutation(len(ids))  # any row order: keyed by id
    path = root / "emb.npz"
    np.savez(path, ids=np.asarray(ids)[order], features=x[order].astype(np.float32))
    return path


def test_own_features_drive_the_campaign_and_cannot_change(tmp_path):
    images, csv, truth = make_folder(tmp_path)
    emb = _features(csv, truth, tmp_path)
    db = tmp_path / "c.db"
    res = run("campaign", "init", "--images", images, "--labels", csv, "--out", db,
              "--val-fraction", "0.25", "--features", emb)
    assert res.exit_code == 0, res.output
    res = run("campaign", "step", db, "--config", _config(tmp_path, images, csv),
              "--device", "cpu")
    assert res.exit_code == 0, res.output
    ledger = Ledger(db)
    given = ledger.items()["given_label"].to_numpy()
    keys = ledger.items()["key"].tolist()
    true = np.array([("akiec", "bcc", "nv").index(truth[int(k[2:])]) for k in keys])
    q = ledger.queue(0)["item"].to_numpy(dtype=np.int64)
    assert np.mean(given[q] != true[q]) >= 0.5  # base rate 1 in 6: the finder on these features
    emb.write_bytes(emb.read_bytes() + b"\0")
    res = run("campaign", "step", db, "--device", "cpu", "--force")
    assert res.exit_code == 2 and "changed since 'campaign init'" in " ".join(res.output.split())


def test_own_encoder_file_is_embedded(tmp_path):
    images, csv, _ = make_folder(tmp_path)
    ts = tmp_path / "enc.pt"
    torch.jit.trace(TinyEncoder().eval(), torch.zeros(2, 3, 32, 32)).save(str(ts))
    (tmp_path / "enc.pt.yaml").write_text("image_size: 32\n")
    db = tmp_path / "c.db"
    res = run("campaign", "init", "--images", images, "--labels", csv, "--out", db,
              "--val-fraction", "0.25", "--encoder", ts)
    assert res.exit_code == 0, res.output
    res = run("campaign", "step", db, "--config", _config(tmp_path, images, csv),
              "--device", "cpu")
    assert res.exit_code == 0, res.output
    assert len(Ledger(db).queue(0)) == 6


@pytest.mark.parametrize("bad", ["missing_id", "both"])
def test_bad_own_model_options_write_nothing(tmp_path, bad):
    images, csv, truth = make_folder(tmp_path)
    emb = _features(csv, truth, tmp_path)
    args = ["--features", emb]
    if bad == "missing_id":
        with np.load(emb) as z:
            np.savez(emb, ids=z["ids"][1:], features=z["features"][1:])
        message = "no row for labelled item"
    else:
        args += ["--encoder", emb]
        message = "give --features or --encoder, not both"
    db = tmp_path / "c.db"
    res = run("campaign", "init", "--images", images, "--labels", csv, "--out", db, *args)
    assert res.exit_code == 2 and message in " ".join(res.output.split()), res.output
    assert not db.exists()
