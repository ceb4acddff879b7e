"""Label Studio interchange: tasks with pre-annotations + labeling config, and its JSON export
imported back (round trip, real-export shapes, rejection of unknown items / classes)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from labelrefine.campaign.labelstudio import export_labelstudio, import_labelstudio
from labelrefine.campaign.ledger import CampaignError, ItemRecord, Ledger

CLASSES = ("akiec", "bcc", "nv")


def make_ledger(root: Path) -> Ledger:
    root.mkdir(parents=True, exist_ok=True)
    items = [ItemRecord(f"ISIC_{i:04d}", f"sub/ISIC_{i:04d}.jpg", i % 3) for i in range(8)]
    ledger = Ledger.create(root / "c.db", image_root=root, class_names=CLASSES, items=items)
    probs = np.array([[0.05, 0.93, 0.02]] * 8)
    probs[2] = [0.2, 0.3, 0.5]
    ledger.write_round(0, kind="phase1", sampler="joint", budget=4, seed=0, settings={},
                       metrics={}, probs=probs, scored_items=np.arange(8),
                       clean=np.arange(8) >= 4, pool_scores={},
                       queue=[(i, 1.0, f"model predicts bcc at 0.93 (#{i})") for i in (2, 0, 1, 3)])
    return ledger


def test_export_writes_tasks_with_predictions_and_a_matching_config(tmp_path):
    ledger = make_ledger(tmp_path / "c")
    ledger.submit(0, 1, annotator="dr-a", submission_id="s0", seconds=3.0)
    out = tmp_path / "ls"
    assert export_labelstudio(ledger, out) == 4
    tasks = json.loads((out / "tasks.json").read_text())
    assert [t["data"]["item"] for t in tasks] == ["ISIC_0002", "ISIC_0000", "ISIC_0001",
                                                   "ISIC_0003"]
    t = tasks[0]
    assert t["data"]["image"] == "/data/local-files/?d=sub/ISIC_0002.jpg"
    assert t["data"]["given_label"] == "nv" and t["data"]["model_top3"].startswith("nv 0.50")
    pred = t["predictions"][0]
    assert pred["score"] == pytest.approx(0.5)
    res = pred["result"][0]
    assert (res["from_name"], res["to_name"], res["type"]) == ("label", "image", "choices")
    assert res["value"] == {"choices": ["nv"]}
    assert "annotations" not in t
    answered = tasks[1]
    assert answered["annotations"][0]["result"][0]["value"] == {"choices": ["bcc"]}
    assert answered["annotations"][0]["lead_time"] == 3.0

    cfg = ET.fromstring((out / "labeling_config.xml").read_text())
    image = cfg.find("Image")
    choices = cfg.find("Choices")
    assert image is not None and image.get("name") == "image" and image.get("value") == "$image"
    assert choices is not None
    assert (choices.get("name"), choices.get("toName"), choices.get("choice")) == (
        "label", "image", "single")
    assert [c.get("value") for c in choices.findall("Choice")] == [*CLASSES, "unsure"]
    # every variable the config uses is in every task's data
    for var in ("image", "given_label", "model_top3", "reason"):
        assert all(var in task["data"] for task in tasks)


def test_export_import_round_trip_restores_the_answers(tmp_path):
    a = make_ledger(tmp_path / "a")
    a.submit(0, 2, annotator="dr-a", submission_id="1", seconds=2.0)
    a.submit(1, None, annotator="dr-b", submission_id="2")
    a.submit(5, 0, annotator="dr-b", submission_id="3", seconds=7.5)
    out = tmp_path / "ls"
    assert export_labelstudio(a, out, scope="answered") == 3
    b = make_ledger(tmp_path / "b")
    assert import_labelstudio(b, out / "tasks.json") == (3, 0)
    cols = ["item", "kind", "label", "annotator", "answered_at", "seconds"]
    pd.testing.assert_frame_equal(a.answers()[cols].reset_index(drop=True),
                                  b.answers()[cols].reset_index(drop=True))
    assert import_labelstudio(b, out / "tasks.json") == (0, 3)  # nothing twice


def test_import_of_a_label_studio_export(tmp_path):
    """The shape Label Studio writes: numeric user ids, cancelled annotations, files matched by
    name when ``data`` has no item id (uploads get an 8-hex prefix)."""
    ledger = make_ledger(tmp_path / "c")
    export = [
        {"id": 11, "data": {"image": "/data/upload/3/1a2b3c4d-ISIC_0004.jpg"},
         "annotations": [
             {"id": 101, "completed_by": 7, "was_cancelled": False, "lead_time": 4.2,
              "created_at": "2026-01-02T10:00:00Z",
              "result": [{"id": "x", "from_name": "label", "to_name": "image",
                          "type": "choices", "value": {"choices": ["akiec"]}}]},
             {"id": 102, "completed_by": 8, "was_cancelled": True, "result": []},
         ],
         "predictions": [{"result": [{"from_name": "label", "to_name": "image",
                                      "type": "choices", "value": {"choices": ["nv"]}}]}]},
        {"id": 12, "data": {"image": "/data/local-files/?d=sub/ISIC_0006.jpg"},
         "annotations": [
             {"id": 103, "completed_by": {"email": "derm@clinic.org"}, "was_cancelled": False,
              "created_at": "2026-01-02T10:01:00Z",
              "result": [{"from_name": "label", "to_name": "image", "type": "choices",
                          "value": {"choices": ["unsure"]}}]}]},
        {"id": 13, "data": {"image": "/data/local-files/?d=sub/ISIC_0007.jpg"},
         "annotations": []},
    ]
    f = tmp_path / "export.json"
    f.write_text(json.dumps(export))
    assert import_labelstudio(ledger, f) == (2, 0)
    ans = ledger.answers().set_index("item")
    assert ans.loc[4, "label"] == 0 and ans.loc[4, "annotator"] == "labelstudio-user-7"
    assert ans.loc[4, "seconds"] == pytest.approx(4.2)
    assert ans.loc[6, "kind"] == "unsure" and ans.loc[6, "annotator"] == "derm@clinic.org"


@pytest.mark.parametrize(
    ("task", "named"),
    [
        ({"data": {"item": "ISIC_9999"}, "annotations": []}, "ISIC_9999"),
        ({"data": {"item": "ISIC_0003"}, "annotations": [
            {"result": [{"from_name": "label", "type": "choices",
                         "value": {"choices": ["melanoma"]}}]}]}, "ISIC_0003"),
        ({"data": {"image": "/data/upload/1/nothing-like-it.png"}}, "nothing-like-it"),
    ],
)
def test_import_rejects_unknown_items_and_classes_by_name(tmp_path, task, named):
    ledger = make_ledger(tmp_path / "c")
    good = {"data": {"item": "ISIC_0000"}, "annotations": [
        {"result": [{"from_name": "label", "type": "choices", "value": {"choices": ["nv"]}}]}]}
    f = tmp_path / "export.json"
    f.write_text(json.dumps([good, task]))
    with pytest.raises(CampaignError, match=named):
        import_labelstudio(ledger, f)
    assert ledger.annotation_count() == 0


def test_import_rejects_malformed_files(tmp_path):
    ledger = make_ledger(tmp_path / "c")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(CampaignError, match="not valid JSON"):
        import_labelstudio(ledger, bad)
    bad.write_text(json.dumps([{"data": {"item": "ISIC_0000"}, "annotations": [
        {"result": [{"from_name": "label", "type": "choices",
                     "value": {"choices": ["nv", "bcc"]}}]}]}]))
    with pytest.raises(CampaignError, match="exactly one choice"):
        import_labelstudio(ledger, bad)
    with pytest.raises(CampaignError, match="not found"):
        import_labelstudio(ledger, tmp_path / "missing.json")
    assert ledger.annotation_count() == 0


def test_export_before_any_round_is_a_clear_error(tmp_path):
    ledger = Ledger.create(tmp_path / "c.db", image_root=tmp_path, class_names=CLASSES,
                           items=[ItemRecord("a", "a.jpg", 0)])
    with pytest.raises(CampaignError, match="no queue yet"):
        export_labelstudio(ledger, tmp_path / "ls")
    assert export_labelstudio(ledger, tmp_path / "ls", scope="train") == 1
