"""Confident-learning scores, the combined sampler and class-aware budgets (pure functions)."""

from __future__ import annotations

import numpy as np
import pytest
from cleanlab.rank import get_label_quality_scores

from conftest import (
    TINY_BUDGET,
    TINY_C,
    TINY_D,
    TINY_N,
    tiny_pipeline_config,
    tiny_pipeline_context,
    tiny_pipeline_world,
)
from labelrefine.active.budgets import (
    allocate_budget,
    class_weights,
    expected_wrong_per_class,
    quota_select,
)
from labelrefine.active.label_quality import cl_scores, combined_scores, rank_percentiles


def _probs(n: int = 200, c: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.full(c, 0.5), size=n)
    y = rng.integers(0, c, size=n)
    return p, y


@pytest.mark.parametrize("method", ["self_confidence", "normalized_margin"])
@pytest.mark.parametrize("adjust", [False, True])
def test_cl_scores_equal_cleanlab(method: str, adjust: bool) -> None:
    p, y = _probs()
    want = 1.0 - get_label_quality_scores(y, p, method=method, adjust_pred_probs=adjust)
    np.testing.assert_allclose(cl_scores(p, y, method=method, adjust=adjust), want, rtol=0,
                               atol=1e-12)


def test_cl_scores_rank_contradicted_labels_first() -> None:
    # Three items the model is sure are class 0; the one labelled 2 is the wrong label.
    p = np.array([[0.9, 0.05, 0.05], [0.9, 0.05, 0.05], [0.9, 0.05, 0.05], [0.2, 0.6, 0.2]])
    y = np.array([0, 2, 0, 1])
    s = cl_scores(p, y, method="self_confidence", adjust=False)
    assert int(np.argmax(s)) == 1
    np.testing.assert_allclose(s, [0.1, 0.95, 0.1, 0.4])


def test_cl_scores_bad_input_names_item() -> None:
    p, y = _probs(5, 3)
    with pytest.raises(ValueError, match=r"given_labels\[2\] = 7"):
        cl_scores(p, np.array([0, 1, 7, 0, 1]))
    with pytest.raises(ValueError, match="row 1 sums"):
        cl_scores(np.array([[0.5, 0.5], [0.9, 0.9]]), np.array([0, 1]))
    with pytest.raises(ValueError, match="unknown cleanlab method"):
        cl_scores(p, y, method="nope")  # type: ignore[arg-type]


def test_combined_weight_endpoints_and_determinism() -> None:
    p, y = _probs()
    h = -(p * np.log(p)).sum(1)
    np.testing.assert_allclose(combined_scores(p, y, weight=0.0), rank_percentiles(cl_scores(p, y)))
    np.testing.assert_allclose(combined_scores(p, y, weight=1.0), rank_percentiles(h))
    mid = combined_scores(p, y, weight=0.3)
    np.testing.assert_array_equal(mid, combined_scores(p, y, weight=0.3))
    assert mid.min() > 0 and mid.max() <= 1
    with pytest.raises(ValueError, match="weight"):
        combined_scores(p, y, weight=1.5)


def test_combined_trades_precision_for_uncertainty() -> None:
    # Item 0: confidently contradicted label (wrong). Item 1: uniform prediction, label ok.
    p = np.array([[0.96, 0.02, 0.02], [0.34, 0.33, 0.33], [0.9, 0.05, 0.05],
                  [0.05, 0.9, 0.05]])
    y = np.array([1, 0, 0, 1])
    kw = {"method": "self_confidence", "adjust": False}
    assert int(np.argmax(combined_scores(p, y, weight=0.0, **kw))) == 0
    assert int(np.argmax(combined_scores(p, y, weight=1.0, **kw))) == 1


# ----------------------------------------------------------------------------- budgets


def test_allocate_exact_largest_remainder() -> None:
    # ideal shares 10 * [5, 3, 2] / 10 = [5, 3, 2]; then 7 * [.5, .3, .2] = [3.5, 2.1, 1.4]
    q = allocate_budget(10, np.array([5.0, 3.0, 2.0]), np.array([100, 100, 100]))
    np.testing.assert_array_equal(q, [5, 3, 2])
    q = allocate_budget(7, np.array([5.0, 3.0, 2.0]), np.array([100, 100, 100]))
    np.testing.assert_array_equal(q, [4, 2, 1])  # floors 3,2,1; remainder to .5
    # equal remainders: ties to the lower class index
    q = allocate_budget(2, np.ones(3), np.array([5, 5, 5]))
    np.testing.assert_array_equal(q, [1, 1, 0])


def test_allocate_redistributes_when_a_class_runs_out() -> None:
    # equal weights, 12 labels: ideal 4 each, class 1 has only 1 item -> its 3 go to 0 and 2
    q = allocate_budget(12, np.ones(3), np.array([10, 1, 10]))
    np.testing.assert_array_equal(q, [6, 1, 5])
    assert q.sum() == 12
    # budget larger than the pool: everything is taken
    q = allocate_budget(50, np.array([1.0, 0.0, 3.0]), np.array([2, 4, 3]))
    np.testing.assert_array_equal(q, [2, 4, 3])
    # zero-weight class with items gets nothing while others have room
    q = allocate_budget(3, np.array([1.0, 0.0, 1.0]), np.array([5, 5, 5]))
    np.testing.assert_array_equal(q, [2, 0, 1])


@pytest.mark.parametrize("seed", range(20))
def test_allocate_invariants_random(seed: int) -> None:
    rng = np.random.default_rng(seed)
    c = int(rng.integers(2, 8))
    avail = rng.integers(0, 30, size=c)
    w = rng.random(c) * (rng.random(c) > 0.3)
    k = int(rng.integers(0, 120))
    q = allocate_budget(k, w, avail)
    assert q.sum() == min(k, avail.sum())
    assert np.all(q >= 0) and np.all(q <= avail)


def test_quota_select_honours_quotas_exactly() -> None:
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3])
    classes = np.array([0, 0, 0, 0, 1, 1, 2])
    picked = quota_select(scores, classes, np.array([1, 2, 1]))
    np.testing.assert_array_equal(picked, [0, 4, 5, 6])
    np.testing.assert_array_equal(np.bincount(classes[picked], minlength=3), [1, 2, 1])
    with pytest.raises(ValueError, match="quota 3 for class 2 exceeds its 1 items"):
        quota_select(scores, classes, np.array([0, 0, 3]))


def test_class_weights_rules() -> None:
    pool = np.array([0] * 6 + [1] * 3 + [2])
    np.testing.assert_array_equal(class_weights("pool", pool, 4), [6, 3, 1, 0])
    np.testing.assert_allclose(class_weights("inverse", pool, 4), [1 / 6, 1 / 3, 1, 0])
    p = np.tile([0.7, 0.1, 0.1, 0.1], (10, 1))
    e = expected_wrong_per_class(p, pool)
    np.testing.assert_allclose(e, [6 * 0.3, 3 * 0.9, 0.9, 0])
    np.testing.assert_allclose(class_weights("noise", pool, 4, expected_wrong=e), e)
    with pytest.raises(ValueError, match="needs expected_wrong"):
        class_weights("noise", pool, 4)


def _class_aware_select(scores, classes, k, num_classes, *, by):  # noqa: ANN001, ANN202
    """class_weights -> allocate_budget -> quota_select, as ours_plus composes them."""
    w = class_weights(by, classes, num_classes)
    quotas = allocate_budget(k, w, np.bincount(classes, minlength=num_classes))
    return quota_select(scores, classes, quotas)


def test_class_quotas_give_rare_class_its_share() -> None:
    # 90 majority items all score higher than the 10 rare ones: a plain top-10 takes no rare
    # item; inverse-frequency quotas give the rare class 9 of 10 (weights 1/90 vs 1/10).
    scores = np.concatenate([np.linspace(1.0, 0.6, 90), np.linspace(0.5, 0.1, 10)])
    classes = np.array([0] * 90 + [1] * 10)
    assert np.bincount(classes[np.argsort(-scores)[:10]], minlength=2)[1] == 0
    picked = _class_aware_select(scores, classes, 10, 2, by="inverse")
    np.testing.assert_array_equal(np.bincount(classes[picked], minlength=2), [1, 9])
    np.testing.assert_array_equal(picked[:1], [0])  # the majority's best item, then rare ones
    picked = _class_aware_select(scores, classes, 10, 2, by="pool")
    np.testing.assert_array_equal(np.bincount(classes[picked], minlength=2), [9, 1])


# ----------------------------------------------------------------------------- pipelines

N, D, C = TINY_N, TINY_D, TINY_C
BUDGET = TINY_BUDGET
_config, _context = tiny_pipeline_config, tiny_pipeline_context


@pytest.fixture(scope="module")
def world():
    """The tiny world with well-separated classes."""
    return tiny_pipeline_world(spread=2.5)


def _numbers(result: dict) -> list[tuple]:
    return [(r["round"], r["labels_bought"], r["test_f1"], r["val_f1"], r["query_precision"],
             r["n_clean"]) for r in result["rounds"]]


def test_out_of_sample_probs_see_through_wrong_labels(world) -> None:
    from labelrefine.pipelines.cleanlab_common import label_issues, out_of_sample_probs

    ctx = _context(world)
    d = ctx.data
    tr = d.train_idx
    probs = out_of_sample_probs(ctx, tr, d.given_labels)
    assert probs.shape == (tr.size, C)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    wrong = d.given_labels[tr] != d.true_labels[tr]
    # held-out heads predict the true class of most mislabeled items (40 % noise, clusters)
    assert np.mean(probs[wrong].argmax(1) == d.true_labels[tr][wrong]) > 0.8
    flagged = label_issues(d.given_labels[tr], probs)
    assert wrong[flagged].mean() > 0.8 and flagged[wrong].mean() > 0.7


def test_cleanlab_prune_and_relabel_run_deterministically(world) -> None:
    from labelrefine.config import PipelineSpec
    from labelrefine.pipelines import run_pipeline

    ctx = _context(world)
    prune = run_pipeline(PipelineSpec(name="cleanlab_prune"), ctx)
    assert [r["round"] for r in prune["rounds"]] == [0]
    assert prune["cleanlab"]["flag_precision"] > 0.8
    assert prune["rounds"][0]["n_clean"] == ctx.data.train_idx.size - prune["cleanlab"][
        "n_flagged"]
    rel = run_pipeline(PipelineSpec(name="cleanlab_relabel"), ctx)
    rounds = rel["rounds"]
    assert [r["labels_bought"] for r in rounds] == [0, BUDGET, 2 * BUDGET]
    assert _numbers({"rounds": rounds[:1]})[0][2] == prune["rounds"][0]["test_f1"]
    # cleanlab's lowest-quality items are (nearly all) wrong labels on this data
    assert rounds[1]["query_precision"] >= 0.9
    assert rel["final_wrong_labels"] == int(ctx.data.is_noisy[ctx.data.train_idx].sum()) - sum(
        r["n_changed"] for r in rounds)
    again = run_pipeline(PipelineSpec(name="cleanlab_prune"), _context(world))
    assert _numbers(again) == _numbers(prune)


# ----------------------------------------------------------------------------- ours_plus


def test_small_loss_split_per_class() -> None:
    from labelrefine.pipelines.ours_plus import small_loss_split

    loss = np.array([0.1, 0.9, 0.2, 0.8, 5.0, 4.0, 0.3])
    cls = np.array([0, 0, 0, 0, 1, 1, 1])
    clean = small_loss_split(loss, cls, 0.5, 2)
    # class 0 keeps its 2 smallest (0.1, 0.2); class 1 keeps 3 - round(1.5) = 1 (0.3) even
    # though its losses are the largest overall
    np.testing.assert_array_equal(clean, [True, False, True, False, False, False, True])
    assert small_loss_split(loss, cls, 0.0, 2).all()
    with pytest.raises(ValueError, match="rate"):
        small_loss_split(loss, cls, 1.5, 2)


def test_agreement_pseudo_labels() -> None:
    from labelrefine.pipelines.ours_plus import agreement_pseudo_labels

    a = np.array([[0.95, 0.05], [0.95, 0.05], [0.6, 0.4], [0.05, 0.95]])
    b = np.array([[0.92, 0.08], [0.05, 0.95], [0.95, 0.05], [0.01, 0.99]])
    np.testing.assert_array_equal(agreement_pseudo_labels(a, b, 0.9), [0, -1, -1, 1])


def test_plus_only_for_ours_plus() -> None:
    from labelrefine.config import ConfigError

    cfg = _config().model_dump(mode="json")
    cfg["pipelines"] = [{"name": "ours", "plus": {"resplit": False}}]
    from labelrefine.config import parse_config

    with pytest.raises(ConfigError, match="pipelines.0.*'plus' applies to pipeline ours_plus"):
        parse_config(cfg)


@pytest.mark.parametrize("plus", [
    {"sampler": "combined", "resplit": True, "unqueried": "agree"},
    {"sampler": "cl", "class_budget": "none", "resplit": False, "unqueried": "drop"},
    {"sampler": "entropy", "class_budget": "inverse"},
], ids=["combined-resplit-agree", "cl-only", "entropy-inverse"])
def test_ours_plus_runs_and_finds_wrong_labels(world, plus: dict) -> None:
    from labelrefine.config import PipelineSpec
    from labelrefine.pipelines import run_pipeline

    spec = PipelineSpec(name="ours_plus", plus=plus)
    res = run_pipeline(spec, _context(world))
    rounds = res["rounds"]
    assert [r["labels_bought"] for r in rounds] == [0, BUDGET, 2 * BUDGET]
    assert all(sum(r["queried_per_class"]) == BUDGET for r in rounds[1:])
    if plus["sampler"] in ("cl", "combined"):
        # clustered data: the label-quality ranking queries (nearly) only wrong labels
        assert rounds[1]["query_precision"] >= 0.9
    if plus.get("unqueried", "drop") == "drop":
        assert all(r["n_pseudo"] == 0 for r in rounds[1:])
    else:
        assert rounds[1]["n_pseudo"] > 0
        assert rounds[1]["pseudo_wrong"] <= 0.1 * rounds[1]["n_pseudo"]
    again = run_pipeline(spec, _context(world))
    assert _numbers(again) == _numbers(res)


def test_ours_plus_with_every_switch_off_is_ours(world) -> None:
    """The ablation baseline: no re-split, no pseudo-labels, no quotas, entropy = ``ours``."""
    from labelrefine.config import PipelineSpec
    from labelrefine.pipelines import run_pipeline

    off = {"sampler": "entropy", "class_budget": "none", "resplit": False, "unqueried": "drop",
           "pool": "suspects", "train_on": "clean"}
    plus = run_pipeline(PipelineSpec(name="ours_plus", plus=off), _context(world))
    ours = run_pipeline(PipelineSpec(name="ours", sampler="entropy"), _context(world))
    assert _numbers(plus) == _numbers(ours)
    assert plus["final_wrong_labels"] == ours["final_wrong_labels"]


def test_registered_cl_sampler_ranks_pool_by_cleanlab_quality() -> None:
    from labelrefine.active.ranking import ranked

    p, y = _probs(50, 4, seed=3)
    pool = np.arange(100, 150)[::-1].copy()  # pool given in descending item order
    r = ranked("cl", 10, pool=pool, probs=p, given_labels=y, class_names=list("abcd"))
    q = get_label_quality_scores(y, p, method="normalized_margin", adjust_pred_probs=False)
    want = pool[np.argsort(q, kind="stable")[:10]]
    np.testing.assert_array_equal(np.sort(r.items), np.sort(want))
    np.testing.assert_allclose(r.scores, 1.0 - np.sort(q)[:10])
    assert all("the given" in reason and "label's quality low" in reason for reason in r.reasons)
    c = ranked("combined", 5, pool=pool, probs=p, given_labels=y)
    sc = combined_scores(p, y)
    want_c = pool[np.lexsort((pool, -sc))[:5]]  # highest score, ties by ascending item
    np.testing.assert_array_equal(c.items, want_c)


def test_ours_runs_with_registered_cl_sampler(world) -> None:
    from labelrefine.config import PipelineSpec
    from labelrefine.pipelines import run_pipeline

    res = run_pipeline(PipelineSpec(name="ours", sampler="cl"), _context(world))
    assert [r["labels_bought"] for r in res["rounds"]] == [0, BUDGET, 2 * BUDGET]
    assert res["rounds"][1]["query_precision"] >= 0.9


def test_ours_plus_pool_all_queries_outside_the_suspects(world, monkeypatch) -> None:
    """``pool: suspects`` queries only phase 1's suspects; ``pool: all`` any training item."""
    from labelrefine.active.oracle import SimulatedOracle
    from labelrefine.config import PipelineSpec
    from labelrefine.pipelines import run_pipeline
    from labelrefine.pipelines.common import phase1

    asked: list[np.ndarray] = []
    orig = SimulatedOracle.query

    def spy(oracle, indices):
        asked.append(np.asarray(indices).copy())
        return orig(oracle, indices)

    monkeypatch.setattr(SimulatedOracle, "query", spy)
    ctx = _context(world)
    lnl, _, _ = phase1(ctx, "ct_vog", ctx.cfg.lnl.mix)
    base = {"sampler": "random", "class_budget": "none"}
    for pool in ("suspects", "all"):
        asked.clear()
        run_pipeline(PipelineSpec(name="ours_plus", plus={**base, "pool": pool}), _context(world))
        items = np.concatenate(asked)
        assert np.unique(items).size == items.size == 2 * BUDGET  # nobody is asked twice
        assert np.isin(items, ctx.data.train_idx).all()
        inside = np.isin(items, lnl.suspect_idx)
        if pool == "suspects":
            assert inside.all()
        else:
            assert not inside.all(), "pool: all never left the suspects"


def test_ours_plus_select_keeps_the_fit_with_higher_val_f1(world) -> None:
    """Round 1 starts from the same weights and queries the same items under every
    ``train_on``; ``select`` must then equal whichever of clean / relabeled validates higher."""
    from labelrefine.config import PipelineSpec
    from labelrefine.pipelines import run_pipeline

    def first_round(train_on: str, trust_min: float = 0.8) -> dict:
        spec = PipelineSpec(name="ours_plus", plus={"train_on": train_on,
                                                    "trust_min": trust_min})
        return run_pipeline(spec, _context(world))["rounds"][1]

    single = {t: first_round(t, 0.0) for t in ("clean", "relabeled", "trusted")}
    assert single["relabeled"]["n_clean"] == BUDGET  # trained on the expert's answers only
    assert single["clean"]["n_clean"] > BUDGET
    # trust_min 0: every class is trusted, so "trusted" is the clean set plus the answers
    assert single["trusted"]["n_clean"] == single["clean"]["n_clean"]
    assert single["trusted"]["trusted_classes"] == [0, 1, 2]
    select = first_round("select")
    best = max(("clean", "relabeled"), key=lambda t: (single[t]["val_f1"], t == "clean"))
    assert select["trained_on"] == best
    for key in ("val_f1", "test_f1", "n_clean", "query_precision"):
        assert select[key] == single[best][key]
    # trust_min 1: no class can be trusted, so "trusted" is the answers only
    assert first_round("trusted", 1.0)["n_clean"] == BUDGET


def test_trusted_classes_from_answers() -> None:
    from labelrefine.pipelines.ours_plus import trusted_classes

    given = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    answer = np.array([0, 0, 0, 0, 1, 2, 2, 2])  # class 0 confirmed 4/4, class 1 1/4
    # posterior means: class 0 5/6 = 0.83, class 1 2/6 = 0.33, class 2 (never asked) 0.5
    np.testing.assert_array_equal(trusted_classes(given, answer, 3, 0.8), [True, False, False])
    np.testing.assert_array_equal(trusted_classes(given, answer, 3, 0.9), [False, False, False])
    np.testing.assert_array_equal(trusted_classes(given, answer, 3, 0.0), [True, True, True])
    with pytest.raises(ValueError, match="min_precision"):
        trusted_classes(given, answer, 3, 1.5)
    with pytest.raises(ValueError, match="same 1-D shape"):
        trusted_classes(given, answer[:3], 3, 0.5)
