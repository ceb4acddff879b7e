"""What a campaign's look-alikes are drawn from: which labels are confirmed, and the features
the campaign keeps (read, never computed)."""

from __future__ import annotations

import json
import uuid

import numpy as np
import pytest

from labelrefine.campaign.create import FEATURES_META, campaign_dataset
from labelrefine.campaign.lookalikes import confirmed_labels, stored_features
from labelrefine.lookalikes import UNCONFIRMED
from lookalike_campaign import N, angles, make_feature_campaign


def submit(ledger, item, label, who="ann"):
    lab = None if label is None else ledger.class_index(label)
    return ledger.submit(item, lab, annotator=who, submission_id=uuid.uuid4().hex)


def test_nothing_is_confirmed_before_any_answer(tmp_path):
    ledger = make_feature_campaign(tmp_path)
    assert (confirmed_labels(ledger) == UNCONFIRMED).all()


def test_trusted_labels_and_final_answers_are_confirmed_conflicts_and_unsure_are_not(tmp_path):
    ledger = make_feature_campaign(tmp_path, trusted=(9, 11))
    submit(ledger, 3, "nv")  # a wrong given label corrected: confirmed as nv
    submit(ledger, 4, "bcc")  # kept
    submit(ledger, 6, "bcc")
    submit(ledger, 6, "nv", who="bob")  # readers disagree: a conflict
    submit(ledger, 7, None)  # unsure
    submit(ledger, 5, "akiec")
    submit(ledger, 5, "nv", who="bob")
    ledger.adjudicate(5, ledger.class_index("nv"), adjudicator="chief",
                      submission_id=uuid.uuid4().hex)
    labels = confirmed_labels(ledger)
    expected = np.full(N, UNCONFIRMED)
    expected[[9, 11]] = [0, 2]  # trusted: their given labels (11 is a validation item)
    expected[3], expected[4], expected[5] = 2, 1, 2
    assert labels.tolist() == expected.tolist()


def test_with_double_reading_a_single_answer_of_the_open_round_waits(tmp_path):
    ledger = make_feature_campaign(tmp_path)
    ledger.configure(double_read_share=1.0)
    submit(ledger, 2, "nv")
    assert confirmed_labels(ledger)[2] == UNCONFIRMED  # its second reading is still due
    submit(ledger, 2, "nv", who="bob")
    assert confirmed_labels(ledger)[2] == 2  # two readers agree
    submit(ledger, 8, "akiec")
    ledger.configure(double_read_share=0.0)  # read once: one answer is final
    assert confirmed_labels(ledger)[8] == 0


def test_features_from_the_teams_own_file(tmp_path):
    ledger = make_feature_campaign(tmp_path)
    x, why = stored_features(ledger)
    assert why == "" and x is not None and x.dtype == np.float32
    np.testing.assert_allclose(x, angles())


def test_no_features_for_given_probabilities_or_before_the_first_step(tmp_path):
    ledger = make_feature_campaign(tmp_path, features=False)
    ledger.set_meta(FEATURES_META, json.dumps({"kind": "pred_probs", "path": "p.csv"}))
    x, why = stored_features(ledger)
    assert x is None and "given probabilities" in why

    from labelrefine.campaign.create import init_campaign

    images = tmp_path / "images"
    csv = tmp_path / "labels.csv"
    csv.write_text("image_id,dx\n" + "".join(f"img{i:03d}.png,{'ab'[i % 2]}\n" for i in range(N)))
    fresh = init_campaign(images, csv, tmp_path / "fresh.db", seed=0)
    x, why = stored_features(fresh)
    assert x is None and "campaign step" in why


def test_builtin_encoder_features_come_from_the_cache_only(tmp_path, monkeypatch):
    from labelrefine.config import EncoderConfig
    from labelrefine.models.cache import cache_key, store_features

    monkeypatch.setenv("LABELREFINE_CACHE_DIR", str(tmp_path / "cache"))
    cfg = EncoderConfig(views=0)
    ledger = make_feature_campaign(tmp_path, features=False,
                                   settings={"encoder": cfg.model_dump(mode="json")})
    x, why = stored_features(ledger)
    assert x is None and "cached features are missing" in why  # nothing computed
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())

    dataset = campaign_dataset(ledger)
    plain = np.random.default_rng(0).normal(size=(N, 5)).astype(np.float16)
    store_features(dataset, cfg, cache_key(dataset, cfg, seed=0), plain,
                   np.zeros((0, N, 5), np.float16), seed=0, meta={})
    x, why = stored_features(ledger)
    assert why == "" and x is not None
    np.testing.assert_array_equal(x, plain.astype(np.float32))


@pytest.mark.parametrize("broken", ["missing", "changed"])
def test_an_unusable_features_file_is_a_reason_not_a_crash(tmp_path, broken):
    ledger = make_feature_campaign(tmp_path)
    path = tmp_path / "features.npz"
    if broken == "missing":
        path.unlink()
    else:
        np.savez(path, ids=np.asarray([f"img{i:03d}" for i in range(N)]),
                 features=angles() * 2)
    x, why = stored_features(ledger)
    assert x is None and "cannot be read" in why
