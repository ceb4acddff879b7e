"""VOG: closed-form per-sample gradients against autograd, and the ring-buffer tracker."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from labelrefine.lnl.vog import VOGTracker, input_feature_gradients, last_layer_gradients


def _per_sample_autograd(h, w, b, y):
    rows = []
    for i in range(h.shape[0]):
        w_i = w.clone().requires_grad_(True)
        b_i = b.clone().requires_grad_(True)
        loss = F.cross_entropy((h[i : i + 1] @ w_i.T) + b_i, y[i : i + 1])
        gw, gb = torch.autograd.grad(loss, (w_i, b_i))
        rows.append(torch.cat([gb[y[i]].reshape(1), gw[y[i]]]))
    return torch.stack(rows)


def test_closed_form_equals_autograd_loop():
    g = torch.Generator().manual_seed(0)
    n, d, c = 9, 6, 4
    h = torch.randn(n, d, generator=g, dtype=torch.float64)
    w = torch.randn(c, d, generator=g, dtype=torch.float64)
    b = torch.randn(c, generator=g, dtype=torch.float64)
    y = torch.randint(0, c, (n,), generator=g)
    probs = torch.softmax(h @ w.T + b, dim=1)
    closed = last_layer_gradients(h, probs, y)
    assert closed.shape == (n, d + 1)
    torch.testing.assert_close(closed, _per_sample_autograd(h, w, b, y))


def test_closed_form_equals_torch_func_vmap():
    g = torch.Generator().manual_seed(1)
    n, d, c = 16, 5, 3
    h = torch.randn(n, d, generator=g)
    w = torch.randn(c, d, generator=g)
    b = torch.randn(c, generator=g)
    y = torch.randint(0, c, (n,), generator=g)

    def loss_fn(w_, b_, x, t):
        return F.cross_entropy((x @ w_.T + b_)[None], t[None])

    gw, gb = torch.func.vmap(torch.func.grad(loss_fn, argnums=(0, 1)), in_dims=(None, None, 0, 0))(
        w, b, h, y
    )
    expected = torch.cat([gb[torch.arange(n), y][:, None], gw[torch.arange(n), y]], dim=1)
    closed = last_layer_gradients(h, torch.softmax(h @ w.T + b, 1), y)
    torch.testing.assert_close(closed, expected, rtol=1e-5, atol=1e-6)


def test_numpy_input_gives_numpy():
    h = np.array([[1.0, 2.0], [0.5, -1.0]])
    p = np.array([[0.25, 0.75], [0.9, 0.1]])
    y = np.array([1, 0])
    out = last_layer_gradients(h, p, y)
    assert isinstance(out, np.ndarray)
    np.testing.assert_allclose(out, [[-0.25, -0.25, -0.5], [-0.1, -0.05, 0.1]])


def test_row_mismatch_is_an_error():
    with pytest.raises(ValueError, match="labels has 1 rows"):
        last_layer_gradients(np.ones((2, 3)), np.ones((2, 2)) / 2, np.array([0]))


def test_input_feature_gradients_match_autograd():
    torch.manual_seed(0)
    n, d, hdim, c = 7, 5, 8, 3
    lin1, lin2 = torch.nn.Linear(d, hdim), torch.nn.Linear(hdim, c)
    x = torch.randn(n, d, requires_grad=True)
    y = torch.randint(0, c, (n,))
    hidden = torch.relu(lin1(x))
    logits = lin2(hidden)
    (expected,) = torch.autograd.grad(logits.gather(1, y[:, None]).sum(), x)
    got = input_feature_gradients(hidden.detach(), y, lin2.weight, lin1.weight)
    torch.testing.assert_close(got, expected)


def test_tracker_window_semantics():
    tr = VOGTracker(num_samples=3, dim=2, window=3)
    assert not tr.ready
    values = [1.0, 2.0, 6.0, 10.0]
    for e, v in enumerate(values):
        tr.update(np.array([0, 1, 2]), np.full((3, 2), v) * np.array([[1.0], [0.0], [2.0]]))
        tr.end_epoch()
        assert tr.ready == (e >= 2)
        assert tr.epochs_stored == min(e + 1, 3)
    s = tr.scores()
    # last 3 epochs 2, 6, 10 -> population std sqrt(32/3); sample 1 is constant, sample 2 doubled
    np.testing.assert_allclose(s, [np.std([2, 6, 10]), 0.0, 2 * np.std([2, 6, 10])])


def test_scores_stay_valid_while_next_epoch_overwrites():
    tr = VOGTracker(num_samples=2, dim=1, window=2)
    for v in (0.0, 4.0):
        tr.update([0, 1], np.full((2, 1), v))
        tr.end_epoch()
    before = tr.scores()
    tr.update([0, 1], np.full((2, 1), 100.0))  # overwrites the oldest slot
    np.testing.assert_allclose(tr.scores(), before)
    np.testing.assert_allclose(before, [2.0, 2.0])


def test_not_ready_raises_and_missing_samples_are_nan():
    tr = VOGTracker(num_samples=3, dim=1, window=2)
    with pytest.raises(RuntimeError, match="needs 2 epochs"):
        tr.scores()
    for v in (1.0, 3.0):
        tr.update([0, 1], np.full((2, 1), v))
        tr.end_epoch()
    s = tr.scores()
    assert np.isnan(s[2]) and s[0] == pytest.approx(1.0)


def test_float16_option_and_memory():
    tr32 = VOGTracker(10, 4, window=5)
    tr16 = VOGTracker(10, 4, window=5, dtype="float16")
    assert tr32.nbytes == 10 * 5 * 4 * 4 and tr16.nbytes == tr32.nbytes // 2
    rng = np.random.default_rng(0)
    for _ in range(5):
        g = rng.normal(size=(10, 4))
        tr32.update(np.arange(10), g)
        tr16.update(np.arange(10), torch.from_numpy(g))
        tr32.end_epoch()
        tr16.end_epoch()
    np.testing.assert_allclose(tr16.scores(), tr32.scores(), rtol=2e-3, atol=2e-3)


def test_tracker_bad_input():
    with pytest.raises(ValueError, match="window"):
        VOGTracker(3, 2, window=1)
    with pytest.raises(ValueError, match="dtype"):
        VOGTracker(3, 2, dtype="int8")
    tr = VOGTracker(3, 2)
    with pytest.raises(ValueError, match="shape"):
        tr.update([0], np.ones((1, 3)))
    with pytest.raises(ValueError, match="out of range"):
        tr.update([3], np.ones((1, 2)))
