"""Noise models: exact flip counts, no same-class flips, statistics, determinism, purity."""

from __future__ import annotations

import numpy as np
import pytest

from labelrefine.data.noise import (
    inject_noise,
    noise_rate,
    noise_transition_matrix,
    validate_transition,
)


def _labels(n: int = 1000, c: int = 5, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, c, size=n)


@pytest.mark.parametrize("n", [1, 7, 100, 999])
@pytest.mark.parametrize("rate", [0.0, 0.125, 0.2, 0.4, 0.5, 0.8, 1.0])
def test_symmetric_flips_exactly_round_rate_n_to_other_classes(n: int, rate: float) -> None:
    y = _labels(n, c=4, seed=n)
    noisy = inject_noise(y, 4, "symmetric", rate, seed=3)
    # every chosen sample moves to a different class, so "changed" counts the flips exactly
    assert int(np.sum(noisy != y)) == round(rate * n)
    assert noisy.dtype == np.int64 and noisy.shape == y.shape
    assert noisy.min() >= 0 and noisy.max() < 4


def test_symmetric_two_classes_always_swaps() -> None:
    y = np.array([0, 1] * 50)
    noisy = inject_noise(y, 2, "symmetric", 0.3, seed=1)
    flipped = noisy != y
    assert flipped.sum() == 30
    np.testing.assert_array_equal(noisy[flipped], 1 - y[flipped])


def test_symmetric_targets_and_choice_are_uniform() -> None:
    c, n = 4, 40_000
    y = np.repeat(np.arange(c), n // c)
    noisy = inject_noise(y, c, "symmetric", 0.4, seed=11)
    t = noise_transition_matrix(y, noisy, c)
    # diagonal ~ 0.6 (each class hit in proportion), off-diagonal ~ 0.4 / 3
    np.testing.assert_allclose(np.diag(t), 0.6, atol=0.02)
    off = t[~np.eye(c, dtype=bool)]
    np.testing.assert_allclose(off, 0.4 / 3, atol=0.02)


def test_asymmetric_maps_each_class_to_the_next() -> None:
    c = 4
    y = np.repeat(np.arange(c), [50, 33, 7, 10])
    noisy = inject_noise(y, c, "asymmetric", 0.3, seed=2)
    for k, n_k in enumerate([50, 33, 7, 10]):
        members = y == k
        flipped = members & (noisy != y)
        assert flipped.sum() == round(0.3 * n_k)
        assert np.all(noisy[flipped] == (k + 1) % c)
    assert int(np.sum(noisy != y)) == sum(round(0.3 * n) for n in [50, 33, 7, 10])


def test_matrix_rows_are_honoured() -> None:
    t = np.array([[0.7, 0.2, 0.1], [0.0, 1.0, 0.0], [0.25, 0.25, 0.5]])
    y = np.repeat(np.arange(3), 20_000)
    noisy = inject_noise(y, 3, "matrix", 0.0, seed=4, transition=t)
    np.testing.assert_allclose(noise_transition_matrix(y, noisy, 3), t, atol=0.015)
    np.testing.assert_array_equal(noisy[y == 1], 1)  # a zero-probability move never happens


def test_matrix_identity_is_clean_and_list_input_ok() -> None:
    y = _labels(200, c=3)
    eye = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    np.testing.assert_array_equal(inject_noise(y, 3, "matrix", 0.5, 0, transition=eye), y)


@pytest.mark.parametrize(
    ("transition", "message"),
    [
        (None, "needs a transition"),
        ([[1.0, 0.0], [0.0, 1.0]], "shape"),
        ([[0.5, 0.6, 0.0], [0, 1, 0], [0, 0, 1]], "row 0 sums to 1.1"),
        ([[1.2, -0.2, 0.0], [0, 1, 0], [0, 0, 1]], r"\[0\]\[1\].*negative"),
        ([[np.nan, 1, 0], [0, 1, 0], [0, 0, 1]], "non-finite"),
    ],
)
def test_matrix_validation(transition: list | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        inject_noise(_labels(10, c=3), 3, "matrix", 0.1, 0, transition=transition)


def test_validate_transition_renormalises() -> None:
    t = validate_transition([[0.5, 0.5 + 1e-8], [0.0, 1.0]], 2)
    np.testing.assert_allclose(t.sum(axis=1), 1.0, atol=1e-15)


@pytest.mark.parametrize("kind", ["symmetric", "asymmetric", "matrix", "none"])
def test_pure_deterministic_and_seed_sensitive(kind: str) -> None:
    c = 5
    y = _labels(2000, c=c)
    y.setflags(write=False)  # a read-only input must work: nothing is written to it
    before = y.copy()
    t = np.full((c, c), 0.1) + np.eye(c) * 0.5
    kw = {"transition": t} if kind == "matrix" else {}
    a = inject_noise(y, c, kind, 0.4, seed=1, **kw)
    b = inject_noise(y, c, kind, 0.4, seed=1, **kw)
    d = inject_noise(y, c, kind, 0.4, seed=2, **kw)
    np.testing.assert_array_equal(y, before)
    np.testing.assert_array_equal(a, b)
    assert a is not y and not np.shares_memory(a, y)
    if kind == "none":
        np.testing.assert_array_equal(a, y)
        np.testing.assert_array_equal(d, y)
    else:
        assert not np.array_equal(a, d)


def test_bad_arguments() -> None:
    y = _labels(10, c=3)
    with pytest.raises(ValueError, match="unknown noise kind 'pairflip'"):
        inject_noise(y, 3, "pairflip", 0.2, 0)
    with pytest.raises(ValueError, match=r"rate must be in \[0, 1\]"):
        inject_noise(y, 3, "symmetric", 1.5, 0)
    with pytest.raises(ValueError, match="label 3 outside 0..2"):
        inject_noise(np.array([0, 1, 3]), 3, "symmetric", 0.2, 0)
    with pytest.raises(ValueError, match="num_classes"):
        inject_noise(np.array([0, 0]), 1, "symmetric", 0.2, 0)
    with pytest.raises(ValueError, match="integers"):
        inject_noise(np.array([0.0, 1.0]), 2, "symmetric", 0.2, 0)
    assert inject_noise(np.array([], dtype=np.int64), 3, "symmetric", 0.5, 0).shape == (0,)


def test_transition_matrix_and_rate_helpers() -> None:
    true = np.array([0, 0, 0, 0, 1, 1, 2])
    given = np.array([0, 0, 1, 2, 1, 0, 2])
    t = noise_transition_matrix(true, given, 4)
    np.testing.assert_allclose(t[0], [0.5, 0.25, 0.25, 0.0])
    np.testing.assert_allclose(t[1], [0.5, 0.5, 0.0, 0.0])
    np.testing.assert_allclose(t[2], [0.0, 0.0, 1.0, 0.0])
    np.testing.assert_allclose(t[3], 0.0)  # class absent from `true`
    assert noise_rate(true, given) == pytest.approx(3 / 7)
    with pytest.raises(ValueError, match="shape"):
        noise_transition_matrix(true, given[:-1], 4)


# ----------------------------------------------------------------------------- clinical

HAM = ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")


def test_clinical_transition_rows_follow_lookalikes() -> None:
    from labelrefine.data.noise import clinical_transition

    t = clinical_transition(HAM)
    assert t.shape == (7, 7)
    np.testing.assert_allclose(t.sum(1), 1.0)
    np.testing.assert_array_equal(np.diag(t), 0.0)
    i = HAM.index
    assert t[i("mel"), i("nv")] == pytest.approx(0.7)
    assert t[i("df"), i("nv")] == pytest.approx(0.8)
    assert t[i("vasc"), i("nv")] == pytest.approx(0.7)
    assert t[i("bcc"), i("bkl")] == pytest.approx(0.6)
    assert t[i("akiec"), i("bkl")] == pytest.approx(0.7)
    # ISIC-2019 codes (upper case, 'AK' and 'SCC') are understood too
    isic = ("AK", "BCC", "BKL", "DF", "MEL", "NV", "SCC", "VASC")
    np.testing.assert_allclose(clinical_transition(isic).sum(1), 1.0)


@pytest.mark.parametrize("rate", [0.0, 0.1, 0.4, 0.5])
def test_clinical_exact_per_class_rate_and_lookalike_destinations(rate: float) -> None:
    rng = np.random.default_rng(1)
    y = rng.choice(7, size=3000, p=[0.03, 0.045, 0.1, 0.01, 0.08, 0.72, 0.015])
    noisy = inject_noise(y, 7, "clinical", rate, seed=5, class_names=HAM)
    for c in range(7):
        members = y == c
        assert int(np.sum(noisy[members] != c)) == round(rate * members.sum())
    # no wrong label lands outside the class's look-alikes
    from labelrefine.data.noise import clinical_transition

    t = clinical_transition(HAM)
    flipped = noisy != y
    assert np.all(t[y[flipped], noisy[flipped]] > 0)
    if rate:
        # rare classes' wrong labels are mostly a common class (nv or bkl)
        rare = np.isin(y, [HAM.index(n) for n in ("mel", "df", "vasc", "bcc", "akiec")])
        common = np.isin(noisy, [HAM.index("nv"), HAM.index("bkl")])
        assert common[flipped & rare].mean() > 0.75
    np.testing.assert_array_equal(noisy, inject_noise(y, 7, "clinical", rate, seed=5,
                                                      class_names=HAM))
    assert not np.array_equal(noisy, inject_noise(y, 7, "clinical", rate, seed=6,
                                                  class_names=HAM)) or rate == 0


def test_clinical_bad_input_names_the_class() -> None:
    y = np.array([0, 1, 2, 0])
    with pytest.raises(ValueError, match="needs the class names"):
        inject_noise(y, 3, "clinical", 0.4, seed=0)
    with pytest.raises(ValueError, match="no look-alikes for class 'tumour'"):
        inject_noise(y, 3, "clinical", 0.4, seed=0, class_names=("nv", "mel", "tumour"))
    with pytest.raises(ValueError, match="none of the look-alikes of 'df'"):
        inject_noise(y, 3, "clinical", 0.4, seed=0, class_names=("df", "akiec", "bcc"))
    with pytest.raises(ValueError, match="diagonal must be 0"):
        inject_noise(y, 3, "clinical", 0.4, seed=0, transition=np.eye(3))
