"""LNL engine on synthetic features (Gaussian blobs with injected label noise) and tiny images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from labelrefine.config import LNLConfig
from labelrefine.lnl import methods as methods_mod
from labelrefine.lnl.schedule import forget_rates
from labelrefine.lnl.sources import FeatureSource, ImageSource, batch_slices
from labelrefine.lnl.trainer import EvalSet, fit_ce, predict, run_lnl
from labelrefine.metrics import selection_precision_recall
from labelrefine.models.backbones import build_backbone
from labelrefine.models.heads import build_model


class Blobs:
    """Imbalanced Gaussian blobs, 4 augmented views, 40 % symmetric noise on the train split."""

    def __init__(self, seed: int = 0, n: int = 900, dim: int = 24, noise: float = 0.4):
        rng = np.random.default_rng(seed)
        sizes = np.array([0.5, 0.25, 0.15, 0.1]) * n
        self.c = 4
        self.y = np.repeat(np.arange(self.c), sizes.astype(int))
        n = self.y.size
        centers = rng.normal(size=(self.c, dim)) * 1.2
        plain = centers[self.y] + rng.normal(size=(n, dim))
        views = plain[None] + 0.3 * rng.normal(size=(4, n, dim))
        self.source = FeatureSource(views.astype(np.float16), plain.astype(np.float16))
        perm = rng.permutation(n)
        self.train, self.val, self.test = perm[: n * 6 // 10], perm[n * 6 // 10 : n * 8 // 10], \
            perm[n * 8 // 10 :]
        self.given = self.y.copy()
        k = round(noise * self.train.size)
        flip = rng.choice(self.train, size=k, replace=False)
        self.given[flip] = (self.y[flip] + rng.integers(1, self.c, size=k)) % self.c
        self.val_set = EvalSet(self.val, self.y[self.val])
        self.test_set = EvalSet(self.test, self.y[self.test])

    def run(self, cfg: LNLConfig, seed: int = 0, tau: float = 0.4, **kw):
        kw.setdefault("true_labels", self.y)
        return run_lnl(cfg, self.source, self.train, self.given, num_classes=self.c,
                       val=self.val_set, test=self.test_set, seed=seed, tau=tau, **kw)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def blobs() -> Blobs:
    return Blobs()


def _cfg(**kw) -> LNLConfig:
    base = dict(epochs=8, warmup=4, batch_size=64, lr=0.05, hidden=32,
                vog={"window": 2})
    base.update(kw)
    return LNLConfig(**base)


# ----------------------------------------------------------------------------- sources


def test_batch_slices_balanced():
    sl = batch_slices(10, 4)
    sizes = [s.stop - s.start for s in sl]
    assert sizes == [3, 4, 3] and sl[0].start == 0 and sl[-1].stop == 10
    assert batch_slices(0, 4) == [] and len(batch_slices(3, 8)) == 1


def test_feature_source_one_view_per_item(blobs):
    rng = np.random.default_rng(0)
    seen = np.concatenate([idx for idx, _ in blobs.source.train_batches(blobs.train, 50, rng)])
    assert np.array_equal(np.sort(seen), np.sort(blobs.train))
    idx, x = next(blobs.source.eval_batches(blobs.val[:5], 3))
    assert idx.tolist() == blobs.val[:3].tolist()
    assert x.shape == (3, 24) and x.dtype == torch.float32
    with pytest.raises(IndexError, match="item index 100000"):
        next(blobs.source.train_batches(np.array([100000]), 4, rng))
    with pytest.raises(ValueError, match="views must be"):
        FeatureSource(np.zeros((2, 3, 5)), np.zeros((3, 4)))


# ----------------------------------------------------------------------------- predict / fit_ce


def test_predict_shapes_order_and_mode(blobs):
    model = build_model(_cfg(), blobs.c, blobs.source.in_dim, seed=0)
    model.train()
    probs, emb = predict(model, blobs.source, blobs.val[:7], batch_size=3)
    assert probs.shape == (7, 4) and emb.shape == (7, 32) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)
    p1, _ = predict(model, blobs.source, blobs.val[3:4])
    np.testing.assert_allclose(p1[0], probs[3], rtol=1e-5)
    assert model.training


def test_fit_ce_learns_and_restores_best(blobs):
    model = build_model(_cfg(), blobs.c, blobs.source.in_dim, seed=1)
    res = fit_ce(model, blobs.source, blobs.train, blobs.y, epochs=6, lr=0.05, batch_size=64,
                 val=blobs.val_set, test=blobs.test_set, seed=0)
    assert len(res.history) == 6 and res.best_val_f1 > 0.8
    assert res.best_val_f1 == max(h["val_f1"] for h in res.history)
    probs, _ = predict(model, blobs.source, blobs.val)
    from labelrefine.metrics import macro_f1

    assert macro_f1(blobs.y[blobs.val], probs.argmax(1), 4) == pytest.approx(res.best_val_f1)
    assert res.test_recall.shape == (4,)
    model2 = build_model(_cfg(), blobs.c, blobs.source.in_dim, seed=1)
    res2 = fit_ce(model2, blobs.source, blobs.train, blobs.y, epochs=6, lr=0.05, batch_size=64,
                  val=blobs.val_set, test=None, seed=0)
    assert [h["loss"] for h in res2.history] == [h["loss"] for h in res.history]
    assert np.isnan(res2.test_f1)


def test_fit_ce_bad_labels(blobs):
    model = build_model(_cfg(), blobs.c, blobs.source.in_dim, seed=0)
    bad = blobs.y.copy()
    bad[blobs.train[0]] = 9
    with pytest.raises(ValueError, match=rf"labels\[{blobs.train[0]}\] = 9: label 9 outside"):
        fit_ce(model, blobs.source, blobs.train, bad, epochs=1, lr=0.1, batch_size=8,
               val=blobs.val_set, test=None, seed=0)
    with pytest.raises(ValueError, match="empty"):
        fit_ce(model, blobs.source, np.array([], dtype=int), blobs.y, epochs=1, lr=0.1,
               batch_size=8, val=blobs.val_set, test=None, seed=0)


# ----------------------------------------------------------------------------- run_lnl


@pytest.mark.parametrize("method", ["ce", "coteaching", "ct_vog"])
def test_partition_and_logs(blobs, method):
    res = blobs.run(_cfg(method=method, mix=0.5))
    assert np.array_equal(np.union1d(res.clean_idx, res.suspect_idx), np.sort(blobs.train))
    assert np.intersect1d(res.clean_idx, res.suspect_idx).size == 0
    # one last-epoch selection of floor((1 - tau) * B) per balanced batch (R1 + R2 for CT_VOG)
    sizes = [s.stop - s.start for s in batch_slices(blobs.train.size, 64)]
    expect = sum(int(np.floor(0.6 * b + 1e-9)) for b in sizes)
    if method == "ct_vog":
        r = [int(np.floor(0.6 * b + 1e-9)) for b in sizes]
        expect = sum(int(np.floor(0.5 * x + 1e-9)) * 2 for x in r)
    assert res.clean_idx.size == expect
    prec, rec = selection_precision_recall(res.clean_idx, blobs.train, blobs.given, blobs.y)
    assert prec > 0.85  # 60 % of the labels are right; the small-loss set is much cleaner
    h = res.fit.history
    assert len(h) == 8
    np.testing.assert_allclose([r["forget_rate"] for r in h], forget_rates(0.4, 8, 4))
    assert h[-1]["sel_precision"] == pytest.approx(prec)
    assert h[-1]["sel_recall"] == pytest.approx(rec)
    assert all(0 <= r["val_f1"] <= 1 for r in h)
    assert (res.peer is None) == (method == "ce")
    assert res.diagnostics is not None and list(res.diagnostics["class"]) == ["0", "1", "2", "3"]
    assert np.all(np.isfinite(res.last_loss[blobs.train]))
    assert np.all(np.isnan(res.last_loss[blobs.val]))
    assert (res.last_vog is not None) == (method == "ct_vog")
    assert res.fit.best_epoch == int(np.argmax([r["val_f1"] for r in h]))


def test_phase1_is_deterministic(blobs):
    cfg = _cfg(method="ct_vog", mix=0.5)
    a, b = blobs.run(cfg, seed=3), blobs.run(cfg, seed=3)
    assert np.array_equal(a.clean_idx, b.clean_idx)
    np.testing.assert_array_equal(a.last_loss, b.last_loss)
    np.testing.assert_array_equal(a.last_vog, b.last_vog)
    assert [r["loss"] for r in a.fit.history] == [r["loss"] for r in b.fit.history]
    c = blobs.run(cfg, seed=4)
    assert not np.array_equal(a.last_loss, c.last_loss)


def test_vog_used_only_after_warmup_and_full_window(blobs):
    res = blobs.run(_cfg(method="ct_vog", mix=1.0, warmup=4, vog={"window": 2}))
    assert [r["vog_used"] for r in res.fit.history] == [False] * 4 + [True] * 4
    # warm-up shorter than the window: VOG waits for `window` stored epochs
    res = blobs.run(_cfg(method="ct_vog", mix=1.0, warmup=1, vog={"window": 3}))
    assert [r["vog_used"] for r in res.fit.history] == [False] * 3 + [True] * 5
    res = blobs.run(_cfg(method="coteaching", mix=1.0))
    assert not any(r["vog_used"] for r in res.fit.history) and res.last_vog is None


def test_mix_changes_selection_and_extra_pass_runs(blobs):
    ct = blobs.run(_cfg(method="coteaching"))
    vog1 = blobs.run(_cfg(method="ct_vog", mix=1.0))
    extra = blobs.run(_cfg(method="ct_vog", mix=1.0, vog={"window": 2, "pass": "extra"}))
    assert not np.array_equal(ct.clean_idx, vog1.clean_idx)
    assert extra.last_vog is not None and np.all(np.isfinite(extra.last_vog[blobs.train]))
    assert np.all(extra.last_vog[blobs.train] >= 0)


def test_input_feature_gradient_option(blobs):
    res = blobs.run(_cfg(method="ct_vog", mix=0.5, vog={"window": 2,
                                                         "gradient": "input_features"}))
    assert res.last_vog is not None and np.all(np.isfinite(res.last_vog[blobs.train]))
    with pytest.raises(ValueError, match="input_features"):
        blobs.run(_cfg(method="ct_vog", head="linear", vog={"gradient": "input_features"}))


def test_tracking_for_diagnostics_and_epochs_override(blobs):
    res = blobs.run(_cfg(method="coteaching"), track_vog=True, epochs=3)
    assert len(res.fit.history) == 3 and res.last_vog is not None
    np.testing.assert_allclose([r["forget_rate"] for r in res.fit.history],
                               forget_rates(0.4, 8, 4)[:3])


def test_init_continues_from_given_networks(blobs):
    first = blobs.run(_cfg(method="coteaching"), epochs=2)
    before = first.model.fc.weight.detach().clone()
    again = blobs.run(_cfg(method="coteaching"), epochs=1, init=(first.model, first.peer))
    assert again.model is first.model and again.peer is first.peer
    assert not torch.equal(before, again.model.fc.weight)


class _FixedSource:
    """One batch, fixed order (for checking the cross update by hand)."""

    in_dim = 3

    def __init__(self, x: torch.Tensor):
        self.x = x

    def train_batches(self, indices, batch_size, rng):
        yield np.asarray(indices), self.x[torch.as_tensor(indices)]

    def eval_batches(self, indices, batch_size):
        yield np.asarray(indices), self.x[torch.as_tensor(indices)]


def test_cross_update_f_trains_on_g_selection(monkeypatch):
    torch.manual_seed(0)
    x = torch.randn(4, 3)
    y = np.array([0, 1, 0, 1])
    calls = []

    def fake_select(loss, vog, tau, *args, **kwargs):
        calls.append(len(calls) % 2)  # first call: f's selection, second: g's
        return np.array([0]) if calls[-1] == 0 else np.array([2])

    monkeypatch.setattr(methods_mod, "select_clean", fake_select)
    cfg = LNLConfig(method="coteaching", head="linear", epochs=1, lr=0.5, momentum=0.0,
                    weight_decay=0.0, batch_size=4)
    f0 = build_model(cfg, 2, 3, seed=1)
    g0 = build_model(cfg, 2, 3, seed=2)
    wf, wg = f0.fc.weight.detach().clone(), g0.fc.weight.detach().clone()
    bf, bg = f0.fc.bias.detach().clone(), g0.fc.bias.detach().clone()
    src = _FixedSource(x)
    res = run_lnl(cfg, src, np.arange(4), y, num_classes=2, val=EvalSet(np.arange(4), y),
                  test=None, seed=0, tau=0.5, init=(f0, g0))

    def stepped(w, b, i):
        w, b = w.clone().requires_grad_(True), b.clone().requires_grad_(True)
        loss = F.cross_entropy(x[i : i + 1] @ w.T + b, torch.tensor([y[i]]))
        gw, gb = torch.autograd.grad(loss, (w, b))
        return w.detach() - 0.5 * gw, b.detach() - 0.5 * gb

    exp_wf, exp_bf = stepped(wf, bf, 2)  # f learns from g's pick (item 2)
    exp_wg, exp_bg = stepped(wg, bg, 0)  # g learns from f's pick (item 0)
    torch.testing.assert_close(res.model.fc.weight.detach(), exp_wf)
    torch.testing.assert_close(res.model.fc.bias.detach(), exp_bf)
    torch.testing.assert_close(res.peer.fc.weight.detach(), exp_wg)
    torch.testing.assert_close(res.peer.fc.bias.detach(), exp_bg)
    assert res.clean_idx.tolist() == [0]  # the partition is f's selection


def test_run_lnl_bad_input(blobs):
    with pytest.raises(ValueError, match="duplicate"):
        run_lnl(_cfg(), blobs.source, np.array([1, 1]), blobs.given, num_classes=4,
                val=blobs.val_set, test=None, seed=0, tau=0.2)
    with pytest.raises(ValueError, match="tau"):
        blobs.run(_cfg(), tau=1.2)
    with pytest.raises(ValueError, match="true_labels has 3"):
        blobs.run(_cfg(), true_labels=np.zeros(3, dtype=int))


# ----------------------------------------------------------------------------- fine-tune mode


def test_finetune_mode_on_cpu(tiny_images):
    cfg = LNLConfig(method="ct_vog", mode="finetune", backbone="resnet18", epochs=2, warmup=1,
                    mix=0.5, batch_size=8, image_size=16, resize=20, vog={"window": 2})
    src = ImageSource(tiny_images, image_size=16, resize=20)
    idx, x = next(src.train_batches(np.arange(6), 4, np.random.default_rng(0)))
    assert x.shape == (3, 3, 16, 16) and idx.size == 3
    labels = tiny_images.labels.copy()
    labels[[0, 5]] = [1, 2]
    train, val = np.arange(18), EvalSet(np.arange(18, 24), tiny_images.labels[18:])
    res = run_lnl(cfg, src, train, labels, num_classes=3, val=val, test=None, seed=0, tau=0.25,
                  true_labels=tiny_images.labels)
    assert len(res.fit.history) == 2 and res.model.kind == "resnet18"
    assert np.array_equal(np.union1d(res.clean_idx, res.suspect_idx), train)
    assert res.last_vog is not None and res.last_vog[train].shape == (18,)
    again = run_lnl(cfg, src, train, labels, num_classes=3, val=val, test=None, seed=0,
                    tau=0.25, true_labels=tiny_images.labels)
    assert np.array_equal(res.clean_idx, again.clean_idx)
    probs, emb = predict(res.model, src, np.arange(4), batch_size=3)
    assert probs.shape == (4, 3) and emb.shape == (4, 512)
    fit = fit_ce(res.model, src, train, labels, epochs=1, lr=0.01, batch_size=8, val=val,
                 test=None, seed=0)
    assert fit.best_epoch == 0


def test_backbone_weights_from_local_file(tmp_path: Path):
    from torchvision.models import resnet18

    torch.manual_seed(5)
    ref = resnet18(weights=None)
    path = tmp_path / "r18.pt"
    torch.save(ref.state_dict(), path)
    trunk, dim = build_backbone("resnet18", path)
    assert dim == 512
    torch.testing.assert_close(trunk.conv1.weight, ref.conv1.weight)
    cfg = LNLConfig(mode="finetune", backbone="resnet18", backbone_weights=path)
    model = build_model(cfg, 5, None, seed=0)
    assert model.fc.out_features == 5
    torch.testing.assert_close(model.trunk.layer4[0].conv1.weight, ref.layer4[0].conv1.weight)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        build_backbone("resnet18", tmp_path / "missing.pt")
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="does not match resnet18"):
        build_backbone("resnet18", tmp_path / "bad.pt")


def test_build_model_is_seeded_and_leaves_global_rng():
    cfg = LNLConfig(head="mlp", hidden=8)
    state = torch.get_rng_state()
    a, b = build_model(cfg, 3, 5, seed=7), build_model(cfg, 3, 5, seed=7)
    assert torch.equal(torch.get_rng_state(), state)
    torch.testing.assert_close(a.fc.weight, b.fc.weight)
    assert not torch.equal(a.fc.weight, build_model(cfg, 3, 5, seed=8).fc.weight)
    with pytest.raises(ValueError, match="in_dim"):
        build_model(cfg, 3, None, seed=0)
