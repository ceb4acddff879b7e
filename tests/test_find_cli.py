"""``labelrefine find``: the built-in encoder, --features, --pred-probs and --encoder
(TorchScript and ONNX exported here) rank the flipped labels first; bad files get one line
naming the item and nothing is written; trusted items are never listed; same seed, same output."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from labelrefine.active.finding import crossfit_probs
from labelrefine.cli import app
from labelrefine.cli.find import estimate_path
from labelrefine.models.cache import list_cache

pytestmark = pytest.mark.filterwarnings(
    "ignore::FutureWarning", "ignore::DeprecationWarning")  # torch.jit / legacy ONNX export

CLASSES = ("akiec", "bcc", "nv")
COLOURS = np.array([[200, 60, 60], [60, 200, 60], [60, 60, 200]])
N, FLIP = 60, 6


def make_folder(root: Path, n: int = N, flip: int = FLIP, seed: int = 0):
    """``n`` small images whose colour follows the true class; ``flip`` labels are wrong. The
    labels CSV also has a ``dx_type`` column: ``histo`` on every fourth item."""
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
        rows.append({"image_id": f"im{i:03d}", "dx": CLASSES[given[i]],
                     "dx_type": "histo" if i % 4 == 0 else "follow_up"})
    csv = root / "labels.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    return images, csv, {f"im{i:03d}" for i in wrong}


def run(*args: object):
    return CliRunner().invoke(app, ["find", *(str(a) for a in args)], catch_exceptions=False)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict:
    """The folder, a shared cache and one built-in run whose cached features the other
    tests turn into feature and probability files."""
    root = tmp_path_factory.mktemp("find")
    images, csv, wrong = make_folder(root)
    cache = root / "cache"
    out = root / "builtin.csv"
    res = run("--images", images, "--labels", csv, "--image-size", 32, "--cache-dir", cache,
              "--out", out, "--no-progress")
    assert res.exit_code == 0, res.output
    entry = next(e for e in list_cache(cache) if e.kind == "features")
    with np.load(entry.path) as z:
        ids, plain = [str(s) for s in z["ids"]], z["plain"].astype(np.float32)
    labels = pd.read_csv(csv)
    y = labels["dx"].map({c: i for i, c in enumerate(CLASSES)}).to_numpy()
    probs = crossfit_probs(plain, y, 3, seed=0)
    return {"root": root, "images": images, "csv": csv, "wrong": wrong, "cache": cache,
            "builtin": out, "ids": ids, "plain": plain, "probs": probs, "y": y}


def top_ids(path: Path, k: int = FLIP) -> set[str]:
    return set(pd.read_csv(path)["id"].head(k))


def finds_the_flips(path: Path, wrong: set[str], hits: int = FLIP - 1) -> bool:
    return len(top_ids(path) & wrong) >= hits


# ------------------------------------------------------------------------------ the inputs


def test_builtin_encoder_ranks_flipped_labels_first(data):
    out = pd.read_csv(data["builtin"])
    assert list(out.columns) == ["rank", "id", "given_label", "suggested_label",
                                 "suggested_probability", "given_probability", "score", "reason"]
    assert len(out) == N and list(out["rank"]) == list(range(1, N + 1))
    assert finds_the_flips(data["builtin"], data["wrong"])
    est = json.loads(estimate_path(data["builtin"]).read_text())
    assert est["n"] == N and est["trusted"] == 0 and est["input"] == "features"
    assert set(est["per_class"]) == set(CLASSES)
    assert abs(est["estimate"] - FLIP) <= 4


@pytest.mark.parametrize("fmt", ["npz", "npy", "csv", "parquet"])
def test_features_file_in_any_row_order_gives_the_builtin_ranking(data, tmp_path, fmt):
    order = np.random.default_rng(1).permutation(N)
    ids = [data["ids"][i] for i in order]
    x = data["plain"][order]
    extra: list[object] = []
    if fmt == "npz":
        path = tmp_path / "f.npz"
        np.savez(path, ids=np.asarray(ids), features=x)
    elif fmt == "npy":
        path = tmp_path / "f.npy"
        np.save(path, x)
        (tmp_path / "ids.txt").write_text("\n".join(ids) + "\n")
        extra = ["--ids", tmp_path / "ids.txt"]
    else:
        frame = pd.DataFrame(x, columns=[f"f{j}" for j in range(x.shape[1])])
        frame.insert(0, "image_id", ids)
        if fmt == "csv":
            path = tmp_path / "f.csv"
            frame.to_csv(path, index=False, float_format="%.9g")
        else:
            pytest.importorskip("pyarrow")
            path = tmp_path / "f.parquet"
            frame.to_parquet(path)
    out = tmp_path / "ranked.csv"
    res = run("--labels", data["csv"], "--features", path, *extra, "--out", out)
    assert res.exit_code == 0, res.output
    assert pd.read_csv(out).equals(pd.read_csv(data["builtin"]))


def test_pred_probs_csv_and_npy_rank_flipped_labels_first(data, tmp_path):
    order = np.random.default_rng(2).permutation(N)
    frame = pd.DataFrame(data["probs"][order], columns=list(CLASSES))[["nv", "akiec", "bcc"]]
    frame.insert(0, "id", [data["ids"][i] for i in order])
    frame.to_csv(tmp_path / "p.csv", index=False, float_format="%.12g")
    res = run("--labels", data["csv"], "--pred-probs", tmp_path / "p.csv", "--out",
              tmp_path / "a.csv")
    assert res.exit_code == 0, res.output
    a = pd.read_csv(tmp_path / "a.csv")
    assert finds_the_flips(tmp_path / "a.csv", data["wrong"])
    assert "most similar" not in a["reason"][0]  # no features, no neighbour clause
    np.save(tmp_path / "p.npy", data["probs"])
    (tmp_path / "ids.csv").write_text("image_id\n" + "\n".join(data["ids"]) + "\n")
    res = run("--labels", data["csv"], "--pred-probs", tmp_path / "p.npy", "--ids",
              tmp_path / "ids.csv", "--out", tmp_path / "b.csv", "--json")
    assert res.exit_code == 0, res.output
    b = pd.read_csv(tmp_path / "b.csv")
    assert list(a["id"]) == list(b["id"])
    np.testing.assert_allclose(a["score"], b["score"])
    shown = json.loads(res.stdout)
    assert [r["id"] for r in shown["suspects"]] == list(b["id"])
    assert shown["estimate"]["input"] == "pred_probs"


class TinyEncoder(torch.nn.Module):
    """A fixed random conv net: 1x1 convolution, ReLU, global average pooling."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 16, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x)).mean(dim=(2, 3))


def test_torchscript_and_onnx_encoders_rank_flipped_labels_first_and_are_cached(data, tmp_path):
    net = TinyEncoder().eval()
    x = torch.zeros(2, 3, 32, 32)
    ts = tmp_path / "enc.pt"
    torch.jit.trace(net, x).save(str(ts))
    (tmp_path / "enc.pt.yaml").write_text("image_size: 32\nmean: [0.5, 0.5, 0.5]\n"
                                          "std: [0.25, 0.25, 0.25]\n")
    onnx_file = tmp_path / "enc.onnx"
    with torch.no_grad():  # the exporter settings of labelrefine.models.encoders.export_onnx
        torch.onnx.export(net, (x,), str(onnx_file), dynamo=False, opset_version=17,
                          input_names=["images"], output_names=["features"],
                          dynamic_axes={"images": {0: "batch"}, "features": {0: "batch"}})
    cache = tmp_path / "cache"
    common = ("--images", data["images"], "--labels", data["csv"], "--cache-dir", cache,
              "--no-progress")
    res = run(*common, "--encoder", ts, "--out", tmp_path / "ts.csv")
    assert res.exit_code == 0, res.output
    assert finds_the_flips(tmp_path / "ts.csv", data["wrong"])
    res = run(*common, "--encoder", onnx_file, "--image-size", 32, "--mean", "0.5,0.5,0.5",
              "--std", "0.25,0.25,0.25", "--out", tmp_path / "onnx.csv")
    assert res.exit_code == 0, res.output
    assert top_ids(tmp_path / "onnx.csv") == top_ids(tmp_path / "ts.csv")
    files = sorted(e.path.name for e in list_cache(cache) if e.kind == "features")
    assert len(files) == 2 and all(f.startswith("file-enc-32px-") for f in files)
    # a cache hit gives the same output; another model file is another entry
    res = run(*common, "--encoder", ts, "--out", tmp_path / "again.csv")
    assert (tmp_path / "again.csv").read_bytes() == (tmp_path / "ts.csv").read_bytes()
    net.conv.bias.data += 0.1
    ts2 = tmp_path / "enc2.pt"
    torch.jit.trace(net, x).save(str(ts2))
    res = run(*common, "--encoder", ts2, "--image-size", 32, "--out", tmp_path / "ts2.csv")
    assert res.exit_code == 0, res.output
    assert len([e for e in list_cache(cache) if e.kind == "features"]) == 3


def test_encoder_without_input_size_is_named(data, tmp_path):
    net = TinyEncoder().eval()
    ts = tmp_path / "noyaml.pt"
    torch.jit.trace(net, torch.zeros(1, 3, 32, 32)).save(str(ts))
    res = run("--images", data["images"], "--labels", data["csv"], "--encoder", ts,
              "--out", tmp_path / "o.csv")
    assert res.exit_code == 2 and "noyaml.pt" in res.output and "--image-size" in res.output
    assert not (tmp_path / "o.csv").exists()
    (tmp_path / "bad.onnx").write_bytes(b"not a model")
    res = run("--images", data["images"], "--labels", data["csv"], "--encoder",
              tmp_path / "bad.onnx", "--image-size", 32, "--out", tmp_path / "o.csv")
    assert res.exit_code == 2 and "bad.onnx" in res.output
    assert not (tmp_path / "o.csv").exists()


# ------------------------------------------------------------------------------ bad files


def _probs_frame(data) -> pd.DataFrame:
    frame = pd.DataFrame(data["probs"], columns=list(CLASSES))
    frame.insert(0, "image_id", data["ids"])
    return frame


def _bad_probs(kind: str, data, root: Path) -> tuple[list[object], tuple[str, ...]]:
    frame = _probs_frame(data)
    path = root / "p.csv"
    if kind == "row_sum":
        frame.loc[5, "nv"] += 0.2
        expect: tuple[str, ...] = ("im005", "sum to")
    elif kind == "missing_id":
        frame = frame.drop(index=7)
        expect = ("im007",)
    elif kind == "wrong_classes":
        frame = frame.rename(columns={"nv": "mel"})
        expect = ("'mel'", "'nv'")
    elif kind == "nan":
        frame.loc[3, "bcc"] = np.nan
        expect = ("im003", "NaN")
    elif kind == "text":
        frame["akiec"] = frame["akiec"].astype(object)
        frame.loc[4, "akiec"] = "high"
        expect = ("im004", "'high'")
    elif kind == "duplicate":
        frame = pd.concat([frame, frame.iloc[[9]]])
        expect = ("duplicate", "im009")
    elif kind == "npy_columns":
        path = root / "p.npy"
        np.save(path, np.hstack([data["probs"], np.zeros((N, 1))]))
        (root / "ids.txt").write_text("\n".join(data["ids"]))
        return ["--pred-probs", path, "--ids", root / "ids.txt"], ("wrong shape", "4 columns")
    elif kind == "npy_rows":
        path = root / "p.npy"
        np.save(path, data["probs"][:-1])
        (root / "ids.txt").write_text("\n".join(data["ids"]))
        return ["--pred-probs", path, "--ids", root / "ids.txt"], ("wrong shape", "59 rows")
    frame.to_csv(path, index=False)
    return ["--pred-probs", path], expect


def _bad_features(kind: str, data, root: Path) -> tuple[list[object], tuple[str, ...]]:
    x, ids = data["plain"].copy(), list(data["ids"])
    path = root / "f.npz"
    if kind == "f_nan":
        x[10, 3] = np.nan
        expect: tuple[str, ...] = ("im010", "NaN")
    elif kind == "f_missing_id":
        x, ids = x[1:], ids[1:]
        expect = ("im000",)
    elif kind == "f_shape":
        path = root / "f.npy"
        np.save(path, x[:, :, None])
        (root / "ids.txt").write_text("\n".join(ids))
        return ["--features", path, "--ids", root / "ids.txt"], ("f.npy", "shape")
    elif kind == "f_keys":
        np.savez(path, names=np.asarray(ids), features=x)
        return ["--features", path], ("f.npz", "'ids'")
    np.savez(path, ids=np.asarray(ids), features=x)
    return ["--features", path], expect


BAD_PROBS = ("row_sum", "missing_id", "wrong_classes", "nan", "text", "duplicate",
             "npy_columns", "npy_rows")
BAD_FEATURES = ("f_nan", "f_missing_id", "f_shape", "f_keys")


@pytest.mark.parametrize("kind", BAD_PROBS + BAD_FEATURES)
def test_bad_file_gets_one_line_naming_the_item_and_nothing_is_written(data, tmp_path, kind):
    make = _bad_features if kind.startswith("f_") else _bad_probs
    args, expect = make(kind, data, tmp_path)
    out = tmp_path / "sub" / "ranked.csv"
    res = run("--labels", data["csv"], *args, "--out", out)
    assert res.exit_code == 2, res.output
    assert res.output.startswith("error:") and res.output.strip().count("\n") == 0, res.output
    for text in expect:
        assert text in res.output, (text, res.output)
    assert not out.exists() and not estimate_path(out).exists()
    assert not (tmp_path / "sub").exists()


@pytest.mark.parametrize("args, expect", [
    (["--pred-probs", "p.csv", "--features", "f.npz"], "at most one"),
    (["--encoder", "enc.pt"], "--images"),
    (["--trusted-column", "dx_type"], "--trusted-values"),
    (["--features", "f.npz", "--mean", "0.5,0.5,0.5"], "--encoder"),
    (["--pred-probs", "p.csv", "--out", "ranked.txt"], ".csv"),
])
def test_option_combinations_that_cannot_work_are_named(data, tmp_path, args, expect):
    res = run("--labels", data["csv"], *[tmp_path / a if a.endswith((".csv", ".npz", ".pt"))
                                         else a for a in args])
    assert res.exit_code == 2 and expect in res.output, res.output


# --------------------------------------------------------------------------- trusted labels


def test_trusted_items_are_never_listed_and_count_as_correct(data, tmp_path):
    out = tmp_path / "t.csv"
    res = run("--labels", data["csv"], "--features", _npz(data, tmp_path), "--out", out,
              "--trusted-column", "dx_type", "--trusted-values", "histo",
              "--keep-columns", "dx_type")
    assert res.exit_code == 0, res.output
    ranked = pd.read_csv(out)
    trusted = {f"im{i:03d}" for i in range(0, N, 4)}
    assert len(ranked) == N - len(trusted)
    assert not set(ranked["id"]) & trusted
    assert set(ranked["dx_type"]) == {"follow_up"}
    assert finds_the_flips(out, data["wrong"] - trusted, hits=len(data["wrong"] - trusted) - 1)
    est = json.loads(estimate_path(out).read_text())
    assert est["trusted"] == len(trusted) and est["untrusted"] == N - len(trusted)
    assert sum(v["trusted"] for v in est["per_class"].values()) == len(trusted)
    assert "trusted counted as correct" in res.output


def test_trusted_value_or_column_that_matches_nothing_is_named(data, tmp_path):
    npz = _npz(data, tmp_path)
    res = run("--labels", data["csv"], "--features", npz, "--trusted-column", "dx_type",
              "--trusted-values", "histo,biopsy", "--out", tmp_path / "o.csv")
    assert res.exit_code == 2 and "'biopsy'" in res.output and "histo" in res.output
    res = run("--labels", data["csv"], "--features", npz, "--trusted-column", "method",
              "--trusted-values", "histo", "--out", tmp_path / "o.csv")
    assert res.exit_code == 2 and "'method'" in res.output
    assert not (tmp_path / "o.csv").exists()


def _npz(data, root: Path) -> Path:
    path = root / "feat.npz"
    np.savez(path, ids=np.asarray(data["ids"]), features=data["plain"])
    return path


# ----------------------------------------------------------------------------- determinism


def test_same_seed_same_output_and_top_k(data, tmp_path):
    npz = _npz(data, tmp_path)
    for name in ("a", "b"):
        res = run("--labels", data["csv"], "--features", npz, "--seed", 3, "--out",
                  tmp_path / f"{name}.csv")
        assert res.exit_code == 0, res.output
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    assert (estimate_path(tmp_path / "a.csv").read_bytes()
            == estimate_path(tmp_path / "b.csv").read_bytes())
    res = run("--labels", data["csv"], "--features", npz, "--seed", 3, "--top", 5, "--out",
              tmp_path / "top.csv")
    assert res.exit_code == 0, res.output
    top = pd.read_csv(tmp_path / "top.csv")
    assert top.equals(pd.read_csv(tmp_path / "a.csv").head(5))


def test_item_names_in_errors_and_tables_are_printed_as_given(tmp_path):
    ids = ["[red]a", "b", "c", "d", "e", "f"]
    pd.DataFrame({"image_id": ids, "dx": ["x", "y"] * 3}).to_csv(tmp_path / "l.csv",
                                                                 index=False)
    frame = pd.DataFrame({"image_id": ids, "x": [0.9, 0.2] * 3, "y": [0.1, 0.8] * 3})
    frame.iloc[1:].to_csv(tmp_path / "p.csv", index=False)
    res = run("--labels", tmp_path / "l.csv", "--pred-probs", tmp_path / "p.csv", "--out",
              tmp_path / "o.csv")
    assert res.exit_code == 2 and "'[red]a'" in res.output, res.output
    frame.to_csv(tmp_path / "p.csv", index=False)
    res = run("--labels", tmp_path / "l.csv", "--pred-probs", tmp_path / "p.csv", "--out",
              tmp_path / "o.csv")
    assert res.exit_code == 0 and "[red]a" in res.output, res.output


def test_quality_option_is_checked_and_recorded(data, tmp_path):
    frame = _probs_frame(data)
    frame.to_csv(tmp_path / "p.csv", index=False)
    res = run("--labels", data["csv"], "--pred-probs", tmp_path / "p.csv", "--quality",
              "margin", "--out", tmp_path / "o.csv")
    assert res.exit_code == 2 and "--quality" in res.output and not (tmp_path / "o.csv").exists()
    res = run("--labels", data["csv"], "--pred-probs", tmp_path / "p.csv", "--quality",
              "self_confidence", "--out", tmp_path / "o.csv")
    assert res.exit_code == 0, res.output
    assert json.loads(estimate_path(tmp_path / "o.csv").read_text())["quality"] == (
        "self_confidence")
    given = data["probs"][np.arange(N), data["y"]]
    assert list(pd.read_csv(tmp_path / "o.csv")["id"]) == [
        data["ids"][i] for i in np.argsort(given, kind="stable")]
