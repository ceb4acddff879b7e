"""Class display names on the adjudication page and in its API: every class shown there (the
given label, each reader's answer, the model's top-3, the decision buttons) carries its name
beside the code, escaped; answers and decisions keep the codes."""

from __future__ import annotations

import uuid
import warnings

from labelrefine.campaign.create import set_class_names
from lookalike_campaign import make_feature_campaign

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from labelrefine.web.app import create_app

TOKEN = "adjudication-names-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NAMES = {"akiec": "actinic keratosis / Bowen's", "nv": "<b>naevus</b>"}


def conflict_campaign(tmp_path, names=NAMES):
    ledger = make_feature_campaign(tmp_path)
    set_class_names(ledger, names)
    # item 0 (given akiec): one reader says nv, the other bcc; item 3: nv against unsure
    for item, label, who in ((0, "nv", "ann"), (0, "bcc", "bob"), (3, "nv", "ann")):
        ledger.submit(item, ledger.class_index(label), annotator=who,
                      submission_id=uuid.uuid4().hex)
    ledger.submit(3, None, annotator="bob", submission_id=uuid.uuid4().hex)
    return ledger, TestClient(create_app(ledger.path, token=TOKEN))


def section(html: str, idx: int) -> str:
    start = html.index(f'<section class="item conflict" data-idx="{idx}"')
    return html[start:html.index("</section>", start)]


def test_the_page_names_every_class_beside_its_code(tmp_path):
    ledger, client = conflict_campaign(tmp_path)
    assert ledger.conflicts()["item"].tolist() == [0]
    html = client.get("/adjudicate", headers=AUTH).text
    one = section(html, 0)
    bowen = ' <span class="display-name">actinic keratosis / Bowen&#39;s</span>'
    naevus = ' <span class="display-name">&lt;b&gt;naevus&lt;/b&gt;</span>'
    assert "<b>naevus</b>" not in html  # escaped
    # the given label (akiec), ann's answer (nv), bob's (bcc: no name), the top-3, the buttons
    assert f'<strong class="label">akiec</strong>{bowen}' in one
    assert f'<span class="label">nv</span>{naevus}' in one
    assert '<span class="label">bcc</span></td>' in one
    assert f"<th>akiec{bowen}</th>" in one and f"<th>nv{naevus}</th>" in one
    assert (f'data-label="akiec" data-display="actinic keratosis / Bowen&#39;s">akiec{bowen}'
            "</button>") in one
    assert 'data-label="bcc">bcc</button>' in one  # a class without a name: the code alone
    assert one.count('class="display-name"') == 6


def test_the_api_carries_the_names_and_decisions_keep_codes(tmp_path):
    ledger, client = conflict_campaign(tmp_path)
    got = client.get("/api/conflicts", headers=AUTH).json()
    assert got["display_names"] == NAMES
    assert [a["answer"] for a in got["conflicts"][0]["answers"]] == ["nv", "bcc"]
    r = client.post("/api/adjudicate", headers=AUTH,
                    json={"idx": 0, "label": "nv", "submission_id": uuid.uuid4().hex})
    assert r.status_code == 200
    assert r.json()["label"] == "nv" and r.json()["display_name"] == "<b>naevus</b>"
    assert int(ledger.item(0)["current_label"]) == ledger.class_index("nv")


def test_without_names_the_page_shows_the_codes_alone(tmp_path):
    _, client = conflict_campaign(tmp_path, names={})
    html = client.get("/adjudicate", headers=AUTH).text
    assert 'class="display-name"' not in html and "data-display" not in html
    assert 'data-label="nv">nv</button>' in html
    assert client.get("/api/conflicts", headers=AUTH).json()["display_names"] == {}
