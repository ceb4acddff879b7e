"""labelrefine.finder over arrays: rankings from probabilities and from features, trusted
labels, the cleanlab estimate; the file readers' alignment; dataset.trusted in the config."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from labelrefine.config import ConfigError, DatasetConfig, TrustedConfig, load_config
from labelrefine.data.dataset import DataError
from labelrefine.data.external import load_features, load_ids, load_pred_probs
from labelrefine.finder import (
    RANK_COLUMNS,
    check_pred_probs,
    estimate_wrong_labels,
    find_wrong_labels,
    rank_label_issues,
    trusted_mask,
)


def blobs(n: int = 150, flip: int = 15, seed: int = 0):
    """Three well separated Gaussian blobs; ``flip`` labels moved to the next class."""
    rng = np.random.default_rng(seed)
    true = np.arange(n) % 3
    x = rng.normal(size=(n, 8)) + 6.0 * np.eye(3, 8)[true]
    given = true.copy()
    wrong = rng.choice(n, size=flip, replace=False)
    given[wrong] = (true[wrong] + 1) % 3
    return x, given, wrong


def noisy_probs(y: np.ndarray, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(3) * 0.7, y.size)
    p[np.arange(y.size), y] += 0.5
    return p / p.sum(axis=1, keepdims=True)


def test_features_rank_the_flipped_labels_first():
    x, y, wrong = blobs()
    ranked = rank_label_issues(y, features=x, num_classes=3)
    assert list(ranked.columns) == list(RANK_COLUMNS)
    assert set(ranked["index"].head(wrong.size)) == set(wrong)
    assert (ranked["score"].diff().dropna() <= 0).all()
    assert "most similar" in ranked["reason"].iloc[0]


def test_pred_probs_ranking_is_cleanlab_label_quality_order():
    from cleanlab.rank import get_label_quality_scores

    y = np.arange(90) % 3
    p = noisy_probs(y)
    ranked = rank_label_issues(y, pred_probs=p, ids=[f"x{i}" for i in range(90)],
                               class_names=["a", "b", "c"])
    # the default with given probabilities: self-confidence, p of the given label
    q = get_label_quality_scores(y, p, method="self_confidence", adjust_pred_probs=False)
    assert list(ranked["index"]) == list(np.argsort(q, kind="stable"))
    margin = rank_label_issues(y, pred_probs=p, method="normalized_margin")
    qm = get_label_quality_scores(y, p, method="normalized_margin", adjust_pred_probs=False)
    assert list(margin["index"]) == list(np.argsort(qm, kind="stable"))
    row = ranked.iloc[0]
    assert row["id"] == f"x{row['index']}" and row["given_label"] == "abc"[y[row["index"]]]
    assert row["suggested_probability"] == pytest.approx(p[row["index"]].max())


def test_trusted_items_are_left_out_of_the_ranking_but_fitted_on():
    x, y, wrong = blobs()
    trusted = np.zeros(y.size, dtype=bool)
    trusted[wrong[:5]] = True
    trusted[::7] = True
    ranked = rank_label_issues(y, features=x, num_classes=3, trusted=trusted)
    assert len(ranked) == (~trusted).sum()
    assert not set(ranked["index"]) & set(np.flatnonzero(trusted))
    rest = set(wrong) - set(np.flatnonzero(trusted))
    assert set(ranked["index"].head(len(rest))) == rest
    # the untrusted items keep the order of the ranking without trust
    full = rank_label_issues(y, features=x, num_classes=3)
    kept = full[~full["index"].isin(np.flatnonzero(trusted))]
    assert list(kept["index"]) == list(ranked["index"])


def test_same_seed_same_ranking_and_both_inputs_together():
    x, y, _ = blobs()
    a = rank_label_issues(y, features=x, num_classes=3, seed=4)
    b = rank_label_issues(y, features=x, num_classes=3, seed=4)
    pd.testing.assert_frame_equal(a, b)
    both = rank_label_issues(y, pred_probs=noisy_probs(y), features=x, weight=0.5)
    assert len(both) == y.size and "most similar" in both["reason"].iloc[0]


def test_estimate_is_cleanlabs_count_and_trusted_count_as_correct():
    from cleanlab.count import num_label_issues

    y = np.arange(300) % 3
    p = noisy_probs(y, seed=1)
    est = estimate_wrong_labels(y, p, class_names=["a", "b", "c"])
    assert est["estimate"] == num_label_issues(y, p,
                                               estimation_method="off_diagonal_calibrated")
    assert sum(v["estimate"] for v in est["per_class"].values()) == pytest.approx(
        est["estimate"], abs=0.5)
    assert est["expected"] == pytest.approx(float((1 - p[np.arange(300), y]).sum()))
    trusted = np.arange(300) % 5 == 0
    t = estimate_wrong_labels(y, p, trusted=trusted, class_names=["a", "b", "c"])
    u = ~trusted
    assert t["trusted"] == 60 and t["untrusted"] == 240
    assert t["estimate"] == num_label_issues(y[u], p[u],
                                             estimation_method="off_diagonal_calibrated")
    assert t["per_class"]["a"]["trusted"] == int((trusted & (y == 0)).sum())


def test_find_wrong_labels_estimates_on_the_cross_fitted_probabilities():
    x, y, wrong = blobs()
    res = find_wrong_labels(y, features=x, class_names=["a", "b", "c"])
    assert res.estimate["input"] == "features"
    assert abs(res.estimate["estimate"] - wrong.size) <= 6
    assert res.scored.probs.shape == (y.size, 3)


@pytest.mark.parametrize("change, expect", [
    (lambda p: p.__setitem__((2, 0), np.nan), "row 2"),
    (lambda p: p.__setitem__((4, 0), p[4, 0] + 0.01), "sum to"),
    (lambda p: p.__setitem__((1, 1), -0.1), "outside [0, 1]"),
])
def test_check_pred_probs_names_the_first_bad_row(change, expect):
    p = noisy_probs(np.arange(9) % 3)
    change(p)
    with pytest.raises(DataError, match=expect.replace("[", r"\[").replace("]", r"\]")):
        check_pred_probs(p)
    with pytest.raises(DataError, match="3 columns for 4 classes"):
        check_pred_probs(noisy_probs(np.arange(9) % 3), num_classes=4)


def test_trusted_mask_matches_text_and_names_typos():
    frame = pd.DataFrame({"dx_type": ["histo", " histo", "follow_up", "consensus"]})
    assert trusted_mask(frame, "dx_type", ["histo"]).tolist() == [True, True, False, False]
    assert trusted_mask(frame, "dx_type", ["histo", "consensus"]).sum() == 3
    with pytest.raises(DataError, match="'histology'"):
        trusted_mask(frame, "dx_type", ["histology"])
    with pytest.raises(DataError, match="'method'"):
        trusted_mask(frame, "method", ["histo"])


def test_readers_align_rows_and_columns_to_the_labels(tmp_path):
    ids = ["b", "a", "c"]
    frame = pd.DataFrame({"id": ["a", "b", "c", "z"], "y": [0.1, 0.7, 0.2, 0.5],
                          "x": [0.9, 0.3, 0.8, 0.5]})
    frame.to_csv(tmp_path / "p.csv", index=False)
    p = load_pred_probs(tmp_path / "p.csv", ids, ["x", "y"])
    np.testing.assert_allclose(p, [[0.3, 0.7], [0.9, 0.1], [0.8, 0.2]])
    (tmp_path / "ids.txt").write_text("c\n\na\nb\n")
    assert load_ids(tmp_path / "ids.txt") == ["c", "a", "b"]
    np.save(tmp_path / "f.npy", np.arange(6, dtype=np.float32).reshape(3, 2))
    x = load_features(tmp_path / "f.npy", ids, ids_file=tmp_path / "ids.txt")
    np.testing.assert_array_equal(x, [[4, 5], [2, 3], [0, 1]])
    (tmp_path / "dup.txt").write_text("a\na\nb\n")
    with pytest.raises(DataError, match="duplicate id 'a'"):
        load_ids(tmp_path / "dup.txt")


def test_dataset_trusted_in_the_config(tmp_path):
    cfg = DatasetConfig.model_validate({"images": "im", "labels": "l.csv",
                                        "trusted": {"column": "dx_type", "values": ["histo"]}})
    assert cfg.trusted == TrustedConfig(column="dx_type", values=["histo"])
    assert "trusted" not in DatasetConfig(images="im", labels="l.csv").model_dump()
    assert cfg.model_dump()["trusted"] == {"column": "dx_type", "values": ["histo"]}
    path = tmp_path / "c.yaml"
    path.write_text("dataset: {format: medmnist, npz: x.npz, trusted: {column: a, values: [b]}}\n")
    with pytest.raises(ConfigError, match="trusted"):
        load_config(path)
    path.write_text("dataset: {images: im, labels: l.csv, trusted: {column: a, values: []}}\n")
    with pytest.raises(ConfigError, match="dataset.trusted.values"):
        load_config(path)


def test_encoder_spec_from_options_then_the_yaml_next_to_the_file(tmp_path):
    from labelrefine.data.external import trusted_from_config
    from labelrefine.models.encoder_file import read_encoder_spec

    model = tmp_path / "enc.pt"
    model.write_bytes(b"x")
    (tmp_path / "enc.yaml").write_text("image_size: 64\nstd: [0.5, 0.5, 0.5]\n")
    spec = read_encoder_spec(model)
    assert spec.image_size == 64 and spec.std == (0.5, 0.5, 0.5)
    assert spec.mean == (0.485, 0.456, 0.406)  # ImageNet's when not given
    assert read_encoder_spec(model, image_size=32, mean="0,0,0").image_size == 32
    (tmp_path / "enc.pt.yaml").write_text("size: 64\n")  # <file>.yaml comes first
    with pytest.raises(DataError, match="enc.pt.yaml: unknown key 'size'"):
        read_encoder_spec(model)
    with pytest.raises(DataError, match="TorchScript"):
        read_encoder_spec(tmp_path / "enc.yaml")
    cfg = DatasetConfig(images="im", labels="l.csv",
                        trusted=TrustedConfig(column="t", values=["yes"]))
    frame = pd.DataFrame({"t": ["yes", "no"]})
    assert trusted_from_config(cfg, frame).tolist() == [True, False]


def test_self_confidence_quality_ranks_by_the_given_labels_probability():
    y = np.arange(60) % 3
    p = noisy_probs(y, seed=3)
    ranked = rank_label_issues(y, pred_probs=p, method="self_confidence")
    assert list(ranked["index"]) == list(np.argsort(p[np.arange(60), y], kind="stable"))
    with pytest.raises(ValueError, match="unknown method"):
        rank_label_issues(y, pred_probs=p, method="margin")  # type: ignore[arg-type]
