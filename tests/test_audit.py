"""``active.audit``: the budget split, score strata, the stratified random audit draw, the
round's queue, and the model-assisted estimate of the wrong labels left (exact when everything
is audited, unbiased with honest intervals on repeated draws, exact bookkeeping of later finds,
additive over parts)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.special import entr

from labelrefine.active.audit import (
    AuditRound,
    compose_queue,
    remaining_wrong,
    round_estimate,
    score_strata,
    split_budget,
    stratified_draw,
)

# -------------------------------------------------------------------------------- split_budget


@pytest.mark.parametrize("budget", [1, 3, 7, 10, 25, 60])
@pytest.mark.parametrize("audit_share", [0.0, 0.05, 0.1, 0.5, 1.0])
@pytest.mark.parametrize("info_share", [0.0, 0.3])
def test_split_budget_adds_up_and_keeps_an_audit_item(budget, audit_share, info_share):
    pool = 40
    n_f, n_i, n_a = split_budget(budget, audit_share, info_share, pool)
    assert min(n_f, n_i, n_a) >= 0
    assert n_f + n_i + n_a == min(budget, pool)  # never more than the pool
    if audit_share > 0:
        assert n_a >= 1
        assert abs(n_a - audit_share * min(budget, pool)) <= 1
    else:
        assert n_a == 0
    assert n_i == round(info_share * (min(budget, pool) - n_a))


def test_split_budget_shares_and_bad_shares():
    assert split_budget(20, 0.25, 0.4, 100) == (9, 6, 5)
    assert split_budget(5, 0.1, 0.0, 100) == (4, 0, 1)  # 0.5 items -> still one audit item
    assert split_budget(10, 1.0, 0.0, 3) == (0, 0, 3)
    assert split_budget(10, 0.1, 0.0, 0) == (0, 0, 0)
    for a, i in ((-0.1, 0), (1.1, 0), (0.1, -0.5), (0.1, 2)):
        with pytest.raises(ValueError, match="shares must be in"):
            split_budget(10, a, i, 100)


# -------------------------------------------------------------------------------- score_strata


@pytest.mark.parametrize("n", [1, 3, 10, 37, 100])
def test_score_strata_are_equal_count_bands_in_score_order(n):
    rng = np.random.default_rng(n)
    s = rng.random(n)
    st = score_strata(s, 4)
    h = min(4, n)
    counts = np.bincount(st, minlength=h)
    assert counts.size == h and counts.max() - counts.min() <= 1 and counts.min() >= 1
    order = np.argsort(s)
    assert (np.diff(st[order]) >= 0).all()  # 0 = lowest scores


def test_score_strata_with_ties_still_split_evenly():
    st = score_strata(np.zeros(12), 3)
    np.testing.assert_array_equal(np.bincount(st), [4, 4, 4])


# ---------------------------------------------------------------------------- stratified_draw


def test_stratified_draw_allocates_in_proportion():
    st = np.repeat([0, 1, 2], [200, 100, 100])
    rng = np.random.default_rng(0)
    pos = stratified_draw(st, 40, rng)
    assert np.unique(pos).size == 40 and (np.diff(pos) > 0).all()
    np.testing.assert_array_equal(np.bincount(st[pos]), [20, 10, 10])


def test_stratified_draw_keeps_every_stratum_while_draws_last():
    st = np.repeat([0, 1, 2, 3], [97, 1, 1, 1])
    np.testing.assert_array_equal(
        np.bincount(st[stratified_draw(st, 4, np.random.default_rng(1))]), [1, 1, 1, 1])
    np.testing.assert_array_equal(
        np.bincount(st[stratified_draw(st, 7, np.random.default_rng(1))]), [4, 1, 1, 1])
    # fewer draws than strata: the highest strata first
    two = stratified_draw(np.repeat([0, 1, 2, 3], 10), 2, np.random.default_rng(2))
    assert sorted(np.repeat([0, 1, 2, 3], 10)[two]) == [2, 3]


def test_stratified_draw_caps_at_the_rows_and_handles_nothing():
    st = np.array([0, 0, 1, 1, 1])
    np.testing.assert_array_equal(stratified_draw(st, 50, np.random.default_rng(0)),
                                  np.arange(5))
    assert stratified_draw(st, 0, np.random.default_rng(0)).size == 0
    assert stratified_draw(np.zeros(0, dtype=int), 3, np.random.default_rng(0)).size == 0


def test_stratified_draw_is_random_across_seeds_and_fixed_for_a_seed():
    st = np.repeat([0, 1, 2, 3], 25)
    draws = [tuple(stratified_draw(st, 8, np.random.default_rng(s))) for s in range(10)]
    assert len(set(draws)) > 5
    assert draws[3] == tuple(stratified_draw(st, 8, np.random.default_rng(3)))
    # simple random sampling inside a stratum: every member gets drawn at some point
    seen = set()
    for s in range(200):
        seen |= set(stratified_draw(st, 8, np.random.default_rng(s)).tolist())
    assert seen == set(range(100))


# ------------------------------------------------------------------------------ compose_queue


def queue_inputs(n: int = 60, seed: int = 0):
    rng = np.random.default_rng(seed)
    pool = 1000 + rng.permutation(n)  # item ids, not positions
    return pool, rng.random(n), rng.dirichlet(np.ones(3) * 0.7, n)


def test_compose_queue_parts_population_and_targeted_picks():
    pool, scores, probs = queue_inputs()
    plan = compose_queue(pool, scores, probs, 20, seed=3, audit_share=0.2, info_share=0.25)
    assert (plan.find.size, plan.info.size, plan.audit.size) == (12, 4, 4)
    by_score = pool[np.argsort(-scores)]
    np.testing.assert_array_equal(plan.find, by_score[:12])
    rest = np.setdiff1d(pool, plan.find)
    ent = dict(zip(pool.tolist(), entr(probs).sum(axis=1), strict=True))
    top_rest = sorted(rest.tolist(), key=lambda i: -ent[i])[:4]
    assert set(plan.info) == set(top_rest)
    targeted = np.concatenate([plan.find, plan.info])
    np.testing.assert_array_equal(np.sort(plan.population), np.setdiff1d(pool, targeted))
    assert not set(plan.audit) & set(targeted)
    assert set(plan.audit) <= set(plan.population)
    assert sorted(plan.order.tolist()) == sorted(np.concatenate([targeted, plan.audit]).tolist())
    # the targeted picks keep their order; audit items are only inserted between them
    kept = [i for i in plan.order if i in set(targeted.tolist())]
    assert kept == targeted.tolist()
    assert plan.strata.shape == plan.population.shape
    purpose = plan.purpose()
    assert {purpose[int(i)] for i in plan.audit} == {"audit"}
    assert {purpose[int(i)] for i in plan.find} == {"find"}
    design = json.loads(json.dumps(plan.design()))
    assert design["audit"] == plan.audit.tolist()
    assert len(design["population"]) == len(design["strata"]) == plan.population.size


def test_compose_queue_mixes_audit_items_at_random_positions():
    pool, scores, probs = queue_inputs(seed=1)
    positions = []
    for s in range(30):
        plan = compose_queue(pool, scores, probs, 10, seed=s, audit_share=0.3)
        aud = set(plan.audit.tolist())
        positions.append(tuple(k for k, i in enumerate(plan.order) if i in aud))
    assert len(set(positions)) > 10
    assert any(p[0] < 7 for p in positions)  # not always after the targeted picks
    assert min(p[0] for p in positions) == 0 and max(p[-1] for p in positions) == 9


def test_compose_queue_is_deterministic_and_validates_scores():
    pool, scores, probs = queue_inputs(seed=2)
    a = compose_queue(pool, scores, probs, 12, seed=7, audit_share=0.25)
    b = compose_queue(pool, scores, probs, 12, seed=7, audit_share=0.25)
    for f in ("find", "info", "audit", "order", "population", "strata"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
    others = {tuple(compose_queue(pool, scores, probs, 12, seed=s, audit_share=0.25).audit)
              for s in range(8)}
    assert len(others) > 1
    with pytest.raises(ValueError, match="scores has shape"):
        compose_queue(pool, scores[:-1], probs, 12, seed=0)


def test_compose_queue_without_audit_share_audits_nothing():
    pool, scores, probs = queue_inputs(seed=3)
    plan = compose_queue(pool, scores, probs, 12, seed=0, audit_share=0.0)
    assert plan.audit.size == 0 and plan.order.size == 12
    np.testing.assert_array_equal(plan.order, pool[np.argsort(-scores)[:12]])


# ------------------------------------------------------------------------ the estimate: setup


def population(n: int = 400, seed: int = 0):
    """Items 0..n-1 with known wrong flags, more of them at high finding score."""
    rng = np.random.default_rng(seed)
    score = rng.random(n)
    wrong = rng.random(n) < 0.05 + 0.3 * score
    given = rng.integers(0, 3, n)
    truth = np.where(wrong, (given + 1) % 3, given)
    return score, wrong, given, truth


def audited(given, truth, items):
    answer = np.full(given.size, -1, dtype=np.int64)
    answer[items] = truth[items]
    return answer


def test_estimate_is_exact_with_a_zero_width_interval_when_everything_is_audited():
    score, wrong, given, truth = population(80, seed=1)
    targeted = np.arange(10)  # picked by the finder, still unanswered
    pop = np.arange(10, 80)
    rnd = AuditRound(population=pop, strata=score_strata(score[pop], 4), audit=pop,
                     m=np.random.default_rng(0).random(pop.size))  # any model at all
    answer = audited(given, truth, pop)
    m_now = wrong.astype(np.float64)  # a model that knows the open targeted picks exactly
    est = remaining_wrong([rnd], given=given, answer=answer, m_now=m_now, items=np.arange(80))
    true_left = int(wrong[targeted].sum())
    assert true_left > 0
    assert est.estimate == pytest.approx(true_left, abs=1e-12)
    assert est.low == est.high == pytest.approx(true_left, abs=1e-12)
    assert (est.n_left, est.audited, est.rounds) == (10, 70, 1)
    w, var, n_r, u_r = round_estimate(rnd, answer != given, answer >= 0, np.ones(80, bool))
    assert (w, var, n_r, u_r) == (pytest.approx(0.0), pytest.approx(0.0), 70, 0)


@pytest.mark.parametrize("model", ["anti", "constant"])
def test_estimate_is_unbiased_and_its_interval_covers_over_repeated_audits(model):
    """400 items, 60 audited per draw, 300 draws; the model's wrong-probability is deliberately
    bad: high where labels are mostly right ("anti") or one value for all ("constant")."""
    score, wrong, given, truth = population(400, seed=0)
    st = score_strata(score, 4)
    pop = np.arange(400)
    m = np.where(score > 0.5, 0.02, 0.6) if model == "anti" else np.full(400, 0.3)
    errors, covered = [], 0
    for s in range(300):
        a = pop[stratified_draw(st, 60, np.random.default_rng(s))]
        est = remaining_wrong([AuditRound(pop, st, a, m)], given=given,
                              answer=audited(given, truth, a), m_now=np.zeros(400),
                              items=pop)
        true_left = int(wrong.sum() - wrong[a].sum())
        errors.append(est.estimate - true_left)
        covered += est.low <= true_left <= est.high
    errors = np.asarray(errors)
    se = errors.std(ddof=1) / np.sqrt(errors.size)
    assert abs(errors.mean()) < 4 * se
    assert covered / 300 >= 0.88


def one_round(seed: int = 2, n: int = 200, n_audit: int = 40):
    score, wrong, given, truth = population(n, seed=seed)
    pop = np.arange(20, n)  # items 0..19 were the round's targeted picks, answered
    st = score_strata(score[pop], 4)
    a = pop[stratified_draw(st, n_audit, np.random.default_rng(seed))]
    m = np.clip(0.1 + 0.3 * score[pop], 0, 1)
    answer = audited(given, truth, np.concatenate([np.arange(20), a]))
    return AuditRound(pop, st, a, m), score, wrong, given, truth, answer


def test_a_later_round_finding_wrong_labels_lowers_the_estimate_by_exactly_that_number():
    rnd, _, wrong, given, truth, answer = one_round()
    items = np.arange(200)
    kw = dict(given=given, m_now=np.zeros(200), items=items)
    before = remaining_wrong([rnd], answer=answer, **kw)
    unaudited = np.setdiff1d(rnd.population, rnd.audit)
    found_wrong = unaudited[wrong[unaudited]][:5]
    found_right = unaudited[~wrong[unaudited]][:7]
    later = answer.copy()
    later[found_wrong] = truth[found_wrong]
    later[found_right] = truth[found_right]
    after = remaining_wrong([rnd], answer=later, **kw)
    assert 5 < before.estimate < before.n_left  # no clipping in play
    assert after.estimate == pytest.approx(before.estimate - 5, abs=1e-9)
    assert after.high == pytest.approx(before.high - 5, abs=1e-9)  # same sd, shifted
    assert after.low == pytest.approx(max(0.0, before.low - 5), abs=1e-9)
    assert after.n_left == before.n_left - 12
    assert after.audited == before.audited


def test_part_estimates_add_up_to_the_whole():
    rnd1, score, wrong, given, truth, answer = one_round(seed=3)
    # a second audited round over the rest of the pool, with its own design
    rest = np.setdiff1d(rnd1.population, np.concatenate([rnd1.audit, np.arange(20, 40)]))
    st2 = score_strata(score[rest], 4)
    a2 = rest[stratified_draw(st2, 30, np.random.default_rng(9))]
    rnd2 = AuditRound(rest, st2, a2, np.full(rest.size, 0.2))
    answer = answer.copy()
    answer[np.arange(20, 40)] = truth[np.arange(20, 40)]
    answer[a2] = truth[a2]
    m_now = np.clip(0.1 + 0.3 * score, 0, 1)
    part = np.random.default_rng(4).random(200) < 0.5
    kw = dict(given=given, answer=answer, m_now=m_now, items=np.arange(200))
    whole = remaining_wrong([rnd1, rnd2], **kw)
    a = remaining_wrong([rnd1, rnd2], domain=part, **kw)
    b = remaining_wrong([rnd1, rnd2], domain=~part, **kw)
    assert whole.rounds == a.rounds == b.rounds == 2
    for e in (a, b):
        assert 0 < e.estimate < e.n_left  # no clipping in play
    assert a.estimate + b.estimate == pytest.approx(whole.estimate, rel=1e-9)
    assert a.n_left + b.n_left == whole.n_left


def test_no_sure_audit_answer_gives_none_and_unsure_answers_are_ignored():
    rnd, _, _, given, truth, answer = one_round(seed=5)
    kw = dict(given=given, m_now=np.zeros(200), items=np.arange(200))
    unsure_all = answer.copy()
    unsure_all[rnd.audit] = -1  # every audited item answered "unsure"
    assert remaining_wrong([rnd], answer=unsure_all, **kw) is None
    assert remaining_wrong([], answer=answer, **kw) is None
    assert round_estimate(rnd, unsure_all != given, unsure_all >= 0,
                          np.ones(200, bool)) is None
    # one audit item unsure: the same as a design that never audited it
    one = answer.copy()
    dropped = rnd.audit[3]
    one[dropped] = -1
    got = remaining_wrong([rnd], answer=one, **kw)
    smaller = AuditRound(rnd.population, rnd.strata, np.delete(rnd.audit, 3), rnd.m)
    ref = remaining_wrong([smaller], answer=one, **kw)
    assert got.as_dict() == pytest.approx(ref.as_dict())
    assert got.audited == rnd.audit.size - 1
    # a round without a sure audit answer adds nothing to the combination
    both = remaining_wrong([rnd, AuditRound(rnd.population, rnd.strata, rnd.audit[:0],
                                            rnd.m)], answer=answer, **kw)
    assert both.as_dict() == pytest.approx(remaining_wrong([rnd], answer=answer, **kw).as_dict())


def test_stratified_draw_always_draws_the_number_asked_for():
    rng = np.random.default_rng(0)
    for _ in range(200):
        sizes = rng.integers(1, 30, rng.integers(1, 6))
        st = np.repeat(np.arange(sizes.size), sizes)
        n = int(rng.integers(0, st.size + 3))
        pos = stratified_draw(st, n, rng)
        assert pos.size == min(n, st.size) and np.unique(pos).size == pos.size
        if n >= sizes.size:
            assert np.unique(st[pos]).size == sizes.size


def exact_bias(strata: int) -> float:
    """The exact expected error of a one-item audit over a 400-item population whose wrong
    labels concentrate at high scores (constant model m = 0.2): the mean of estimate - truth
    over every audit item the design can draw, each equally likely."""
    score, wrong, given, truth = population(400, seed=0)
    wrong = np.random.default_rng(1).random(400) < 0.05 + 0.5 * score
    truth = np.where(wrong, (given + 1) % 3, given)
    pool = np.arange(400)
    probs = np.full((400, 3), 1 / 3)
    plans = [compose_queue(pool, score, probs, 1, seed=s, audit_share=1.0, strata=strata)
             for s in range(40)]
    plan = plans[0]
    top = plan.strata.max()
    support = plan.population[plan.strata == top]  # a one-item draw comes from the top band
    assert all(p.audit.size == 1 and p.audit[0] in support for p in plans)
    m = np.full(plan.population.size, 0.2)
    errors = []
    for j in support:
        rnd = AuditRound(plan.population, plan.strata, np.array([j]), m)
        answer = audited(given, truth, np.array([j]))
        est = remaining_wrong([rnd], given=given, answer=answer, m_now=np.zeros(400),
                              items=pool)
        # one stratum after merging, m constant: W = 399 m + 399 (y_j - m) = 399 y_j, so
        # clipping to [0, 399] never distorts the mean
        assert est.estimate == pytest.approx(399.0 * wrong[j])
        errors.append(est.estimate - int(wrong.sum() - wrong[j]))
    return float(np.mean(errors))


def test_a_one_item_simple_random_audit_is_exactly_unbiased():
    assert exact_bias(strata=1) == pytest.approx(0.0, abs=1e-6)


def test_a_one_item_audit_over_the_default_strata_is_unbiased():
    """Fewer draws than score bands used to sample only the top bands and extrapolate them to
    the whole population (a bias of about +90 here); the bands now never outnumber the draws."""
    assert exact_bias(strata=4) == pytest.approx(0.0, abs=1.0)
