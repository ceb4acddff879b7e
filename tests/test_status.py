"""Campaign status with several readers: agreement (kappa), conflicts, expert time, the share of
wrong labels per round with Wilson intervals, remaining-error estimate and stopping advice."""

from __future__ import annotations

import numpy as np
import pytest

from labelrefine.campaign.ledger import CampaignError, ItemRecord, Ledger
from labelrefine.campaign.status import (
    campaign_status,
    fleiss_kappa,
    items_for_minutes,
    wilson_interval,
)

CLASSES = ("a", "b", "c")


def test_wilson_interval_known_values():
    lo, hi = wilson_interval(8, 10)
    assert (round(lo, 3), round(hi, 3)) == (0.490, 0.943)  # textbook example (95 %)
    lo, hi = wilson_interval(0, 20)
    assert lo == 0 and hi == pytest.approx(0.161, abs=1e-3)
    assert wilson_interval(0, 0) is None


def test_fleiss_kappa_matches_the_published_example():
    # Fleiss (1971) as reproduced in most texts: 10 items, 14 raters, 5 categories -> 0.210
    table = np.array([
        [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
    ])
    assert fleiss_kappa(table) == pytest.approx(0.210, abs=1e-3)
    assert fleiss_kappa(np.array([[2, 0], [2, 0]])) is None  # all in one category
    with pytest.raises(ValueError):
        fleiss_kappa(np.array([[2, 0], [1, 0]]))


def make(tmp_path, n=60, queue=tuple(range(20)), clean_from=40) -> Ledger:
    items = [ItemRecord(f"i{k}", f"i{k}.jpg", k % 3, "val" if k >= n - 3 else "train")
             for k in range(n)]
    ledger = Ledger.create(tmp_path / "c.db", image_root=tmp_path, class_names=CLASSES,
                           items=items)
    write(ledger, 0, queue, n, clean_from)
    return ledger


def write(ledger, r, queue, n, clean_from, settings=None):
    ledger.write_round(r, kind="phase1" if r == 0 else "finetune", sampler="entropy",
                       budget=len(queue), seed=0, settings=settings or {}, metrics={},
                       probs=np.tile([0.5, 0.3, 0.2], (n, 1)), scored_items=np.arange(n),
                       clean=np.arange(n) >= clean_from, pool_scores={},
                       queue=[(i, 1.0, "r") for i in queue])


def test_two_readers_agreement_conflicts_and_minutes(tmp_path):
    ledger = make(tmp_path)
    given = ledger.items()["given_label"].to_numpy()
    # ann and bob read items 0-9; they agree on 0-7 and disagree on 8, 9
    for i in range(10):
        ledger.submit(i, int(given[i]), annotator="ann", submission_id=f"a{i}", seconds=20)
        lab = int(given[i]) if i < 8 else (int(given[i]) + 1) % 3
        ledger.submit(i, lab, annotator="bob", submission_id=f"b{i}", seconds=40)
    ledger.submit(10, None, annotator="ann", submission_id="a10", seconds=60)
    st = campaign_status(ledger)
    assert st.readers["ann"] == {"answers": 11, "labels": 10, "unsure": 1, "minutes": 260 / 60}
    assert st.readers["bob"]["minutes"] == pytest.approx(400 / 60)
    from sklearn.metrics import cohen_kappa_score

    x = [int(given[i]) for i in range(10)]
    y = [int(given[i]) if i < 8 else (int(given[i]) + 1) % 3 for i in range(10)]
    assert st.agreement["kappa_kind"] == "cohen"
    assert st.agreement["kappa"] == pytest.approx(cohen_kappa_score(x, y))
    assert st.agreement["observed"] == pytest.approx(0.8)
    assert st.open_conflicts == 2 and st.labels_bought == 8
    assert st.expert_minutes == pytest.approx((10 * 20 + 10 * 40 + 60) / 60)
    assert st.minutes_per_class["unsure"] == pytest.approx(1.0)
    assert st.per_round.loc[0, "minutes"] == pytest.approx(st.expert_minutes)
    ledger.adjudicate(8, 0, adjudicator="chief", submission_id="j", seconds=30)
    st = campaign_status(ledger)
    assert st.open_conflicts == 1 and st.adjudicated == 1
    assert st.expert_minutes == pytest.approx((10 * 20 + 10 * 40 + 60 + 30) / 60)


def test_three_readers_use_fleiss_kappa(tmp_path):
    ledger = make(tmp_path)
    for i in range(6):
        ledger.submit(i, i % 3, annotator=("ann", "bob", "cid")[i % 3], submission_id=f"x{i}")
        ledger.submit(i, i % 3, annotator=("bob", "cid", "ann")[i % 3], submission_id=f"y{i}")
    st = campaign_status(ledger)
    assert st.agreement["kappa_kind"] == "fleiss" and st.agreement["kappa"] == pytest.approx(1.0)


def test_wrong_share_per_round_remaining_estimate_and_advice(tmp_path):
    n = 60
    ledger = make(tmp_path, n=n, queue=tuple(range(10)), clean_from=40)
    given = ledger.items()["given_label"].to_numpy()
    for i in range(10):  # round 0: 5 of 10 given labels wrong
        lab = int(given[i]) if i % 2 else (int(given[i]) + 1) % 3
        ledger.submit(i, lab, annotator="ann", submission_id=f"r0-{i}", seconds=30)
    st = campaign_status(ledger)
    row = st.per_round.iloc[0]
    assert row["query_precision"] == 0.5
    assert (row["wrong_low"], row["wrong_high"]) == pytest.approx(wilson_interval(5, 10))
    assert st.suspects_left == 30  # 40 untrusted train items, 10 decided
    assert st.remaining_wrong["estimate"] == pytest.approx(15)
    assert st.next_round_wrong["estimate"] == pytest.approx(5)
    assert st.advice.startswith("continue")
    # two rounds that find nothing wrong -> advice to stop
    for r, q in ((1, range(10, 20)), (2, range(20, 30))):
        write(ledger, r, tuple(q), n, 40)
        for i in q:
            ledger.submit(i, int(given[i]), annotator="ann", submission_id=f"r{r}-{i}")
    st = campaign_status(ledger)
    assert "last 2 rounds found 0.0% and 0.0%" in st.advice and "stop" in st.advice
    write(ledger, 3, tuple(range(30, 40)), n, 40)
    for i in range(30, 40):
        ledger.submit(i, int(given[i]), annotator="ann", submission_id=f"r3-{i}")
    st = campaign_status(ledger)
    assert st.pool_exhausted and "exhausted" in st.advice


def test_budget_in_expert_minutes(tmp_path):
    ledger = make(tmp_path)
    with pytest.raises(CampaignError, match="no timed answers"):
        items_for_minutes(ledger, 10)
    ledger.submit(0, 0, annotator="ann", submission_id="a", seconds=30)
    ledger.submit(1, 0, annotator="ann", submission_id="b", seconds=90)
    assert items_for_minutes(ledger, 10) == 10  # 600 s at 60 s per answer
    with pytest.raises(CampaignError):
        items_for_minutes(ledger, 0)
    with pytest.raises(CampaignError, match="buy no item"):
        items_for_minutes(ledger, 0.5)


@pytest.mark.parametrize("strategy, left", [("paper", 30), ("plus", 47)])
def test_suspects_left_is_the_pool_of_the_campaign_strategy(tmp_path, strategy, left):
    """paper: the untrusted training items; plus: every training item (campaign.step), minus
    the items experts decided."""
    n = 60
    items = [ItemRecord(f"i{k}", f"i{k}.jpg", k % 3, "val" if k >= n - 3 else "train")
             for k in range(n)]
    ledger = Ledger.create(tmp_path / "c.db", image_root=tmp_path, class_names=CLASSES,
                           items=items)
    write(ledger, 0, tuple(range(10)), n, 40, settings={"strategy": strategy})
    given = ledger.items()["given_label"].to_numpy()
    for i in range(10):
        ledger.submit(i, int(given[i]), annotator="ann", submission_id=f"s{i}")
    st = campaign_status(ledger)
    assert st.suspects_left == left  # 57 train items, 17 trusted, 10 decided
    assert st.strategy == strategy and st.as_dict()["strategy"] == strategy



def _campaign_with_estimate(tmp_path, temperature: float, at_bound: bool):
    """A hand-written round 0 whose model estimate was (or was not) made at a temperature on
    its search bound."""
    from labelrefine.campaign.estimates import model_estimate
    from test_web import make_campaign

    ledger = make_campaign(tmp_path, n=12, queue=[])
    probs = np.tile([0.6, 0.3, 0.1], (12, 1))
    given = ledger.items()["given_label"].to_numpy()
    est = model_estimate(probs, given, pool=np.arange(11), queue=np.arange(3),
                         class_names=ledger.class_names)
    est |= {"calibrated": True, "temperature_at_bound": at_bound}
    from labelrefine.campaign.ledger import ItemRecord, Ledger

    # the same items in a campaign without a round yet, then round 0 with this estimate
    items = [ItemRecord(str(k), str(p), int(g), str(r)) for k, p, g, r in
             ledger.items()[["key", "path", "given_label", "role"]].itertuples(index=False)]
    fresh = Ledger.create(tmp_path / "f.db", image_root=ledger.image_root,
                          class_names=ledger.class_names, items=items)
    fresh.write_round(0, kind="phase1", sampler="entropy", budget=3, seed=0, settings={},
                      metrics={"val_f1": 0.5}, probs=probs, scored_items=np.arange(12),
                      clean=np.zeros(12, bool), pool_scores={},
                      queue=[(i, 1.0, "r") for i in range(3)], temperature=temperature,
                      model_estimate=est)
    return fresh


def test_a_temperature_at_its_bound_withholds_the_model_estimate(tmp_path):
    """A calibration that hit its search bound is reported as a failure and its estimate is
    not shown; a temperature inside the bounds keeps it."""
    from labelrefine.campaign.status import campaign_status, estimate_line
    from labelrefine.models.calibration import T_MAX, T_MIN, temperature_at_bound

    assert temperature_at_bound(T_MAX) and temperature_at_bound(T_MIN)
    assert not temperature_at_bound(1.0) and not temperature_at_bound(T_MAX / 2)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    bad = campaign_status(_campaign_with_estimate(tmp_path / "a", T_MAX, True))
    assert bad.model_estimate == "withheld" and bad.model_remaining_wrong is None
    assert "calibration failed" in bad.model_note
    assert "model estimate withheld (calibration failed)" in estimate_line(bad)
    ok = campaign_status(_campaign_with_estimate(tmp_path / "b", 1.3, False))
    assert ok.model_estimate != "withheld" and ok.model_remaining_wrong is not None
