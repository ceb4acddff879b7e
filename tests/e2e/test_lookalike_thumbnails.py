"""The reading page's look-alikes in headless Chromium: rows of confirmed items of the given
label and of the model's suggestion, thumbnails that open the image full size, and a reader's
answer that shows up in the next item's rows.

Uses Debian's ``/usr/bin/chromium`` through Playwright (nothing is downloaded).
"""

from __future__ import annotations

import uuid

import pytest
from browser_env import ARGS, CHROMIUM, served

from lookalike_campaign import make_feature_campaign

pytestmark = pytest.mark.browser

SIZE = 600  # stored pixels: the thumbnails are far smaller


@pytest.fixture
def server(tmp_path):
    ledger = make_feature_campaign(tmp_path, trusted=(9, 11), size=SIZE)
    for item, label in ((3, "akiec"), (4, "bcc"), (7, "bcc")):
        ledger.submit(item, ledger.class_index(label), annotator="earlier",
                      submission_id=uuid.uuid4().hex)
    with served(ledger.path) as url:
        yield ledger, url


def rows(page) -> dict[str, list[int]]:
    """Each look-alike row's class code -> the item indices of its thumbnails, in order."""
    return page.evaluate(
        "() => Object.fromEntries([...document.querySelectorAll('.lookalike-row')].map(r =>"
        " [r.dataset.label, [...r.querySelectorAll('a.thumb')].map(a => Number(a.dataset.idx))]"
        "))")


def test_thumbnails_open_full_size_and_follow_the_answers(server):
    from playwright.sync_api import sync_playwright

    ledger, url = server
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        ctx = browser.new_context(viewport={"width": 1100, "height": 900})
        page = ctx.new_page()
        page.goto(f"{url}/?token={ledger.add_reader('dr-look')}")
        page.wait_for_selector("#item")
        assert page.get_attribute("#item", "data-idx") == "0"
        # item 0: given akiec, the model suggests bcc
        assert rows(page) == {"akiec": [3, 9], "bcc": [4, 7]}
        titles = page.inner_text(".lookalikes")
        assert "confirmed akiec actinic keratosis (given label)" in titles
        assert "confirmed bcc basal cell (model's suggestion)" in titles
        page.wait_for_function(
            "() => [...document.querySelectorAll('.lookalikes img')]"
            ".every(i => i.complete && i.naturalWidth > 0)")
        thumb = page.evaluate(
            "() => document.querySelector('.lookalikes img').getBoundingClientRect().width")
        assert 0 < thumb < 120

        with ctx.expect_page() as opened:
            page.click(".lookalike-row[data-label='akiec'] a.thumb >> nth=0")
        full = opened.value
        full.wait_for_load_state()
        assert full.url.endswith("/image/3")
        assert full.evaluate("() => document.querySelector('img').naturalWidth") == SIZE
        full.close()

        # answering item 0 as akiec confirms it: item 1 (given bcc, suggested akiec) shows it
        page.keyboard.press("1")
        page.wait_for_function("() => document.querySelector('#item')?.dataset.idx === '1'")
        assert rows(page) == {"bcc": [4, 7], "akiec": [0, 3, 9]}
        browser.close()
