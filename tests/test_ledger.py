"""Campaign ledger: schema, append-only history, idempotent answers, undo, rounds, concurrency."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from labelrefine.campaign.ledger import (
    SCHEMA_VERSION,
    CampaignError,
    ItemRecord,
    Ledger,
    Reader,
    SubmissionRetracted,
)

CLASSES = ("a", "b", "c")


def make_ledger(tmp_path: Path, n: int = 12, val: int = 2) -> Ledger:
    items = [
        ItemRecord(f"im{i:02d}", f"im{i:02d}.jpg", i % 3, "val" if i >= n - val else "train")
        for i in range(n)
    ]
    return Ledger.create(tmp_path / "c.db", image_root=tmp_path, class_names=CLASSES, items=items)


def write_round0(ledger: Ledger, queue_items=(3, 1, 4, 5)) -> None:
    n = len(ledger.items())
    probs = np.tile(np.array([0.7, 0.2, 0.1]), (n, 1))
    ledger.write_round(
        0,
        kind="phase1",
        sampler="entropy",
        budget=len(queue_items),
        seed=0,
        settings={"x": 1},
        metrics={"val_f1": 0.5},
        probs=probs,
        scored_items=np.arange(n),
        clean=np.arange(n) % 2 == 0,
        pool_scores={int(i): 1.0 - 0.1 * k for k, i in enumerate(queue_items)},
        queue=[(int(i), 1.0 - 0.1 * k, f"reason {i}") for k, i in enumerate(queue_items)],
        checkpoint=b"weights",
    )


def test_create_writes_versioned_wal_file(tmp_path):
    ledger = make_ledger(tmp_path)
    assert ledger.meta()["schema_version"] == str(SCHEMA_VERSION)
    with ledger.connect() as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert con.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    items = ledger.items()
    assert list(items["key"][:3]) == ["im00", "im01", "im02"]
    assert (items["current_label"] == items["given_label"]).all()
    assert set(items["role"]) == {"train", "val"}
    assert ledger.class_names == CLASSES
    assert [e["kind"] for e in ledger.events()] == ["init"]
    # only the campaign file (plus SQLite's WAL side files) is left in the folder
    assert {p.name for p in tmp_path.iterdir()} <= {"c.db", "c.db-wal", "c.db-shm"}


def test_newer_schema_is_refused_with_clear_error(tmp_path):
    ledger = make_ledger(tmp_path)
    with ledger.connect() as con:
        con.execute(
            "UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),)
        )
    with pytest.raises(CampaignError, match="upgrade labelrefine"):
        Ledger(ledger.path)


def test_non_campaign_files_are_refused(tmp_path):
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(CampaignError, match="not a labelrefine campaign"):
        Ledger(other)
    text = tmp_path / "notes.db"
    text.write_text("hello, not a database at all " * 20)
    with pytest.raises(CampaignError):
        Ledger(text)
    with pytest.raises(CampaignError, match="not found"):
        Ledger(tmp_path / "missing.db")


@pytest.mark.parametrize(
    ("items", "classes", "match"),
    [
        ([ItemRecord("x", "x.jpg", 0), ItemRecord("x", "y.jpg", 1)], CLASSES, "duplicate item"),
        ([ItemRecord("x", "../x.jpg", 0)], CLASSES, "stay inside"),
        ([ItemRecord("x", "/etc/passwd", 0)], CLASSES, "relative"),
        ([ItemRecord("x", "x.jpg", 5)], CLASSES, "out of range"),
        ([ItemRecord("x", "x.jpg", 0)], ("a", "unsure"), "reserved"),
        ([ItemRecord("x", "x.jpg", 0)], ("a", "a"), "duplicate class"),
        ([ItemRecord("x", "x.jpg", 0, "val")], CLASSES, "at least one 'train'"),
    ],
)
def test_create_validates_and_leaves_nothing_on_error(tmp_path, items, classes, match):
    out = tmp_path / "sub" / "c.db"
    with pytest.raises(CampaignError, match=match):
        Ledger.create(out, image_root=tmp_path, class_names=classes, items=items)
    assert not out.exists()
    assert not (tmp_path / "sub").exists() or not any((tmp_path / "sub").iterdir())


def test_create_refuses_to_overwrite(tmp_path):
    ledger = make_ledger(tmp_path)
    with pytest.raises(CampaignError, match="already exists"):
        make_ledger(tmp_path)
    assert len(ledger.items()) == 12


def test_submit_is_idempotent_per_submission_id(tmp_path):
    ledger = make_ledger(tmp_path)
    write_round0(ledger)
    first = ledger.submit(3, 2, annotator="ann", submission_id="s-1", seconds=4.5)
    again = ledger.submit(3, 2, annotator="ann", submission_id="s-1", seconds=4.5)
    assert not first.duplicate and again.duplicate
    assert again.annotation_id == first.annotation_id
    assert ledger.annotation_count() == 1
    with pytest.raises(CampaignError, match="already used"):
        ledger.submit(3, 1, annotator="ann", submission_id="s-1")
    item = ledger.item(3)
    assert (item["current_label"], item["source"]) == (2, "expert")
    ans = ledger.answers()
    assert list(ans["item"]) == [3] and ans["round"].iloc[0] == 0
    assert ans["seconds"].iloc[0] == 4.5


def test_unsure_keeps_given_label_and_counts_as_answered(tmp_path):
    ledger = make_ledger(tmp_path)
    write_round0(ledger)
    ledger.submit(3, None, annotator="ann", submission_id="u")
    item = ledger.item(3)
    assert (item["current_label"], item["source"]) == (item["given_label"], "unsure")
    assert ledger.progress() == (1, 4)
    assert ledger.next_item() == 1


def test_history_is_append_only(tmp_path):
    ledger = make_ledger(tmp_path)
    write_round0(ledger)
    ledger.submit(3, 2, annotator="ann", submission_id="s")
    with ledger.connect() as con:
        for sql in (
            "UPDATE events SET kind = 'x'",
            "DELETE FROM events",
            "UPDATE annotations SET label = 0",
            "DELETE FROM annotations",
        ):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                con.execute(sql)
    assert ledger.annotation_count() == 1


def test_undo_retracts_latest_answer_of_that_annotator(tmp_path):
    ledger = make_ledger(tmp_path)
    write_round0(ledger)
    ledger.submit(3, 1, annotator="ann", submission_id="a1")
    ledger.submit(3, 2, annotator="ann", submission_id="a2")  # changes her mind
    ledger.submit(1, 0, annotator="bob", submission_id="b1")
    res = ledger.undo_last("ann", "undo-1")
    assert res.item == 3 and not res.duplicate
    # falls back to the previous live answer of item 3
    assert ledger.item(3)["current_label"] == 1
    assert ledger.undo_last("ann", "undo-1").duplicate  # retry of the same undo
    ledger.undo_last("ann", "undo-2")
    assert ledger.item(3)["source"] == "given"
    assert ledger.undo_last("ann", "undo-3").retracted_id is None  # nothing left
    assert ledger.item(1)["current_label"] == 0  # bob's answer untouched
    full = ledger.answers(include_retracted=True)
    assert list(full["retracted"]) == [True, True, False]
    assert list(ledger.answers()["item"]) == [1]
    assert ledger.next_item() == 3 and ledger.progress() == (1, 4)


def test_rounds_are_written_once_and_in_order(tmp_path):
    ledger = make_ledger(tmp_path)
    with pytest.raises(CampaignError, match="next round of this campaign is 0"):
        ledger.write_round(
            1,
            kind="x",
            sampler=None,
            budget=0,
            seed=0,
            settings={},
            metrics={},
            probs=np.zeros((0, 3)),
            scored_items=np.zeros(0, int),
            clean=np.zeros(0, bool),
            pool_scores={},
            queue=[],
        )
    write_round0(ledger)
    with pytest.raises(CampaignError, match="already finished"):
        write_round0(ledger)
    assert ledger.current_round() == 0
    assert ledger.checkpoint(0) == b"weights"
    rounds = ledger.rounds()
    assert list(rounds["round"]) == [0] and rounds["metrics"].iloc[0] == {"val_f1": 0.5}
    assert list(ledger.queue()["item"]) == [3, 1, 4, 5]
    s = ledger.scores(0)
    assert len(s) == 12 and np.allclose(s["probs"].iloc[0], [0.7, 0.2, 0.1])


def test_failed_round_write_leaves_no_trace(tmp_path):
    ledger = make_ledger(tmp_path)
    n = 12
    with pytest.raises(sqlite3.IntegrityError):
        ledger.write_round(
            0,
            kind="phase1",
            sampler="entropy",
            budget=1,
            seed=0,
            settings={},
            metrics={},
            probs=np.full((n, 3), 1 / 3),
            scored_items=np.arange(n),
            clean=np.zeros(n, bool),
            pool_scores={},
            queue=[(999, None, "no such item")],
        )
    assert ledger.current_round() is None
    with ledger.connect() as con:
        assert con.execute("SELECT COUNT(*) FROM scores").fetchone()[0] == 0
    write_round0(ledger)  # the same round can now be written
    assert ledger.current_round() == 0


def test_next_item_skips_leased_items_and_follows_rank(tmp_path):
    ledger = make_ledger(tmp_path)
    write_round0(ledger)
    assert ledger.next_item() == 3
    assert ledger.next_item(skip=[3]) == 1
    assert ledger.next_item(skip=[3, 1, 4, 5]) == 3  # only leased ones left: take the first
    q = ledger.queue_entry(4)
    assert q is not None and q.rank == 2 and q.reason == "reason 4"
    assert ledger.queue_entry(0) is None


def test_held_out_items_cannot_be_relabeled(tmp_path):
    ledger = make_ledger(tmp_path)
    with pytest.raises(CampaignError, match="'im11' is held out"):
        ledger.submit(11, 0, annotator="ann", submission_id="v")
    with pytest.raises(CampaignError, match="unknown item"):
        ledger.submit(99, 0, annotator="ann", submission_id="w")
    with pytest.raises(CampaignError, match="out of range"):
        ledger.submit(0, 7, annotator="ann", submission_id="x")
    with pytest.raises(CampaignError, match="annotator"):
        ledger.submit(0, 1, annotator="  ", submission_id="y")
    assert ledger.annotation_count() == 0


def test_import_is_all_or_nothing(tmp_path):
    ledger = make_ledger(tmp_path)
    good = {"item": 0, "label": 1, "annotator": "x", "submission_id": "i1"}
    bad = {"item": 99, "label": 1, "annotator": "x", "submission_id": "i2"}
    with pytest.raises(CampaignError):
        ledger.import_answers([good, bad], origin="csv", source_name="f.csv")
    assert ledger.annotation_count() == 0
    assert tuple(ledger.import_answers([good], origin="csv", source_name="f.csv")) == (1, 0)
    assert tuple(ledger.import_answers([good], origin="csv", source_name="f.csv")) == (0, 1)
    assert [e["kind"] for e in ledger.events()][-2:] == ["import", "import"]


def test_concurrent_writers_store_each_answer_once(tmp_path):
    ledger = make_ledger(tmp_path, n=60, val=0)
    write_round0(ledger)

    def work(who: str) -> None:
        lg = Ledger(ledger.path)
        for k in range(50):
            sid = f"{who}-{k}"
            lg.submit(k % 60, k % 3, annotator=who, submission_id=sid)
            lg.submit(k % 60, k % 3, annotator=who, submission_id=sid)  # a retry

    threads = [threading.Thread(target=work, args=(f"t{j}",)) for j in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    full = ledger.answers(include_retracted=True)
    assert len(full) == 200 and full["submission_id"].is_unique
    assert len(ledger.events("answer")) == 200


# ----------------------------------------------------------------------- several readers


def test_two_readers_keep_both_answers_and_disagreement_is_a_conflict(tmp_path):
    ledger = make_ledger(tmp_path)
    write_round0(ledger)
    assert not ledger.submit(3, 1, annotator="ann", submission_id="a1").conflict
    res = ledger.submit(3, 2, annotator="bob", submission_id="b1")
    assert res.conflict
    live = ledger.answers()
    assert sorted(zip(live["annotator"], live["label"].tolist(), strict=True)) == [
        ("ann", 1),
        ("bob", 2),
    ]
    assert ledger.item(3)["source"] == "conflict"
    assert ledger.item(3)["current_label"] == ledger.item(3)["given_label"]
    conf = ledger.conflicts()
    assert list(conf["item"]) == [3]
    assert [a[:2] for a in conf["answers"].iloc[0]] == [("ann", 1), ("bob", 2)]
    # a conflict is not trained on, and it keeps the round open
    fa = ledger.final_answers()
    assert fa.set_index("item").loc[3, "kind"] == "conflict"
    assert ledger.progress() == (0, 4)
    assert [e["payload"]["item"] for e in ledger.events("conflict")] == [3]
    # adjudication decides it
    adj = ledger.adjudicate(3, 2, adjudicator="chief", submission_id="j1")
    assert not adj.duplicate
    assert ledger.adjudicate(3, 2, adjudicator="chief", submission_id="j1").duplicate
    item = ledger.item(3)
    assert (item["current_label"], item["source"], item["decision"]) == (2, "expert", "adjudicated")
    fa = ledger.final_answers().set_index("item")
    assert (fa.loc[3, "kind"], int(fa.loc[3, "label"])) == ("label", 2)
    assert ledger.conflicts().empty
    assert list(ledger.conflicts(include_resolved=True)["label"]) == [2]
    assert ledger.progress() == (1, 4)
    assert ledger.adjudications()["resolves"].iloc[0] == [int(i) for i in ledger.answers()["id"]]


def test_agreeing_readers_and_unsure_answers_are_not_conflicts(tmp_path):
    ledger = make_ledger(tmp_path)
    write_round0(ledger)
    ledger.submit(3, 1, annotator="ann", submission_id="a1")
    ledger.submit(3, 1, annotator="bob", submission_id="b1")
    ledger.submit(1, None, annotator="ann", submission_id="a2")
    ledger.submit(1, 2, annotator="bob", submission_id="b2")
    ledger.submit(4, None, annotator="ann", submission_id="a3")
    d = ledger.decisions().set_index("item")
    assert d.loc[3, "status"] == "agreed" and d.loc[1, "status"] == "single"
    assert d.loc[4, "status"] == "unsure"
    assert ledger.conflicts().empty
    with pytest.raises(CampaignError, match="no disagreement"):
        ledger.adjudicate(3, 0, adjudicator="chief", submission_id="j1")
    # unsure-only items go back into the pool: not in what training uses
    assert 4 not in set(ledger.final_answers()["item"])


def test_a_reader_replaces_only_their_own_answer(tmp_path):
    ledger = make_ledger(tmp_path)
    write_round0(ledger)
    ledger.submit(3, 1, annotator="ann", submission_id="a1")
    ledger.submit(3, 1, annotator="bob", submission_id="b1")
    ledger.submit(3, 2, annotator="ann", submission_id="a2")  # ann changes her mind
    live = ledger.answers()
    assert sorted(zip(live["annotator"], live["label"].tolist(), strict=True)) == [
        ("ann", 2),
        ("bob", 1),
    ]
    ledger.undo_last("ann", "u1")  # back to ann's first answer: agreement again
    assert ledger.decisions().set_index("item").loc[3, "status"] == "agreed"


def test_resubmitting_an_undone_submission_id_is_refused(tmp_path):
    ledger = make_ledger(tmp_path)
    write_round0(ledger)
    ledger.submit(3, 1, annotator="ann", submission_id="s1")
    ledger.undo_last("ann", "u1")
    with pytest.raises(SubmissionRetracted, match="new submission id"):
        ledger.submit(3, 1, annotator="ann", submission_id="s1")
    assert ledger.answers().empty
    assert not ledger.submit(3, 1, annotator="ann", submission_id="s2").duplicate
    assert list(ledger.answers()["item"]) == [3]


def test_import_of_answers_already_held_stores_nothing(tmp_path):
    ledger = make_ledger(tmp_path)
    write_round0(ledger)
    ledger.submit(3, 1, annotator="ann", submission_id="web-1")
    rows = [
        {"item": 3, "label": 1, "annotator": "ann", "submission_id": "csv:x"},  # same as web
        {
            "item": 4,
            "label": 0,
            "annotator": "ls-bob",
            "submission_id": "ls:1",
            "external_id": "ann-17",
        },
    ]
    res = ledger.import_answers(rows, origin="labelstudio", source_name="f")
    assert (res.imported, res.already_present, res.conflicts) == (1, 1, 0)
    n = ledger.annotation_count()
    # the same annotation again under another submission id: recognised by its external id
    again = [dict(rows[1], submission_id="ls:1-other")]
    assert tuple(ledger.import_answers(again, origin="labelstudio", source_name="f")) == (0, 1)
    assert ledger.annotation_count() == n
    # another annotator's different answer: stored, and reported as a conflict
    res = ledger.import_answers(
        [{"item": 3, "label": 2, "annotator": "bob", "submission_id": "ls:2"}],
        origin="labelstudio",
        source_name="f",
    )
    assert (res.imported, res.conflicts, res.conflict_items) == (1, 1, (3,))


def test_reader_tokens_name_the_reader_and_are_stored_hashed(tmp_path):
    ledger = make_ledger(tmp_path)
    tok = ledger.add_reader("ann")
    tok2 = ledger.add_reader("chief", role="adjudicator")
    assert ledger.reader_for_token(tok) == Reader("ann", "reader")
    assert ledger.reader_for_token(tok2) == Reader("chief", "adjudicator")
    assert ledger.reader_for_token("nope") is None
    with pytest.raises(CampaignError, match="already exists"):
        ledger.add_reader("ann")
    raw = (tmp_path / "c.db").read_bytes()
    assert tok.encode() not in raw
    new = ledger.new_token("ann")
    assert ledger.reader_for_token(tok) is None and ledger.reader_for_token(new).name == "ann"
    ledger.remove_reader("ann")
    assert ledger.reader_for_token(new) is None
    assert list(ledger.readers()["name"]) == ["ann", "chief"]


def test_double_reading_queues_a_share_and_unsure_items_to_a_second_reader(tmp_path):
    ledger = make_ledger(tmp_path, n=40, val=2)
    write_round0(ledger, queue_items=tuple(range(20)))
    ledger.add_reader("ann")
    ledger.add_reader("bob")
    # share 0: one reading each; an unsure answer still goes to a second reader
    ledger.submit(0, None, annotator="ann", submission_id="a0")
    assert ledger.next_item(annotator="bob") == 0
    assert ledger.next_item(annotator="ann") == 1
    ledger.configure(double_read_share=1.0)
    for i in range(1, 20):
        ledger.submit(i, i % 3, annotator="ann", submission_id=f"a{i}")
    assert ledger.next_item(annotator="ann") is None  # never twice by the same reader
    assert ledger.next_item(annotator="bob") == 0
    assert ledger.progress() == (0, 20)
    ledger.configure(double_read_share=0.3)
    wanted = [i for i in range(20) if ledger.next_item(annotator="bob", skip=range(i)) == i]
    assert 0 < len(wanted) < 20  # a stable, hash-chosen share (plus the unsure item 0)
    with pytest.raises(CampaignError, match=r"\[0, 1\]"):
        ledger.configure(double_read_share=1.5)


def test_version_1_files_are_upgraded_in_place(tmp_path):
    from labelrefine.campaign.ledger import _SCHEMA_V1

    path = tmp_path / "old.db"
    con = sqlite3.connect(path)
    con.executescript(_SCHEMA_V1)
    con.executemany(
        "INSERT INTO meta VALUES (?, ?)",
        [("schema_version", "1"), ("image_root", str(tmp_path)), ("created_at", "x")],
    )
    con.executemany("INSERT INTO classes VALUES (?, ?)", [(0, "a"), (1, "b")])
    con.execute("INSERT INTO items VALUES (0, 'k0', 'k0.jpg', 'train', 0, 1, 'expert')")
    con.execute(
        "INSERT INTO annotations(submission_id, item, kind, label, annotator, created_at, "
        "answered_at, origin) VALUES ('s', 0, 'label', 1, 'ann', 't', 't', 'web')"
    )
    con.commit()
    con.close()
    ledger = Ledger(path)
    assert ledger.meta()["schema_version"] == str(SCHEMA_VERSION)
    assert ledger.item(0)["current_label"] == 1
    assert ledger.decisions()["status"].tolist() == ["single"]
    assert [e["payload"] for e in ledger.events("migrate")] == [{"from": 1, "to": SCHEMA_VERSION}]
    Ledger(path)  # opening again changes nothing
    assert len(ledger.events("migrate")) == 1


def test_huge_and_bad_numbers_are_campaign_errors(tmp_path):
    ledger = make_ledger(tmp_path)
    write_round0(ledger)
    for idx in (10**30, -1):
        with pytest.raises(CampaignError):
            ledger.item(idx)
        with pytest.raises(CampaignError):
            ledger.submit(idx, 1, annotator="ann", submission_id=f"x{idx}")
    for secs in (float("nan"), float("inf"), -1.0):
        with pytest.raises(CampaignError, match="seconds"):
            ledger.submit(3, 1, annotator="ann", submission_id="y", seconds=secs)
    assert ledger.annotation_count() == 0


def test_backup_is_one_consistent_file_with_every_committed_answer(tmp_path):
    ledger = make_ledger(tmp_path)
    write_round0(ledger)
    for i, item in enumerate((3, 1, 4)):
        ledger.submit(item, 2, annotator="ann", submission_id=f"s{i}")
    assert (tmp_path / "c.db-wal").stat().st_size > 0  # answers still in the WAL
    out = ledger.backup(tmp_path / "bk" / "copy.db")
    assert not Path(str(out) + "-wal").exists()
    assert len(Ledger(out).answers()) == 3
    with pytest.raises(CampaignError, match="already exists"):
        ledger.backup(out)


def test_relocate_checks_content_hashes_before_switching(tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    for i in range(3):
        (old / f"im{i}.jpg").write_bytes(bytes([i]) * 10)
    items = [ItemRecord(f"im{i}", f"im{i}.jpg", i % 2) for i in range(3)]
    ledger = Ledger.create(tmp_path / "c.db", image_root=old, class_names=("a", "b"), items=items)
    new = tmp_path / "new"
    new.mkdir()
    for i in range(3):
        (new / f"im{i}.jpg").write_bytes(bytes([i]) * 10)
    (new / "im2.jpg").write_bytes(b"other bytes")
    with pytest.raises(CampaignError, match="'im2'.*differs"):
        ledger.relocate(new)
    assert ledger.image_root == old.resolve()
    (new / "im2.jpg").write_bytes(bytes([2]) * 10)
    import shutil

    shutil.rmtree(old)  # hashes were never recorded at create: compared with the old files
    with pytest.raises(CampaignError, match="no recorded content hash"):
        ledger.relocate(new)
    with pytest.raises(CampaignError, match="'im0'"):
        ledger.check_images()


def test_relocate_with_recorded_hashes_switches_the_folder(tmp_path):
    from labelrefine.campaign.ledger import file_sha256

    old, new = tmp_path / "old", tmp_path / "new"
    for d in (old, new):
        d.mkdir()
        for i in range(3):
            (d / f"im{i}.jpg").write_bytes(bytes([i]) * 10)
    items = [
        ItemRecord(f"im{i}", f"im{i}.jpg", i % 2, sha256=file_sha256(old / f"im{i}.jpg"))
        for i in range(3)
    ]
    ledger = Ledger.create(tmp_path / "c.db", image_root=old, class_names=("a", "b"), items=items)
    import shutil

    shutil.rmtree(old)
    with pytest.raises(CampaignError, match="'im0'.*relocate"):
        ledger.check_images()
    assert ledger.relocate(new) == 3
    assert Ledger(tmp_path / "c.db").image_root == new.resolve()
    ledger.check_images()
    assert ledger.resolve_image(1) == (new / "im1.jpg").resolve()


# ------------------------------------------------------------------ identity and independence


@pytest.mark.parametrize("name", ["expert", "import", "Expert", " IMPORT "])
def test_reserved_names_are_refused_for_readers(tmp_path, name):
    ledger = make_ledger(tmp_path)
    with pytest.raises(CampaignError, match="reserved"):
        ledger.add_reader(name)
    assert ledger.readers().empty


def test_admin_names_are_reserved_both_ways(tmp_path):
    ledger = make_ledger(tmp_path)
    ledger.add_reader("bob")
    with pytest.raises(CampaignError, match="reader account"):
        ledger.claim_admin_name("bob")  # serve --annotator bob while reader bob exists
    ledger.claim_admin_name("chief")
    with pytest.raises(CampaignError, match="reserved"):
        ledger.add_reader("chief")
    assert "chief" in ledger.reserved_names()


def test_submission_ids_belong_to_their_reader(tmp_path):
    from labelrefine.campaign.ledger import SubmissionIdTaken

    ledger = make_ledger(tmp_path)
    write_round0(ledger)
    ledger.submit(3, 1, annotator="bob", submission_id="s1")
    with pytest.raises(SubmissionIdTaken):
        ledger.submit(3, 1, annotator="ann", submission_id="s1")
    assert ledger.answers()["annotator"].tolist() == ["bob"]
    ledger.undo_last("bob", "u1")
    with pytest.raises(SubmissionIdTaken):
        ledger.undo_last("ann", "u1")
    with pytest.raises(SubmissionIdTaken):
        ledger.undo_last("ann", "s1")


def test_an_undo_that_found_nothing_stays_a_no_op_when_retried(tmp_path):
    ledger = make_ledger(tmp_path)
    write_round0(ledger)
    assert ledger.undo_last("ann", "u1").retracted_id is None
    ledger.submit(3, 1, annotator="ann", submission_id="s1")
    retry = ledger.undo_last("ann", "u1")
    assert (retry.retracted_id, retry.duplicate) == (None, True)
    assert ledger.answers()["submission_id"].tolist() == ["s1"]
    with pytest.raises(CampaignError, match="already used"):
        ledger.submit(4, 1, annotator="ann", submission_id="u1")


def test_an_adjudication_reopens_when_an_answer_it_resolved_changes(tmp_path):
    ledger = make_ledger(tmp_path)
    write_round0(ledger)
    ledger.submit(3, 0, annotator="ann", submission_id="a1")
    ledger.submit(3, 1, annotator="bob", submission_id="b1")
    ledger.adjudicate(3, 2, adjudicator="chief", submission_id="j1")
    assert ledger.item(3)["decision"] == "adjudicated"
    ledger.submit(3, 0, annotator="ann", submission_id="a2")
    ledger.submit(3, 0, annotator="bob", submission_id="b2")  # both now agree, not with chief
    d = ledger.decisions().set_index("item").loc[3]
    assert (d["status"], d["label"] is pd.NA) == ("conflict", True)
    assert ledger.item(3)["current_label"] == ledger.item(3)["given_label"]
    assert [e["payload"]["item"] for e in ledger.events("reopen")] == [3]
    assert 3 in ledger.conflicts()["item"].tolist()
    ledger.adjudicate(3, 0, adjudicator="chief", submission_id="j2")
    assert ledger.item(3)["decision"] == "adjudicated"


def test_assignment_hands_each_reading_slot_to_one_reader(tmp_path):
    ledger = make_ledger(tmp_path)
    write_round0(ledger)
    got = [ledger.assign_next(name) for name in ("ann", "bob", "cy", "dee", "eve")]
    assert got == [3, 1, 4, 5, None]  # nobody shares an item; the fifth reader waits
    assert ledger.assign_next("ann") == 3  # asking again keeps (renews) the same item


def test_concurrent_assignment_never_hands_an_item_out_twice(tmp_path):
    ledger = make_ledger(tmp_path, n=40, val=0)
    write_round0(ledger, queue_items=range(30))
    got: dict[str, list[int]] = {}
    barrier = threading.Barrier(3)

    def work(name: str) -> None:
        mine = got.setdefault(name, [])
        barrier.wait()
        while (idx := ledger.assign_next(name)) is not None:
            mine.append(idx)
            ledger.submit(idx, 0, annotator=name, submission_id=f"{name}-{idx}")

    threads = [threading.Thread(target=work, args=(n,)) for n in ("ann", "bob", "cy")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [i for items in got.values() for i in items]
    assert sorted(every) == list(range(30))
    assert ledger.decisions()["n_readers"].max() == 1


def test_damaged_campaign_files_are_one_clear_error(tmp_path):
    path = tmp_path / "meta-only.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    con.execute("INSERT INTO meta VALUES ('schema_version', '3')")
    con.commit()
    con.close()
    with pytest.raises(CampaignError, match="missing table"):
        Ledger(path)


# ----------------------------------------------------------------------------------------------
# notes
# ----------------------------------------------------------------------------------------------


def test_a_note_is_kept_with_its_answer_and_leaves_with_it(tmp_path):
    ledger = make_ledger(tmp_path)
    write_round0(ledger)
    ledger.submit(3, 1, annotator="ann", submission_id="s-1", note="  faint lesion at the edge ")
    assert ledger.live_note(3, "ann") == "faint lesion at the edge"  # blanks around dropped
    assert ledger.live_note(3, "bob") == "" and ledger.live_note(4, "ann") == ""
    again = ledger.submit(3, 1, annotator="ann", submission_id="s-1",
                          note="faint lesion at the edge")
    assert again.duplicate
    with pytest.raises(CampaignError, match="already used for another answer"):
        ledger.submit(3, 1, annotator="ann", submission_id="s-1", note="another note")
    ledger.submit(3, 1, annotator="ann", submission_id="s-2", note="on a second look: b")
    assert ledger.answers()["note"].tolist() == ["on a second look: b"]  # the new answer's note
    every = ledger.answers(include_retracted=True)
    assert every["note"].tolist() == ["faint lesion at the edge", "on a second look: b"]
    ledger.undo_last("ann", "u-1")
    assert ledger.live_note(3, "ann") == "faint lesion at the edge"  # the earlier answer's
    ledger.undo_last("ann", "u-2")
    assert ledger.live_note(3, "ann") == "" and ledger.answers().empty


def test_notes_are_length_limited_text(tmp_path):
    from labelrefine.campaign.ledger import NOTE_MAX_CHARS

    ledger = make_ledger(tmp_path)
    write_round0(ledger)
    with pytest.raises(CampaignError, match=f"{NOTE_MAX_CHARS + 1} characters; at most "
                                            f"{NOTE_MAX_CHARS}"):
        ledger.submit(3, 1, annotator="ann", submission_id="s-1", note="x" * (NOTE_MAX_CHARS + 1))
    with pytest.raises(CampaignError, match="control character"):
        ledger.submit(3, 1, annotator="ann", submission_id="s-2", note="bell\x07")
    assert ledger.annotation_count() == 0  # nothing stored on error
    text = "<script>alert(1)</script>\nsecond line, ünïcode, " + "y" * 1900
    text = text[:NOTE_MAX_CHARS]
    ledger.submit(3, 1, annotator="ann", submission_id="s-3", note=text)
    assert ledger.live_note(3, "ann") == text  # stored as text, exactly


def test_conflicts_list_the_readers_notes(tmp_path):
    ledger = make_ledger(tmp_path)
    write_round0(ledger)
    ledger.submit(3, 1, annotator="ann", submission_id="a", note="looks like b to me")
    ledger.submit(3, 2, annotator="bob", submission_id="b")
    conf = ledger.conflicts()
    assert [a[0] for a in conf["answers"].iloc[0]] == ["ann", "bob"]
    assert conf["notes"].iloc[0] == ["looks like b to me", ""]


def test_imports_compare_notes_only_when_the_source_has_them(tmp_path):
    ledger = make_ledger(tmp_path)
    write_round0(ledger)
    ledger.submit(3, 1, annotator="ann", submission_id="web-1", note="kept")

    def imp(sid: str, **extra):
        row = {"item": 3, "label": 1, "annotator": "ann", "submission_id": sid, **extra}
        return ledger.import_answers([row], origin="csv", source_name="f.csv")

    assert tuple(imp("csv-1")) == (0, 1)  # no note in the source: the live answer stands
    assert ledger.live_note(3, "ann") == "kept"
    assert tuple(imp("csv-2", note="kept")) == (0, 1)  # the same note: present
    assert tuple(imp("csv-3", note="changed")) == (1, 0)  # a new note: a new answer
    assert ledger.live_note(3, "ann") == "changed"
    with pytest.raises(CampaignError, match="characters; at most"):
        imp("csv-4", note="z" * 5000)
    assert ledger.live_note(3, "ann") == "changed"


def test_version_4_files_are_upgraded_to_keep_notes(tmp_path):
    from labelrefine.campaign.ledger import MIGRATIONS, SCHEMA_V1

    path = tmp_path / "v4.db"
    con = sqlite3.connect(path)
    con.executescript(SCHEMA_V1)
    for version in (2, 3, 4):
        for stmt in MIGRATIONS[version]:
            con.execute(stmt)
    con.executemany(
        "INSERT INTO meta VALUES (?, ?)",
        [("schema_version", "4"), ("image_root", str(tmp_path)), ("created_at", "x")],
    )
    con.executemany("INSERT INTO classes VALUES (?, ?)", [(0, "a"), (1, "b"), (2, "c")])
    for k in range(3):
        con.execute("INSERT INTO items(idx, key, path, role, given_label, current_label) "
                    "VALUES (?, ?, ?, 'train', 0, 0)", (k, f"k{k}", f"k{k}.jpg"))
    con.execute("INSERT INTO rounds VALUES (0, 't', 'phase1', 'entropy', 2, 0, '{}', '{}', "
                "NULL, NULL)")
    con.executemany("INSERT INTO queue VALUES (0, ?, ?, 1.0, 'r')", [(0, 0), (1, 1)])
    con.execute(
        "INSERT INTO annotations(submission_id, item, kind, label, annotator, round, created_at, "
        "answered_at, origin) VALUES ('old', 0, 'label', 1, 'ann', 0, 't', 't', 'web')"
    )
    con.commit()
    assert "note" not in {r[1] for r in con.execute("PRAGMA table_info(annotations)")}
    con.close()
    ledger = Ledger(path)
    assert ledger.meta()["schema_version"] == str(SCHEMA_VERSION) == "5"
    assert [e["payload"] for e in ledger.events("migrate")] == [{"from": 4, "to": 5}]
    old = ledger.answers()
    assert old["submission_id"].tolist() == ["old"] and old["note"].tolist() == [""]
    # the decision rules still read the replaced view: a disagreement is a conflict
    res = ledger.submit(0, 2, annotator="bob", submission_id="new", note="c, not b")
    assert res.conflict and ledger.decisions()["status"].tolist() == ["conflict"]
    assert ledger.conflicts()["notes"].iloc[0] == ["", "c, not b"]
    ledger.adjudicate(0, 2, adjudicator="adj", submission_id="d")
    assert ledger.item(0)["current_label"] == 2
    Ledger(path)  # opening again changes nothing
    assert len(ledger.events("migrate")) == 1


def test_the_ledger_modules_import_only_those_below_them():
    """The split by concern has no cycles: each module of the ledger package imports only
    modules earlier in this order (the schema at the bottom imports none)."""
    import ast

    import labelrefine.campaign.ledger as pkg

    order = ["schema", "records", "checks", "sql", "core", "identities", "items", "assignment",
             "answers", "adjudication", "files"]
    folder = Path(pkg.__file__).parent
    assert sorted(p.stem for p in folder.glob("*.py") if p.stem != "__init__") == sorted(order)
    prefix = "labelrefine.campaign.ledger."
    for rank, name in enumerate(order):
        tree = ast.parse((folder / f"{name}.py").read_text())
        used = {n.module[len(prefix):] for n in ast.walk(tree)
                if isinstance(n, ast.ImportFrom) and n.module and n.module.startswith(prefix)}
        assert used <= set(order[:rank]), f"{name} imports {sorted(used - set(order[:rank]))}"
