"""The reading page's look-alikes over HTTP: the nearest confirmed items of the given label and
of the model's suggestion, only settled items, never the item itself, none in blind mode."""

from __future__ import annotations

import threading
import uuid
import warnings

import numpy as np
import pytest

from labelrefine.campaign.ledger import Ledger
from labelrefine.web.lookalikes import BLIND_NOTE, LOADING, NONE_YET, Lookalikes
from lookalike_campaign import make_feature_campaign

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from labelrefine.web.app import create_app

TOKEN = "lookalike-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def submit(ledger: Ledger, item: int, label: str | None, who: str = "ann") -> None:
    lab = None if label is None else ledger.class_index(label)
    ledger.submit(item, lab, annotator=who, submission_id=uuid.uuid4().hex)


def rows_of(client: TestClient, idx: int) -> list[dict]:
    r = client.get(f"/api/item/{idx}", headers=AUTH)
    assert r.status_code == 200
    return r.json()["lookalikes"]["rows"]


def ids(row: dict) -> list[int]:
    return [t["idx"] for t in row["items"]]


@pytest.fixture
def ledger(tmp_path) -> Ledger:
    return make_feature_campaign(tmp_path, trusted=(9, 11))


@pytest.fixture
def client(ledger) -> TestClient:
    return TestClient(create_app(ledger.path, token=TOKEN))


def test_rows_for_the_given_label_and_the_suggestion_nearest_first(client, ledger):
    # item 0: given akiec, model suggests bcc. Confirmed akiec: 9 (trusted) and 3 (answered);
    # confirmed bcc: 4 (kept) and 7 (corrected); item 10 stays a conflict
    submit(ledger, 3, "akiec")
    submit(ledger, 4, "bcc")
    submit(ledger, 7, "bcc")
    submit(ledger, 10, "bcc")
    submit(ledger, 10, "nv", who="bob")
    nxt = client.get("/api/next", headers=AUTH).json()["item"]
    assert nxt["idx"] == 0
    given, suggested = nxt["lookalikes"]["rows"]
    assert given["label"] == "akiec" and given["roles"] == ["given"]
    assert ids(given) == [3, 9]  # nearest first (item i sits at angle 0.1 i)
    assert suggested["label"] == "bcc" and suggested["roles"] == ["suggested"]
    assert ids(suggested) == [4, 7]
    first = given["items"][0]
    assert first["item"] == "img003" and first["image_url"] == "/image/3"
    assert first["distance"] == pytest.approx(1 - np.cos(0.3), abs=1e-4)
    assert client.get(first["image_url"], headers=AUTH).status_code == 200


def test_only_settled_items_and_never_the_item_itself(client, ledger):
    submit(ledger, 1, "nv")  # nv is item 2's given label... and 1 confirms it as nv
    submit(ledger, 2, "nv")  # item 2's own answer
    submit(ledger, 5, "nv")
    submit(ledger, 5, "akiec", who="bob")  # conflict: not confirmed
    submit(ledger, 8, None)  # unsure: not confirmed
    (row,) = [r for r in rows_of(client, 2) if "given" in r["roles"]]
    assert row["label"] == "nv" and ids(row) == [1, 11]  # not 2 itself, not 5, not 8
    ledger.adjudicate(5, ledger.class_index("nv"), adjudicator="chief",
                      submission_id=uuid.uuid4().hex)
    (row,) = [r for r in rows_of(client, 2) if "given" in r["roles"]]
    assert ids(row) == [1, 5, 11]  # settled now; shown on the next request
    # with double reading, one answer of the open round is not final yet
    ledger.configure(double_read_share=1.0)
    (row,) = [r for r in rows_of(client, 2) if "given" in r["roles"]]
    assert ids(row) == [5, 11]


def test_one_row_when_the_suggestion_is_the_given_label(client, ledger):
    submit(ledger, 6, "akiec")
    (row,) = rows_of(client, 3)  # item 3: given akiec, model suggests akiec
    assert row["roles"] == ["given", "suggested"] and ids(row) == [6, 9]


def test_none_confirmed_yet(tmp_path):
    ledger = make_feature_campaign(tmp_path)
    client = TestClient(create_app(ledger.path, token=TOKEN))
    rows = rows_of(client, 0)
    assert [r["label"] for r in rows] == ["akiec", "bcc"]
    assert all(r["items"] == [] and r["note"] == NONE_YET for r in rows)
    page = client.get("/?item=0", headers=AUTH).text
    assert page.count(NONE_YET) == 2 and "confirmed <strong>bcc</strong>" in page


def test_no_suggestion_row_for_an_item_the_model_did_not_score(client, ledger):
    rows = rows_of(client, 11)  # the validation item: not queued, no suggestion
    assert [r["roles"] for r in rows] == [["given"]]


def test_blind_mode_shows_no_rows_and_keeps_the_given_label_hidden(client, ledger):
    submit(ledger, 3, "akiec")
    submit(ledger, 4, "bcc")
    ledger.configure(blind=True)
    dr = {"Authorization": f"Bearer {ledger.add_reader('dr-blind')}"}
    item = client.get("/api/next", headers=dr).json()["item"]
    assert item["blind"] and item["given_label"] is None
    assert item["lookalikes"] == {"rows": [], "note": BLIND_NOTE}
    page = client.get("/partials/item?item=0", headers=dr).text
    assert "lookalike-row" not in page and BLIND_NOTE in page
    assert "/image/3" not in page and "/image/9" not in page


def test_the_page_shows_thumbnails_with_display_names_that_open_full_size(client, ledger):
    submit(ledger, 3, "akiec")
    page = client.get("/partials/item?item=0", headers=AUTH).text
    assert 'class="lookalikes"' in page
    assert "confirmed <strong>akiec</strong> <span class=\"display-name\">actinic keratosis" in page
    assert '<a class="thumb" href="/image/3" target="_blank"' in page
    assert '<a class="thumb" href="/image/9" target="_blank"' in page


def test_without_features_the_page_says_why(tmp_path):
    ledger = make_feature_campaign(tmp_path, features=False)  # and no encoder in its settings
    client = TestClient(create_app(ledger.path, token=TOKEN))
    la = client.get("/api/item/0", headers=AUTH).json()["lookalikes"]
    assert la["rows"] == [] and la["note"].startswith("unavailable (")
    assert client.get("/?item=0", headers=AUTH).status_code == 200


def test_adjudication_views_carry_no_lookalikes(client, ledger):
    submit(ledger, 3, "akiec")
    submit(ledger, 3, "nv", who="bob")
    page = client.get("/adjudicate", headers=AUTH)
    assert page.status_code == 200 and "lookalike" not in page.text


def test_features_are_read_once_per_process(ledger):
    calls = []

    def load(led):
        calls.append(1)
        return np.eye(12, dtype=np.float32), ""

    looks = Lookalikes(ledger, load=load)
    submit(ledger, 3, "akiec")
    first = looks.rows(0, 0, 1)
    submit(ledger, 6, "akiec")
    second = looks.rows(0, 0, 1)
    assert len(calls) == 1
    assert ids(first["rows"][0]) == [3, 9] and ids(second["rows"][0]) == [3, 6, 9]


def test_features_of_the_wrong_length_are_refused(ledger):
    looks = Lookalikes(ledger, load=lambda _: (np.ones((5, 2), np.float32), ""))
    out = looks.rows(0, 0, None)
    assert out["rows"] == [] and "5 rows for 12 items" in out["note"]


def test_a_slow_first_read_says_loading_instead_of_holding_the_page(ledger):
    release = threading.Event()

    def slow(_):
        release.wait(10)
        return np.eye(12, dtype=np.float32), ""

    looks = Lookalikes(ledger, load=slow, wait_s=0.05)
    assert looks.rows(0, 0, 1) == {"rows": [], "note": LOADING}
    release.set()
    looks.wait_s = 5
    assert [r["label"] for r in looks.rows(0, 0, 1)["rows"]] == ["akiec", "bcc"]


def test_a_failing_read_is_a_note_not_a_hang(ledger):
    def broken(_):
        raise RuntimeError("disk on fire")

    out = Lookalikes(ledger, load=broken).rows(0, 0, 1)
    assert out["rows"] == [] and "disk on fire" in out["note"]
