"""The calibrated model's estimate of wrong labels: the pure functions (checked against exact
enumeration and simulation), the campaign status that shows it next to the observed share, and
ledgers written before it existed."""

from __future__ import annotations

import itertools
import json
import sqlite3

import numpy as np
import pytest

from labelrefine.campaign.estimates import (
    expected_wrong,
    interval,
    model_estimate,
    poisson_binomial_interval,
    summary,
    wrong_probabilities,
)
from labelrefine.campaign.ledger import SCHEMA_VERSION, ItemRecord, Ledger
from labelrefine.campaign.status import campaign_status, estimate_line

CLASSES = ("a", "b", "c")


def random_probs(rng: np.random.Generator, n: int, c: int = 3) -> np.ndarray:
    return rng.dirichlet(np.full(c, 0.7), size=n)


# ------------------------------------------------------------------------------ pure functions


def test_expected_wrong_is_the_sum_of_one_minus_p_given():
    probs = np.array([[0.9, 0.1, 0.0], [0.2, 0.5, 0.3], [0.0, 0.0, 1.0]])
    given = np.array([0, 2, 0])
    assert wrong_probabilities(probs, given) == pytest.approx([0.1, 0.7, 1.0])
    assert expected_wrong(probs, given) == pytest.approx(1.8)
    assert expected_wrong(np.zeros((0, 3)), np.zeros(0, dtype=np.int64)) == 0.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mean_and_variance_match_exact_enumeration(seed):
    rng = np.random.default_rng(seed)
    probs = random_probs(rng, 9)
    given = rng.integers(0, 3, 9)
    w = wrong_probabilities(probs, given)
    # every outcome of which given labels are wrong, with its probability
    dist = np.zeros(10)
    for wrong in itertools.product((0, 1), repeat=9):
        x = np.array(wrong)
        dist[x.sum()] += np.prod(np.where(x == 1, w, 1 - w))
    k = np.arange(10)
    mean = float(dist @ k)
    var = float(dist @ (k - mean) ** 2)
    s = summary(w)
    assert s["n"] == 9
    assert s["expected"] == pytest.approx(mean) == pytest.approx(expected_wrong(probs, given))
    assert s["variance"] == pytest.approx(var)
    m, lo, hi = poisson_binomial_interval(w)
    assert m == pytest.approx(mean)
    assert (lo, hi) == pytest.approx((max(0, mean - 1.959964 * var**0.5),
                                      min(9, mean + 1.959964 * var**0.5)))
    assert interval(s) == pytest.approx({"estimate": m, "low": lo, "high": hi})


def test_interval_covers_simulated_label_noise_about_95_percent():
    """Draw the true labels from calibrated probabilities: the wrong count falls inside the
    interval about 95 % of the time."""
    rng = np.random.default_rng(7)
    probs = random_probs(rng, 300)
    given = np.array([rng.choice(3, p=p) for p in probs])  # given labels: any
    _, lo, hi = poisson_binomial_interval(wrong_probabilities(probs, given))
    cum = probs.cumsum(axis=1)
    u = rng.random((4000, 300, 1))
    truth = (u > cum[None]).sum(axis=2)  # (draws, items) true labels from probs
    wrong = (truth != given[None]).sum(axis=1)
    assert wrong.mean() == pytest.approx(expected_wrong(probs, given), rel=0.01)
    coverage = np.mean((wrong >= lo) & (wrong <= hi))
    assert 0.93 < coverage < 0.97


def test_interval_is_clipped_and_scales():
    assert poisson_binomial_interval(np.array([0.0, 0.0])) == (0.0, 0.0, 0.0)
    m, lo, hi = poisson_binomial_interval(np.array([0.99, 0.99]))
    assert hi == 2.0 and lo < m
    s = summary(np.full(10, 0.5))
    assert interval(s, scale=2.0) == pytest.approx(interval(summary(np.full(20, 0.5))))


@pytest.mark.parametrize(
    ("probs", "given", "says"),
    [
        (np.ones(3), np.zeros(3, dtype=np.int64), r"\(n, C\)"),
        (np.array([[0.5, 0.5], [np.nan, 1.0]]), np.array([0, 1]), r"probs\[1\]"),
        (np.array([[0.5, 0.5], [1.5, -0.5]]), np.array([0, 1]), r"probs\[1\]"),
        (np.array([[0.5, 0.5], [0.5, 0.5]]), np.array([0, 2]), r"given\[1\] = 2"),
        (np.array([[0.5, 0.5]]), np.array([0, 1]), r"given must have shape \(1,\)"),
    ],
)
def test_bad_input_names_the_bad_row(probs, given, says):
    with pytest.raises(ValueError, match=says):
        wrong_probabilities(probs, given)


def test_bad_probability_in_interval_is_named():
    with pytest.raises(ValueError, match=r"p\[1\] = 1.2"):
        poisson_binomial_interval(np.array([0.1, 1.2]))


def test_model_estimate_splits_pool_queue_and_classes():
    probs = np.array([[0.9, 0.1, 0.0], [0.2, 0.5, 0.3], [0.6, 0.2, 0.2], [0.1, 0.1, 0.8]])
    given = np.array([0, 1, 2, 2])
    est = model_estimate(probs, given, pool=np.array([1, 2, 3]), queue=np.array([2]),
                         class_names=CLASSES)
    assert est["pool"]["expected"] == pytest.approx(0.5 + 0.8 + 0.2)
    assert est["queue"] == pytest.approx(summary(np.array([0.8])))
    assert est["per_class"] == pytest.approx({"a": 0.0, "b": 0.5, "c": 1.0})
    assert json.loads(json.dumps(est)) == est  # stored as JSON in the ledger


# ------------------------------------------------------------------------------ campaign status


def make(tmp_path, probs: np.ndarray, *, estimate: bool = True, metrics=None) -> Ledger:
    """60 items (57 train, items 40+ trusted); round 0 queues items 0-9 with ``probs``."""
    n = len(probs)
    items = [ItemRecord(f"i{k}", f"i{k}.jpg", k % 3, "val" if k >= n - 3 else "train")
             for k in range(n)]
    ledger = Ledger.create(tmp_path / "c.db", image_root=tmp_path, class_names=CLASSES,
                           items=items)
    given = np.arange(n) % 3
    pool = np.arange(40)
    queue = np.arange(10)
    ledger.write_round(
        0, kind="phase1", sampler="entropy", budget=10, seed=0, settings={},
        metrics=metrics or {}, probs=probs, scored_items=np.arange(n),
        clean=np.arange(n) >= 40, pool_scores={}, queue=[(int(i), 1.0, "r") for i in queue],
        temperature=1.5 if estimate else None,
        model_estimate=(model_estimate(probs, given, pool=pool, queue=queue,
                                       class_names=CLASSES) | {"calibrated": True})
        if estimate else None,
    )
    return ledger


def probs_with_given_share(n: int, share: float) -> np.ndarray:
    """Each item's given label (k % 3) has probability ``share``."""
    probs = np.full((n, 3), (1 - share) / 2)
    probs[np.arange(n), np.arange(n) % 3] = share
    return probs


def answer(ledger: Ledger, n_wrong: int, items=range(10)) -> None:
    for j, i in enumerate(items):
        g = i % 3
        ledger.submit(i, (g + 1) % 3 if j < n_wrong else g, annotator="ann",
                      submission_id=f"s{i}")


def test_status_shows_model_next_to_observed_and_agreeing_advice(tmp_path):
    ledger = make(tmp_path, probs_with_given_share(60, 0.7))  # model: 30% of labels wrong
    st = campaign_status(ledger)
    # before any answer: the model already has an estimate, the observed one not yet
    assert st.remaining_wrong is None
    assert st.model_remaining_wrong["estimate"] == pytest.approx(40 * 0.3, abs=1e-4)
    assert st.model_remaining_wrong["temperature"] == 1.5
    assert st.model_next_round_wrong["estimate"] == pytest.approx(3.0, abs=1e-4)
    assert st.model_estimate == "ok" and "calibrated model expects about 12" in st.advice
    answer(ledger, 3)  # the experts find 3 of 10 wrong: as the model expected
    st = campaign_status(ledger)
    assert st.remaining_wrong["estimate"] == pytest.approx(30 * 0.3)
    assert st.model_remaining_wrong["estimate"] == pytest.approx(30 * 0.3, abs=1e-4)
    assert st.model_estimate == "ok" and "expected 3.0" in st.model_note
    assert st.per_round.loc[0, "model_wrong"] == pytest.approx(3.0, abs=1e-4)
    assert st.advice.startswith("continue") and "calibrated model expects about 9" in st.advice
    left = st.per_class.set_index("class")["model_wrong_left"]
    assert left.sum() == pytest.approx(9.0, abs=1e-4)
    line = estimate_line(st)
    assert "observed ≈ 9" in line and "model ≈ 9" in line
    d = st.as_dict()
    assert d["model_remaining_wrong"]["estimate"] == pytest.approx(9.0, abs=1e-4)
    assert d["remaining_wrong"]["estimate"] == pytest.approx(9.0)


def test_model_that_disagrees_with_the_experts_is_in_doubt(tmp_path):
    ledger = make(tmp_path, probs_with_given_share(60, 0.99))  # model: ~1% wrong
    answer(ledger, 8)  # the experts find 8 of 10 wrong
    st = campaign_status(ledger)
    assert st.model_estimate == "disagrees"
    assert "do not overlap" in st.model_note and "calibration is in doubt" in st.advice
    assert st.advice.startswith("continue")  # the advice stays with the observed share
    assert "calibration in doubt" in estimate_line(st)


def test_model_that_failed_its_sanity_check_is_flagged(tmp_path):
    ledger = make(tmp_path, probs_with_given_share(60, 0.7),
                  metrics={"guard": "trivial", "guard_message": "no better than the majority"})
    answer(ledger, 3)
    st = campaign_status(ledger)
    assert st.model_check and st.model_estimate == "unreliable"
    assert st.model_remaining_wrong is not None  # shown ...
    assert "unreliable" in st.advice and "relies on the observed" in st.advice  # ... not used
    assert estimate_line(st).endswith(", unreliable")


def test_round_without_estimate_reports_no_model_estimate(tmp_path):
    ledger = make(tmp_path, probs_with_given_share(60, 0.7), estimate=False)
    answer(ledger, 3)
    st = campaign_status(ledger)
    assert st.model_remaining_wrong is None and st.model_next_round_wrong is None
    assert st.model_estimate == "none" and "no model estimate" in st.model_note
    assert st.per_round.loc[0, "model_wrong"] is None
    assert "no model estimate" in estimate_line(st)
    assert st.remaining_wrong["estimate"] == pytest.approx(9.0)  # observed one as before


def test_version_2_ledger_opens_and_reports_no_model_estimate(tmp_path):
    from labelrefine.campaign.ledger import _MIGRATIONS, _SCHEMA_V1

    path = tmp_path / "v2.db"
    con = sqlite3.connect(path)
    con.executescript(_SCHEMA_V1)
    for stmt in _MIGRATIONS[2]:
        con.execute(stmt)
    con.executemany("INSERT INTO meta VALUES (?, ?)", [
        ("schema_version", "2"), ("image_root", str(tmp_path)), ("created_at", "x")])
    con.executemany("INSERT INTO classes VALUES (?, ?)", list(enumerate(CLASSES)))
    for k in range(6):
        con.execute("INSERT INTO items(idx, key, path, role, given_label, current_label) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (k, f"k{k}", f"k{k}.jpg", "val" if k == 5 else "train", k % 3, k % 3))
    con.execute("INSERT INTO rounds VALUES (0, 't', 'phase1', 'entropy', 2, 0, '{}', '{}')")
    for k in range(6):
        con.execute("INSERT INTO scores VALUES (0, ?, 0, '[0.6, 0.3, 0.1]', ?, NULL)",
                    (k, int(k >= 3)))
    con.executemany("INSERT INTO queue VALUES (0, ?, ?, 1.0, 'r')", [(0, 0), (1, 1)])
    con.commit()
    con.close()

    ledger = Ledger(path)
    assert ledger.meta()["schema_version"] == str(SCHEMA_VERSION)
    rounds = ledger.rounds()
    assert rounds["temperature"].tolist() == [None]
    assert rounds["model_estimate"].tolist() == [None]
    ledger.submit(0, 1, annotator="ann", submission_id="a")
    st = campaign_status(ledger)
    assert st.model_estimate == "none" and "no model estimate" in st.model_note
    assert st.remaining_wrong is not None  # the observed estimate still works
    assert st.suspects_left == 2


# ------------------------------------------------------------------------------ end to end


def test_step_records_the_estimate_and_status_reports_it(tmp_path, one_torch_thread):
    """A tiny campaign (36 coloured images, 6 given labels wrong): after one step the ledger
    holds the temperature and the model's expected wrong labels, and ``campaign status`` shows
    them next to the observed estimate."""
    import pandas as pd
    from PIL import Image
    from typer.testing import CliRunner

    from labelrefine.cli import app

    rng = np.random.default_rng(0)
    colours = np.array([[200, 60, 60], [60, 200, 60], [60, 60, 200]])
    images = tmp_path / "images"
    images.mkdir()
    true = np.arange(36) % 3
    given = true.copy()
    flip = rng.choice(36, size=6, replace=False)
    given[flip] = (true[flip] + 1) % 3
    for i in range(36):
        pix = colours[true[i]] + rng.integers(-40, 40, (32, 32, 3))
        Image.fromarray(np.clip(pix, 0, 255).astype(np.uint8)).save(images / f"im{i:03d}.jpg")
    csv = tmp_path / "labels.csv"
    pd.DataFrame({"image_id": [f"im{i:03d}" for i in range(36)],
                  "dx": [CLASSES[g] for g in given]}).to_csv(csv, index=False)
    cfg = tmp_path / "train.yaml"
    cfg.write_text(
        f"dataset: {{format: csv, images: {images}, labels: {csv}}}\n"
        f"encoder: {{views: 1, image_size: 32, batch_size: 32, cache_dir: {tmp_path / 'cache'}}}\n"
        "lnl: {epochs: 3, warmup: 1, batch_size: 16, hidden: 16, vog: {window: 2}, "
        "mix_counts: floor}\n"
        "active: {epochs_per_round: 2, budget_per_round: 4}\n"
        "noise: [{kind: symmetric, rate: 0.2}]\n"
    )
    db = tmp_path / "campaign.db"

    def run(*args):
        return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)

    res = run("campaign", "init", "--images", images, "--labels", csv, "--out", db,
              "--val-fraction", "0.25")
    assert res.exit_code == 0, res.output
    res = run("campaign", "step", db, "--config", cfg, "--device", "cpu", "--strategy", "paper")
    assert res.exit_code == 0, res.output

    ledger = Ledger(db)
    row = ledger.rounds().iloc[0]
    est = row["model_estimate"]
    assert row["temperature"] > 0 and est["calibrated"] is True
    # the stored numbers are the sums over the round's (calibrated) probabilities
    scores = ledger.scores(0).set_index("item")
    gl = ledger.items()["given_label"].to_numpy()
    q = ledger.queue(0)["item"].to_numpy(dtype=np.int64)
    w = wrong_probabilities(np.stack(scores.loc[q, "probs"].to_numpy()), gl[q])
    assert est["queue"] == pytest.approx(summary(w), abs=1e-4)
    suspects = scores.index[~scores["clean"].to_numpy()].to_numpy(dtype=np.int64)
    pool = np.intersect1d(suspects, np.flatnonzero(ledger.items()["role"] == "train"))
    assert est["pool"]["n"] == pool.size and len(q) == 4
    assert sum(est["per_class"].values()) == pytest.approx(est["pool"]["expected"])

    res = run("campaign", "status", db, "--json")
    data = json.loads(res.output)
    assert data["model_estimate"] in ("ok", "unreliable")
    assert data["model_remaining_wrong"]["estimate"] == pytest.approx(est["pool"]["expected"],
                                                                      abs=1e-3)
    assert data["remaining_wrong"] is None  # nobody answered yet
    res = run("campaign", "status", db)
    assert res.exit_code == 0 and "model ≈" in res.output and "observed –" in res.output
