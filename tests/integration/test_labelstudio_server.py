"""A campaign's answers through a real Label Studio server and back.

Runs when ``LABELREFINE_LABEL_STUDIO`` names the ``label-studio`` program (``.ci/run`` installs
the PyPI package into ``.venv-ls`` and sets it); skipped otherwise. One server per module, on
127.0.0.1 with a throwaway data folder, analytics and update checks off, and Local Files
serving for the campaign's image folder -- the steps of the README's "Use with Label Studio".

The campaign's queue is written directly (training a model is not what is tested here); the
images and labels are the bundled HAM10000 ones.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from labelrefine.campaign.ledger import Ledger
from labelrefine.cli import app

pytestmark = pytest.mark.labelstudio

ENV = "LABELREFINE_LABEL_STUDIO"
ADMIN = "admin@clinic.org"
READER = "reader2@clinic.org"
TOKEN = "4f1c0a7e9b2d4c6e8a0b1c2d3e4f5a6b7c8d9e0f"
N_IMAGES = 12
REPO = Path(__file__).resolve().parents[2]


def label_studio_program() -> str:
    program = os.environ.get(ENV, "")
    if not program:
        pytest.skip(
            f"{ENV} is not set: install Label Studio into its own venv "
            "(python3 -m venv .venv-ls && .venv-ls/bin/pip install label-studio) and set "
            f"{ENV}=.venv-ls/bin/label-studio (.ci/run does both)"
        )
    found = shutil.which(program)
    if found is None:
        pytest.skip(f"{ENV}={program!r} is not an executable program")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LabelStudio:
    """A tiny REST client for the legacy-token API."""

    def __init__(self, url: str):
        self.url = url

    def call(self, method: str, path: str, body: Any = None, raw: bool = False) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.url + path, data=data, method=method,
            headers={"Authorization": f"Token {TOKEN}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                out = resp.read()
        except urllib.error.HTTPError as err:
            raise AssertionError(f"{method} {path}: {err.code} {err.read()[:500]!r}") from None
        return out if raw else json.loads(out or b"null")

    def answer(self, task: int, choice: str | None, *, user: int | None = None,
               cancel: bool = False, lead: float = 6.0) -> dict[str, Any]:
        body: dict[str, Any] = {"result": [] if choice is None else [
            {"from_name": "label", "to_name": "image", "type": "choices",
             "value": {"choices": [choice]}}], "lead_time": lead, "was_cancelled": cancel}
        if user is not None:
            body["completed_by"] = user
        return self.call("POST", f"/api/tasks/{task}/annotations/", body)

    def project(self, folder: Path, title: str, images: Path) -> int:
        """A project from our export folder: labeling config, Local Files storage, tasks."""
        config = (folder / "labeling_config.xml").read_text()
        pid = self.call("POST", "/api/projects", {"title": title, "label_config": config})["id"]
        self.call("POST", "/api/storages/localfiles/",
                  {"project": pid, "path": str(images), "title": "images",
                   "use_blob_urls": False})
        tasks = json.loads((folder / "tasks.json").read_text())
        done = self.call("POST", f"/api/projects/{pid}/import", tasks)
        assert done["task_count"] == len(tasks)
        assert done["prediction_count"] == len(tasks)
        return pid

    def tasks(self, pid: int) -> dict[str, dict[str, Any]]:
        """Task by campaign item id."""
        out = self.call("GET", f"/api/tasks?project={pid}&page_size=1000")
        return {t["data"]["item"]: t for t in out["tasks"]}

    def export(self, pid: int, fmt: str, path: Path) -> Path:
        path.write_bytes(self.call("GET", f"/api/projects/{pid}/export?exportType={fmt}",
                                   raw=True))
        return path


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, ham10000_dir) -> Path:
    """``images/`` (12 bundled images) and ``labels.csv``; Label Studio's document root."""
    root = tmp_path_factory.mktemp("lsroot")
    labels = pd.read_csv(ham10000_dir / "labels.csv")
    # two classes, so readers can disagree on a known class set
    labels = labels[labels["dx"].isin(["nv", "bkl"])].groupby("dx").head(N_IMAGES // 2)
    (root / "images").mkdir()
    for image_id in labels["image_id"]:
        shutil.copy(ham10000_dir / "images" / f"{image_id}.jpg", root / "images")
    labels[["image_id", "dx"]].to_csv(root / "labels.csv", index=False)
    return root


def template_db(program: str) -> Path:
    """Where a migrated, empty Label Studio database for ``program`` is kept between runs:
    migrating a new database takes minutes on 2 cores, starting on a migrated copy seconds."""
    stat = Path(program).resolve().stat()
    key = f"{stat.st_mtime_ns:x}-{stat.st_size:x}"
    return REPO / ".cache" / "labelstudio" / key / "label_studio.sqlite3"


def save_template(live: Path, template: Path) -> None:
    """Snapshot the server's fresh database (SQLite online backup: consistent while serving)."""
    template.parent.mkdir(parents=True, exist_ok=True)
    tmp = template.with_suffix(".tmp")
    src, dst = sqlite3.connect(live), sqlite3.connect(tmp)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()
    os.replace(tmp, template)


@pytest.fixture(scope="module")
def server(workdir, tmp_path_factory):
    program = label_studio_program()
    data = tmp_path_factory.mktemp("lsdata")
    db = data / "label_studio.sqlite3"
    template = template_db(program)
    if template.is_file():
        shutil.copy(template, db)
    port = free_port()
    env = {
        **os.environ,
        "LABEL_STUDIO_BASE_DATA_DIR": str(data),
        "DJANGO_DB": "sqlite",
        "COLLECT_ANALYTICS": "false",
        "LATEST_VERSION_CHECK": "false",
        "SENTRY_DSN": "",
        "FRONTEND_SENTRY_DSN": "",
        "LOCAL_FILES_SERVING_ENABLED": "true",
        "LOCAL_FILES_DOCUMENT_ROOT": str(workdir),
    }
    log = (data / "server.log").open("w")
    proc = subprocess.Popen(
        [program, "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(port),
         "--username", ADMIN, "--password", "not-a-secret-1", "--user-token", TOKEN,
         "--enable-legacy-api-token"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 600
        while True:
            if proc.poll() is not None:
                pytest.fail("Label Studio exited:\n" + (data / "server.log").read_text()[-3000:])
            try:
                with urllib.request.urlopen(url + "/health", timeout=5) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                pytest.fail("Label Studio did not start in 600 s")
            time.sleep(1)
        if not template.is_file():
            save_template(db, template)
        yield LabelStudio(url)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def cli(*args: Any) -> str:
    res = CliRunner().invoke(app, [str(a) for a in args])
    assert res.exit_code == 0, res.output
    return " ".join(res.output.split())


def new_campaign(workdir: Path, name: str) -> Ledger:
    out = workdir / f"{name}.db"
    cli("campaign", "init", "--images", workdir / "images", "--labels", workdir / "labels.csv",
        "--out", out, "--val-fraction", "0.2")
    return Ledger(out)


def queue_round(ledger: Ledger) -> list[int]:
    """Round 0 as ``campaign step`` would write it: scores for every item, the first 6 train
    items queued."""
    items = ledger.items()
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(ledger.num_classes), size=len(items))
    train = [int(i) for i in items.loc[items["role"] == "train", "idx"]][:6]
    ledger.write_round(0, kind="phase1", sampler="entropy", budget=6, seed=0, settings={},
                       metrics={}, probs=probs, scored_items=np.arange(len(items)),
                       clean=np.zeros(len(items), dtype=bool), pool_scores={},
                       queue=[(i, None, f"queued #{k}") for k, i in enumerate(train)])
    return train


def iso(text: str) -> str:
    return datetime.fromisoformat(text).isoformat(timespec="microseconds")


COLS = ["item", "kind", "label", "annotator", "answered_at", "seconds", "submission_id"]


def answers(ledger: Ledger) -> pd.DataFrame:
    return ledger.answers()[COLS].sort_values(["item", "annotator"]).reset_index(drop=True)


def test_answers_round_trip_through_label_studio(server: LabelStudio, workdir: Path):
    ledger = new_campaign(workdir, "c")
    queued = queue_round(ledger)
    items = ledger.items()
    keys = [str(items.iloc[i]["key"]) for i in queued]
    names = ledger.class_names
    given = {str(k): names[int(g)] for k, g in zip(items["key"], items["given_label"],
                                                     strict=True)}
    val_key = str(items.loc[items["role"] == "val", "key"].iloc[0])

    # export the queue; the command prints the two Local Files settings used by the server
    out = cli("campaign", "export", ledger.path, "--format", "labelstudio",
              "--out", workdir / "ls1")
    assert f"LOCAL_FILES_DOCUMENT_ROOT={workdir.resolve()}" in out
    assert f"absolute path {(workdir / 'images').resolve()}" in out
    pid = server.project(workdir / "ls1", "round 0", workdir / "images")
    tasks = server.tasks(pid)
    assert sorted(tasks) == sorted(keys)

    # images load; the pre-annotation pre-selects the given label
    first = tasks[keys[0]]
    image = server.call("GET", first["data"]["image"], raw=True)
    assert image == (workdir / "images" / f"{keys[0]}.jpg").read_bytes()
    detail = server.call("GET", f"/api/tasks/{first['id']}")
    assert detail["predictions"][0]["result"][0]["value"]["choices"] == [given[keys[0]]]

    # a second reader, and the user listing saved for the import
    reader = server.call("POST", "/api/users", {"email": READER, "username": READER,
                                                "first_name": "Reader", "last_name": "Two"})
    users = server.call("GET", "/api/users")
    assert {u["email"] for u in users} == {ADMIN, READER}
    (workdir / "users.json").write_text(json.dumps(users))

    other = {n: next(m for m in names if m != n) for n in names}
    k0, k1, k2, k3 = keys[:4]
    server.answer(tasks[k0]["id"], given[k0])                      # admin keeps the label
    server.answer(tasks[k0]["id"], other[given[k0]], user=reader["id"])  # reader 2 disagrees
    server.answer(tasks[k1]["id"], "unsure", user=reader["id"])
    edited = server.answer(tasks[k2]["id"], given[k2])
    server.answer(tasks[k3]["id"], None, cancel=True)               # skipped in Label Studio
    time.sleep(1.1)
    edited = server.call("PATCH", f"/api/annotations/{edited['id']}/", {"result": [
        {"from_name": "label", "to_name": "image", "type": "choices",
         "value": {"choices": [other[given[k2]]]}}]})
    assert edited["updated_at"] != edited["created_at"]
    # a stray answer on a held-out (val) item, in a task added by hand
    server.call("POST", f"/api/projects/{pid}/import",
                [{"data": {**first["data"], "item": val_key, "given_label": given[val_key]}}])
    server.answer(server.tasks(pid)[val_key]["id"], given[val_key], user=reader["id"])

    exp_json = server.export(pid, "JSON", workdir / "export.json")
    exp_min = server.export(pid, "JSON_MIN", workdir / "export-min.json")
    exp_csv = server.export(pid, "CSV", workdir / "export.csv")

    res = CliRunner().invoke(app, ["campaign", "import", str(ledger.path), str(exp_json),
                                   "--users", str(workdir / "users.json"), "--strict"])
    assert res.exit_code == 2 and val_key in res.output
    assert ledger.annotation_count() == 0

    out = cli("campaign", "import", ledger.path, exp_json, "--users", workdir / "users.json")
    assert ("(json): 4 new, 0 already present, 1 conflicts, 1 skipped "
            f"(1 on held-out items: {val_key}); 1 cancelled in Label Studio") in out
    for f in (exp_min, exp_csv, exp_json):
        out = cli("campaign", "import", ledger.path, f)  # user names were saved
        assert "0 new, 4 already present, 0 conflicts, 1 skipped" in out
    assert ledger.annotation_count() == 4

    ans = ledger.answers()
    by = {(str(items.iloc[int(r.item)]["key"]), r.annotator): r for r in ans.itertuples()}
    assert set(by) == {(k0, ADMIN), (k0, READER), (k1, READER), (k2, ADMIN)}
    assert list(ledger.conflicts()["key"]) == [k0]
    assert by[(k1, READER)].kind == "unsure"
    assert names[int(by[(k2, ADMIN)].label)] == other[given[k2]]
    assert by[(k2, ADMIN)].answered_at == iso(edited["updated_at"])  # the edit time
    status = json.loads(cli("campaign", "status", ledger.path, "--json"))
    assert status["annotators"] == {ADMIN: 2, READER: 2}
    original = answers(ledger)

    # round trip through a second project: nothing new, same readers
    cli("campaign", "export", ledger.path, "--format", "labelstudio", "--scope", "answered",
        "--out", workdir / "ls2")
    pid2 = server.project(workdir / "ls2", "round trip", workdir / "images")
    back_json = server.export(pid2, "JSON", workdir / "back.json")
    back_min = server.export(pid2, "JSON_MIN", workdir / "back-min.json")
    for f in (back_json, back_min):
        out = cli("campaign", "import", ledger.path, f)
        assert "0 new, 4 already present, 0 conflicts, 0 skipped" in out
    assert ledger.annotation_count() == 4
    pd.testing.assert_frame_equal(answers(ledger), original)

    # ... and into a fresh campaign of the same images: exactly the original answers
    fresh = new_campaign(workdir, "fresh")
    out = cli("campaign", "import", fresh.path, back_json)
    assert "4 new, 0 already present, 1 conflicts, 0 skipped" in out
    pd.testing.assert_frame_equal(answers(fresh), original)
