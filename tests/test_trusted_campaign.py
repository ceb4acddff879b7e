"""Labels the team already trusts (``campaign init --trusted-column/--trusted-values``):
never queued, always in the clean set, preferred for validation, outside the estimate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from labelrefine.campaign.create import campaign_trusted
from labelrefine.campaign.ledger import Ledger
from test_campaign_cli import make_folder, run, write_config


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def _with_dx_type(csv, truth, trusted_every: int = 3) -> list[str]:
    """Mark every ``trusted_every``-th correctly labelled item ``histo``; return their ids."""
    df = pd.read_csv(csv)
    right = df["dx"].to_numpy() == np.asarray(truth)
    histo = right & (np.arange(len(df)) % trusted_every == 0)
    df["dx_type"] = np.where(histo, "histo", "follow_up")
    df.to_csv(csv, index=False)
    return df.loc[histo, "image_id"].tolist()


def test_trusted_items_are_never_queued_and_validate(tmp_path, cache_dir):
    images, csv, truth = make_folder(tmp_path)
    histo = _with_dx_type(csv, truth)
    db = tmp_path / "c.db"
    res = run("campaign", "init", "--images", images, "--labels", csv, "--out", db,
              "--val-fraction", "0.25", "--trusted-column", "dx_type", "--trusted-values",
              "histo")
    assert res.exit_code == 0, res.output
    ledger = Ledger(db)
    items = ledger.items()
    trusted = campaign_trusted(ledger)
    assert sorted(items["key"].to_numpy()[trusted]) == sorted(histo)
    val = np.flatnonzero(items["role"].to_numpy() == "val")
    assert set(val) <= set(trusted)  # the hold-out comes from the trusted labels first
    cfg = write_config(tmp_path, images, csv, cache_dir)
    res = run("campaign", "step", db, "--config", cfg, "--device", "cpu")
    assert res.exit_code == 0, res.output
    ledger = Ledger(db)
    train_trusted = np.intersect1d(trusted, np.flatnonzero(items["role"] == "train"))
    assert train_trusted.size > 0
    queued = set(ledger.queue(0)["item"])
    assert not queued & set(train_trusted)
    s0 = ledger.scores(0).set_index("item")
    assert s0.loc[train_trusted, "clean"].all()  # always in the clean set
    out = run("campaign", "status", db).output
    assert f"trusted labels (never queued, counted as correct): {train_trusted.size}" in out


@pytest.mark.parametrize(("args", "message"), [
    (["--trusted-column", "nope", "--trusted-values", "histo"], "trusted column 'nope' not found"),
    (["--trusted-column", "dx_type", "--trusted-values", "confocal"], "never holds 'confocal'"),
    (["--trusted-values", "histo"], "--trusted-values needs --trusted-column"),
])
def test_bad_trusted_options_write_nothing(tmp_path, args, message):
    images, csv, truth = make_folder(tmp_path)
    _with_dx_type(csv, truth)
    db = tmp_path / "c.db"
    res = run("campaign", "init", "--images", images, "--labels", csv, "--out", db, *args)
    assert res.exit_code == 2 and message in " ".join(res.output.split())
    assert not db.exists()
