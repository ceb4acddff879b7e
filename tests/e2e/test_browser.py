"""The relabeling page in headless Chromium: a reader labels 10 items with keyboard and mouse,
undoes one, reloads -- every answer is in the ledger and the queue continues where it stopped; a
second reader's conflicting answer goes to the adjudication page and is decided there; blind
mode hides the given label and the model.

Uses Debian's ``/usr/bin/chromium`` through Playwright (nothing is downloaded). The screenshots
of the pages are written to the test's temp folder (the ones in ``docs/`` come from
``benchmarks/screenshots.py``, on a real campaign).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from browser_env import ARGS, CHROMIUM, served

from labelrefine.campaign.ledger import ItemRecord, Ledger

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
HAM = REPO / "data" / "ham10000"


def campaign(tmp_path: Path, n_queue: int = 16) -> Ledger:
    """A campaign over 40 bundled HAM10000 images with a hand-written queue (no training)."""
    labels = pd.read_csv(HAM / "labels.csv").head(40)
    classes = tuple(sorted(pd.read_csv(HAM / "labels.csv")["dx"].unique()))
    given = [classes.index(d) for d in labels["dx"]]
    items = [ItemRecord(k, f"{k}.jpg", g, "val" if i >= 36 else "train")
             for i, (k, g) in enumerate(zip(labels["image_id"], given, strict=True))]
    ledger = Ledger.create(tmp_path / "derm.db", image_root=HAM / "images",
                           class_names=classes, items=items)
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.full(len(classes), 0.4), size=len(items))
    queue = []
    for i in range(n_queue):
        top = int(np.argmax(probs[i]))
        reason = (f"model predicts {classes[top]} at {probs[i, top]:.2f} against the given "
                  f"label {classes[given[i]]}" if top != given[i] else
                  f"high uncertainty (top {classes[top]} {probs[i, top]:.2f})")
        queue.append((i, float(probs[i, top]), reason))
    ledger.write_round(0, kind="phase1", sampler="joint", budget=n_queue, seed=0, settings={},
                       metrics={}, probs=probs, scored_items=np.arange(len(items)),
                       clean=np.zeros(len(items), bool), pool_scores={}, queue=queue)
    return ledger


@pytest.fixture
def server(tmp_path):
    ledger = campaign(tmp_path)
    with served(ledger.path) as url:
        yield ledger, url


def test_label_ten_items_undo_reload(server, tmp_path):
    from playwright.sync_api import sync_playwright

    ledger, url = server
    classes = ledger.class_names
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1100, "height": 760})
        reader_token = ledger.add_reader("dr-e2e")
        page.goto(f"{url}/?token={reader_token}")
        assert "token=" not in page.url  # the token moved into a cookie
        page.wait_for_selector("#item")

        def current() -> int:
            return int(page.get_attribute("#item", "data-idx"))

        def wait_past(idx: int) -> None:
            page.wait_for_function(
                "i => { const el = document.querySelector('#item');"
                " return el && el.dataset.idx !== String(i); }", arg=idx)

        expected: dict[int, tuple[str, int | None]] = {}
        # (how, what): keyboard digits / k / u, and mouse clicks on class buttons
        actions = [("key", "1"), ("click", "nv"), ("key", "k"), ("key", "3"),
                   ("click", "mel"), ("key", "u"), ("click", "keep"), ("key", "7"),
                   ("click", "unsure"), ("key", "2")]
        for how, what in actions:
            idx = current()
            given = ledger.item(idx)["given_label"]
            if how == "key":
                page.keyboard.press(what)
            elif what == "keep":
                page.click("#item button[data-action='keep']")
            else:
                page.click(f"#item button[data-label='{what}']")
            if what in ("k", "keep"):
                expected[idx] = ("label", given)
            elif what in ("u", "unsure"):
                expected[idx] = ("unsure", None)
            elif what.isdigit():
                expected[idx] = ("label", int(what) - 1)
            else:
                expected[idx] = ("label", classes.index(what))
            wait_past(idx)
        assert "10 / 16 decided by the team" in page.inner_text(".progress .count")

        # undo the last answer (keyboard z): that item comes back
        last = list(expected)[-1]
        page.keyboard.press("z")
        page.wait_for_function(
            "i => document.querySelector('#item')?.dataset.idx === String(i)", arg=last)
        del expected[last]
        page.wait_for_function(
            "() => document.querySelector('.progress .count').textContent.includes('9 / 16')")

        page.reload()
        page.wait_for_selector("#item")
        assert current() == last  # the queue continues where it stopped
        count = page.inner_text(".progress .count")
        assert "9 / 16 decided by the team" in count and "answered by you this round: 9" in count
        shot = tmp_path / "labeling-page.png"
        page.screenshot(path=str(shot), full_page=True)
        browser.close()

    live = ledger.answers().set_index("item")
    assert set(live.index) == set(expected)
    for idx, (kind, label) in expected.items():
        assert live.loc[idx, "kind"] == kind
        assert (None if pd.isna(live.loc[idx, "label"]) else int(live.loc[idx, "label"])) == label
        assert live.loc[idx, "annotator"] == "dr-e2e"
        assert live.loc[idx, "seconds"] >= 0
    full = ledger.answers(include_retracted=True)
    assert len(full) == 10 and full["retracted"].sum() == 1
    assert shot.stat().st_size > 10_000


def test_second_reader_conflict_adjudication_and_blind_mode(server, tmp_path):
    from playwright.sync_api import sync_playwright

    ledger, url = server
    classes = ledger.class_names
    ann, bob = ledger.add_reader("ann"), ledger.add_reader("bob")
    chief = ledger.add_reader("chief", role="adjudicator")
    ledger.configure(double_read_share=1.0)  # every queued item is read twice
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)

        def reader_page(token: str):
            ctx = browser.new_context(viewport={"width": 1100, "height": 760})
            page = ctx.new_page()
            page.goto(f"{url}/?token={token}")
            page.wait_for_selector("#item")
            return page

        a = reader_page(ann)
        first = int(a.get_attribute("#item", "data-idx"))
        a.keyboard.press("1")  # ann: the first class
        a.wait_for_function("i => document.querySelector('#item')?.dataset.idx !== String(i)",
                            arg=first)
        b = reader_page(bob)
        # bob gets ann's item as its second reading (a lease only holds items being looked at)
        assert int(b.get_attribute("#item", "data-idx")) == first
        b.keyboard.press("2")  # bob disagrees
        b.wait_for_function("i => document.querySelector('#item')?.dataset.idx !== String(i)",
                            arg=first)
        assert ledger.conflicts()["item"].tolist() == [first]

        c = reader_page(chief)
        assert "waiting for adjudication" in c.inner_text("#panel")
        c.click("a[href='/adjudicate']")
        c.wait_for_selector("section.conflict")
        text = c.inner_text("section.conflict")
        assert "ann" in text and "bob" in text and classes[0] in text and classes[1] in text
        shot = tmp_path / "adjudication-page.png"
        c.screenshot(path=str(shot), full_page=True)
        c.click(f"section.conflict button[data-label='{classes[1]}']")
        c.wait_for_selector("#done")
        assert ledger.conflicts().empty
        assert ledger.item(first)["current_label"] == 1
        assert ledger.decisions().set_index("item").loc[first, "status"] == "adjudicated"

        # blind mode: no given label, no model top-3, no keep key
        ledger.configure(blind=True)
        a.reload()
        a.wait_for_selector("#item")
        body = a.inner_text("#panel")
        assert "Blind reading" in body and "Model top-3" not in body and "Given label" not in body
        assert a.query_selector("button[data-action='keep']") is None
        idx = int(a.get_attribute("#item", "data-idx"))
        a.keyboard.press("k")  # does nothing in blind mode
        a.keyboard.press("3")
        a.wait_for_function("i => document.querySelector('#item')?.dataset.idx !== String(i)",
                            arg=idx)
        mine = ledger.answers().query("annotator == 'ann'").set_index("item")
        assert int(mine.loc[idx, "label"]) == 2
        browser.close()
    assert shot.stat().st_size > 10_000


def test_a_note_typed_on_the_page_is_stored_with_the_answer(server):
    from playwright.sync_api import sync_playwright

    ledger, url = server
    note = "2 lesions; k-shaped border, unsure <b>why</b>\nsee prior 1z"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1100, "height": 760})
        page.goto(f"{url}/?token={ledger.add_reader('dr-note')}")
        page.wait_for_selector("#item #note")
        idx = int(page.get_attribute("#item", "data-idx"))
        page.click("#note")
        page.keyboard.type(note)  # digits, k, u and z in a note are text, not answers
        assert ledger.annotation_count() == 0
        assert int(page.get_attribute("#item", "data-idx")) == idx
        page.click("#item button[data-label='nv']")
        page.wait_for_function(
            "i => document.querySelector('#item')?.dataset.idx !== String(i)", arg=idx)
        assert page.input_value("#note") == ""  # the next item starts without a note
        page.goto(f"{url}/?item={idx}")  # the item again: the reader's own note, as text
        page.wait_for_selector("#item #note")
        assert page.input_value("#note") == note
        browser.close()
    live = ledger.answers()
    assert live["item"].tolist() == [idx] and live["note"].tolist() == [note]
    assert ledger.class_names[int(live["label"].iloc[0])] == "nv"
