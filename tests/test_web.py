"""Relabeling web app: token, answers / undo through the API, safe image serving and rendering,
and reliability against a real uvicorn server (kill -9 mid-stream, 1,000 concurrent answers)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
import warnings
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from labelrefine.campaign.ledger import ItemRecord, Ledger

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from labelrefine.web.app import create_app

TOKEN = "s3cret-token"
CLASSES = ("akiec", "bcc", "nv")
XSS_ID = "<script>alert('id')</script>"
XSS_FILE = "<img src=x onerror=alert(1)>"
XSS_REASON = "<b onmouseover=alert(2)>bold</b>"


def make_campaign(tmp_path: Path, n: int = 12, queue: list[int] | None = None) -> Ledger:
    """A campaign over ``n`` tiny images (two with HTML in their id / file name) and a
    hand-written round-0 queue; no training involved."""
    root = tmp_path / "images"
    root.mkdir(parents=True)
    keys = [f"img{i:03d}" for i in range(n)]
    keys[1] = XSS_ID
    files = [f"{k}.png" for k in keys]
    files[1] = "xss1.png"
    files[2] = f"{XSS_FILE}.png"
    rng = np.random.default_rng(0)
    for f in files:
        Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(root / f)
    items = [ItemRecord(k, f, i % 3, "val" if i == n - 1 else "train")
             for i, (k, f) in enumerate(zip(keys, files, strict=True))]
    ledger = Ledger.create(tmp_path / "c.db", image_root=root, class_names=CLASSES, items=items)
    queue = list(range(n - 1)) if queue is None else queue
    probs = np.tile([0.6, 0.3, 0.1], (n, 1))
    ledger.write_round(
        0, kind="phase1", sampler="entropy", budget=len(queue), seed=0, settings={},
        metrics={"val_f1": 0.5}, probs=probs, scored_items=np.arange(n),
        clean=np.zeros(n, bool), pool_scores={}, queue=[
            (i, 1.0, XSS_REASON if i == 2 else f"model predicts akiec at 0.60 (item {i})")
            for i in queue
        ],
    )
    return ledger


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return make_campaign(tmp_path)


@pytest.fixture
def client(ledger: Ledger) -> TestClient:
    return TestClient(create_app(ledger.path, token=TOKEN, annotator="dr-default"))


AUTH = {"Authorization": f"Bearer {TOKEN}"}


def reader(ledger: Ledger, name: str, role: str = "reader") -> dict[str, str]:
    """Headers of a new reader account."""
    return {"Authorization": f"Bearer {ledger.add_reader(name, role=role)}"}


def answer(client, idx, label, sid=None, headers=None, **kw):
    body = {"idx": idx, "label": label, "submission_id": sid or uuid.uuid4().hex, **kw}
    return client.post("/api/answer", json=body, headers=headers or AUTH)


# ------------------------------------------------------------------------------------- token


@pytest.mark.parametrize("path", ["/", "/api/next", "/api/status", "/image/0", "/partials/item",
                                  "/api/item/0"])
def test_missing_or_wrong_token_is_401(client, path):
    assert client.get(path).status_code == 401
    assert client.get(path, headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.get(path, headers={"X-Token": "nope"}).status_code == 401
    assert client.get(path + ("&" if "?" in path else "?") + "token=nope").status_code == 401
    client.cookies.set("labelrefine_token", "nope")
    assert client.get(path).status_code == 401


def test_posts_need_the_token_and_store_nothing_without_it(client, ledger):
    body = {"idx": 0, "label": "nv", "submission_id": "x"}
    assert client.post("/api/answer", json=body).status_code == 401
    assert client.post("/api/answer", json=body, headers={"X-Token": "bad"}).status_code == 401
    assert client.post("/api/undo", json={"submission_id": "u"}).status_code == 401
    assert ledger.annotation_count() == 0


def test_token_in_query_becomes_cookie_and_leaves_the_url(client):
    r = client.get(f"/?token={TOKEN}&annotator=dr.who", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"
    page = client.get("/")
    assert page.status_code == 200 and TOKEN not in page.text
    assert "dr-default" in page.text and "dr.who" not in page.text  # the token names the reader
    # the cookie also authorises the API, and the annotator is recorded
    r = client.post("/api/answer", json={"idx": 0, "label": "nv", "submission_id": "c1"})
    assert r.status_code == 200


# ------------------------------------------------------------------------------------- answers


def test_answer_keep_unsure_and_progress(client, ledger):
    dr_a = reader(ledger, "dr-a")
    nxt = client.get("/api/next", headers=AUTH).json()
    assert nxt["item"]["idx"] == 0 and nxt["progress"] == {"round": 0, "answered": 0,
                                                            "total": 11, "mine": 0}
    assert [t["label"] for t in nxt["item"]["top3"]] == ["akiec", "bcc", "nv"]
    r = answer(client, 0, "nv", seconds=3.2, headers=dr_a)
    assert r.status_code == 200 and r.json()["progress"]["answered"] == 1
    assert answer(client, 3, "keep").status_code == 200
    assert answer(client, 4, "unsure").status_code == 200
    ans = ledger.answers().set_index("item")
    assert ans.loc[0, "label"] == 2 and ans.loc[0, "annotator"] == "dr-a"
    assert ans.loc[0, "seconds"] == pytest.approx(3.2)
    assert ans.loc[3, "label"] == ledger.item(3)["given_label"]
    assert ans.loc[3, "annotator"] == "dr-default"
    assert ans.loc[4, "kind"] == "unsure"
    assert client.get("/api/next", headers=AUTH).json()["item"]["idx"] == 1


def test_retried_submission_is_stored_once(client, ledger):
    first = answer(client, 0, "bcc", sid="same").json()
    again = answer(client, 0, "bcc", sid="same").json()
    assert not first["duplicate"] and again["duplicate"]
    assert first["annotation_id"] == again["annotation_id"]
    assert ledger.annotation_count() == 1
    clash = answer(client, 0, "nv", sid="same")
    assert clash.status_code == 422 and "already used" in clash.json()["detail"]


def test_bad_answers_are_rejected_by_name(client, ledger):
    r = answer(client, 0, "melanoma")
    assert r.status_code == 422 and "unknown class 'melanoma'" in r.json()["detail"]
    r = client.post("/api/answer", headers=AUTH,
                    json={"item": "no-such-image", "label": "nv", "submission_id": "z"})
    assert r.status_code == 422 and "'no-such-image'" in r.json()["detail"]
    r = answer(client, 11, "nv")  # the held-out val item
    assert r.status_code == 409 and "not in the current round's queue" in r.json()["detail"]
    r = client.post("/api/answer", headers=AUTH, json={"label": "nv", "submission_id": "q"})
    assert r.status_code == 422
    assert ledger.annotation_count() == 0


def test_undo_puts_the_item_back(client, ledger):
    dr_a, dr_b = reader(ledger, "dr-a"), reader(ledger, "dr-b")
    answer(client, 0, "nv", headers=dr_a)
    answer(client, 1, "bcc", headers=dr_a)
    answer(client, 2, "bcc", headers=dr_b)
    r = client.post("/api/undo", headers=dr_a, json={"submission_id": "u1"})
    assert r.status_code == 200 and r.json()["idx"] == 1 and r.json()["item"] == XSS_ID
    assert client.get("/api/next", headers=dr_a).json()["item"]["idx"] == 1
    assert set(ledger.answers()["item"]) == {0, 2}
    assert ledger.annotation_count() == 4  # history kept: 3 answers + 1 retraction


def test_two_annotators_get_different_items(client, ledger):
    ann, bob = reader(ledger, "ann"), reader(ledger, "bob")
    a = client.get("/api/next", headers=ann).json()["item"]["idx"]
    b = client.get("/api/next", headers=bob).json()["item"]["idx"]
    assert a != b
    assert client.get("/api/next", headers=ann).json()["item"]["idx"] == a


def test_status_endpoint(client):
    answer(client, 0, "nv")  # given akiec -> changed
    answer(client, 1, "bcc")  # given bcc -> kept
    st = client.get("/api/status", headers=AUTH).json()
    assert st["labels_bought"] == 2 and st["labels_changed"] == 1
    assert st["query_precision"] == pytest.approx(0.5)


# ------------------------------------------------------------------- safe serving & rendering


def test_images_are_served_only_from_inside_the_root(tmp_path, ledger):
    client = TestClient(create_app(ledger.path, token=TOKEN))
    ok = client.get("/image/0", headers=AUTH)
    assert ok.status_code == 200 and ok.content[:4] == b"\x89PNG"
    assert client.get(f"/image/{2}", headers=AUTH).status_code == 200  # odd but inside
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"\x89PNG top secret")
    (ledger.image_root / "link.png").symlink_to(secret)
    with ledger.connect() as con:  # a tampered ledger pointing outside the root
        con.execute("UPDATE items SET path = '../secret.png' WHERE idx = 3")
        con.execute("UPDATE items SET path = ? WHERE idx = 4", (str(secret),))
        con.execute("UPDATE items SET path = 'link.png' WHERE idx = 5")
    for idx in (3, 4, 5):
        r = client.get(f"/image/{idx}", headers=AUTH)
        assert r.status_code == 404 and b"top secret" not in r.content
    for url in ("/image/..%2F..%2Fsecret.png", "/image/../secret.png", "/image/-1",
                "/image/999"):
        r = client.get(url, headers=AUTH)
        assert r.status_code in (404, 422) and b"top secret" not in r.content


def test_html_in_ids_file_names_and_reasons_is_escaped(client):
    for idx in (1, 2):
        page = client.get(f"/partials/item?item={idx}", headers=AUTH).text
        assert "<script>alert" not in page and "<img src=x" not in page
        assert "<b onmouseover" not in page
    assert "&lt;script&gt;alert(&#39;id&#39;)&lt;/script&gt;" in client.get(
        "/partials/item?item=1", headers=AUTH).text
    assert "&lt;b onmouseover=alert(2)&gt;bold&lt;/b&gt;" in client.get(
        "/partials/item?item=2", headers=AUTH).text
    data = client.get("/api/item/1", headers=AUTH).json()
    assert data["item"] == XSS_ID  # JSON carries the raw string; the page only uses textContent


def test_page_shows_everything_an_expert_needs(client):
    client.get(f"/?token={TOKEN}")
    page = client.get("/").text
    for text in ("Given label", "Model top-3", "Why it is here", "keep given label", "unsure",
                 "undo last", "0 / 11 decided by the team", 'src="/image/0"'):
        assert text in page
    for k, name in enumerate(CLASSES, start=1):
        assert f"<kbd>{k}</kbd> {name}" in page


def test_done_page_when_queue_is_answered(tmp_path):
    ledger = make_campaign(tmp_path, queue=[0])
    client = TestClient(create_app(ledger.path, token=TOKEN))
    answer(client, 0, "nv")
    page = client.get("/partials/item", headers=AUTH).text
    assert "Nothing left in this round" in page and "1 of 1" in page
    assert "wrong labels left in the pool" in page and "model" in page  # observed and model


def test_page_before_the_first_step(tmp_path):
    ledger = Ledger.create(tmp_path / "c.db", image_root=tmp_path, class_names=CLASSES,
                           items=[ItemRecord("x", "x.png", 0)])
    client = TestClient(create_app(ledger.path, token=TOKEN))
    page = client.get("/partials/item", headers=AUTH).text
    assert "No queue yet" in page
    assert client.get("/api/next", headers=AUTH).json()["item"] is None


# ------------------------------------------------------------------------ real server tests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


SERVE = (
    "import sys, uvicorn; from labelrefine.web.app import create_app; "
    "uvicorn.run(create_app(sys.argv[1], token=sys.argv[2]), host='127.0.0.1', "
    "port=int(sys.argv[3]), log_level='warning')"
)


class Server:
    """The app under uvicorn in a subprocess on a free port (what ``labelrefine serve`` runs,
    without importing the whole command line)."""

    def __init__(self, db: Path):
        self.db = db
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVE, str(db), TOKEN, str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/static/app.js", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
            if self.proc.poll() is not None:
                break
        err = self.proc.stderr.read().decode() if self.proc.poll() is not None else ""
        self.stop()
        raise RuntimeError(f"server did not start: {err}")

    def kill9(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill9()


def test_real_server_requires_the_token(tmp_path):
    ledger = make_campaign(tmp_path)
    srv = Server(ledger.path)
    try:
        assert httpx.get(srv.url + "/api/next").status_code == 401
        assert httpx.get(srv.url + f"/api/next?token={TOKEN}x").status_code == 401
        assert httpx.get(srv.url + "/api/next", headers=AUTH).status_code == 200
    finally:
        srv.stop()


def test_two_annotators_1000_concurrent_answers_each_stored_once(tmp_path):
    ledger = make_campaign(tmp_path, n=101)
    sent: dict[str, list[str]] = {"ann": [], "bob": []}
    headers = {name: reader(ledger, name) for name in sent}
    srv = Server(ledger.path)
    errors: list[str] = []

    def annotate(name: str) -> None:
        with httpx.Client(base_url=srv.url, headers=headers[name], timeout=30) as http:
            for k in range(500):
                sid = f"{name}-{k}"
                body = {"idx": k % 100, "label": CLASSES[k % 3], "submission_id": sid}
                r = http.post("/api/answer", json=body)
                if k % 50 == 0:  # a client retry of the same answer
                    r = http.post("/api/answer", json=body)
                if r.status_code != 200:
                    errors.append(f"{sid}: {r.status_code} {r.text}")
                sent[name].append(sid)

    threads = [threading.Thread(target=annotate, args=(n,)) for n in sent]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        srv.stop()
    assert not errors
    stored = ledger.answers(include_retracted=True)
    assert len(stored) == 1000
    assert sorted(stored["submission_id"]) == sorted(sent["ann"] + sent["bob"])
    for name in sent:
        assert (stored["annotator"] == name).sum() == 500
    assert len(ledger.events("answer")) == 1000


def test_kill_9_during_submissions_loses_and_duplicates_nothing(tmp_path):
    ledger = make_campaign(tmp_path, n=61)
    srv = Server(ledger.path)
    acked: set[str] = set()
    attempted: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def stream(w: int) -> None:
        with httpx.Client(base_url=srv.url, headers=AUTH, timeout=10) as http:
            for k in range(10_000):
                if stop.is_set():
                    return
                sid = f"w{w}-{k}"
                with lock:
                    attempted.append(sid)
                try:
                    r = http.post("/api/answer", json={"idx": k % 60, "label": "nv",
                                                       "submission_id": sid})
                except httpx.TransportError:
                    return
                if r.status_code == 200:
                    with lock:
                        acked.add(sid)

    threads = [threading.Thread(target=stream, args=(w,)) for w in range(3)]
    for t in threads:
        t.start()
    while len(acked) < 150:
        time.sleep(0.01)
    srv.kill9()
    stop.set()
    for t in threads:
        t.join()
    assert srv.proc.returncode == -signal.SIGKILL

    stored = ledger.answers(include_retracted=True)
    ids = list(stored["submission_id"])
    assert len(ids) == len(set(ids)), "an answer was stored twice"
    assert acked <= set(ids), f"lost acknowledged answers: {sorted(acked - set(ids))[:5]}"
    assert set(ids) <= set(attempted)
    with ledger.connect() as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    # Restart; clients retry everything they are not sure about (and some they are).
    srv2 = Server(ledger.path)
    try:
        with httpx.Client(base_url=srv2.url, headers=AUTH, timeout=10) as http:
            for sid in attempted:
                w, k = sid[1:].split("-")
                r = http.post("/api/answer", json={"idx": int(k) % 60, "label": "nv",
                                                   "submission_id": sid})
                assert r.status_code == 200
                assert r.json()["duplicate"] == (sid in set(ids))
    finally:
        srv2.stop()
    final = ledger.answers(include_retracted=True)
    assert sorted(final["submission_id"]) == sorted(attempted)


def test_backup_while_serving_keeps_every_acknowledged_answer(tmp_path):
    ledger = make_campaign(tmp_path, n=61)
    srv = Server(ledger.path)
    acked: list[tuple[float, str]] = []
    stop = threading.Event()

    def stream(w: int) -> None:
        with httpx.Client(base_url=srv.url, headers=AUTH, timeout=10) as http:
            k = 0
            while not stop.is_set():
                sid = f"w{w}-{k}"
                r = http.post("/api/answer", json={"idx": k % 60, "label": "nv",
                                                   "submission_id": sid})
                if r.status_code == 200:
                    acked.append((time.monotonic(), sid))
                k += 1

    threads = [threading.Thread(target=stream, args=(w,)) for w in range(2)]
    try:
        for t in threads:
            t.start()
        while len(acked) < 100:
            time.sleep(0.01)
        started = time.monotonic()
        out = Ledger(ledger.path).backup(tmp_path / "backup.db")
        while len(acked) < 150:  # keep serving after the backup
            time.sleep(0.01)
    finally:
        stop.set()
        for t in threads:
            t.join()
        srv.stop()
    before = {sid for t, sid in acked if t < started}
    copy = Ledger(out).answers(include_retracted=True)
    assert before <= set(copy["submission_id"])
    assert len(copy) == len(set(copy["submission_id"]))
    assert not Path(str(out) + "-wal").exists()
    assert len(ledger.answers(include_retracted=True)) >= len(acked)


# --------------------------------------------------------------------- readers and roles


def test_reader_tokens_decide_the_name_and_cannot_act_for_others(client, ledger):
    ann, bob = reader(ledger, "ann"), reader(ledger, "bob")
    assert answer(client, 0, "nv", headers=ann).status_code == 200
    r = answer(client, 1, "nv", headers=ann, annotator="bob")
    assert r.status_code == 403 and "'ann'" in r.json()["detail"]
    r = client.post("/api/undo", headers=bob, json={"submission_id": "u", "annotator": "ann"})
    assert r.status_code == 403
    # bob's undo never touches ann's answer
    r = client.post("/api/undo", headers=bob, json={"submission_id": "u2"})
    assert r.status_code == 200 and r.json()["idx"] is None
    assert list(ledger.answers()["annotator"]) == ["ann"]
    # readers cannot adjudicate or create readers
    assert client.get("/api/conflicts", headers=ann).status_code == 403
    assert client.post("/api/readers", headers=ann, json={"name": "eve"}).status_code == 403
    r = client.post("/api/readers", headers=AUTH, json={"name": "carol"})
    assert r.status_code == 200
    carol = {"Authorization": f"Bearer {r.json()['token']}"}
    assert answer(client, 2, "nv", headers=carol).status_code == 200
    assert set(ledger.answers()["annotator"]) == {"ann", "carol"}


def test_undo_only_reaches_answers_of_the_current_round(tmp_path):
    ledger = make_campaign(tmp_path, queue=[0, 1])
    ann = reader(ledger, "ann")
    client = TestClient(create_app(ledger.path, token=TOKEN))
    answer(client, 0, "nv", headers=ann)
    n = len(ledger.items())
    ledger.write_round(
        1, kind="finetune", sampler="entropy", budget=1, seed=0, settings={}, metrics={},
        probs=np.tile([0.6, 0.3, 0.1], (n, 1)), scored_items=np.arange(n),
        clean=np.zeros(n, bool), pool_scores={}, queue=[(3, 1.0, "r")],
    )
    r = client.post("/api/undo", headers=ann, json={"submission_id": "u"})
    assert r.status_code == 200 and r.json()["idx"] is None  # round-0 answer was trained on
    assert list(ledger.answers()["item"]) == [0]


def test_only_queued_items_can_be_answered(client, ledger):
    with ledger.connect() as con:
        con.execute("DELETE FROM queue WHERE item = 5")
    r = answer(client, 5, "nv")
    assert r.status_code == 409 and "not in the current round's queue" in r.json()["detail"]
    assert ledger.annotation_count() == 0


def test_two_readers_disagree_then_adjudication_decides(client, ledger):
    ann, bob = reader(ledger, "ann"), reader(ledger, "bob")
    chief = reader(ledger, "chief", role="adjudicator")
    assert not answer(client, 0, "nv", headers=ann).json()["conflict"]
    assert answer(client, 0, "bcc", headers=bob).json()["conflict"]
    st = client.get("/api/status", headers=AUTH).json()
    assert st["open_conflicts"] == 1
    assert st["readers"]["ann"]["answers"] == 1 and st["readers"]["bob"]["answers"] == 1
    conf = client.get("/api/conflicts", headers=chief).json()["conflicts"]
    assert conf[0]["idx"] == 0
    assert {(a["reader"], a["answer"]) for a in conf[0]["answers"]} == {
        ("ann", "nv"), ("bob", "bcc")}
    page = client.get("/adjudicate", headers=chief)
    assert page.status_code == 200 and "Readers' answers" in page.text
    assert client.get("/adjudicate", headers=ann).status_code == 403
    r = client.post("/api/adjudicate", headers=chief,
                    json={"idx": 0, "label": "bcc", "submission_id": "j1"})
    assert r.status_code == 200 and r.json()["open_conflicts"] == 0
    assert client.get("/api/status", headers=AUTH).json()["open_conflicts"] == 0
    assert ledger.item(0)["current_label"] == CLASSES.index("bcc")
    r = client.post("/api/adjudicate", headers=chief,
                    json={"idx": 1, "label": "bcc", "submission_id": "j2"})
    assert r.status_code == 422 and "no disagreement" in r.json()["detail"]


def test_resubmitting_after_undo_is_a_clear_409(client, ledger):
    assert answer(client, 0, "nv", sid="s1").status_code == 200
    client.post("/api/undo", headers=AUTH, json={"submission_id": "u1"})
    r = answer(client, 0, "nv", sid="s1")
    assert r.status_code == 409 and "new submission id" in r.json()["detail"]
    assert answer(client, 0, "nv", sid="s2").status_code == 200
    assert list(ledger.answers()["submission_id"]) == ["s2"]


def test_blind_mode_hides_the_given_label_and_the_model(client, ledger):
    ledger.configure(blind=True)
    view = client.get("/api/item/0", headers=AUTH).json()
    assert view["given_label"] is None and view["top3"] == [] and view["reason"] is None
    page = client.get("/partials/item?item=0", headers=AUTH).text
    assert "Model top-3" not in page and "Given label" not in page and "keep given" not in page
    assert "Blind reading" in page
    r = client.post("/api/answer", headers=AUTH,
                    json={"idx": 0, "keep": True, "submission_id": "k"})
    assert r.status_code == 422 and "blind" in r.json()["detail"]
    assert answer(client, 0, "nv").status_code == 200
    ledger.configure(blind=False)
    assert client.get("/api/item/0", headers=AUTH).json()["given_label"] == "akiec"


# ----------------------------------------------------------------------- hostile input


def test_a_class_named_keep_is_a_class(tmp_path):
    root = tmp_path / "images"
    root.mkdir()
    Image.new("RGB", (4, 4)).save(root / "a.png")
    Image.new("RGB", (4, 4)).save(root / "b.png")
    ledger = Ledger.create(tmp_path / "c.db", image_root=root, class_names=("drop", "keep"),
                           items=[ItemRecord("a", "a.png", 0), ItemRecord("b", "b.png", 0)])
    n = 2
    ledger.write_round(0, kind="phase1", sampler="entropy", budget=2, seed=0, settings={},
                       metrics={}, probs=np.tile([0.5, 0.5], (n, 1)), scored_items=np.arange(n),
                       clean=np.zeros(n, bool), pool_scores={}, queue=[(0, 1.0, "r"),
                                                                       (1, 1.0, "r")])
    client = TestClient(create_app(ledger.path, token=TOKEN))
    assert answer(client, 0, "keep").status_code == 200  # the class 'keep', not the given label
    r = client.post("/api/answer", headers=AUTH, json={"idx": 1, "keep": True,
                                                       "submission_id": "k"})
    assert r.status_code == 200
    labels = ledger.answers().set_index("item")["label"]
    assert (labels[0], labels[1]) == (1, 0)


@pytest.mark.parametrize("body", [
    {"idx": 99999999999999999999999, "label": "nv", "submission_id": "a"},
    {"idx": -1, "label": "nv", "submission_id": "a"},
    {"idx": 0, "label": "nv", "submission_id": "a", "seconds": float("nan")},
    {"idx": 0, "label": "nv", "submission_id": "a", "seconds": float("inf")},
    {"idx": 0, "label": "nv", "submission_id": "a" * 129},
])
def test_absurd_numbers_are_4xx_not_500(client, ledger, body):
    import json

    r = client.post("/api/answer", headers={**AUTH, "Content-Type": "application/json"},
                    content=json.dumps(body))
    assert 400 <= r.status_code < 500
    assert ledger.annotation_count() == 0


@pytest.mark.parametrize("path", ["/api/item/99999999999999999999999",
                                  "/image/99999999999999999999",
                                  "/partials/item?item=99999999999999999999999",
                                  "/?item=99999999999999999999999"])
def test_huge_indices_in_urls_are_404(client, path):
    assert client.get(path, headers=AUTH).status_code == 404


def test_request_bodies_are_limited(client, ledger):
    big = b'{"idx": 0, "label": "nv", "submission_id": "' + b"x" * 10_000_000 + b'"}'
    r = client.post("/api/answer", headers={**AUTH, "Content-Type": "application/json"},
                    content=big)
    assert r.status_code == 413 and len(r.content) < 1000

    def chunks():  # no Content-Length: counted while streaming
        for _ in range(200):
            yield b"x" * 65_536

    r = client.post("/api/answer", headers={**AUTH, "Content-Type": "application/json"},
                    content=chunks())
    assert r.status_code == 413
    assert ledger.annotation_count() == 0


def test_16_bit_images_are_served_as_8_bit_png(tmp_path):
    ledger = make_campaign(tmp_path)
    ramp = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 500 + 1000).astype(np.uint16)
    Image.fromarray(ramp).save(ledger.image_root / "img000.png")
    client = TestClient(create_app(ledger.path, token=TOKEN))
    r = client.get("/image/0", headers=AUTH)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    import io

    px = np.asarray(Image.open(io.BytesIO(r.content)).convert("L"))
    assert px.min() == 0 and px.max() == 255  # scaled by the actual range, not clipped white


# ------------------------------------------------------------------ identity and independence


@pytest.mark.parametrize("name", ["expert", "import", "dr-default"])
def test_readers_cannot_take_the_admin_or_import_names(client, ledger, name):
    r = client.post("/api/readers", headers=AUTH, json={"name": name})
    assert r.status_code == 422 and "reserved" in r.json()["detail"]
    assert ledger.readers().empty


def test_admin_name_of_an_existing_reader_is_refused(ledger):
    ledger.add_reader("bob")
    with pytest.raises(Exception, match="reader account"):
        create_app(ledger.path, token=TOKEN, annotator="bob")


def test_another_readers_submission_id_is_409_not_a_silent_success(client, ledger):
    ann, bob = reader(ledger, "ann"), reader(ledger, "bob")
    assert answer(client, 0, "nv", sid="bob-1", headers=bob).status_code == 200
    r = answer(client, 0, "nv", sid="bob-1", headers=ann)
    assert r.status_code == 409 and "another reader" in r.json()["detail"]
    assert ledger.answers()["annotator"].tolist() == ["bob"]
    r = client.post("/api/undo", headers=ann, json={"submission_id": "bob-1"})
    assert r.status_code == 409
    assert ledger.answers()["annotator"].tolist() == ["bob"]


def test_retrying_an_empty_undo_never_retracts_a_later_answer(client, ledger):
    ann = reader(ledger, "ann")
    first = client.post("/api/undo", headers=ann, json={"submission_id": "u1"}).json()
    assert first["retracted"] is None
    answer(client, 0, "nv", headers=ann)
    retry = client.post("/api/undo", headers=ann, json={"submission_id": "u1"}).json()
    assert retry["retracted"] is None and retry["duplicate"]
    assert ledger.answers()["item"].tolist() == [0]


def test_a_second_reading_never_shows_the_first_readers_answer(client, ledger):
    ledger.configure(double_read_share=1.0)
    ann, bob = reader(ledger, "ann"), reader(ledger, "bob")
    for idx in range(11):
        answer(client, idx, "bcc", headers=ann)
    for _ in range(3):
        nxt = client.get("/api/next", headers=bob).json()["item"]
        assert nxt["source"] == "given" and nxt["current_label"] is None
        panel = client.get(f"/partials/item?item={nxt['idx']}", headers=bob).text
        assert "your answer" not in panel and "current decision" not in panel
        item = client.get(f"/api/item/{nxt['idx']}", headers=bob).json()
        assert item["current_label"] is None and item["source"] == "given"
        answer(client, nxt["idx"], "nv", headers=bob)
    own = client.get("/api/item/0", headers=ann).json()
    assert (own["current_label"], own["source"]) == ("bcc", "expert")  # one's own answer shows


def test_concurrent_next_requests_hand_each_item_to_one_reader(ledger):
    from concurrent.futures import ThreadPoolExecutor

    client = TestClient(create_app(ledger.path, token=TOKEN))
    heads = [reader(ledger, f"r{k}") for k in range(3)]
    seen: list[int] = []

    def work(h: dict[str, str]) -> None:
        while (item := client.get("/api/next", headers=h).json()["item"]) is not None:
            seen.append(item["idx"])
            assert answer(client, item["idx"], "nv", headers=h).status_code == 200

    with ThreadPoolExecutor(3) as pool:
        list(pool.map(work, heads))
    assert sorted(seen) == list(range(11))
    assert ledger.decisions()["n_readers"].max() == 1


def test_changed_answers_reopen_an_adjudication_and_status_shows_it(client, ledger):
    ann, bob = reader(ledger, "ann"), reader(ledger, "bob")
    chief = reader(ledger, "chief", role="adjudicator")
    answer(client, 0, "akiec", headers=ann)
    answer(client, 0, "bcc", headers=bob)
    r = client.post("/api/adjudicate", headers=chief,
                    json={"idx": 0, "label": "nv", "submission_id": "j1"})
    assert r.status_code == 200
    assert client.get("/api/status", headers=AUTH).json()["open_conflicts"] == 0
    r = client.post("/api/adjudicate", headers=AUTH,  # the admin reusing chief's id
                    json={"idx": 0, "label": "nv", "submission_id": "j1"})
    assert r.status_code == 409 and ledger.adjudications()["adjudicator"].tolist() == ["chief"]
    answer(client, 0, "bcc", headers=ann)
    answer(client, 0, "bcc", headers=bob)  # the answers it resolved changed
    st = client.get("/api/status", headers=AUTH).json()
    assert st["open_conflicts"] == 1 and st["adjudicated"] == 0
    assert [c["idx"] for c in client.get("/api/conflicts", headers=chief).json()["conflicts"]] \
        == [0]


@pytest.mark.parametrize("body", [{"idx": True, "label": "nv"}, {"idx": "1", "label": "nv"},
                                  {"idx": 1.0, "label": "nv"}, {"idx": 1, "keep": 1},
                                  {"idx": 1, "label": "nv", "seconds": True}])
def test_answer_fields_are_strictly_typed(client, ledger, body):
    r = client.post("/api/answer", headers=AUTH, json={"submission_id": "s", **body})
    assert r.status_code == 422
    assert ledger.annotation_count() == 0


# --------------------------------------------------------------------------- browser safety


def test_every_response_carries_security_headers(client):
    for r in (client.get("/"), client.get("/", headers=AUTH), client.get("/api/next",
              headers=AUTH), client.get("/image/0", headers=AUTH), client.get("/static/app.js")):
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]


def test_a_token_link_never_silently_switches_the_signed_in_reader(client, ledger):
    ann_tok, bob_tok = ledger.add_reader("ann"), ledger.add_reader("bob")
    client.get(f"/?token={ann_tok}", follow_redirects=False)
    r = client.get(f"/?token={bob_tok}", follow_redirects=False)
    assert r.status_code == 200 and "Switch reader?" in r.text
    assert client.cookies.get("labelrefine_token") == ann_tok  # still ann
    assert "reader <strong>ann</strong>" in client.get("/").text
    r = client.get(f"/?token={bob_tok}&switch=1", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"
    assert client.cookies.get("labelrefine_token") == bob_tok


def test_the_adjudication_link_sets_the_cookie_so_its_images_load(client, ledger):
    chief = ledger.add_reader("chief", role="adjudicator")
    r = client.get(f"/adjudicate?token={chief}", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/adjudicate"
    assert client.get("/adjudicate").status_code == 200
    assert client.get("/image/0").status_code == 200


def test_the_page_shows_the_readers_own_answers_beside_the_teams(client, ledger):
    """Progress names both: items the team has decided and this reader's own answers this
    round (another reader's answers are not mine)."""
    ann, bob = reader(ledger, "ann"), reader(ledger, "bob")
    for headers in (ann, ann, bob):
        nxt = client.get("/api/next", headers=headers).json()
        r = answer(client, nxt["item"]["idx"], "nv", headers=headers)
        assert r.status_code == 200, r.text
    assert r.json()["progress"]["mine"] == 1  # bob's own
    assert client.get("/api/next", headers=ann).json()["progress"]["mine"] == 2
    page = client.get("/", headers=ann).text
    assert "decided by the team" in page
    assert 'answered by you this round: <span class="mine">2</span>' in page


# ---------------------------------------------------------------------------------------- notes

XSS_NOTE = "<script>alert('note')</script> & <b>bold</b>"


def test_a_note_is_sent_with_the_answer_and_stored(client, ledger):
    ann = reader(ledger, "ann")
    r = answer(client, 0, "nv", headers=ann, note="  nodular, irregular border ")
    assert r.status_code == 200
    assert ledger.answers()["note"].tolist() == ["nodular, irregular border"]
    assert answer(client, 3, "nv", headers=ann).status_code == 200  # the note is optional
    assert ledger.live_note(3, "ann") == ""
    assert answer(client, 4, "nv", headers=ann, note=None).status_code == 200
    assert ledger.live_note(4, "ann") == ""
    # the reader sees their own note again when the item comes back, and can change it
    assert client.get("/api/item/0", headers=ann).json()["note"] == "nodular, irregular border"
    assert client.get("/api/item/0", headers=reader(ledger, "bob")).json()["note"] == ""
    answer(client, 0, "nv", headers=ann, note="on reflection: regular")
    assert ledger.live_note(0, "ann") == "on reflection: regular"
    r = client.post("/api/undo", headers=ann, json={"submission_id": "u1"})
    assert r.json()["idx"] == 0 and ledger.live_note(0, "ann") == "nodular, irregular border"


def test_a_note_over_the_limit_is_a_clear_422_and_stores_nothing(client, ledger):
    r = answer(client, 0, "nv", note="x" * 2001)
    assert r.status_code == 422
    assert "2001 characters; at most 2000" in r.json()["detail"]
    r = answer(client, 0, "nv", note=["not", "text"])
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "note"]
    assert ledger.annotation_count() == 0
    assert answer(client, 0, "nv", note="y" * 2000).status_code == 200


def test_notes_are_shown_as_text_on_the_reading_and_adjudication_pages(client, ledger):
    ann, bob = reader(ledger, "ann"), reader(ledger, "bob")
    chief = reader(ledger, "chief", role="adjudicator")
    answer(client, 0, "nv", headers=ann, note=XSS_NOTE)
    answer(client, 0, "bcc", headers=bob, note="second reader's view")
    escaped = "&lt;script&gt;alert(&#39;note&#39;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;"
    panel = client.get("/partials/item?item=0", headers=ann).text
    assert 'id="note"' in panel and escaped in panel and XSS_NOTE not in panel
    assert "second reader" not in panel  # a reader never sees another reader's note
    page = client.get("/adjudicate", headers=chief).text
    assert escaped in page and XSS_NOTE not in page and "second reader&#39;s view" in page
    conf = client.get("/api/conflicts", headers=chief).json()["conflicts"][0]
    assert {a["reader"]: a["note"] for a in conf["answers"]} == {
        "ann": XSS_NOTE, "bob": "second reader's view"}
