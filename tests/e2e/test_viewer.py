"""The reading page's image viewer in headless Chromium: keys and the mouse wheel zoom, dragging
and arrow keys pan within the image, 0 and double-click fit, 1:1 shows one screen pixel per
stored pixel, and the next item starts fitted; class display names sit beside the codes.

Uses Debian's ``/usr/bin/chromium`` through Playwright (nothing is downloaded).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from browser_env import ARGS, CHROMIUM, served
from PIL import Image

from labelrefine.campaign.ledger import ItemRecord, Ledger

pytestmark = pytest.mark.browser

CLASSES = ("akiec", "bcc", "nv")
SIZE = 1024  # stored pixels: larger than the fitted view


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "images"
    root.mkdir()
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    for i in range(3):
        pix = np.stack([(x + 40 * i) % 256, y % 256, (x ^ y) % 256], axis=-1).astype(np.uint8)
        Image.fromarray(pix).save(root / f"im{i}.png")
    items = [ItemRecord(f"im{i}", f"im{i}.png", i % 3, "train") for i in range(3)]
    ledger = Ledger.create(tmp_path / "c.db", image_root=root, class_names=CLASSES, items=items,
                           meta={"class_display_names": json.dumps(
                               {"akiec": "actinic keratosis / Bowen's"})})
    ledger.write_round(0, kind="phase1", sampler="entropy", budget=3, seed=0, settings={},
                       metrics={}, probs=np.tile([0.5, 0.3, 0.2], (3, 1)),
                       scored_items=np.arange(3), clean=np.zeros(3, bool), pool_scores={},
                       queue=[(i, 1.0, "model predicts akiec") for i in range(3)])
    with served(ledger.path) as url:
        yield ledger, url


def test_zoom_pan_fit_and_one_to_one(server):
    from playwright.sync_api import sync_playwright

    ledger, url = server
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.goto(f"{url}/?token={ledger.add_reader('dr-v')}")
        page.wait_for_function("() => document.querySelector('.viewer img')?.naturalWidth > 0")

        def state() -> dict:
            return page.evaluate(
                "() => { const v = document.querySelector('.viewer');"
                " const i = v.querySelector('img');"
                " const m = new DOMMatrix(getComputedStyle(i).transform);"
                " return {scale: m.a, x: m.e, y: m.f, w: v.clientWidth, h: v.clientHeight,"
                " natural: i.naturalWidth, label: document.querySelector('.zoom-level')"
                ".textContent, pixels: v.classList.contains('pixels')}; }")

        s = state()
        assert s["natural"] == SIZE and s["scale"] == 1 and s["label"] == "fit"
        assert s["w"] < SIZE  # fitted: smaller than the stored image
        assert "actinic keratosis / Bowen's" in page.inner_text("#item .buttons")

        page.keyboard.press("+")
        page.keyboard.press("+")
        s = state()
        assert s["scale"] == pytest.approx(2.25)
        # zoomed about the centre: the centre stays put
        assert s["x"] == pytest.approx(s["w"] / 2 - s["w"] / 2 * 2.25, abs=0.5)
        page.keyboard.press("-")
        assert state()["scale"] == pytest.approx(1.5)

        # arrows pan, never past the image's edge
        before = state()
        page.keyboard.press("ArrowRight")
        after = state()
        assert after["x"] == pytest.approx(before["x"] - 0.1 * before["w"], abs=0.5)
        for _ in range(20):
            page.keyboard.press("ArrowRight")
        s = state()
        assert s["x"] == pytest.approx(s["w"] - s["w"] * s["scale"], abs=0.5)

        # drag pans by the mouse's movement
        box = page.evaluate("() => { const v = document.querySelector('.viewer');"
                            " const r = v.getBoundingClientRect(); return {x: r.left +"
                            " v.clientLeft, y: r.top + v.clientTop, width: v.clientWidth,"
                            " height: v.clientHeight}; }")
        cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        before = state()
        page.mouse.move(cx, cy)
        page.mouse.down()
        page.mouse.move(cx + 40, cy + 30, steps=4)
        page.mouse.up()
        after = state()
        assert after["x"] == pytest.approx(before["x"] + 40, abs=1)
        assert after["y"] == pytest.approx(min(0.0, before["y"] + 30), abs=1)

        # the wheel zooms about the pointer: the image point under it stays under it
        page.keyboard.press("0")
        assert state()["scale"] == 1
        px, py = box["x"] + 0.25 * box["width"], box["y"] + 0.25 * box["height"]
        page.mouse.move(px, py)
        page.mouse.wheel(0, -400)
        page.wait_for_function("() => Number(document.querySelector('.viewer')"
                               ".dataset.scale) > 1")
        s = state()
        lx, ly = px - box["x"], py - box["y"]
        assert s["scale"] > 1.5
        assert (lx - s["x"]) / s["scale"] == pytest.approx(lx, abs=0.5)
        assert (ly - s["y"]) / s["scale"] == pytest.approx(ly, abs=0.5)

        # double-click: back to fit; 1:1: one screen pixel per stored pixel
        page.dblclick(".viewer")
        assert state()["scale"] == 1
        page.click("button[data-zoom]")
        s = state()
        assert s["w"] * s["scale"] == pytest.approx(SIZE, abs=1) and s["label"] == "100 %"
        page.keyboard.press("+")
        assert state()["pixels"]  # past 1:1 pixels are drawn as squares

        # answering moves to the next item, which starts fitted
        first = page.get_attribute("#item", "data-idx")
        page.keyboard.press("1")
        page.wait_for_function(
            "i => document.querySelector('#item')?.dataset.idx !== i", arg=first)
        page.wait_for_function("() => document.querySelector('.viewer img')?.naturalWidth > 0")
        s = state()
        assert s["scale"] == 1 and s["label"] == "fit"
        browser.close()
    assert len(ledger.answers()) == 1
