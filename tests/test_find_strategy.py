"""``campaign step`` with the default ``find`` strategy: the queue is drawn from every unanswered
training item (phase 1's clean set included) with a hidden random audit share, whose answers
give ``campaign status`` its estimate of the wrong labels left in the whole training set."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from labelrefine.campaign.ledger import Ledger
from test_campaign_cli import answer_queue, init, make_folder, run, write_config


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    """One embedding cache for the module: every campaign over the same images shares it."""
    return tmp_path_factory.mktemp("cache")


def test_find_step_queues_from_the_whole_training_set_with_a_hidden_audit(tmp_path, cache_dir):
    images, csv, truth = make_folder(tmp_path)
    db = init(tmp_path, images, csv)
    cfg = write_config(tmp_path, images, csv, cache_dir)
    res = run("campaign", "step", db, "--config", cfg, "--device", "cpu", "--budget", "12")
    assert res.exit_code == 0, res.output
    ledger = Ledger(db)
    rounds = ledger.rounds()
    assert rounds["settings"].iloc[0]["strategy"] == "find"  # the default
    train = set(ledger.items().query("role == 'train'")["idx"].tolist())
    q = ledger.queue()
    queued = q["item"].tolist()
    assert len(queued) == 12 and len(set(queued)) == 12 and set(queued) <= train

    # the pool is every training item: phase 1's clean set is not held back
    m0 = rounds["metrics"].iloc[0]
    assert m0["n_pool"] == len(train)
    s0 = ledger.scores(0).set_index("item")
    clean = set(s0.index[s0["clean"].to_numpy()].tolist()) & train
    assert clean and set(queued) & clean
    design = m0["audit"]
    population, audit = set(design["population"]), set(design["audit"])
    assert population | set(queued) == train  # population = pool - targeted picks
    assert len(audit) == 1 and audit <= set(queued) and audit <= population
    assert len(design["strata"]) == len(design["m"]) == len(population)
    assert all(0.0 <= v <= 1.0 for v in design["m"])

    # readers cannot tell audit picks from the rest
    for reason in q["reason"]:
        assert len(reason) > 20
        assert "audit" not in reason.lower() and "random" not in reason.lower()

    # before any answer there is no estimate
    data = json.loads(run("campaign", "status", db, "--json").output)
    assert data["strategy"] == "find" and data["wrong_left"] is None
    # status counts the pool the step draws from: every training item, not phase 1's suspects
    assert data["suspects_left"] == len(train)

    assert answer_queue(db, truth) == 12
    res = run("campaign", "status", db)
    assert res.exit_code == 0, res.output
    heads = [ln for ln in res.output.splitlines() if ln.startswith("wrong labels left in")]
    assert heads and heads[0].startswith("wrong labels left in the training set")
    assert "not estimated" not in heads[0]
    data = json.loads(run("campaign", "status", db, "--json").output)
    w = data["wrong_left"]
    assert w["low"] <= w["estimate"] <= w["high"]
    assert w["audited"] == 1 and w["rounds"] == 1
    assert w["n_left"] == len(train) - 12
    assert data["suspects_left"] == len(train) - 12
    assert 0 <= w["high"] <= w["n_left"]

    # the strategy is fixed at the first step
    res = run("campaign", "step", db, "--device", "cpu", "--strategy", "paper")
    assert res.exit_code == 2 and "fixed at the first step" in res.output
    assert ledger.current_round() == 0

    res = run("campaign", "step", db, "--device", "cpu", "--budget", "5")
    assert res.exit_code == 0, res.output
    q1 = ledger.queue(1)["item"].tolist()
    assert len(q1) == 5 and set(q1) <= train - set(queued)  # answered items never return
    m1 = ledger.rounds()["metrics"].iloc[1]
    assert m1["n_pool"] == len(train) - 12
    assert set(m1["audit"]["population"]) | set(q1) == train - set(queued)
    assert set(m1["audit"]["audit"]) <= set(q1)


def test_find_without_audit_share_draws_no_audit_and_estimates_nothing(tmp_path, cache_dir):
    images, csv, truth = make_folder(tmp_path)
    db = init(tmp_path, images, csv)
    cfg = write_config(tmp_path, images, csv, cache_dir)
    res = run("campaign", "step", db, "--config", cfg, "--device", "cpu", "--budget", "6",
              "--audit-share", "0")
    assert res.exit_code == 0, res.output
    ledger = Ledger(db)
    settings = ledger.rounds()["settings"].iloc[0]
    assert settings["strategy"] == "find" and settings["find"]["audit_share"] == 0
    m0 = ledger.rounds()["metrics"].iloc[0]
    assert m0["audit"]["audit"] == []
    assert answer_queue(db, truth) == 6
    data = json.loads(run("campaign", "status", db, "--json").output)
    assert data["wrong_left"] is None
    out = run("campaign", "status", db).output
    heads = [ln for ln in out.splitlines() if ln.startswith("wrong labels left in the training")]
    assert heads and "not estimated" in heads[0]


def test_find_strategy_queues_are_deterministic(tmp_path, cache_dir):
    images, csv, _ = make_folder(tmp_path)
    cfg = write_config(tmp_path, images, csv, cache_dir)
    got = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        db = init(tmp_path / name, images, csv)
        res = run("campaign", "step", db, "--config", cfg, "--device", "cpu", "--budget", "8",
                  "--audit-share", "0.5")
        assert res.exit_code == 0, res.output
        ledger = Ledger(db)
        got.append((ledger.queue()["item"].tolist(), ledger.queue()["reason"].tolist(),
                    ledger.rounds()["metrics"].iloc[0]["audit"]))
    assert got[0] == got[1]
    assert len(got[0][2]["audit"]) == 4
    assert np.isin(got[0][2]["audit"], got[0][0]).all()
