"""``labelrefine campaign`` commands: init (validation, nothing written on error), step (phase 1,
fine-tune, resumable, deterministic), status, CSV export -> import round trip, serve."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from labelrefine.campaign.ledger import ItemRecord, Ledger
from labelrefine.cli import app
from labelrefine.data.splits import split_counts

CLASSES = ("akiec", "bcc", "nv")
COLOURS = np.array([[200, 60, 60], [60, 200, 60], [60, 60, 200]])


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    """One embedding cache for the module: every campaign over the same images shares it."""
    return tmp_path_factory.mktemp("cache")


def make_folder(root: Path, n: int = 36, flip: int = 6, seed: int = 0) -> tuple[Path, Path, list]:
    """``n`` small images whose colour follows the true class; ``flip`` labels are wrong."""
    rng = np.random.default_rng(seed)
    images = root / "images"
    images.mkdir(parents=True)
    true = np.arange(n) % 3
    given = true.copy()
    wrong = rng.choice(n, size=flip, replace=False)
    given[wrong] = (true[wrong] + 1) % 3
    rows = []
    for i in range(n):
        pix = COLOURS[true[i]] + rng.integers(-40, 40, (32, 32, 3))
        Image.fromarray(np.clip(pix, 0, 255).astype(np.uint8)).save(images / f"im{i:03d}.jpg")
        rows.append({"image_id": f"im{i:03d}", "dx": CLASSES[given[i]]})
    csv = root / "labels.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    return images, csv, [CLASSES[t] for t in true]


def write_config(root: Path, images: Path, csv: Path, cache_dir: Path) -> Path:
    cfg = root / "train.yaml"
    cfg.write_text(
        f"dataset: {{format: csv, images: {images}, labels: {csv}}}\n"
        f"encoder: {{views: 1, image_size: 32, batch_size: 32, cache_dir: {cache_dir}}}\n"
        # floor counts: on 27 training items the clean set stays small enough for the
        # suspect pool to fill two rounds' queues
        "lnl: {epochs: 3, warmup: 1, batch_size: 16, hidden: 16, vog: {window: 2}, "
        "mix_counts: floor}\n"
        "active: {epochs_per_round: 2, budget_per_round: 4}\n"
        "noise: [{kind: symmetric, rate: 0.2}]\n"
    )
    return cfg


def run(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def init(root: Path, images: Path, csv: Path, *extra: str) -> Path:
    out = root / "campaign.db"
    res = run("campaign", "init", "--images", images, "--labels", csv, "--out", out,
              "--val-fraction", "0.25", *extra)
    assert res.exit_code == 0, res.output
    return out


# ----------------------------------------------------------------------------------------- init


def test_init_validates_and_holds_out_a_stratified_val_set(tmp_path):
    images, csv, _ = make_folder(tmp_path)
    out = init(tmp_path, images, csv)
    ledger = Ledger(out)
    items = ledger.items()
    assert len(items) == 36 and ledger.class_names == CLASSES
    val = items[items["role"] == "val"]
    counts = np.bincount(items["given_label"], minlength=3)
    assert len(val) == sum(split_counts(int(n), (0.75, 0.25))[1] for n in counts)
    assert val["given_label"].nunique() == 3
    assert (items["path"] == items["key"] + ".jpg").all()
    assert {p.name for p in tmp_path.iterdir()} >= {"campaign.db"}
    again = run("campaign", "init", "--images", images, "--labels", csv, "--out", out)
    assert again.exit_code == 2 and "already exists" in again.output


def test_corrupt_image_is_named_and_nothing_is_written(tmp_path):
    images, csv, _ = make_folder(tmp_path)
    (images / "im007.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    out = tmp_path / "out" / "campaign.db"
    res = run("campaign", "init", "--images", images, "--labels", csv, "--out", out)
    assert res.exit_code == 2
    assert "im007" in res.output
    assert not out.exists() and not (tmp_path / "out").exists()


def test_missing_image_and_escaping_path_are_named(tmp_path):
    images, csv, _ = make_folder(tmp_path)
    (images / "im003.jpg").unlink()
    res = run("campaign", "init", "--images", images, "--labels", csv, "--out",
              tmp_path / "a.db")
    assert res.exit_code == 2 and "im003" in res.output and not (tmp_path / "a.db").exists()
    # an id that walks out of the image folder to a real image
    outside = tmp_path / "outside.jpg"
    Image.new("RGB", (8, 8)).save(outside)
    (images / "im003.jpg").write_bytes((images / "im004.jpg").read_bytes())
    df = pd.read_csv(csv)
    df.loc[5, "image_id"] = "../outside"
    df.to_csv(csv, index=False)
    res = run("campaign", "init", "--images", images, "--labels", csv, "--out",
              tmp_path / "b.db")
    assert res.exit_code == 2 and "'../outside'" in res.output
    assert not (tmp_path / "b.db").exists()


def test_split_column_marks_roles_and_bad_values_are_named(tmp_path):
    images, csv, _ = make_folder(tmp_path)
    df = pd.read_csv(csv)
    df["split"] = ["train"] * 24 + ["val"] * 6 + ["test"] * 6
    df.to_csv(csv, index=False)
    out = init(tmp_path, images, csv, "--split-column", "split")
    roles = Ledger(out).items()["role"].value_counts().to_dict()
    assert roles == {"train": 24, "val": 6, "test": 6}
    df.loc[3, "split"] = "holdout"
    df.to_csv(csv, index=False)
    res = run("campaign", "init", "--images", images, "--labels", csv, "--out",
              tmp_path / "x.db", "--split-column", "split")
    assert res.exit_code == 2 and "im003" in res.output and "holdout" in res.output


# ----------------------------------------------------------------------------------------- step


def answer_queue(db: Path, truth: list[str], annotator: str = "dr-a") -> int:
    ledger = Ledger(db)
    q = ledger.queue()
    for idx in q["item"]:
        ledger.submit(int(idx), CLASSES.index(truth[int(idx)]), annotator=annotator,
                      submission_id=f"{annotator}-{ledger.current_round()}-{idx}")
    return len(q)


def test_step_round_trip_status_and_resume_rules(tmp_path, cache_dir):
    images, csv, truth = make_folder(tmp_path)
    db = init(tmp_path, images, csv)
    cfg = write_config(tmp_path, images, csv, cache_dir)
    res = run("campaign", "step", db, "--config", cfg, "--device", "cpu", "--strategy", "paper")
    assert res.exit_code == 0, res.output
    ledger = Ledger(db)
    rounds = ledger.rounds()
    assert list(rounds["round"]) == [0] and rounds["kind"].iloc[0] == "phase1"
    q = ledger.queue()
    assert len(q) == 4 and all(len(r) > 10 for r in q["reason"])
    train = set(ledger.items().query("role == 'train'")["idx"])
    assert set(q["item"]) <= train
    s0 = ledger.scores(0)
    assert not s0.set_index("item").loc[list(q["item"]), "clean"].any()  # only suspects queued
    assert rounds["settings"].iloc[0]["lnl"]["method"] == "ct_vog"
    assert rounds["settings"].iloc[0]["tau"] == pytest.approx(0.2)

    # the queue is not answered yet: a second step is refused and changes nothing
    res = run("campaign", "step", db, "--device", "cpu")
    assert res.exit_code == 2 and "unanswered" in res.output
    assert ledger.current_round() == 0

    assert answer_queue(db, truth) == 4
    res = run("campaign", "step", db, "--device", "cpu", "--budget", "3")
    assert res.exit_code == 0, res.output
    rounds = ledger.rounds()
    assert list(rounds["kind"]) == ["phase1", "finetune"]
    m1 = rounds["metrics"].iloc[1]
    assert m1["labels_bought"] == 4 and m1["epochs"] == 2
    q1 = ledger.queue(1)
    assert len(q1) == 3 and not set(q1["item"]) & set(q["item"])  # answered items never return

    res = run("campaign", "status", db)
    assert res.exit_code == 0 and "labels bought 4" in res.output
    st = run("campaign", "status", db, "--json")
    import json

    data = json.loads(st.output)
    wrong = sum(CLASSES[ledger.item(int(i))["given_label"]] != truth[int(i)] for i in q["item"])
    assert data["query_precision"] == pytest.approx(wrong / 4)
    assert data["per_round"][0]["query_precision"] == pytest.approx(wrong / 4)


def test_step_is_deterministic_and_crash_safe(tmp_path, cache_dir, monkeypatch):
    images, csv, truth = make_folder(tmp_path)
    cfg = write_config(tmp_path, images, csv, cache_dir)
    dbs = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        dbs.append(init(tmp_path / name, images, csv))
    for db in dbs:
        assert run("campaign", "step", db, "--config", cfg, "--device", "cpu").exit_code == 0
        answer_queue(db, truth)
    a, b = Ledger(dbs[0]), Ledger(dbs[1])
    assert list(a.queue(0)["item"]) == list(b.queue(0)["item"])
    assert np.allclose(np.stack(a.scores(0)["probs"]), np.stack(b.scores(0)["probs"]))

    # campaign b crashes while writing round 1: nothing of the round is stored ...
    def boom(*args, **kwargs):
        raise OSError("power cut")

    monkeypatch.setattr(Ledger, "write_round", boom)
    with pytest.raises(OSError, match="power cut"):
        run("campaign", "step", dbs[1], "--device", "cpu")
    monkeypatch.undo()
    assert b.current_round() == 0 and b.checkpoint(1) is None
    # ... and rerunning the step redoes round 1 exactly as an uninterrupted run does
    for db in dbs:
        assert run("campaign", "step", db, "--device", "cpu").exit_code == 0
    assert a.current_round() == b.current_round() == 1
    assert list(a.queue(1)["item"]) == list(b.queue(1)["item"])
    assert a.rounds()["metrics"].iloc[1] == b.rounds()["metrics"].iloc[1]
    assert len(b.events("round")) == 2


# ----------------------------------------------------------------------- export / import (CSV)


def tiny_ledger(root: Path) -> Ledger:
    items = [ItemRecord(f"im{i}", f"im{i}.jpg", i % 3, "val" if i == 9 else "train")
             for i in range(10)]
    ledger = Ledger.create(root / "c.db", image_root=root, class_names=CLASSES, items=items)
    probs = np.tile([0.1, 0.7, 0.2], (10, 1))
    ledger.write_round(0, kind="phase1", sampler="entropy", budget=5, seed=0, settings={},
                       metrics={}, probs=probs, scored_items=np.arange(10),
                       clean=np.arange(10) >= 5, pool_scores={},
                       queue=[(i, 1.0 - i / 10, f"reason {i}") for i in range(5)])
    return ledger


def test_csv_export_has_provenance_and_import_restores_answers(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = tiny_ledger(tmp_path / "a")
    a.submit(0, 2, annotator="dr-a", submission_id="1", seconds=2.5)
    a.submit(1, None, annotator="dr-b", submission_id="2")
    a.submit(2, 0, annotator="dr-a", submission_id="3")
    a.submit(2, 1, annotator="dr-a", submission_id="4")  # changed her mind
    a.submit(3, 2, annotator="dr-b", submission_id="5")
    a.undo_last("dr-b", "6")  # retracts item 3
    out = tmp_path / "labels.csv"
    res = run("campaign", "export", a.path, "--format", "csv", "--out", out)
    assert res.exit_code == 0, res.output
    df = pd.read_csv(out, keep_default_na=False).set_index("item")
    assert df.loc["im0", "given_label"] == "akiec" and df.loc["im0", "expert_answer"] == "nv"
    assert df.loc["im0", "cleaned_label"] == "nv" and df.loc["im0", "annotator"] == "dr-a"
    assert df.loc["im0", "model_label"] == "bcc" and df.loc["im0", "reason"] == "reason 0"
    assert df.loc["im1", "expert_answer"] == "unsure" and df.loc["im1", "cleaned_label"] == "bcc"
    assert df.loc["im2", "expert_answer"] == "bcc"
    assert df.loc["im3", "expert_answer"] == "" and df.loc["im3", "source"] == "given"
    assert df.loc["im9", "role"] == "val"

    b = tiny_ledger(tmp_path / "b")
    res = run("campaign", "import", b.path, out)
    assert res.exit_code == 0 and "imported 3" in res.output
    cols = ["item", "kind", "label", "annotator", "answered_at", "seconds"]
    pd.testing.assert_frame_equal(
        a.answers()[cols].reset_index(drop=True), b.answers()[cols].reset_index(drop=True)
    )
    assert b.items()["current_label"].tolist() == a.items()["current_label"].tolist()
    again = run("campaign", "import", b.path, out)
    assert "imported 0 answers (3 already present)" in again.output


@pytest.mark.parametrize(
    ("row", "named"),
    [("im_nope,nv", "im_nope"), ("im4,melanoma", "im4"), ("im9,nv", "im9")],
)
def test_csv_import_rejects_unknown_items_and_classes_by_name(tmp_path, row, named):
    ledger = tiny_ledger(tmp_path)
    f = tmp_path / "answers.csv"
    f.write_text("item,expert_answer\nim0,nv\n" + row + "\nim1,bcc\n")
    res = run("campaign", "import", ledger.path, f)
    assert res.exit_code == 2 and named in res.output
    assert ledger.annotation_count() == 0  # nothing imported, not even the good rows


# ----------------------------------------------------------------------------------------- serve


def test_serve_prints_url_with_token(tmp_path, monkeypatch):
    ledger = tiny_ledger(tmp_path)
    seen = {}

    def fake_run(app, host, port, **kw):
        seen.update(host=host, port=port, app=app)

    monkeypatch.setattr("uvicorn.run", fake_run)
    res = run("serve", ledger.path, "--port", "8765", "--token", "tok123-long-enough")
    assert res.exit_code == 0
    assert "http://127.0.0.1:8765/?token=tok123-long-enough" in res.output
    assert seen["port"] == 8765 and seen["host"] == "127.0.0.1"
    res = run("serve", ledger.path)  # a random token when none is given
    assert "/?token=" in res.output and "?token=tok123-long-enough" not in res.output
    res = run("serve", tmp_path / "missing.db")
    assert res.exit_code == 2 and "not found" in res.output


# ------------------------------------------------- simulated round trip vs. the simulated pipeline


def expert_answers_over_http(client, truth: list[str]) -> int:
    """A scripted expert: take the next item, answer its true label, until the queue is empty."""
    n = 0
    while True:
        nxt = client.get("/api/next").json()
        if nxt["item"] is None:
            return n
        r = client.post("/api/answer", json={
            "item": nxt["item"]["item"], "label": truth[nxt["item"]["idx"]],
            "submission_id": f"oracle-{nxt['progress']['round']}-{nxt['item']['idx']}"})
        assert r.status_code == 200, r.text
        n += 1


def simulate(root: Path, cfg, dataset, *, seed: int, client_factory,
             strategy: str = "paper") -> tuple[list, list]:
    """Run a campaign strategy's simulated twin (``paper``: ``ours`` + entropy, ``plus``:
    ``ours_plus`` with the campaign's plus settings, ``find``: ``ours_find``) and a campaign
    on the same noisy labels; return both per-round logs as
    ``[(round, labels_bought, val_f1, test_f1, query_precision)]``."""
    from labelrefine.campaign.create import init_campaign
    from labelrefine.campaign.status import campaign_status
    from labelrefine.campaign.step import StepOptions, run_step
    from labelrefine.config import PipelineSpec, PlusConfig
    from labelrefine.data.prepare import prepare_data
    from labelrefine.experiments.runner import load_source
    from labelrefine.pipelines import PipelineContext, run_pipeline

    noise = cfg.noise[0]
    data = prepare_data(dataset, cfg.split, noise, cfg.longtail, seed)
    names = dataset.class_names
    truth = [names[t] for t in data.true_labels]
    role = np.full(len(dataset), "", dtype=object)
    role[data.train_idx], role[data.val_idx], role[data.test_idx] = "train", "val", "test"
    csv = root / "campaign.csv"
    pd.DataFrame({"image_id": dataset.ids, "dx": [names[g] for g in data.given_labels],
                  "split": role}).to_csv(csv, index=False)
    db = root / "campaign.db"
    init_campaign(Path(dataset.paths[0]).parent, csv, db, split_column="split", classes=names)

    from labelrefine.lnl.adaptive import apply_adaptive
    from labelrefine.lnl.sources import for_training

    run_cfg = apply_adaptive(cfg, int(data.train_idx.size))  # as the runner and campaign do
    source = for_training(load_source(cfg, dataset, "cpu"), data.train_idx, run_cfg.lnl)
    ctx = PipelineContext(cfg=run_cfg, data=data, source=source, noise=noise, seed=seed,
                          device="cpu")
    twin = {"paper": PipelineSpec(name="ours", sampler="entropy"),
            # the campaign's plus: every unanswered item ranked by the sampler, no quotas
            "plus": PipelineSpec(name="ours_plus", plus=PlusConfig(
                pool="all", train_on="select", sampler="entropy", class_budget="none")),
            "find": PipelineSpec(name="ours_find")}[strategy]
    result = run_pipeline(twin, ctx)
    pipe = [(r["round"], r["labels_bought"], r["val_f1"], r["test_f1"], r["query_precision"])
            for r in result["rounds"]]

    # Features do not depend on labels: let the campaign reuse the pipeline's embedding cache
    # (its key differs only because the campaign's labels are the noisy ones).
    from labelrefine.campaign.create import campaign_dataset
    from labelrefine.models.cache import cache_key, cache_path

    src = cache_path(cfg.encoder, cache_key(dataset, cfg.encoder, seed=0))
    dst = cache_path(cfg.encoder, cache_key(campaign_dataset(Ledger(db)), cfg.encoder, seed=0))
    if src != dst:  # keys that ignore labels already coincide
        shutil.copyfile(src, dst)
    for _ in range(cfg.active.rounds + 1):
        run_step(db, StepOptions(experiment=cfg, sampler="entropy", seed=seed, device="cpu",
                                 strategy=strategy))
        with client_factory(db) as client:
            expert_answers_over_http(client, truth)
    ledger = Ledger(db)
    st = campaign_status(ledger)
    qp = [None] + [row["query_precision"] for row in st.per_round.to_dict("records")]
    camp = [(int(r["round"]), r["metrics"]["labels_bought"], r["metrics"]["val_f1"],
             r["metrics"]["test_f1"], qp[int(r["round"])])
            for r in ledger.rounds().to_dict("records")]
    return pipe, camp


def assert_same_rounds(pipe: list, camp: list) -> None:
    assert len(camp) == len(pipe)
    for p, c in zip(pipe, camp, strict=True):
        assert c[:2] == p[:2], (p, c)
        assert c[2:4] == pytest.approx(p[2:4], abs=1e-12), (p, c)
        assert (c[4] is None and p[4] is None) or c[4] == pytest.approx(p[4]), (p, c)


def test_campaign_with_scripted_expert_matches_simulated_pipeline(tmp_path, cache_dir):
    import warnings
    from contextlib import contextmanager

    from labelrefine.config import parse_config
    from labelrefine.data.loaders import load_csv_folder
    from labelrefine.web.app import create_app

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    images, _, truth = make_folder(tmp_path, n=45, flip=0)
    clean_csv = tmp_path / "clean.csv"
    pd.DataFrame({"image_id": [f"im{i:03d}" for i in range(45)], "dx": truth}).to_csv(
        clean_csv, index=False)
    cfg = parse_config({
        "dataset": {"format": "csv", "images": str(images), "labels": str(clean_csv)},
        "split": {"train": 0.6, "val": 0.2, "test": 0.2},
        "noise": [{"kind": "symmetric", "rate": 0.3}],
        "encoder": {"views": 1, "image_size": 32, "batch_size": 32, "cache_dir": str(cache_dir)},
        "lnl": {"epochs": 3, "warmup": 1, "batch_size": 8, "hidden": 16, "vog": {"window": 2}},
        # the simulated pipeline has no model-free fallback queue: compare like with like
        "active": {"rounds": 2, "budget_per_round": 3, "epochs_per_round": 2,
                   "guard_fallback": False},
    })
    dataset = load_csv_folder(images, clean_csv, classes=CLASSES)

    @contextmanager
    def client_factory(db):
        client = TestClient(create_app(db, token="t"), headers={"X-Token": "t"})
        yield client

    for strategy in ("paper", "plus", "find"):
        root = tmp_path / strategy
        root.mkdir()
        pipe, camp = simulate(root, cfg, dataset, seed=3, client_factory=client_factory,
                              strategy=strategy)
        assert [r[1] for r in camp] == [0, 3, 6], strategy
        assert_same_rounds(pipe, camp)


@pytest.mark.slow
def test_full_round_trip_on_bundled_data_matches_pipeline(tmp_path, repo_root, capsys):
    """The bundled HAM10000 subset with the ``make demo`` settings (symmetric p = 0.4,
    a_l = 2.2 %, 8 rounds, 4 views): a campaign answered by a scripted expert through a real
    uvicorn server vs. the simulated ``ours`` + entropy pipeline with the same seed. Uses (and
    fills) the repo's embedding cache."""
    import socket
    import subprocess
    import sys
    import time
    from contextlib import contextmanager

    import httpx

    from labelrefine.config import load_config
    from labelrefine.data.formats import load_dataset

    cfg = load_config(repo_root / "configs" / "ham10000-demo.yaml")
    cfg = cfg.model_copy(update={
        "dataset": cfg.dataset.model_copy(update={
            "images": repo_root / "data/ham10000/images",
            "labels": repo_root / "data/ham10000/labels.csv"}),
        "noise": cfg.noise[:1],
        "encoder": cfg.encoder.model_copy(update={
            "cache_dir": repo_root / ".cache" / "labelrefine"}),
    })
    dataset = load_dataset(cfg.dataset, check_images=False)
    code = ("import sys, uvicorn; from labelrefine.web.app import create_app; "
            "uvicorn.run(create_app(sys.argv[1], token='t'), host='127.0.0.1', "
            "port=int(sys.argv[2]), log_level='warning')")

    @contextmanager
    def client_factory(db):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        proc = subprocess.Popen([sys.executable, "-c", code, str(db), str(port)])
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    httpx.get(url + "/static/app.js", timeout=1)
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            with httpx.Client(base_url=url, headers={"X-Token": "t"}, timeout=30) as client:
                yield client
        finally:
            proc.terminate()
            proc.wait(timeout=10)

    t0 = time.perf_counter()
    pipe, camp = simulate(tmp_path, cfg, dataset, seed=0, client_factory=client_factory)
    with capsys.disabled():
        print(f"\nround  labels  pipeline F1 / QP        campaign F1 / QP   "
              f"({time.perf_counter() - t0:.0f} s)")
        for p, c in zip(pipe, camp, strict=True):
            qp = [("   -  " if x is None else f"{x:.3f}") for x in (p[4], c[4])]
            print(f"{p[0]:>5} {p[1]:>7}  {p[3]:.4f} / {qp[0]}        {c[3]:.4f} / {qp[1]}")
    assert_same_rounds(pipe, camp)


# ------------------------------------------------------------- several readers, hostile input


def test_export_shows_every_reader_and_the_final_answer_and_reimport_adds_nothing(tmp_path):
    ledger = tiny_ledger(tmp_path)
    ledger.submit(0, 2, annotator="ann", submission_id="1", seconds=4.0)
    ledger.submit(0, 0, annotator="bob", submission_id="2", seconds=6.0)
    ledger.adjudicate(0, 0, adjudicator="chief", submission_id="j")
    ledger.submit(1, 1, annotator="ann", submission_id="3")
    ledger.submit(1, 1, annotator="bob", submission_id="4")
    ledger.submit(2, 2, annotator="ann", submission_id="5")
    ledger.submit(2, 1, annotator="bob", submission_id="6")  # open conflict
    out = tmp_path / "labels.csv"
    assert run("campaign", "export", ledger.path, "--out", out).exit_code == 0
    df = pd.read_csv(out, keep_default_na=False).set_index("item")
    assert df.loc["im0", "reader_answers"] == "ann: nv; bob: akiec"
    assert (df.loc["im0", "decision"], df.loc["im0", "expert_answer"]) == ("adjudicated", "akiec")
    assert df.loc["im0", "annotator"] == "chief" and float(df.loc["im0", "seconds"]) == 10.0
    assert (df.loc["im1", "decision"], df.loc["im1", "annotator"]) == ("agreed", "ann; bob")
    assert (df.loc["im2", "decision"], df.loc["im2", "expert_answer"]) == ("conflict", "")
    assert df.loc["im2", "cleaned_label"] == "nv"  # the given label until adjudicated
    n = ledger.annotation_count()
    res = run("campaign", "import", ledger.path, out)
    assert res.exit_code == 0 and "imported 0 answers (2 already present)" in res.output
    assert ledger.annotation_count() == n


def test_csv_export_neutralises_formulas_and_reads_them_back(tmp_path):
    keys = ["=1+2", "+cmd|' /C calc'!A0", "-2", "@SUM(A1)", "plain"]
    items = [ItemRecord(k, f"f{i}.jpg", i % 3) for i, k in enumerate(keys)]
    a = Ledger.create(tmp_path / "a.db", image_root=tmp_path, class_names=CLASSES, items=items)
    a.submit(0, 1, annotator="=evil()", submission_id="1")
    out = tmp_path / "labels.csv"
    assert run("campaign", "export", a.path, "--out", out).exit_code == 0
    cells = [c for line in out.read_text().splitlines()[1:] for c in line.split(",")]
    assert not any(c.lstrip('"').startswith(("=", "+", "@")) for c in cells)
    assert "'=1+2" in out.read_text() and "'=evil()" in out.read_text()
    df = pd.read_csv(out, keep_default_na=False)
    assert df["model_confidence"].tolist() == [""] * 5  # numbers stay numbers (none here)
    b = Ledger.create(tmp_path / "b.db", image_root=tmp_path, class_names=CLASSES, items=items)
    res = run("campaign", "import", b.path, out)
    assert res.exit_code == 0 and "imported 1" in res.output, res.output
    assert b.answers()[["item", "annotator"]].values.tolist() == [[0, "=evil()"]]


def test_cp1252_csv_is_named_with_its_line_and_a_hint(tmp_path):
    images, csv, _ = make_folder(tmp_path, n=6, flip=0)
    text = csv.read_text().splitlines()
    text[3] = text[3].replace(text[3].split(",")[1], "nävus")
    csv.write_bytes("\n".join(text).encode("cp1252"))
    res = run("campaign", "init", "--images", images, "--labels", csv, "--out",
              tmp_path / "c.db")
    assert res.exit_code == 2
    assert "line 4" in res.output and "UTF-8" in res.output and "0xe4" in res.output
    assert len(res.output.strip().splitlines()) <= 3
    assert not (tmp_path / "c.db").exists()


@pytest.mark.parametrize(
    ("args", "says"),
    [(["--epochs", "0"], "--epochs"), (["--views", "-1"], "--views"),
     (["--budget", "0"], "--budget"), (["--budget-minutes", "5"], "no timed answers")],
)
def test_bad_step_options_fail_at_once_with_one_line(tmp_path, args, says, monkeypatch):
    images, csv, _ = make_folder(tmp_path, n=12, flip=0)
    db = init(tmp_path, images, csv)

    def no_step(*a, **k):  # nothing may be embedded or trained
        raise AssertionError("step ran")

    monkeypatch.setattr("labelrefine.campaign.step.run_step", no_step)
    res = run("campaign", "step", db, "--device", "cpu", *args)
    assert res.exit_code == 2
    assert says in res.output and "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) <= 2


def test_moved_image_folder_is_named_and_relocate_fixes_it(tmp_path, monkeypatch):
    images, csv, _ = make_folder(tmp_path, n=12, flip=0)
    db = init(tmp_path, images, csv)
    moved = tmp_path / "moved"
    images.rename(moved)
    monkeypatch.setattr("labelrefine.campaign.step.run_step",
                        lambda *a, **k: (_ for _ in ()).throw(AssertionError("step ran")))
    res = run("campaign", "step", db, "--device", "cpu")
    assert res.exit_code == 2 and "im000" in res.output and "relocate" in res.output
    original = (moved / "im003.jpg").read_bytes()
    (moved / "im003.jpg").write_bytes(b"not the same picture")
    res = run("campaign", "relocate", db, "--images", moved)
    assert res.exit_code == 2 and "'im003'" in res.output and "differs" in res.output
    assert Ledger(db).image_root == images.resolve()  # nothing changed
    (moved / "im003.jpg").write_bytes(original)
    res = run("campaign", "relocate", db, "--images", moved)
    assert res.exit_code == 0 and "12 images checked" in res.output
    assert Ledger(db).image_root == moved.resolve()
    Ledger(db).check_images()


def test_readers_configure_backup_and_status_commands(tmp_path):
    ledger = tiny_ledger(tmp_path)
    res = run("campaign", "reader", "add", ledger.path, "ann")
    assert res.exit_code == 0 and "?token=" in res.output
    tok = res.output.strip().splitlines()[-1].split("token=")[1]
    assert ledger.reader_for_token(tok).name == "ann"
    assert run("campaign", "reader", "add", ledger.path, "chief", "--adjudicator").exit_code == 0
    assert run("campaign", "reader", "add", ledger.path, "ann").exit_code == 2
    res = run("campaign", "configure", ledger.path, "--double-read", "0.25", "--blind")
    assert res.exit_code == 0 and "25%" in res.output and "blind mode on" in res.output
    assert run("campaign", "configure", ledger.path, "--double-read", "2").exit_code == 2
    ledger.submit(0, 2, annotator="ann", submission_id="1", seconds=30)
    ledger.submit(0, 0, annotator="bob", submission_id="2", seconds=30)
    res = run("campaign", "status", ledger.path)
    assert res.exit_code == 0 and "open conflicts 1" in res.output and "advice" in res.output
    res = run("campaign", "backup", ledger.path, tmp_path / "b.db")
    assert res.exit_code == 0 and len(Ledger(tmp_path / "b.db").answers()) == 2
    assert run("campaign", "backup", ledger.path, tmp_path / "b.db").exit_code == 2


def test_plus_strategy_queues_any_item_and_keeps_the_better_fit(tmp_path, cache_dir,
                                                                 monkeypatch):
    """``--strategy plus``: the queue may hold phase-1 clean items; later rounds fit twice from
    the same network and keep the higher validation F1; the strategy is fixed at step one."""
    import labelrefine.active.round as round_mod

    images, csv, truth = make_folder(tmp_path)
    db = init(tmp_path, images, csv)
    cfg = write_config(tmp_path, images, csv, cache_dir)
    res = run("campaign", "step", db, "--config", cfg, "--device", "cpu", "--budget", "12",
              "--strategy", "plus")
    assert res.exit_code == 0, res.output
    ledger = Ledger(db)
    assert ledger.rounds()["settings"].iloc[0]["strategy"] == "plus"
    q = ledger.queue()
    s0 = ledger.scores(0).set_index("item")
    assert len(q) == 12 and s0.loc[list(q["item"]), "clean"].any()  # not only suspects
    answer_queue(db, truth)

    res = run("campaign", "step", db, "--device", "cpu", "--strategy", "paper")
    assert res.exit_code == 2 and "fixed at the first step" in res.output
    assert ledger.current_round() == 0

    fits: list[tuple[int, float]] = []
    orig = round_mod.refit

    def spy(model, source, items, *args, **kwargs):
        fit = orig(model, source, items, *args, **kwargs)
        fits.append((int(np.asarray(items).size), float(fit.best_val_f1)))
        return fit

    monkeypatch.setattr(round_mod, "refit", spy)
    res = run("campaign", "step", db, "--device", "cpu", "--budget", "3")
    assert res.exit_code == 0, res.output
    m1 = ledger.rounds()["metrics"].iloc[1]
    assert len(fits) == 2 and fits[1][0] == 12  # second fit: the 12 expert labels only
    assert m1["val_f1"] == pytest.approx(max(f for _, f in fits))
    chosen = "relabeled" if fits[1][1] > fits[0][1] else "clean"
    assert m1["trained_on"] == chosen and m1["n_clean"] == fits[chosen == "relabeled"][0]
    answered = set(q["item"])
    assert not set(ledger.queue(1)["item"]) & answered
    # status counts the pool the strategy draws from: every undecided training item
    import json

    assert "strategy plus" in run("campaign", "status", db).output
    data = json.loads(run("campaign", "status", db, "--json").output)
    n_train = int((ledger.items()["role"] == "train").sum())
    assert data["suspects_left"] == n_train - len(answered)


def test_unknown_strategy_is_refused_before_any_work(tmp_path):
    from labelrefine.campaign.ledger import CampaignError
    from labelrefine.campaign.step import StepOptions, run_step

    with pytest.raises(CampaignError,
                       match="unknown strategy 'best'; choose one of find, paper, plus"):
        run_step(tmp_path / "missing.db", StepOptions(strategy="best"))
