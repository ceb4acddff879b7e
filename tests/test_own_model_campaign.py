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
        message = "give one of --features, --encoder, --pred-probs, not --features and --encoder"
    db = tmp_path / "c.db"
    res = run("campaign", "init", "--images", images, "--labels", csv, "--out", db, *args)
    assert res.exit_code == 2 and message in " ".join(res.output.split()), res.output
    assert not db.exists()


def _probs_csv(csv, truth, root, name="probs.csv"):
    """Out-of-sample-like probabilities that mostly believe the true class."""
    ids = pd.read_csv(csv)["image_id"].tolist()
    true = np.array([("akiec", "bcc", "nv").index(t) for t in truth])
    p = np.full((len(ids), 3), 0.1)
    p[np.arange(len(ids)), true] = 0.8
    frame = pd.DataFrame(p, columns=["akiec", "bcc", "nv"])
    frame.insert(0, "image_id", ids)
    path = root / name
    frame.to_csv(path, index=False)
    return path


def test_given_probabilities_rank_the_queue_and_nothing_is_trained(tmp_path):
    """``campaign init --pred-probs``: each step queues by the team's probabilities (the
    flipped labels first), trains nothing and says so; answered items leave the pool."""
    from labelrefine.campaign.status import campaign_status

    images, csv, truth = make_folder(tmp_path)
    probs = _probs_csv(csv, truth, tmp_path)
    db = tmp_path / "c.db"
    res = run("campaign", "init", "--images", images, "--labels", csv, "--out", db,
              "--val-fraction", "0.25", "--pred-probs", probs)
    assert res.exit_code == 0, res.output
    res = run("campaign", "step", db, "--budget", "5", "--device", "cpu")
    assert res.exit_code == 0, res.output
    assert "no retraining" in " ".join(res.output.split())
    ledger = Ledger(db)
    assert ledger.checkpoint(0) is None and ledger.rounds()["kind"].iloc[0] == "given"
    items = ledger.items()
    given = items["given_label"].to_numpy()
    true = np.array([("akiec", "bcc", "nv").index(truth[int(k[2:])]) for k in items["key"]])
    train = np.flatnonzero(items["role"].to_numpy() == "train")
    wrong_train = int(np.sum(given[train] != true[train]))
    q = ledger.queue(0)["item"].to_numpy(dtype=np.int64)
    assert int(np.sum(given[q] != true[q])) >= min(4, wrong_train)  # 4 targeted + 1 audit
    for i, item in enumerate(q):
        ledger.submit(int(item), int(true[item]), annotator="expert", submission_id=f"s{i}")
    res = run("campaign", "step", db, "--budget", "5", "--device", "cpu")
    assert res.exit_code == 0, res.output
    assert not set(Ledger(db).queue(1)["item"]) & set(q)
    st = campaign_status(Ledger(db))
    assert st.wrong_left is not None and st.wrong_left["low"] <= st.wrong_left["estimate"]


def test_given_probabilities_are_checked_at_init(tmp_path):
    images, csv, truth = make_folder(tmp_path)
    probs = _probs_csv(csv, truth, tmp_path)
    frame = pd.read_csv(probs)
    frame.loc[3, "nv"] = 0.9  # the row sums to 1.7
    frame.to_csv(probs, index=False)
    db = tmp_path / "c.db"
    res = run("campaign", "init", "--images", images, "--labels", csv, "--out", db,
              "--pred-probs", probs)
    assert res.exit_code == 2 and "im003" in res.output and not db.exists()
