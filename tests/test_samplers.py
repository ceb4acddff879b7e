"""Samplers: scores on hand-made arrays, coreset vs brute-force k-center, the select() front."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch

from labelrefine.active import coreset
from labelrefine.active.samplers import (
    SAMPLERS,
    Coreset,
    confidence_scores,
    coreset_select,
    entropy_scores,
    explain,
    joint_scores,
    margin_scores,
    nearest_center_distances,
    random_scores,
    ranked,
    select,
)

# --------------------------------------------------------------------------- scores


def test_entropy_uniform_above_peaked_and_exact_values() -> None:
    probs = np.array([[1 / 3, 1 / 3, 1 / 3], [0.8, 0.1, 0.1], [1.0, 0.0, 0.0]])
    h = entropy_scores(probs)
    assert h[0] == pytest.approx(math.log(3))
    assert h[1] == pytest.approx(-(0.8 * math.log(0.8) + 2 * 0.1 * math.log(0.1)))
    assert h[2] == 0.0  # 0 log 0 = 0, no NaN
    assert h[0] > h[1] > h[2]


def test_margin_scores() -> None:
    probs = np.array([[0.5, 0.3, 0.2], [0.4, 0.4, 0.2], [0.9, 0.05, 0.05], [0.1, 0.2, 0.7]])
    m = margin_scores(probs)
    np.testing.assert_allclose(m, [1 - 0.2, 1.0, 1 - 0.85, 1 - 0.5])
    assert np.argmax(m) == 1  # tie between the top two: smallest margin


def test_joint_scores_by_hand_three_classes() -> None:
    probs = np.array([
        [0.90, 0.05, 0.05],  # confident, disagrees with given label 1
        [0.90, 0.05, 0.05],  # confident, agrees with given label 0
        [0.40, 0.30, 0.30],  # ambiguous, given label 2
    ])
    given = np.array([1, 0, 2])
    log3 = math.log(3)

    def h(row: list[float]) -> float:
        return -sum(p * math.log(p) for p in row)

    expected = []
    for row, y in zip(probs.tolist(), given.tolist(), strict=True):
        expected.append(-math.log(row[y]) / log3 - max(h(row) / log3 - 0.3, 0.0))
    # spelled-out numbers for row 0: CE = -ln 0.05 = 2.9957, H = 0.3944, log 3 = 1.0986
    assert expected[0] == pytest.approx(2.9957 / 1.0986 - max(0.3944 / 1.0986 - 0.3, 0), abs=1e-3)
    np.testing.assert_allclose(joint_scores(probs, given), expected, rtol=1e-12)
    s = joint_scores(probs, given)
    assert s[0] > s[2] > s[1]


def test_joint_clips_zero_probability() -> None:
    s = joint_scores(np.array([[1.0, 0.0]]), np.array([1]))
    assert np.isfinite(s).all()
    assert s[0] == pytest.approx(-math.log(1e-12) / math.log(2))


def test_confidence_scores() -> None:
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    np.testing.assert_allclose(confidence_scores(probs, np.array([1, 2])), [0.8, 0.2])


def test_random_scores_seeded() -> None:
    a, b, c = random_scores(50, 3), random_scores(50, 3), random_scores(50, 4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert random_scores(0, 1).shape == (0,)


@pytest.mark.parametrize(
    ("probs", "match"),
    [
        (np.array([0.5, 0.5]), "2-D"),
        (np.array([[0.5, 0.6]]), "sum to 1"),
        (np.array([[-1.0, 2.0]]), "negative"),
        (np.array([[np.nan, 1.0]]), "NaN"),
        (np.array([[1.0]]), "at least 2 classes"),
    ],
)
def test_bad_probs_rejected(probs: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        entropy_scores(probs)


def test_bad_given_labels_rejected() -> None:
    probs = np.full((2, 3), 1 / 3)
    with pytest.raises(ValueError, match=r"given_labels\[1\] = 3"):
        joint_scores(probs, np.array([0, 3]))
    with pytest.raises(ValueError, match="given_labels must have shape"):
        confidence_scores(probs, np.array([0, 1, 2]))


# --------------------------------------------------------------------------- coreset


def brute_force_k_center(pool: np.ndarray, centers: np.ndarray, k: int, seed: int) -> list[int]:
    """Greedy farthest-first with plain loops (first pick seeded when there are no centres)."""
    n = len(pool)
    chosen: list[int] = []
    current = [list(c) for c in centers]
    if not current and k > 0 and n > 0:
        first = int(np.random.default_rng(seed).integers(n))
        chosen.append(first)
        current.append(list(pool[first]))
    while len(chosen) < min(k, n):
        best, best_d = -1, -1.0
        for i in range(n):
            if i in chosen:
                continue
            d_near = math.inf
            for c in current:
                d = math.sqrt(sum((a - b) ** 2 for a, b in zip(pool[i], c, strict=True)))
                d_near = min(d_near, d)
            if d_near > best_d:  # strict: the lowest index wins ties
                best, best_d = i, d_near
        chosen.append(best)
        current.append(list(pool[best]))
    return chosen


@pytest.mark.parametrize("case", range(8))
def test_coreset_equals_brute_force(case: int) -> None:
    rng = np.random.default_rng(100 + case)
    n = int(rng.integers(5, 40))
    d = int(rng.integers(1, 6))
    m = [0, 1, 3, 7][case % 4]
    k = [0, 1, 4, n, n + 5, 10, 2, 6][case]
    pool = rng.standard_normal((n, d))
    centers = rng.standard_normal((m, d)) * 0.5
    got = coreset_select(pool, centers, k, seed=case)
    assert got.tolist() == brute_force_k_center(pool, centers, k, seed=case)
    assert got.dtype == np.int64
    assert len(got) == min(k, n)


@pytest.mark.parametrize("case", range(12))
def test_coreset_candidate_pruning_is_exact(case: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # tiny candidate sets force every path: accepted at once, widened, widened to all rows
    monkeypatch.setattr(coreset, "CORESET_CANDIDATES", 1)
    rng = np.random.default_rng(200 + case)
    n, d = int(rng.integers(20, 50)), int(rng.integers(1, 4))
    pool = rng.standard_normal((n, d)) * np.where(rng.random((n, 1)) < 0.1, 5.0, 1.0)
    centers = rng.standard_normal((case % 3 * 2, d))
    k = int(rng.integers(1, 8))
    assert coreset_select(pool, centers, k, seed=case).tolist() == brute_force_k_center(
        pool, centers, k, seed=case)


def test_greedy_torch_path_matches_numpy_path() -> None:
    rng = np.random.default_rng(11)
    x = rng.standard_normal((80, 4))
    x_sq = (x * x).sum(1)
    start = rng.random(80) * 10
    xt = torch.from_numpy(x)
    a = coreset._greedy_cpu(xt, x_sq.copy(), start.copy(), 15)
    b = coreset._greedy_torch(xt, torch.from_numpy(x_sq), torch.from_numpy(start.copy()), 15)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_allclose(a[1], b[1])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_coreset_on_gpu_matches_cpu() -> None:
    rng = np.random.default_rng(12)
    pool = rng.standard_normal((5000, 32))
    centers = rng.standard_normal((100, 32))
    cpu = coreset_select(pool, centers, 40)
    np.testing.assert_array_equal(coreset_select(pool, centers, 40, device="cuda"), cpu)
    np.testing.assert_array_equal(coreset_select(pool, centers[:0], 40, seed=3, device="cuda"),
                                  coreset_select(pool, centers[:0], 40, seed=3))
    np.testing.assert_allclose(nearest_center_distances(pool, centers, device="cuda"),
                               nearest_center_distances(pool, centers), rtol=1e-6)


def test_coreset_float32_and_chunked_agree() -> None:
    rng = np.random.default_rng(7)
    pool = rng.standard_normal((120, 8)).astype(np.float32)
    centers = rng.standard_normal((30, 8)).astype(np.float32)
    whole = coreset_select(pool, centers, 12)
    chunked = coreset_select(pool, centers, 12, chunk=7)
    np.testing.assert_array_equal(whole, chunked)
    assert whole.tolist() == brute_force_k_center(pool.astype(np.float64), centers, 12, 0)


def test_coreset_picks_outliers_first() -> None:
    pool = np.array([[0.1, 0.0], [10.0, 10.0], [0.0, 0.2], [-8.0, 0.0]])
    centers = np.zeros((1, 2))
    assert coreset_select(pool, centers, 2).tolist() == [1, 3]


def test_coreset_float16_and_duplicates_of_centres() -> None:
    pool = np.zeros((5, 3), dtype=np.float16)  # every point sits on the centre
    got = coreset_select(pool, np.zeros((2, 3), dtype=np.float16), 5)
    assert sorted(got.tolist()) == list(range(5))


def test_coreset_cosine_metric() -> None:
    # scaled copies of the centre direction are at cosine distance 0
    pool = np.array([[2.0, 0.0], [0.0, 1.0], [5.0, 0.1], [-1.0, 0.0]])
    centers = np.array([[1.0, 0.0]])
    assert coreset_select(pool, centers, 1, metric="cosine").tolist() == [3]
    assert coreset_select(pool, centers, 1).tolist() == [2]  # Euclidean: the far point
    np.testing.assert_allclose(
        nearest_center_distances(pool, centers, metric="cosine"),
        [0.0, math.sqrt(2), math.sqrt(2 - 2 * 5 / math.hypot(5, 0.1)), 2.0], atol=1e-12,
    )


def test_coreset_approximations_are_seeded_and_valid() -> None:
    rng = np.random.default_rng(3)
    pool = rng.standard_normal((2000, 32)).astype(np.float32)
    centers = rng.standard_normal((40, 32)).astype(np.float32)
    a = coreset_select(pool, centers, 30, seed=5, max_pool=300, project_dim=8)
    b = coreset_select(pool, centers, 30, seed=5, max_pool=300, project_dim=8)
    np.testing.assert_array_equal(a, b)
    assert len(set(a.tolist())) == 30 and a.min() >= 0 and a.max() < 2000
    # the subsample is exact greedy on the subsample: equals brute force on those rows
    sub = np.sort(np.random.default_rng(5).choice(2000, size=300, replace=False))
    exact_sub = coreset_select(pool[sub], centers, 30)
    np.testing.assert_array_equal(coreset_select(pool, centers, 30, seed=5, max_pool=300),
                                  sub[exact_sub])
    # a subsample smaller than k is enlarged to k
    assert len(coreset_select(pool, centers, 50, seed=1, max_pool=10)) == 50


def test_coreset_bad_inputs() -> None:
    with pytest.raises(ValueError, match="center_features has 3 columns"):
        coreset_select(np.zeros((4, 2)), np.zeros((1, 3)), 1)
    with pytest.raises(ValueError, match="pool_features must be a 2-D"):
        coreset_select(np.zeros(4), np.zeros((1, 3)), 1)
    with pytest.raises(ValueError, match="k must be >= 0"):
        coreset_select(np.zeros((4, 2)), np.zeros((1, 2)), -1)
    with pytest.raises(ValueError, match="metric"):
        coreset_select(np.zeros((4, 2)), np.zeros((1, 2)), 1, metric="manhattan")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- front


def _inputs(n: int = 60, c: int = 4, d: int = 5, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "pool": rng.permutation(np.arange(1000, 1000 + 3 * n, 3)),
        "probs": rng.dirichlet(np.ones(c), size=n),
        "given_labels": rng.integers(0, c, size=n),
        "pool_features": rng.standard_normal((n, d)),
        "center_features": rng.standard_normal((8, d)),
    }


@pytest.mark.parametrize("sampler", SAMPLERS)
@pytest.mark.parametrize("k", [0, 1, 17, 60, 500])
def test_select_never_exceeds_repeats_or_returns_excluded(sampler: str, k: int) -> None:
    inp = _inputs()
    exclude = np.concatenate([inp["pool"][:10], [5, 7]])  # may name items outside the pool
    got = select(sampler, k, exclude=exclude, seed=1, **inp)
    allowed = set(inp["pool"].tolist()) - set(exclude.tolist())
    assert len(got) == min(k, len(allowed))
    assert len(set(got.tolist())) == len(got)
    assert set(got.tolist()) <= allowed
    assert got.dtype == np.int64


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_select_deterministic_and_independent_of_pool_order(sampler: str) -> None:
    inp = _inputs()
    a = select(sampler, 12, seed=3, **inp)
    b = select(sampler, 12, seed=3, **inp)
    np.testing.assert_array_equal(a, b)
    perm = np.random.default_rng(9).permutation(len(inp["pool"]))
    shuffled = {key: (v if key == "center_features" else v[perm]) for key, v in inp.items()}
    np.testing.assert_array_equal(select(sampler, 12, seed=3, **shuffled), a)


def test_select_random_depends_on_seed() -> None:
    inp = _inputs()
    assert not np.array_equal(select("random", 20, seed=1, **inp),
                              select("random", 20, seed=2, **inp))


def test_select_score_order_and_tie_break_by_item_index() -> None:
    probs = np.array([[0.5, 0.5], [0.9, 0.1], [0.5, 0.5], [0.6, 0.4]])
    pool = np.array([30, 10, 20, 40])
    # items 30 and 20 tie at the highest entropy: the lower item index comes first
    assert select("entropy", 4, pool=pool, probs=probs).tolist() == [20, 30, 40, 10]
    assert select("margin", 2, pool=pool, probs=probs).tolist() == [20, 30]


def test_select_matches_score_functions() -> None:
    inp = _inputs()
    order = np.argsort(inp["pool"])
    probs, given = inp["probs"][order], inp["given_labels"][order]
    items = inp["pool"][order]
    for name, scores in [("entropy", entropy_scores(probs)),
                         ("joint", joint_scores(probs, given)),
                         ("confidence", confidence_scores(probs, given))]:
        expect = items[np.argsort(-scores, kind="stable")[:10]]
        np.testing.assert_array_equal(select(name, 10, **inp), expect)


def test_select_coreset_maps_to_items() -> None:
    inp = _inputs()
    order = np.argsort(inp["pool"])
    pos = coreset_select(inp["pool_features"][order], inp["center_features"], 9, seed=4)
    np.testing.assert_array_equal(select("coreset", 9, seed=4, **inp), inp["pool"][order][pos])


def test_select_coreset_large_pool_rule() -> None:
    inp = _inputs(n=60, d=5)
    order = np.argsort(inp["pool"])
    feats, items = inp["pool_features"][order], inp["pool"][order]
    exact = items[coreset_select(feats, inp["center_features"], 6, seed=2)]
    # work = 60 items x 5 dims x (8 centres + 6 picks) = 4,200 multiply-adds
    np.testing.assert_array_equal(
        select(Coreset(exact_work=4200, project_dim=3), 6, seed=2, **inp), exact)
    np.testing.assert_array_equal(
        select(Coreset(exact_work=None, project_dim=3), 6, seed=2, **inp), exact)
    approx = select(Coreset(exact_work=4199, project_dim=3, max_pool=30), 6, seed=2, **inp)
    expect = coreset_select(feats, inp["center_features"], 6, seed=2, project_dim=3, max_pool=30)
    np.testing.assert_array_equal(approx, items[expect])


def test_coreset_defaults_are_the_engine_constants() -> None:
    assert Coreset().exact_work == coreset.CORESET_EXACT_WORK
    assert Coreset().project_dim == coreset.CORESET_PROJECT_DIM


@pytest.mark.parametrize(
    ("sampler", "drop", "match"),
    [
        ("entropy", "probs", "needs probs"),
        ("margin", "probs", "needs probs"),
        ("joint", "given_labels", "needs given_labels"),
        ("confidence", "given_labels", "needs given_labels"),
        ("coreset", "pool_features", "needs pool_features"),
        ("coreset", "center_features", "needs center_features"),
        ("neighbours", "pool_features", "needs pool_features"),
        ("neighbours", "given_labels", "needs given_labels"),
    ],
)
def test_select_missing_input(sampler: str, drop: str, match: str) -> None:
    inp = _inputs()
    del inp[drop]
    with pytest.raises(ValueError, match=match):
        select(sampler, 3, **inp)


def test_select_shape_mismatch_and_bad_pool() -> None:
    inp = _inputs()
    with pytest.raises(ValueError, match="probs has 59 rows but the pool has 60"):
        select("entropy", 3, pool=inp["pool"], probs=inp["probs"][:-1])
    with pytest.raises(ValueError, match="given_labels must have shape"):
        select("joint", 3, pool=inp["pool"], probs=inp["probs"],
               given_labels=inp["given_labels"][:5])
    with pytest.raises(ValueError, match="pool_features has 10 rows"):
        select("coreset", 3, pool=inp["pool"], pool_features=inp["pool_features"][:10],
               center_features=inp["center_features"])
    with pytest.raises(ValueError, match="more than once"):
        select("random", 3, pool=np.array([1, 2, 2]))
    with pytest.raises(ValueError, match="negative"):
        select("random", 3, pool=np.array([1, -2]))
    with pytest.raises(ValueError, match="unknown sampler 'bald'"):
        select("bald", 3, pool=np.array([1, 2]))
    with pytest.raises(ValueError, match="k must be >= 0"):
        select("random", -1, pool=np.array([1, 2]))


def test_select_empty_pool() -> None:
    assert select("entropy", 5, pool=np.zeros(0, np.int64), probs=np.zeros((0, 3))).size == 0
    assert select("coreset", 5, pool=np.zeros(0, np.int64), pool_features=np.zeros((0, 2)),
                  center_features=np.zeros((1, 2))).size == 0


# --------------------------------------------------------------------------- reasons


def test_ranked_reasons_read_well() -> None:
    names = ["akiec", "bcc", "nv"]
    probs = np.array([[0.02, 0.93, 0.05], [0.34, 0.33, 0.33], [0.1, 0.1, 0.8]])
    given = np.array([2, 0, 2])
    pool = np.array([5, 6, 7])
    joint = ranked("joint", 1, pool=pool, probs=probs, given_labels=given, class_names=names)
    assert joint.items.tolist() == [5]
    assert joint.reasons[0] == "the model finds bcc more likely (93%) than the given nv (5%)"
    ent = ranked("entropy", 1, pool=pool, probs=probs, given_labels=given, class_names=names)
    assert ent.items.tolist() == [6]
    assert ent.reasons[0] == ("the model is unsure: akiec 34%, bcc 33%, nv 33%; no class "
                              "stands out; given akiec")
    feats = np.array([[0.0, 0.0], [4.1, 0.0], [2.0, 0.0]])
    core = ranked("coreset", 3, pool=pool, pool_features=feats,
                  center_features=np.zeros((1, 2)))
    assert core.items.tolist() == [6, 7, 5]
    assert core.reasons[0] == "unlike every clean sample (distance 4.1, pool median 2)"
    assert len(core.scores) == 3 and core.scores[0] == pytest.approx(4.1)


def test_explain_each_sampler() -> None:
    probs = np.array([[0.6, 0.3, 0.1], [0.2, 0.2, 0.6]])
    given = np.array([0, 1])
    for sampler in SAMPLERS:
        reasons = explain(sampler, np.array([1, 0]), probs, given, ["a", "b", "c"],
                          distances=np.array([1.0, 3.0]), pool_features=np.eye(2))
        assert len(reasons) == 2 and all(r for r in reasons)
    assert explain("margin", np.array([0]), probs)[0] == (
        "the model hesitates between 0 (60%) and 1 (30%)")
    agree = explain("confidence", np.array([0]), probs, given, ["a", "b", "c"])[0]
    assert agree == "the model agrees with the given a, but only at 60%"
    with pytest.raises(ValueError, match="needs probs"):
        explain("entropy", np.array([0]))


def test_reasons_speak_plainly_per_sampler() -> None:
    names = ["mel", "nv", "bkl", "bcc"]
    unsure = np.array([[0.22, 0.25, 0.18, 0.35]])  # no class stands out
    wrong = np.array([[0.01, 0.03, 0.03, 0.93]])  # bcc against the given nv
    given = np.array([1])
    one = np.array([0])
    assert explain("entropy", one, unsure, given, names) == [
        "the model is unsure: bcc 35%, nv 25%, mel 22%; no class stands out; given nv"]
    assert explain("entropy", one, wrong, given, names) == [
        "the least certain item left, though the model favours bcc 93%; given nv"]
    for sampler in ("confidence", "joint", "cl", "combined"):
        assert explain(sampler, one, wrong, given, names)[0].startswith(
            "the model finds bcc more likely (93%) than the given nv (3%)")
    assert explain("joint", one, unsure, given, names) == [
        "the model finds bcc more likely (35%) than the given nv (25%); but no class stands "
        "out: bcc 35%, nv 25%, mel 22%"]
    assert explain("cl", one, wrong, given, names)[0].endswith(
        "; cleanlab rates this label's quality low")
    assert explain("random", one, wrong, given, names) == [
        "random pick (seeded); the model finds bcc more likely (93%) than the given nv (3%)"]
    assert explain("random", one) == ["random pick (seeded)"]
    for sampler in SAMPLERS:  # no sampler speaks in entropy values or bare decimals
        if sampler in ("coreset", "neighbours"):
            continue
        reason = explain(sampler, one, unsure, given, names)[0]
        assert "entropy" not in reason and "0." not in reason, (sampler, reason)


# --------------------------------------------------------------------------- neighbours


def _clusters(seed: int = 0) -> dict[str, np.ndarray]:
    """Three tight feature clusters of 10 items labelled by cluster, with items 3, 14 and
    25 relabelled to the next cluster's class (wrong labels)."""
    rng = np.random.default_rng(seed)
    centres = np.eye(3, 8) * 10
    feats = np.repeat(centres, 10, axis=0) + rng.normal(scale=0.1, size=(30, 8))
    labels = np.repeat(np.arange(3), 10)
    labels[[3, 14, 25]] = [1, 2, 0]
    return {"pool": np.arange(100, 130), "given_labels": labels, "pool_features": feats}


def test_neighbours_ranks_items_whose_neighbours_disagree_first() -> None:
    inp = _clusters()
    r = ranked("neighbours", 3, **inp, class_names=["a", "b", "c"])
    assert sorted(r.items.tolist()) == [103, 114, 125]
    # every neighbour of a relabelled item (k = 10 of its 9 cluster mates + 1 other) disagrees
    # except at most one
    assert np.all(r.scores >= 0.9)
    why = dict(zip(r.items.tolist(), r.reasons, strict=True))
    assert re.fullmatch(r"[01] of the 10 most similar images carry the given b; 9 carry a",
                        why[103]), why[103]
    rest = ranked("neighbours", None, **inp, with_reasons=False)
    assert np.all(rest.scores[3:] <= 0.2)  # correctly labelled items mostly agree


def test_neighbours_deterministic_order_free_and_needs_no_model() -> None:
    inp = _clusters(1)
    a = select("neighbours", 8, **inp)
    perm = np.random.default_rng(2).permutation(30)
    shuffled = {k: v[perm] for k, v in inp.items()}
    np.testing.assert_array_equal(select("neighbours", 8, **shuffled), a)
    np.testing.assert_array_equal(select("neighbours", 8, seed=9, **inp), a)
    # its own option: k = 2 looks at the two nearest only
    from labelrefine.active.samplers import Neighbours

    two = ranked(Neighbours(k=2), 3, **inp, class_names=["a", "b", "c"])
    assert sorted(two.items.tolist()) == [103, 114, 125]
    assert two.reasons[0].startswith("0 of the 2 most similar images carry the given")
    with pytest.raises(ValueError, match="k must be >= 1"):
        Neighbours(k=0)


def test_neighbours_excluded_items_are_not_neighbours() -> None:
    inp = _clusters()
    # with the 9 correctly labelled cluster mates of item 3 excluded, its nearest items are the
    # other clusters' and the wrong b no longer stands out against cluster a
    exclude = np.array([100, 101, 102, 104, 105, 106, 107, 108, 109])
    r = ranked("neighbours", None, exclude=exclude, with_reasons=False, **inp)
    assert 103 in r.items and not set(exclude.tolist()) & set(r.items.tolist())
    assert r.scores[r.items.tolist().index(103)] < 0.9


def test_neighbours_on_a_pool_of_one() -> None:
    r = ranked("neighbours", 1, pool=np.array([7]), given_labels=np.array([1]),
               pool_features=np.ones((1, 3)))
    assert r.items.tolist() == [7] and r.scores.tolist() == [0.0]
    assert r.reasons == ("no other pool item to compare with",)
