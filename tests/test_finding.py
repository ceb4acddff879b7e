"""``active.finding``: cross-fitted (out-of-sample) probabilities, stratified folds, cosine
neighbours and their label agreement, the query-first finding scores, and one finding round's
queue over a training set."""

from __future__ import annotations

import numpy as np
import pytest

from labelrefine.active.finding import (
    EPS,
    crossfit_probs,
    find,
    finding_reason,
    finding_scores,
    fit_logistic,
    fold_ids,
    neighbour_agreement,
    neighbours,
    plan_round,
    predict_full,
    project,
)


def clustered(n_per: int = 20, classes: int = 3, dim: int = 8, flip: int = 6, seed: int = 0,
              spread: float = 0.3):
    """Well-separated clusters (one direction per class, so cosine distance separates them
    too); ``flip`` labels moved to the next class. Returns features, given, true, flipped."""
    rng = np.random.default_rng(seed)
    true = np.repeat(np.arange(classes), n_per)
    centres = 3.0 * np.eye(dim)[:classes]
    x = centres[true] + spread * rng.standard_normal((true.size, dim))
    given = true.copy()
    wrong = rng.choice(true.size, size=flip, replace=False)
    given[wrong] = (true[wrong] + 1) % classes
    return x, given, true, np.sort(wrong)


# ------------------------------------------------------------------------------ crossfit_probs


def test_crossfit_is_out_of_sample_where_in_sample_memorises_noise():
    """Pure-noise features, random labels: a weakly regularised fit on all rows gives each row's
    own label a high probability; the cross-fitted probabilities do not beat chance."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((80, 60))  # fewer than 2 D rows: separable, memorisable
    y = rng.integers(0, 2, 80)
    rows = np.arange(y.size)
    clf = fit_logistic(x, y, 2, c=100.0)
    in_sample = predict_full(clf, x, 2)[rows, y]
    assert in_sample.mean() > 0.9  # the property is worth testing: memorisation happens
    cross = crossfit_probs(x, y, 2, c=100.0, seed=0)[rows, y]
    assert cross.mean() < 0.6  # chance is 0.5; a leak of the own label would give ~0.99
    assert (cross > 0.5).mean() < 0.65


def test_a_rows_probabilities_ignore_its_own_fold():
    """Fold ids depend only on labels and seed; without standardisation, changing the features
    of the other rows of row i's fold leaves row i's probabilities exactly as they were, while
    rows of the other folds (whose models trained on them) move."""
    x, y, _, _ = clustered(n_per=15, flip=3, seed=2)
    fid = fold_ids(y, 5, seed=4)
    i = 7
    same = np.flatnonzero((fid == fid[i]) & (np.arange(y.size) != i))
    x2 = x.copy()
    x2[same] = np.random.default_rng(9).standard_normal((same.size, x.shape[1])) * 5
    p1 = crossfit_probs(x, y, 3, seed=4, c=1.0, standardize=False)
    p2 = crossfit_probs(x2, y, 3, seed=4, c=1.0, standardize=False)
    np.testing.assert_allclose(p2[i], p1[i], rtol=1e-6, atol=1e-9)
    others = fid != fid[i]
    assert np.abs(p2[others] - p1[others]).max() > 1e-3


def test_crossfit_rows_sum_to_one_and_every_class_has_a_column():
    x, y, _, _ = clustered(n_per=12, flip=0, seed=3)
    y = y.copy()
    y[0] = 3  # a class with a single member: absent from the training folds of its own row
    p = crossfit_probs(x, y, 5, seed=0)  # class 4 never occurs at all
    assert p.shape == (y.size, 5)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-9)
    assert (p > 0).all()
    assert p[0, 3] <= 2 * EPS  # its model never saw class 3
    assert p[:, 4].max() <= 2 * EPS


def test_crossfit_fold_with_a_single_training_class_gets_the_training_frequencies():
    y = np.zeros(10, dtype=np.int64)
    y[3] = 1
    x = np.random.default_rng(0).standard_normal((10, 4))
    p = crossfit_probs(x, y, 2, folds=2, seed=0)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    # row 3's fold trains on class 0 only: it gets (almost) all the mass on class 0
    assert p[3, 0] > 0.999


def test_crossfit_is_deterministic_for_a_seed_and_the_seed_matters():
    x, y, _, _ = clustered(seed=5)
    a = crossfit_probs(x, y, 3, seed=11)
    b = crossfit_probs(x, y, 3, seed=11)
    np.testing.assert_array_equal(a, b)
    c = crossfit_probs(x, y, 3, seed=12)
    assert not np.allclose(a, c)


def test_crossfit_bad_inputs_name_the_problem():
    x, y, _, _ = clustered(n_per=5, flip=0)
    bad = x.copy()
    bad[4, 2] = np.nan
    with pytest.raises(ValueError, match="row 4"):
        crossfit_probs(bad, y, 3)
    with pytest.raises(ValueError, match=f"{x.shape[0] - 1} rows for {y.size} labels"):
        crossfit_probs(x[:-1], y, 3)
    with pytest.raises(ValueError, match="sample_weight"):
        crossfit_probs(x, y, 3, sample_weight=np.ones(3))
    with pytest.raises(ValueError, match="2-D"):
        crossfit_probs(x[:, 0], y, 3)
    with pytest.raises(ValueError, match="labels"):
        crossfit_probs(x, y + 5, 3)


# ------------------------------------------------------------------------------------ fold_ids


def test_fold_ids_are_stratified_and_seeded():
    y = np.repeat([0, 1, 2], [23, 11, 3])
    fid = fold_ids(y, 5, seed=0)
    assert set(fid) == set(range(5))
    for c in (0, 1):
        counts = np.bincount(fid[y == c], minlength=5)
        assert counts.max() - counts.min() <= 1
    # a class with fewer members than folds: each member in a different fold
    assert len(set(fid[y == 2])) == 3
    np.testing.assert_array_equal(fid, fold_ids(y, 5, seed=0))
    assert any(not np.array_equal(fid, fold_ids(y, 5, seed=s)) for s in (1, 2, 3))


def test_fold_ids_refuse_too_few_folds_or_rows():
    with pytest.raises(ValueError, match="folds must be >= 2"):
        fold_ids(np.zeros(10, dtype=int), 1, 0)
    with pytest.raises(ValueError, match="4 rows cannot be split into 5 folds"):
        fold_ids(np.array([0, 1, 0, 1]), 5, 0)


# ---------------------------------------------------------------------------------- neighbours


def test_neighbours_exclude_self_and_find_exact_duplicates():
    rng = np.random.default_rng(0)
    base = rng.standard_normal((10, 6))
    x = np.concatenate([base, base])  # row i and i + 10 are identical
    nb = neighbours(x, k=3)
    assert nb.shape == (20, 3)
    rows = np.arange(20)
    assert not (nb == rows[:, None]).any()
    np.testing.assert_array_equal(nb[:, 0], (rows + 10) % 20)
    assert all(len(set(r)) == 3 for r in nb)


def test_neighbours_with_many_copies_never_return_self():
    rng = np.random.default_rng(1)
    x = np.concatenate([np.tile(rng.standard_normal((1, 4)), (6, 1)),
                        rng.standard_normal((8, 4))])
    nb = neighbours(x, k=2)
    for i in range(6):
        assert i not in nb[i] and set(nb[i]) <= set(range(6))


def test_neighbours_cap_k_and_reject_bad_input():
    x = np.random.default_rng(2).standard_normal((4, 3))
    assert neighbours(x, k=10).shape == (4, 3)  # at most n - 1 other rows
    with pytest.raises(ValueError, match="at least 2 rows"):
        neighbours(x[:1], k=1)
    with pytest.raises(ValueError, match="k must be >= 1"):
        neighbours(x, k=0)
    bad = x.copy()
    bad[2, 0] = np.inf
    with pytest.raises(ValueError, match="row 2"):
        neighbours(bad)


def test_neighbour_agreement_is_high_for_correct_and_low_for_flipped_labels():
    x, given, _, wrong = clustered(n_per=20, flip=6, seed=4)
    a = neighbour_agreement(x, given, 3, k=10)
    assert a.shape == given.shape and ((a >= 0) & (a <= 1)).all()
    ok = np.setdiff1d(np.arange(given.size), wrong)
    assert a[ok].mean() > 0.8
    assert a[wrong].max() < 0.3
    with pytest.raises(ValueError, match="rows for"):
        neighbour_agreement(x[:-2], given, 3)


# ------------------------------------------------------------------------------ finding_scores


@pytest.mark.parametrize("weight", [0.0, 0.5, 1.0])
def test_finding_scores_rank_flipped_labels_first(weight):
    x, given, _, wrong = clustered(n_per=30, flip=9, seed=6)
    probs = crossfit_probs(x, given, 3, c=1.0, seed=0)
    agree = neighbour_agreement(x, given, 3, k=10)
    s = finding_scores(probs, given, agreement=agree, weight=weight)
    assert s.shape == given.shape and ((s > 0) & (s <= 1)).all()
    top = np.argsort(-s, kind="stable")[: wrong.size]
    precision = np.isin(top, wrong).mean()
    assert precision >= 0.7  # base rate 9 / 90 = 0.1


def test_finding_scores_weight_one_follows_the_neighbour_agreement_only():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(3), 40)
    labels = rng.integers(0, 3, 40)
    agree = rng.permutation(40) / 40.0
    s = finding_scores(probs, labels, agreement=agree, weight=1.0)
    np.testing.assert_array_equal(np.argsort(s), np.argsort(-agree))


def test_finding_scores_validate_weight_and_agreement():
    probs = np.tile([0.6, 0.3, 0.1], (5, 1))
    labels = np.array([0, 1, 2, 0, 1])
    for w in (-0.1, 1.5):
        with pytest.raises(ValueError, match="weight must be in"):
            finding_scores(probs, labels, weight=w)
    with pytest.raises(ValueError, match="needs the neighbour agreement"):
        finding_scores(probs, labels, weight=0.5)
    with pytest.raises(ValueError, match=r"agreement has shape \(4,\), expected \(5,\)"):
        finding_scores(probs, labels, agreement=np.ones(4), weight=0.5)
    # weight 0 needs no agreement and ignores a wrong-shaped one
    assert finding_scores(probs, labels, agreement=np.ones(4), weight=0.0).shape == (5,)


# -------------------------------------------------------------------------------------- project


def test_project_reduces_only_when_asked_and_smaller():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((30, 12)) @ rng.standard_normal((12, 12))
    np.testing.assert_array_equal(project(x, None), x)
    np.testing.assert_array_equal(project(x, 12), x)  # not smaller than the feature count
    np.testing.assert_array_equal(project(x[:8], 10), x[:8])  # not smaller than the rows
    z = project(x, 4, seed=0)
    assert z.shape == (30, 4)
    var = z.var(axis=0)
    assert (np.diff(var) <= 1e-9).all()  # principal components, largest first
    # the first components carry more variance than any 4 original columns
    assert var.sum() >= np.sort(x.var(axis=0))[-4:].sum() - 1e-9
    np.testing.assert_allclose(project(x, 4, seed=0), z)
    with pytest.raises(ValueError, match="row 3"):
        project(np.where(np.arange(30)[:, None] == 3, np.nan, x), 4)


# ------------------------------------------------------------------------- find and plan_round


def test_find_aligns_rows_and_is_deterministic():
    x, given, _, wrong = clustered(n_per=20, flip=6, seed=7)
    a = find(x, given, 3, seed=3, weight=0.5, dims=None)
    b = find(x, given, 3, seed=3, weight=0.5, dims=None)
    np.testing.assert_array_equal(a.scores, b.scores)
    np.testing.assert_array_equal(a.probs, b.probs)
    assert a.probs.shape == (60, 3) and a.agreement.shape == a.scores.shape == (60,)
    np.testing.assert_array_equal(a.suggested, a.probs.argmax(axis=1))
    top = np.argsort(-a.scores)[:6]
    assert np.isin(top, wrong).mean() >= 0.6
    bad = x.copy()
    bad[11, 0] = np.nan
    with pytest.raises(ValueError, match="row 11"):
        find(bad, given, 3)
    with pytest.raises(ValueError, match="rows for"):
        find(x[:50], given, 3)


def round_data(seed: int = 8):
    """90 items, 72 of them training items; 6 wrong labels inside the training set and 4
    outside it."""
    x, given, _, _ = clustered(n_per=30, flip=0, seed=seed)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(90)
    train, rest = np.sort(perm[:72]), np.sort(perm[72:])
    wrong_in = rng.choice(train, 6, replace=False)
    wrong_out = rest[:4]
    given = given.copy()
    for w in np.concatenate([wrong_in, wrong_out]):
        given[w] = (given[w] + 1) % 3
    return x, given, train, np.sort(wrong_in), wrong_out


def test_plan_round_queues_budget_items_from_the_unasked_training_items():
    x, given, train, wrong_in, wrong_out = round_data()
    asked = np.setdiff1d(train, wrong_in)[:10]
    plan = plan_round(x, given, train, asked, 12, 3, seed=1, audit_share=0.25, weight=0.5,
                      dims=None)
    q = plan.queue
    assert q.order.size == 12 and np.unique(q.order).size == 12
    pool = np.setdiff1d(train, asked)
    assert set(q.order) <= set(pool)  # never an asked item, never an item outside training
    assert not set(q.order) & set(wrong_out)
    assert set(q.order) == set(q.find) | set(q.info) | set(q.audit)
    assert q.audit.size == 3 and not set(q.audit) & set(q.find)
    assert set(q.audit) <= set(q.population)
    np.testing.assert_array_equal(np.sort(q.population),
                                  np.setdiff1d(pool, np.concatenate([q.find, q.info])))
    # the finder looks at the whole training set: the wrong labels are found wherever they are
    assert np.isin(wrong_in, q.find).mean() >= 5 / 6
    assert plan.finding.scores.shape == (72,)
    np.testing.assert_array_equal(plan.train_idx, train)


def test_plan_round_is_deterministic_and_the_audit_depends_on_the_seed():
    x, given, train, _, _ = round_data(seed=9)
    kw = dict(audit_share=0.5, weight=0.5, dims=None)
    a = plan_round(x, given, train, np.zeros(0, dtype=int), 10, 3, seed=5, **kw)
    b = plan_round(x, given, train, np.zeros(0, dtype=int), 10, 3, seed=5, **kw)
    np.testing.assert_array_equal(a.queue.order, b.queue.order)
    np.testing.assert_array_equal(a.queue.audit, b.queue.audit)
    audits = {tuple(plan_round(x, given, train, np.zeros(0, dtype=int), 10, 3, seed=s,
                               **kw).queue.audit) for s in range(4)}
    assert len(audits) > 1


def test_plan_round_budget_larger_than_the_pool_queues_the_pool():
    x, given, train, _, _ = round_data(seed=10)
    asked = train[:68]
    plan = plan_round(x, given, train, asked, 50, 3, seed=0, dims=None)
    assert set(plan.queue.order) == set(train[68:])


def test_wrong_probability_is_one_minus_p_given_on_training_items_only():
    x, given, train, _, _ = round_data(seed=11)
    plan = plan_round(x, given, train, np.zeros(0, dtype=int), 5, 3, seed=0, dims=None)
    w = plan.wrong_probability(given)
    assert w.shape == (90,)
    outside = np.setdiff1d(np.arange(90), train)
    assert (w[outside] == 0).all()
    np.testing.assert_allclose(w[train], 1 - plan.finding.probs[np.arange(72), given[train]])


# ------------------------------------------------------------------------------ finding_reason


def test_finding_reason_when_the_model_disagrees():
    r = finding_reason(np.array([0.1, 0.7, 0.2]), 0, 0.3, 10, ("akiec", "bcc", "nv"))
    assert "the model finds bcc more likely (70%) than the given akiec (10%)" in r
    assert "3 of the 10 most similar images carry akiec" in r


def test_finding_reason_when_the_model_agrees_and_without_names():
    r = finding_reason(np.array([0.05, 0.15, 0.8]), 2, 0.9, 10, ("akiec", "bcc", "nv"))
    assert r.startswith("the model agrees with the given nv (80%)")
    assert "9 of the 10 most similar images carry nv" in r and "more likely" not in r
    r = finding_reason(np.array([0.6, 0.4]), 1, 0.2, 5)
    assert "finds 0 more likely (60%) than the given 1 (40%)" in r
    assert "1 of the 5 most similar images carry 1" in r
    for text in (r, finding_reason(np.array([0.6, 0.4]), 0, 1.0, 5)):
        assert "audit" not in text and "random" not in text


def test_flag_issues_flags_confident_disagreements_and_runs_in_a_worker():
    """``flag_issues`` is cleanlab's prune-by-noise-rate mask; it also runs inside a process
    pool worker (cleanlab's own pool does not)."""
    from concurrent.futures import ProcessPoolExecutor

    from labelrefine.active.finding import flag_issues

    rng = np.random.default_rng(0)
    y = np.arange(120) % 3
    probs = np.full((120, 3), 0.05)
    probs[np.arange(120), y] = 0.9
    flipped = rng.choice(120, size=12, replace=False)
    probs[flipped] = 0.05
    probs[flipped, (y[flipped] + 1) % 3] = 0.9
    flags = flag_issues(probs, y)
    assert set(np.flatnonzero(flags)) == set(flipped)
    with ProcessPoolExecutor(1) as pool:
        assert (pool.submit(flag_issues, probs, y).result() == flags).all()
    assert not flag_issues(probs[:5], np.zeros(5, dtype=np.int64)).any()
