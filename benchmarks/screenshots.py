"""Regenerate the web app screenshots in docs/ from a small real campaign on the bundled data.

Builds a campaign over the bundled HAM10000 subset (``--items`` images; ``--flip`` of the labels
not confirmed by histopathology are flipped, seeded; ``dx_type = histo`` is trusted; class
display names as below), runs one real ``campaign step`` on CPU (embedding, cached, and phase
1), turns on double reading, and serves it. Two scripted readers answer part of the queue with
the bundled labels through the API (the second disagrees once, so there is a conflict), then
Debian's /usr/bin/chromium (through Playwright) captures, 1280 px wide:

- ``docs/campaign-page.png``: the reading page, with the look-alikes under the image;
- ``docs/viewer-zoom.png``: the image viewer zoomed in (2.25 x) and panned;
- ``docs/adjudication-page.png``: the adjudication page with the open conflict;
- ``docs/campaign-status.png``: what ``labelrefine campaign status`` prints for the campaign.

    .venv/bin/python benchmarks/screenshots.py [--items 5984] [--budget 24] [--out docs]

The first run embeds the images (a few minutes on a 2-core CPU; later runs hit the cache).
"""

from __future__ import annotations

import argparse
import html
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
HAM = REPO / "data" / "ham10000"
CHROMIUM = "/usr/bin/chromium"
ADMIN = "screenshots-admin-token"
WIDTH = 1280
SERVE = (
    "import sys, uvicorn; from labelrefine.web.app import create_app; "
    "uvicorn.run(create_app(sys.argv[1], token=sys.argv[2]), host='127.0.0.1', "
    "port=int(sys.argv[3]), log_level='warning')"
)
NAMES = {
    "akiec": "actinic keratosis / Bowen's",
    "bcc": "basal cell carcinoma",
    "bkl": "benign keratosis",
    "df": "dermatofibroma",
    "mel": "melanoma",
    "nv": "melanocytic naevus",
    "vasc": "vascular lesion",
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=5984)
    ap.add_argument("--flip", type=float, default=0.1)
    ap.add_argument("--budget", type=int, default=24)
    ap.add_argument("--answers", type=int, default=8, help="items the first reader answers")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=REPO / "docs")
    args = ap.parse_args()
    if not Path(CHROMIUM).exists():
        sys.exit(f"needs Debian's chromium at {CHROMIUM} (apt-get install chromium)")

    work = Path(tempfile.mkdtemp(prefix="screenshots-"))
    db, truth = build_campaign(work, args)
    from labelrefine.campaign.ledger import Ledger

    ledger = Ledger(db)
    ledger.configure(double_read_share=0.3)
    tokens = {name: ledger.add_reader(name) for name in ("ann", "bob")}
    tokens["chief"] = ledger.add_reader("chief", role="adjudicator")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", SERVE, str(db), ADMIN, str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait(url)
        read(url, tokens["ann"], truth, args.answers, disagree=False)
        read(url, tokens["bob"], truth, 2, disagree=True)
        if ledger.conflicts().empty:
            print("note: no conflict this time (bob's items were not double-read ones); the "
                  "adjudication page will be empty -- try another --seed")
        args.out.mkdir(parents=True, exist_ok=True)
        shots = capture(url, tokens, args.out, status_text(db))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)
    for shot in shots:
        print(f"wrote {shot} ({shot.stat().st_size // 1024} KB)")


def build_campaign(work: Path, args: argparse.Namespace) -> tuple[Path, dict[str, str]]:
    """The campaign file and the bundled label of every item (the readers' answers)."""
    from labelrefine.campaign.create import init_campaign
    from labelrefine.campaign.step import StepOptions, run_step

    rng = np.random.default_rng(args.seed)
    labels = pd.read_csv(HAM / "labels.csv").head(args.items)
    classes = sorted(labels["dx"].unique())
    truth = dict(zip(labels["image_id"], labels["dx"], strict=True))
    given = labels["dx"].to_numpy().copy()
    open_ = np.flatnonzero(labels["dx_type"].to_numpy() != "histo")
    for i in rng.choice(open_, size=int(args.flip * open_.size), replace=False):
        given[i] = rng.choice([c for c in classes if c != given[i]])
    csv = work / "labels.csv"
    pd.DataFrame({"image_id": labels["image_id"], "dx": given,
                  "dx_type": labels["dx_type"]}).to_csv(csv, index=False)
    db = work / "derm.db"
    t0 = time.perf_counter()
    init_campaign(HAM / "images", csv, db, classes=classes, seed=args.seed,
                  display_names={c: NAMES[c] for c in classes if c in NAMES},
                  trusted_column="dx_type", trusted_values=["histo"])
    res = run_step(db, StepOptions(budget=args.budget, seed=args.seed, views=0, epochs=20,
                                   device="cpu"))
    print(f"campaign: {len(labels)} items, init + first step {time.perf_counter() - t0:.0f} s, "
          f"{res.queued} queued")
    return db, truth


def read(url: str, token: str, truth: dict[str, str], n: int, *, disagree: bool) -> None:
    """Answer ``n`` items as the reader of ``token`` with the bundled labels (``disagree``:
    the first answer is another class)."""
    with httpx.Client(base_url=url, timeout=60,
                      headers={"Authorization": f"Bearer {token}"}) as http:
        classes = sorted(NAMES)
        for k in range(n):
            item = http.get("/api/next").json()["item"]
            if item is None:
                return
            label = truth[item["item"]]
            if disagree and k == 0:
                label = next(c for c in classes if c != label)
            http.post("/api/answer", json={
                "idx": item["idx"], "label": label, "submission_id": uuid.uuid4().hex,
                "seconds": 20.0}).raise_for_status()


def status_text(db: Path) -> str:
    """What ``labelrefine campaign status`` prints (plain text, 150 columns)."""
    env = {**os.environ, "COLUMNS": "150", "NO_COLOR": "1", "TERM": "dumb"}
    cli = Path(sys.executable).with_name("labelrefine")
    out = subprocess.run([str(cli), "campaign", "status", str(db)],
                         capture_output=True, text=True, env=env, check=True)
    return (out.stdout + out.stderr).replace(str(db), "derm.db")


def capture(url: str, tokens: dict[str, str], out: Path, status: str) -> list[Path]:
    from playwright.sync_api import sync_playwright

    shots = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--headless", "--no-sandbox", "--disable-gpu"])

        def page_of(token: str, path: str = "/"):
            page = browser.new_context(viewport={"width": WIDTH, "height": 900}).new_page()
            page.goto(f"{url}/?token={token}")
            if path != "/":
                page.goto(url + path)
            page.wait_for_load_state("networkidle")
            page.wait_for_function("() => [...document.images].every(i => i.complete)")
            return page

        ann = page_of(tokens["ann"])
        for _ in range(30):  # the server reads the features in the background on first use
            if ann.query_selector(".lookalike-row"):
                break
            time.sleep(1)
            ann.reload()
            ann.wait_for_load_state("networkidle")
        shots.append(save(ann, out / "campaign-page.png", full=True))
        for key in ("+", "+", "ArrowRight", "ArrowDown"):  # 2.25 x, panned
            ann.keyboard.press(key)
        shots.append(save(ann.locator("#item .viewer"), out / "viewer-zoom.png"))
        chief = page_of(tokens["chief"], "/adjudicate")
        shots.append(save(chief, out / "adjudication-page.png", full=True))
        term = browser.new_context(viewport={"width": WIDTH, "height": 600}).new_page()
        term.set_content(
            "<body style='margin:0;background:#1d1d1f'><pre style='margin:0;padding:16px 20px;"
            "color:#e8e8e8;font:13px/1.35 ui-monospace,monospace;white-space:pre-wrap'>"
            f"$ labelrefine campaign status derm.db\n{html.escape(status)}</pre></body>")
        shots.append(save(term, out / "campaign-status.png", full=True))
        browser.close()
    return shots


def save(target, path: Path, *, full: bool = False) -> Path:
    """Screenshot ``target`` (a page or an element) into ``path`` as a small PNG."""
    from PIL import Image

    if full:
        target.screenshot(path=str(path), full_page=True)
    else:
        target.screenshot(path=str(path))
    with Image.open(path) as im:  # 256 colours: a few hundred KB at most
        im.convert("RGB").quantize(256, dither=Image.Dither.NONE).save(path, optimize=True)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait(url: str) -> None:
    for _ in range(600):
        try:
            if httpx.get(url + "/static/app.js", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError("server did not start")


if __name__ == "__main__":
    main()
