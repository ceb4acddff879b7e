"""``labelrefine`` CLI input and output: every value checked before any work, user names printed
literally (rich markup in class and reader names), damaged campaign files as one line, tables on
stdout within 80 columns, ``--version``, serve's token rules and the links ``reader add``
prints, and a ``step`` that keeps the campaign's budget."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from labelrefine.campaign.ledger import ItemRecord, Ledger
from labelrefine.cli import app

CLASSES = ("nevus [atypical]", "[benign] vascular", "[/]")


def run(*args: object, env: dict[str, str] | None = None):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False, env=env)


def flat(text: str) -> str:
    """Table text without borders, blanks and line breaks (wrapped cells joined again)."""
    return "".join(c for c in text if c not in " \n│┃")


def one_line_error(res) -> bool:
    return (res.exit_code == 2 and "Traceback" not in res.output
            and len(res.output.strip().splitlines()) == 1)


def tiny_ledger(root: Path, classes: tuple[str, ...] = CLASSES) -> Ledger:
    root.mkdir(parents=True, exist_ok=True)
    items = [ItemRecord(f"im{i}", f"im{i}.jpg", i % 3, "val" if i == 9 else "train")
             for i in range(10)]
    ledger = Ledger.create(root / "c.db", image_root=root, class_names=classes, items=items)
    ledger.write_round(0, kind="phase1", sampler="entropy", budget=5, seed=0, settings={},
                       metrics={}, probs=np.tile([0.1, 0.7, 0.2], (10, 1)),
                       scored_items=np.arange(10), clean=np.arange(10) >= 5, pool_scores={},
                       queue=[(i, 1.0 - i / 10, f"reason {i}") for i in range(5)])
    return ledger


def image_folder(root: Path, n: int = 9) -> tuple[Path, Path]:
    images = root / "images"
    images.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(
            images / f"im{i}.jpg")
    csv = root / "labels.csv"
    pd.DataFrame({"image_id": [f"im{i}" for i in range(n)],
                  "dx": [CLASSES[i % 3] for i in range(n)]}).to_csv(csv, index=False)
    return images, csv


def no_work(monkeypatch) -> None:
    def fail(*a, **k):
        raise AssertionError("work started")

    monkeypatch.setattr("labelrefine.campaign.step.run_step", fail)


# ---------------------------------------------------------------------------- names literal


def test_bracketed_class_names_are_created_and_printed_literally(tmp_path):
    images, csv = image_folder(tmp_path)
    out = tmp_path / "c.db"
    res = run("campaign", "init", "--images", images, "--labels", csv, "--out", out,
              "--val-fraction", "0.34")
    assert res.exit_code == 0, res.output
    for name in CLASSES:
        assert name in res.output
    assert Ledger(out).class_names == tuple(sorted(CLASSES))
    res = run("campaign", "status", out, env={"COLUMNS": "200"})
    assert res.exit_code == 0 and all(name in res.stdout for name in CLASSES)


def test_bracketed_reader_names_work_everywhere(tmp_path):
    ledger = tiny_ledger(tmp_path)
    res = run("campaign", "reader", "add", ledger.path, "[/]")
    assert res.exit_code == 0 and "[/]" in res.output and "?token=" in res.output
    res = run("campaign", "reader", "add", ledger.path, "[bold]dr[/bold]")
    assert res.exit_code == 0 and "[bold]dr[/bold]" in res.output
    ledger.submit(0, 1, annotator="[/]", submission_id="1", seconds=3)
    assert "[bold]dr[/bold]" in flat(run("campaign", "reader", "list", ledger.path).stdout)
    res = run("campaign", "status", ledger.path, env={"COLUMNS": "200"})
    assert res.exit_code == 0 and "│ [/] " in res.stdout
    assert run("campaign", "reader", "remove", ledger.path, "[/]").output.strip() == \
        "removed reader [/]"


def test_errors_naming_bracketed_text_are_one_line(tmp_path):
    ledger = tiny_ledger(tmp_path)
    res = run("campaign", "reader", "token", ledger.path, "[/nobody]")
    assert one_line_error(res) and "'[/nobody]'" in res.output


# ------------------------------------------------------------- values checked before work


@pytest.mark.parametrize(("args", "says"), [
    (["--seed", "1180591620717411303424"], "--seed"),
    (["--seed", "-1"], "--seed"),
    (["--budget", "99999999999999999999"], "--budget"),
    (["--device", "bogus"], "--device"),
    (["--noise-rate", "1.5"], "--noise-rate"),
    (["--budget-minutes", "nan"], "--budget-minutes"),
])
def test_step_values_are_checked_before_any_work(tmp_path, monkeypatch, args, says):
    ledger = tiny_ledger(tmp_path)
    no_work(monkeypatch)
    t0 = time.perf_counter()
    res = run("campaign", "step", ledger.path, *args)
    assert one_line_error(res) and says in res.output, res.output
    assert time.perf_counter() - t0 < 5


def test_a_second_step_keeps_the_campaigns_budget(tmp_path, monkeypatch):
    ledger = tiny_ledger(tmp_path)  # round 0 was stepped with budget 5
    seen = []

    def fake_step(campaign, opts, progress):
        seen.append(opts.budget)
        raise AssertionError("stop here")

    monkeypatch.setattr("labelrefine.campaign.step.run_step", fake_step)
    monkeypatch.setattr(Ledger, "check_images", lambda self: None)
    with pytest.raises(AssertionError, match="stop here"):
        run("campaign", "step", ledger.path, "--device", "cpu", "--force")
    with pytest.raises(AssertionError, match="stop here"):
        run("campaign", "step", ledger.path, "--device", "cpu", "--force", "--budget", "7")
    assert seen == [5, 7]


def meta_only_file(path: Path) -> Path:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    con.execute("INSERT INTO meta VALUES ('schema_version', '3')")
    con.commit()
    con.close()
    return path


@pytest.mark.parametrize("command", [["campaign", "status"], ["campaign", "step"], ["serve"],
                                     ["campaign", "reader", "list"]])
def test_a_damaged_campaign_file_is_one_clear_line(tmp_path, monkeypatch, command):
    no_work(monkeypatch)
    monkeypatch.setattr("uvicorn.run", lambda *a, **k: None)
    path = meta_only_file(tmp_path / "broken.db")
    res = run(*command, path)
    assert one_line_error(res) and "missing table" in res.output, res.output


def test_csv_import_giving_a_reader_two_answers_on_an_item_names_both_rows(tmp_path):
    ledger = tiny_ledger(tmp_path, classes=("a", "b", "c"))
    f = tmp_path / "answers.csv"
    pd.DataFrame({"item": ["im0", "im1", "im0"], "expert_answer": ["a", "b", "c"],
                  "annotator": ["ann", "ann", "ann"]}).to_csv(f, index=False)
    res = run("campaign", "import", ledger.path, f)
    assert one_line_error(res) and "line 2" in res.output and "line 4" in res.output
    assert ledger.annotation_count() == 0


# ------------------------------------------------------------------------- output and tables


def test_tables_go_to_stdout_and_fit_80_columns(tmp_path):
    ledger = tiny_ledger(tmp_path, classes=("a-rather-long-class-name", "b", "c"))
    for name in ("a-reader-with-a-long-name@clinic.example.org", "bob"):
        ledger.add_reader(name, role="adjudicator")
        ledger.submit(0, 1, annotator=name, submission_id=name, seconds=5)
    for args in (["campaign", "status", ledger.path], ["campaign", "reader", "list", ledger.path],
                 ["cache", "info", "--cache-dir", tmp_path]):
        res = run(*args)
        assert res.exit_code == 0 and res.stdout.strip(), args
        lines = res.stdout.splitlines()
        assert max(len(line) for line in lines) <= 80 and "…" not in res.stdout, res.stdout
    rows = [line for line in run("campaign", "reader", "list", ledger.path).stdout.splitlines()
            if line.startswith("│")]
    first_column = "".join(line.split("│")[1].strip() for line in rows)
    assert "a-reader-with-a-long-name@clinic.example.org" in first_column  # wrapped, not cut


def test_version():
    res = run("--version")
    assert res.exit_code == 0 and res.output.startswith("labelrefine ")


# ------------------------------------------------------------------- serve and reader links


def test_serve_refuses_short_tokens_and_reads_the_token_from_the_environment(tmp_path,
                                                                            monkeypatch):
    ledger = tiny_ledger(tmp_path)
    served = []
    monkeypatch.setattr("uvicorn.run", lambda app, host, port, **k: served.append(port))
    res = run("serve", ledger.path, "--token", "x")
    assert one_line_error(res) and "at least 16" in res.output and not served
    token = "a-long-enough-admin-token"
    res = run("serve", ledger.path, "--port", "8765", env={"LABELREFINE_TOKEN": token})
    assert res.exit_code == 0 and served == [8765]
    assert f"http://127.0.0.1:8765/?token={token}" in res.output
    link = run("campaign", "reader", "add", ledger.path, "ann").stdout.strip()
    assert link.startswith("http://127.0.0.1:8765/?token=")
    link = run("campaign", "reader", "add", ledger.path, "bob", "--port", "9000").stdout
    assert link.startswith("http://127.0.0.1:9000/?token=")


def test_serve_refuses_an_admin_name_that_is_a_reader(tmp_path, monkeypatch):
    ledger = tiny_ledger(tmp_path)
    ledger.add_reader("bob")
    monkeypatch.setattr("uvicorn.run", lambda *a, **k: None)
    res = run("serve", ledger.path, "--annotator", "bob")
    assert one_line_error(res) and "reader account" in res.output
    res = run("campaign", "reader", "add", ledger.path, "expert")
    assert one_line_error(res) and "reserved" in res.output


def test_reader_token_does_not_silently_reactivate_a_removed_reader(tmp_path):
    ledger = tiny_ledger(tmp_path)
    ledger.add_reader("ann")
    ledger.remove_reader("ann")
    res = run("campaign", "reader", "token", ledger.path, "ann")
    assert one_line_error(res) and "--reactivate" in res.output
    assert not ledger.readers()["active"].any()
    res = run("campaign", "reader", "token", ledger.path, "ann", "--reactivate")
    assert res.exit_code == 0 and ledger.readers()["active"].all()
    tok = res.stdout.strip().split("token=")[1]
    assert ledger.reader_for_token(tok).name == "ann"


def test_status_shows_an_adjudication_reopened_by_changed_answers(tmp_path):
    ledger = tiny_ledger(tmp_path, classes=("a", "b", "c"))
    ledger.submit(0, 0, annotator="ann", submission_id="a1")
    ledger.submit(0, 1, annotator="bob", submission_id="b1")
    ledger.adjudicate(0, 2, adjudicator="chief", submission_id="j1")
    assert "open conflicts 0" in run("campaign", "status", ledger.path).stdout
    ledger.submit(0, 1, annotator="ann", submission_id="a2")
    out = flat(run("campaign", "status", ledger.path).stdout)
    assert "openconflicts1(1reopened:answerschangedafteradjudication)" in out
