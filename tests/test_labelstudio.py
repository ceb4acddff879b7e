"""Label Studio interchange on generated exports: export shape (config, given-label
pre-annotation, Local Files URLs), identity across round trips in the JSON, JSON-MIN and CSV
formats, user names, edits, disagreement, skips / --strict, and clear errors.

The exports are generated in the shapes Label Studio 1.23 writes (checked against a real server
by tests/integration/test_labelstudio_server.py): importing tasks makes Label Studio rewrite
``completed_by`` (the importing user) and ``created_at`` and keep our annotation id as
``import_id``; JSON-MIN and CSV flatten ``data`` into one row per non-cancelled annotation with
numeric ``annotator`` ids.
"""

from __future__ import annotations

import csv
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from labelrefine.campaign.labelstudio import (
    detect_format,
    export_labelstudio,
    import_labelstudio,
    read_users,
)
from labelrefine.campaign.ledger import CampaignError, ItemRecord, Ledger

CLASSES = ("akiec", "bcc", "nv")
ROLES = ["train"] * 8 + ["val"]
USERS = [
    {"id": 1, "email": "admin@clinic.org", "username": "", "first_name": "", "last_name": ""},
    {"id": 2, "email": "dr.b@clinic.org", "username": "dr.b@clinic.org", "first_name": "B"},
]


def make_ledger(root: Path) -> Ledger:
    """8 train items (sub/ISIC_000i.jpg, given label i % 3) and one val item; round 0 queues
    items 2, 0, 1, 3."""
    root.mkdir(parents=True, exist_ok=True)
    items = [ItemRecord(f"ISIC_{i:04d}", f"sub/ISIC_{i:04d}.jpg", i % 3, role=ROLES[i])
             for i in range(9)]
    ledger = Ledger.create(root / "c.db", image_root=root / "images", class_names=CLASSES,
                           items=items)
    probs = np.array([[0.05, 0.93, 0.02]] * 9)
    probs[2] = [0.2, 0.3, 0.5]
    ledger.write_round(0, kind="phase1", sampler="joint", budget=4, seed=0, settings={},
                       metrics={}, probs=probs, scored_items=np.arange(9),
                       clean=np.arange(9) >= 4, pool_scores={},
                       queue=[(i, 1.0, f"model predicts bcc at 0.93 (#{i})") for i in (2, 0, 1, 3)])
    return ledger


def answered_ledger(root: Path) -> Ledger:
    """Two readers; they disagree on item 0; dr-b is unsure on item 1."""
    a = make_ledger(root)
    a.submit(0, 2, annotator="dr-a", submission_id="1", seconds=2.0)
    a.submit(0, 1, annotator="dr-b", submission_id="2", seconds=3.0)
    a.submit(1, None, annotator="dr-b", submission_id="3")
    a.submit(5, 0, annotator="dr-b", submission_id="4", seconds=7.5)
    return a


# --------------------------------------------------------------- a stand-in for Label Studio

class FakeLabelStudio:
    """Holds tasks the way Label Studio stores them and writes its three export formats."""

    def __init__(self, importer: int = 1, first_id: int = 100):
        self.tasks: list[dict[str, Any]] = []
        self.importer = importer
        self.next_id = first_id
        self.clock = 0

    def now(self) -> str:
        self.clock += 1
        return f"2026-03-01T10:{self.clock // 60:02d}:{self.clock % 60:02d}.000000Z"

    def import_tasks(self, tasks: list[dict[str, Any]]) -> None:
        for t in tasks:
            anns = []
            for a in t.get("annotations", []):
                when = self.now()
                anns.append({"id": self._id(), "completed_by": self.importer,
                             "result": a["result"], "was_cancelled": False,
                             "created_at": when, "updated_at": when,
                             "lead_time": a.get("lead_time"), "import_id": a.get("id")})
            self.tasks.append({"id": len(self.tasks) + 1, "data": t["data"], "annotations": anns})

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id

    def annotate(self, item: str, choice: str | None, user: int, *, cancel: bool = False,
                 lead: float = 5.0) -> dict[str, Any]:
        task = next(t for t in self.tasks if t["data"]["item"] == item)
        when = self.now()
        ann = {"id": self._id(), "completed_by": user, "was_cancelled": cancel,
               "result": [] if choice is None else [
                   {"from_name": "label", "to_name": "image", "type": "choices",
                    "value": {"choices": [choice]}}],
               "created_at": when, "updated_at": when, "lead_time": lead, "import_id": None}
        task["annotations"].append(ann)
        return ann

    def edit(self, ann: dict[str, Any], choice: str, by: int | None = None) -> None:
        ann["result"][0]["value"]["choices"] = [choice]
        ann["updated_at"] = self.now()
        ann["updated_by"] = ann["completed_by"] if by is None else by

    def export(self, path: Path, fmt: str) -> Path:
        if fmt == "json":
            path.write_text(json.dumps(self.tasks))
            return path
        rows = []
        for t in self.tasks:
            for a in t["annotations"]:
                if a["was_cancelled"]:
                    continue
                choice = a["result"][0]["value"]["choices"][0] if a["result"] else None
                rows.append({**t["data"], "id": t["id"], "label": choice,
                             "annotator": a["completed_by"], "annotation_id": a["id"],
                             "created_at": a["created_at"], "updated_at": a["updated_at"],
                             "lead_time": a["lead_time"]})
                notes = [r["value"]["text"] for r in a["result"] if r["type"] == "textarea"]
                if notes:  # a TextArea's column: its text (a list when several)
                    rows[-1]["note"] = notes[0][0] if len(notes[0]) == 1 else notes[0]
        if fmt == "json-min":
            path.write_text(json.dumps(rows))
            return path
        cols = sorted({k for r in rows for k in r})
        with path.open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=cols, quoting=csv.QUOTE_NONNUMERIC)
            w.writeheader()
            for r in rows:
                w.writerow({k: json.dumps(v) if isinstance(v, dict) else ("" if v is None else v)
                            for k, v in r.items()})
        return path


def exported_tasks(ledger: Ledger, tmp_path: Path, scope: str = "answered") -> list[dict]:
    out = tmp_path / f"ls-{scope}"
    export_labelstudio(ledger, out, scope=scope)
    return json.loads((out / "tasks.json").read_text())


def users_file(tmp_path: Path) -> Path:
    f = tmp_path / "users.json"
    f.write_text(json.dumps(USERS))
    return f


COLS = ["item", "kind", "label", "annotator", "answered_at", "seconds", "submission_id"]


def state(ledger: Ledger):
    return (ledger.annotation_count(),
            ledger.answers()[COLS].sort_values(["item", "annotator"]).reset_index(drop=True))


# --------------------------------------------------------------------------------- export


def test_export_tasks_config_pre_annotation_and_local_files_urls(tmp_path):
    ledger = make_ledger(tmp_path / "c")
    ledger.submit(0, 1, annotator="dr-a", submission_id="s0", seconds=3.0)
    out = tmp_path / "ls"
    res = export_labelstudio(ledger, out)
    assert (res.tasks, res.answers) == (4, 1)
    tasks = json.loads((out / "tasks.json").read_text())
    assert [t["data"]["item"] for t in tasks] == ["ISIC_0002", "ISIC_0000", "ISIC_0001",
                                                   "ISIC_0003"]
    t = tasks[0]
    # document root = parent of the image folder; URL names the image folder
    assert t["data"]["image"] == "/data/local-files/?d=images/sub/ISIC_0002.jpg"
    assert res.layout is not None
    assert res.layout.document_root == (tmp_path / "c").resolve()
    assert res.layout.storage_path == (tmp_path / "c" / "images").resolve()
    assert any(str(res.layout.document_root) in line for line in res.layout.instructions())
    # the prediction pre-selects the GIVEN label; the model's top-3 is text only
    assert t["data"]["given_label"] == "nv" and t["data"]["model_top3"].startswith("nv 0.50")
    pred = t["predictions"][0]
    assert pred["result"][0]["value"] == {"choices": ["nv"]}
    assert tasks[1]["predictions"][0]["result"][0]["value"] == {"choices": ["akiec"]}
    assert tasks[1]["predictions"][0]["score"] == pytest.approx(0.05)  # model's p(given)
    res0 = pred["result"][0]
    assert (res0["from_name"], res0["to_name"], res0["type"]) == ("label", "image", "choices")
    assert "annotations" not in t and "labelrefine" not in t["data"]
    answered = tasks[1]
    assert answered["annotations"][0]["result"][0]["value"] == {"choices": ["bcc"]}
    assert answered["annotations"][0]["lead_time"] == 3.0
    carried = answered["data"]["labelrefine"]["answers"]
    assert [(c["submission_id"], c["annotator"], c["label"]) for c in carried] == [
        ("s0", "dr-a", "bcc")]

    cfg = ET.fromstring((out / "labeling_config.xml").read_text())
    image, choices = cfg.find("Image"), cfg.find("Choices")
    assert image is not None and image.get("name") == "image" and image.get("value") == "$image"
    assert choices is not None
    assert (choices.get("name"), choices.get("toName"), choices.get("choice")) == (
        "label", "image", "single")
    assert [c.get("value") for c in choices.findall("Choice")] == [*CLASSES, "unsure"]
    for var in ("image", "given_label", "model_top3", "reason"):
        assert all(var in task["data"] for task in tasks)

    other = export_labelstudio(ledger, tmp_path / "ls2", image_url_prefix="/data/upload/")
    assert other.layout is None
    assert json.loads((tmp_path / "ls2" / "tasks.json").read_text())[0]["data"]["image"] == (
        "/data/upload/sub/ISIC_0002.jpg")


def test_export_one_annotation_per_reader(tmp_path):
    a = answered_ledger(tmp_path / "a")
    tasks = {t["data"]["item"]: t for t in exported_tasks(a, tmp_path)}
    assert sorted(tasks) == ["ISIC_0000", "ISIC_0001", "ISIC_0005"]
    both = tasks["ISIC_0000"]
    assert [x["result"][0]["value"]["choices"][0] for x in both["annotations"]] == ["nv", "bcc"]
    assert [c["annotator"] for c in both["data"]["labelrefine"]["answers"]] == ["dr-a", "dr-b"]


def test_export_before_any_round_is_a_clear_error(tmp_path):
    ledger = Ledger.create(tmp_path / "c.db", image_root=tmp_path, class_names=CLASSES,
                           items=[ItemRecord("a", "a.jpg", 0)])
    with pytest.raises(CampaignError, match="no queue yet"):
        export_labelstudio(ledger, tmp_path / "ls")
    assert export_labelstudio(ledger, tmp_path / "ls", scope="train").tasks == 1


# ------------------------------------------------------------------------- identity / formats


@pytest.mark.parametrize("fmt", ["json", "json-min", "csv"])
def test_round_trip_through_label_studio_restores_answers_and_is_idempotent(tmp_path, fmt):
    """Our export -> a Label Studio project (which rewrites completed_by / created_at) -> its
    export -> import into a fresh campaign and back into the source: the same answers and
    readers, nothing twice, however often it is imported."""
    a = answered_ledger(tmp_path / "a")
    ls = FakeLabelStudio(importer=1)
    ls.import_tasks(exported_tasks(a, tmp_path))
    f = ls.export(tmp_path / f"export.{'csv' if fmt == 'csv' else 'json'}", fmt)
    assert detect_format(f) == fmt

    b = make_ledger(tmp_path / "b")
    report = import_labelstudio(b, f)  # no user listing needed: every answer is carried
    assert (report.new, report.present, report.conflicts) == (4, 0, 1)
    assert report.conflict_items == ("ISIC_0000",)
    assert state(b)[1].equals(state(a)[1])
    assert list(b.conflicts()["key"]) == ["ISIC_0000"]
    for _ in range(3):
        again = import_labelstudio(b, f)
        assert (again.new, again.present, again.conflicts) == (0, 4, 0)
    assert state(b)[0] == 4
    before = state(a)
    assert tuple(import_labelstudio(a, f)) == (0, 4)
    assert state(a)[0] == before[0] and state(a)[1].equals(before[1])


@pytest.mark.parametrize("fmt", ["json", "json-min", "csv"])
def test_native_answers_named_from_users_edits_keep_edit_time(tmp_path, fmt):
    ledger = make_ledger(tmp_path / "c")
    ls = FakeLabelStudio()
    ls.import_tasks(exported_tasks(ledger, tmp_path, scope="queue"))
    ls.annotate("ISIC_0002", "akiec", user=1)
    ls.annotate("ISIC_0002", "bcc", user=2)  # disagreement
    edited = ls.annotate("ISIC_0000", "nv", user=2)
    ls.annotate("ISIC_0001", None, user=1, cancel=True)
    suffix = "csv" if fmt == "csv" else "json"
    f1 = ls.export(tmp_path / f"first.{suffix}", fmt)

    with pytest.raises(CampaignError, match=r"user id\(s\) without a name: 1 .*--users"):
        import_labelstudio(ledger, f1)
    assert ledger.annotation_count() == 0

    report = import_labelstudio(ledger, f1, users=users_file(tmp_path))
    assert (report.new, report.present, report.conflicts, report.skipped) == (3, 0, 1, [])
    assert report.cancelled == (1 if fmt == "json" else 0)  # JSON-MIN / CSV leave them out
    ans = ledger.answers()
    assert sorted(ans["annotator"]) == ["admin@clinic.org", "dr.b@clinic.org", "dr.b@clinic.org"]
    assert list(ledger.conflicts()["key"]) == ["ISIC_0002"]

    ls.edit(edited, "bcc")
    f2 = ls.export(tmp_path / f"second.{suffix}", fmt)
    # the mapping was saved with the first import: no --users needed any more
    report = import_labelstudio(ledger, f2)
    assert (report.new, report.present) == (1, 2)
    live = ledger.answers().set_index("item").loc[0]
    assert live["label"] == 1 and live["annotator"] == "dr.b@clinic.org"
    assert live["answered_at"] == edited["updated_at"].replace("Z", "+00:00")  # the edit time
    assert live["seconds"] == pytest.approx(5.0)
    snapshot = state(ledger)
    for f in (f1, f2, f1):  # the older export brings back nothing
        assert tuple(import_labelstudio(ledger, f)) == (0, 3)
    assert state(ledger)[0] == snapshot[0] and state(ledger)[1].equals(snapshot[1])


def test_edited_copy_of_an_exported_answer_is_credited_to_its_editor(tmp_path):
    a = answered_ledger(tmp_path / "a")
    ls = FakeLabelStudio(importer=1)
    ls.import_tasks(exported_tasks(a, tmp_path))
    copy = next(x for t in ls.tasks if t["data"]["item"] == "ISIC_0005" for x in t["annotations"])
    ls.edit(copy, "nv", by=2)
    report = import_labelstudio(a, ls.export(tmp_path / "e.json", "json"), users={"2": "dr.c"})
    assert (report.new, report.present, report.conflicts) == (1, 3, 1)
    live = a.answers().set_index("annotator")
    assert live.loc["dr.c", "item"] == 5 and live.loc["dr.c", "label"] == 2


def test_answers_on_held_out_items_are_skipped_or_refused_with_strict(tmp_path):
    ledger = make_ledger(tmp_path / "c")
    ls = FakeLabelStudio()
    ls.import_tasks(exported_tasks(ledger, tmp_path, scope="queue"))
    ls.tasks.append({"id": 99, "data": {"item": "ISIC_0008"}, "annotations": []})  # val item
    ls.annotate("ISIC_0008", "nv", user=2)
    ls.annotate("ISIC_0002", "nv", user=2)
    ls.annotate("ISIC_0003", None, user=2)  # submitted without a choice
    f = ls.export(tmp_path / "e.json", "json")
    with pytest.raises(CampaignError, match=r"--strict: 2 answer\(s\).*ISIC_0008"):
        import_labelstudio(ledger, f, users={"2": "dr.b"}, strict=True)
    assert ledger.annotation_count() == 0
    report = import_labelstudio(ledger, f, users={"2": "dr.b"})
    assert (report.new, len(report.skipped)) == (1, 2)
    text = report.summary()
    assert text.startswith("1 new, 0 already present, 0 conflicts, 2 skipped (")
    assert "on held-out items: ISIC_0008" in text and "without a 'label' choice: ISIC_0003" in text


def test_answer_undone_in_the_campaign_is_not_brought_back(tmp_path):
    ledger = make_ledger(tmp_path / "c")
    ls = FakeLabelStudio()
    ls.import_tasks(exported_tasks(ledger, tmp_path, scope="queue"))
    ls.annotate("ISIC_0002", "akiec", user=2)
    f = ls.export(tmp_path / "e.json", "json")
    import_labelstudio(ledger, f, users={"2": "dr.b"})
    ledger.undo_last("dr.b", "undo-1")
    report = import_labelstudio(ledger, f)
    assert report.new == 0 and report.skipped == [("ISIC_0002", "undone in the campaign")]
    assert len(ledger.answers()) == 0


def test_tasks_without_item_id_are_matched_by_image_file(tmp_path):
    ledger = make_ledger(tmp_path / "c")
    export = [
        {"id": 11, "data": {"image": "/data/upload/3/1a2b3c4d-ISIC_0004.jpg"},
         "annotations": [{"id": 101, "completed_by": {"email": "derm@clinic.org"},
                          "lead_time": 4.2, "updated_at": "2026-01-02T10:00:00Z",
                          "result": [{"from_name": "label", "to_name": "image",
                                      "type": "choices", "value": {"choices": ["akiec"]}}]}]},
        {"id": 12, "data": {"image": "/data/local-files/?d=images/sub/ISIC_0006.jpg"},
         "annotations": [{"id": 103, "completed_by": "derm@clinic.org",
                          "updated_at": "2026-01-02T10:01:00Z",
                          "result": [{"from_name": "label", "to_name": "image",
                                      "type": "choices", "value": {"choices": ["unsure"]}}]}]},
    ]
    f = tmp_path / "export.json"
    f.write_text(json.dumps(export))
    assert tuple(import_labelstudio(ledger, f)) == (2, 0)
    ans = ledger.answers().set_index("item")
    assert ans.loc[4, "label"] == 0 and ans.loc[4, "annotator"] == "derm@clinic.org"
    assert ans.loc[4, "answered_at"] == "2026-01-02T10:00:00.000000+00:00"
    assert ans.loc[6, "kind"] == "unsure"


# ------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("task", "named"),
    [
        ({"data": {"item": "ISIC_9999"}, "annotations": [
            {"completed_by": "x", "result": [{"from_name": "label", "type": "choices",
                                              "value": {"choices": ["nv"]}}]}]}, "ISIC_9999"),
        ({"data": {"item": "ISIC_0003"}, "annotations": [
            {"completed_by": "x", "result": [{"from_name": "label", "type": "choices",
                                              "value": {"choices": ["melanoma"]}}]}]},
         "ISIC_0003.*melanoma"),
        ({"data": {"image": "/data/upload/1/nothing-like-it.png"}}, "nothing-like-it"),
    ],
)
def test_unknown_items_and_classes_are_refused_by_name(tmp_path, task, named):
    ledger = make_ledger(tmp_path / "c")
    good = {"data": {"item": "ISIC_0000"}, "annotations": [
        {"completed_by": "x", "result": [{"from_name": "label", "type": "choices",
                                          "value": {"choices": ["nv"]}}]}]}
    f = tmp_path / "export.json"
    f.write_text(json.dumps([good, task]))
    with pytest.raises(CampaignError, match=named):
        import_labelstudio(ledger, f)
    assert ledger.annotation_count() == 0


def test_format_detection_and_malformed_files(tmp_path):
    ledger = make_ledger(tmp_path / "c")
    f = tmp_path / "x.json"
    f.write_text("{not json")
    with pytest.raises(CampaignError, match="not valid JSON"):
        detect_format(f)
    f.write_text(json.dumps([{"foo": 1}]))
    with pytest.raises(CampaignError, match="not a Label Studio export"):
        detect_format(f)
    f.write_text(json.dumps([{"item": "ISIC_0000", "label": "nv", "annotator": 2,
                              "annotation_id": 5}]))
    assert detect_format(f) == "json-min"
    f.write_text(json.dumps([{"data": {"item": "ISIC_0000"}, "annotations": [
        {"completed_by": 1, "result": [{"from_name": "label", "type": "choices",
                                        "value": {"choices": ["nv", "bcc"]}}]}]}]))
    with pytest.raises(CampaignError, match="exactly one choice"):
        import_labelstudio(ledger, f)
    f.write_text(json.dumps([{"data": {"item": "ISIC_0000", "labelrefine": {"answers": [{}]}},
                              "annotations": []}]))
    with pytest.raises(CampaignError, match="'labelrefine' is damaged"):
        import_labelstudio(ledger, f)
    ours = tmp_path / "answers.csv"
    ours.write_text("item,expert_answer\nISIC_0000,nv\n")
    assert detect_format(ours) == "campaign-csv"
    with pytest.raises(CampaignError, match="not found"):
        detect_format(tmp_path / "missing.json")
    assert ledger.annotation_count() == 0


def test_read_users_listing_and_plain_mapping(tmp_path):
    assert read_users(users_file(tmp_path)) == {"1": "admin@clinic.org", "2": "dr.b@clinic.org"}
    f = tmp_path / "u.json"
    f.write_text(json.dumps({"3": "Dr C"}))
    assert read_users(f) == {"3": "Dr C"}
    f.write_text(json.dumps([{"email": "no-id@x"}]))
    with pytest.raises(CampaignError, match="no numeric 'id'"):
        read_users(f)


def test_cli_import_reports_counts_and_strict_exits_2(tmp_path):
    from labelrefine.cli import app

    ledger = make_ledger(tmp_path / "c")
    ls = FakeLabelStudio()
    ls.import_tasks(exported_tasks(ledger, tmp_path, scope="queue"))
    ls.tasks.append({"id": 99, "data": {"item": "ISIC_0008"}, "annotations": []})
    ls.annotate("ISIC_0008", "nv", user=2)
    ls.annotate("ISIC_0002", "akiec", user=1)
    ls.annotate("ISIC_0002", "bcc", user=2)
    f = ls.export(tmp_path / "e.json", "json-min")
    users = users_file(tmp_path)
    runner = CliRunner()
    res = runner.invoke(app, ["campaign", "import", str(ledger.path), str(f), "--users",
                              str(users), "--strict"])
    assert res.exit_code == 2 and "ISIC_0008" in res.output
    res = runner.invoke(app, ["campaign", "import", str(ledger.path), str(f), "--users",
                              str(users)])
    assert res.exit_code == 0, res.output
    out = " ".join(res.output.split())
    assert "(json-min): 2 new, 0 already present, 1 conflicts, 1 skipped" in out
    assert "on held-out items: ISIC_0008" in out


def test_entropy_reason_does_not_call_a_confident_pick_uncertain():
    from labelrefine.active.samplers import explain

    probs = np.array([[1.0, 0.0, 0.0], [0.4, 0.35, 0.25]])
    confident, unsure = explain("entropy", np.array([0, 1]), probs, np.array([0, 1]), CLASSES)
    assert confident.startswith("the least certain item left, though the model favours")
    assert unsure.startswith("the model is unsure: ")


# ----------------------------------------------------------------- blind mode, own exports


def test_blind_export_writes_nothing_that_steers_the_reader(tmp_path):
    a = answered_ledger(tmp_path / "a")
    a.configure(blind=True)
    tasks = exported_tasks(a, tmp_path, scope="queue")
    assert tasks and all(set(t) == {"data"} for t in tasks)  # no predictions, no answers
    assert all(set(t["data"]) == {"image", "item"} for t in tasks)
    config = (tmp_path / "ls-queue" / "labeling_config.xml").read_text()
    assert "given_label" not in config and "model_top3" not in config and "reason" not in config


def test_the_campaigns_own_exports_reimport_as_no_ops(tmp_path):
    from labelrefine.campaign.exchange import export_csv, import_csv

    a = answered_ledger(tmp_path / "a")
    before = state(a)
    for scope in ("queue", "answered", "train"):
        exported_tasks(a, tmp_path, scope=scope)
        report = import_labelstudio(a, tmp_path / f"ls-{scope}" / "tasks.json", annotator="import")
        assert report.new == 0 and report.conflicts == 0
    export_csv(a, tmp_path / "labels.csv")
    assert import_csv(a, tmp_path / "labels.csv").imported == 0
    assert state(a)[0] == before[0] and state(a)[1].equals(before[1])
    assert set(a.answers()["annotator"]) == {"dr-a", "dr-b"}  # nobody named 'import'


def test_a_file_giving_one_reader_two_answers_on_an_item_names_both(tmp_path):
    ledger = make_ledger(tmp_path / "c")
    ls = FakeLabelStudio()
    ls.import_tasks([{"data": {"image": "/x/sub/ISIC_0002.jpg", "item": "ISIC_0002"}}])
    ls.annotate("ISIC_0002", "nv", user=2)
    ls.annotate("ISIC_0002", "bcc", user=2)
    f = ls.export(tmp_path / "export.json", "json")
    with pytest.raises(CampaignError, match=r"annotation 10\d and .*annotation 10\d.*two"):
        import_labelstudio(ledger, f, users=users_file(tmp_path))
    assert ledger.annotation_count() == 0


# ---------------------------------------------------------------------------------- notes

NOTE_A = "pigment network irregular;\nsecond line, = not a formula"


def noted_ledger(root: Path) -> Ledger:
    """Like :func:`answered_ledger`, with notes on two of the answers."""
    a = make_ledger(root)
    a.submit(0, 2, annotator="dr-a", submission_id="1", seconds=2.0, note=NOTE_A)
    a.submit(0, 1, annotator="dr-b", submission_id="2", seconds=3.0)
    a.submit(1, None, annotator="dr-b", submission_id="3", note="too blurry to tell")
    a.submit(5, 0, annotator="dr-b", submission_id="4", seconds=7.5)
    return a


def notes(ledger: Ledger) -> dict[tuple[int, str], str]:
    ans = ledger.answers()
    return {(int(i), str(w)): str(n) for i, w, n in zip(ans["item"], ans["annotator"],
                                                        ans["note"], strict=True)}


def test_notes_are_exported_as_textarea_results(tmp_path):
    a = noted_ledger(tmp_path / "a")
    tasks = {t["data"]["item"]: t for t in exported_tasks(a, tmp_path)}
    first = tasks["ISIC_0000"]["annotations"]
    assert first[0]["result"][1] == {"from_name": "note", "to_name": "image",
                                     "type": "textarea", "value": {"text": [NOTE_A]}}
    assert len(first[1]["result"]) == 1  # no note, no TextArea result
    carried = tasks["ISIC_0000"]["data"]["labelrefine"]["answers"]
    assert [c["note"] for c in carried] == [NOTE_A, ""]
    cfg = ET.fromstring((tmp_path / "ls-answered" / "labeling_config.xml").read_text())
    area = cfg.find("TextArea")
    assert area is not None and (area.get("name"), area.get("toName")) == ("note", "image")


@pytest.mark.parametrize("fmt", ["json", "json-min", "csv"])
def test_notes_round_trip_through_label_studio_and_reimport_as_no_ops(tmp_path, fmt):
    a = noted_ledger(tmp_path / "a")
    ls = FakeLabelStudio(importer=1)
    ls.import_tasks(exported_tasks(a, tmp_path))
    f = ls.export(tmp_path / f"export.{'csv' if fmt == 'csv' else 'json'}", fmt)
    b = make_ledger(tmp_path / "b")
    assert import_labelstudio(b, f).new == 4
    assert notes(b) == notes(a) and notes(b)[(0, "dr-a")] == NOTE_A
    assert tuple(import_labelstudio(b, f)) == (0, 4)
    before = a.annotation_count()
    assert tuple(import_labelstudio(a, f)) == (0, 4) and a.annotation_count() == before
    assert tuple(import_labelstudio(a, tmp_path / "ls-answered" / "tasks.json")) == (0, 4)
    assert a.annotation_count() == before


def test_a_note_written_or_edited_in_label_studio_is_imported(tmp_path):
    a = noted_ledger(tmp_path / "a")
    ls = FakeLabelStudio(importer=1)
    ls.import_tasks(exported_tasks(a, tmp_path, scope="queue"))
    task0 = next(t for t in ls.tasks if t["data"]["item"] == "ISIC_0000")
    copy = next(x for x in task0["annotations"] if x["import_id"] == 1)  # dr-a's answer
    copy["result"][1]["value"]["text"] = ["revised: looks like nv after all"]
    copy["updated_at"], copy["updated_by"] = ls.now(), 2
    native = ls.annotate("ISIC_0003", "akiec", user=1)
    native["result"].append({"from_name": "note", "to_name": "image", "type": "textarea",
                             "value": {"text": ["first line", "second line"]}})
    f = ls.export(tmp_path / "export.json", "json")
    report = import_labelstudio(a, f, users=users_file(tmp_path))
    assert report.new == 2
    got = notes(a)
    assert got[(0, "dr.b@clinic.org")] == "revised: looks like nv after all"  # its editor's
    assert got[(0, "dr-a")] == NOTE_A  # the campaign's own answer is as it was
    assert got[(3, "admin@clinic.org")] == "first line\nsecond line"
    assert tuple(import_labelstudio(a, f)) == (0, report.new + report.present)


def test_the_csv_export_carries_notes_and_its_import_reads_a_note_column(tmp_path):
    from labelrefine.campaign.exchange import export_csv, import_csv

    a = noted_ledger(tmp_path / "a")
    export_csv(a, tmp_path / "labels.csv")
    df = pd.read_csv(tmp_path / "labels.csv", dtype=str, keep_default_na=False).set_index("item")
    assert df.loc["ISIC_0001", "note"] == "too blurry to tell"  # one reader: the note itself
    assert df.loc["ISIC_0000", "note"] == f"dr-a: {NOTE_A}"  # several: one line per note
    assert df.loc["ISIC_0005", "note"] == ""
    before = a.annotation_count()
    assert tuple(import_csv(a, tmp_path / "labels.csv")) == (0, 2)  # its own export: no-op
    assert a.annotation_count() == before
    hand = tmp_path / "hand.csv"
    hand.write_text("item,expert_answer,annotator,note\n"
                    "ISIC_0005,akiec,dr-b,\"'=seen before, benign\"\n"
                    "ISIC_0003,nv,dr-c,\n")
    assert tuple(import_csv(a, hand)) == (2, 0)
    got = notes(a)
    assert got[(5, "dr-b")] == "=seen before, benign"  # a quoted formula start, unquoted
    assert got[(3, "dr-c")] == ""
    assert tuple(import_csv(a, hand)) == (0, 2)
    long = tmp_path / "long.csv"
    long.write_text(f"item,expert_answer,annotator,note\nISIC_0006,nv,dr-c,{'x' * 2500}\n")
    with pytest.raises(CampaignError, match=r"item 'ISIC_0006', answer by 'dr-c': the note has "
                                            r"2500 characters"):
        import_csv(a, long)


def test_json_min_note_cells_are_text_or_lists_of_texts(tmp_path):
    ledger = make_ledger(tmp_path / "c")
    when = "2026-03-01T10:00:00Z"
    rows = [{"item": "ISIC_0002", "label": "nv", "annotator": "dr-x", "annotation_id": 7,
             "updated_at": when, "note": ["first", "second"]},
            {"item": "ISIC_0003", "label": "nv", "annotator": "dr-x", "annotation_id": 8,
             "updated_at": when, "note": "[1, 2] are the look-alikes"},
            {"item": "ISIC_0000", "label": "nv", "annotator": "dr-x", "annotation_id": 9,
             "updated_at": when, "note": "[1, 2]"}]
    f = tmp_path / "min.json"
    f.write_text(json.dumps(rows))
    assert import_labelstudio(ledger, f).new == 3
    assert notes(ledger) == {(2, "dr-x"): "first\nsecond",
                             (3, "dr-x"): "[1, 2] are the look-alikes", (0, "dr-x"): "[1, 2]"}
