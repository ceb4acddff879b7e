"""The LNL method seam: method registry, per-batch steps and the engine driving a new method."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from labelrefine.config import LNLConfig
from labelrefine.lnl import methods as methods_mod
from labelrefine.lnl.methods import (
    METHODS,
    BatchLosses,
    BatchStep,
    CoTeaching,
    CoTeachingVOG,
    LNLMethod,
    SmallLossCE,
    get_method,
    register_method,
)
from labelrefine.lnl.sources import FeatureSource
from labelrefine.lnl.trainer import EvalSet, LNLData, _phase1_seeds, run_lnl, train_lnl

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _batch(losses: list[list[float]], rate: float, vog: list[list[float]] | None = None
           ) -> BatchLosses:
    ts = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in losses]
    return BatchLosses(ts, [t.detach().numpy().copy() for t in ts],
                       None if vog is None else [np.asarray(v, float) for v in vog], rate)


class _Small:
    """A small 3-class problem: 120 items, 2 augmented views, 30 % of training labels flipped."""

    def __init__(self) -> None:
        rng = np.random.default_rng(1)
        n, d = 120, 6
        self.y = np.arange(n) % 3
        plain = rng.normal(size=(3, d))[self.y] * 2 + rng.normal(size=(n, d))
        views = plain[None] + 0.2 * rng.normal(size=(2, n, d))
        self.source = FeatureSource(views.astype(np.float32), plain.astype(np.float32))
        self.train, self.val = np.arange(90), EvalSet(np.arange(90, 120), self.y[90:])
        self.given = self.y.copy()
        self.given[:27] = (self.y[:27] + 1) % 3

    def data(self) -> LNLData:
        return LNLData(self.train, self.given, 3, self.val, true_labels=self.y)


def _cfg(**kw) -> LNLConfig:
    base = dict(epochs=3, warmup=2, batch_size=30, lr=0.05, hidden=8, vog={"window": 2})
    base.update(kw)
    return LNLConfig(**base)


# ----------------------------------------------------------------------------- registry


def test_registry_is_the_config_and_cli_choices(monkeypatch):
    from labelrefine.cli.lnl import Method, method_choices

    assert method_choices() == tuple(METHODS) == ("ce", "coteaching", "ct_vog")
    assert [m.value for m in Method] == list(METHODS)
    with pytest.raises(ValueError, match="unknown LNL method 'toy'; choose one of ce, "):
        LNLConfig(method="toy")
    monkeypatch.setattr(methods_mod, "METHODS", dict(METHODS))

    @register_method
    class Toy(SmallLossCE):
        name = "toy"

    # one entry: the config accepts it, the CLI choices (computed by method_choices) list it
    assert LNLConfig(method="toy").method == "toy" and "toy" in method_choices()
    assert type(get_method(LNLConfig(method="toy"))) is Toy


def test_registry_covers_the_methods():
    assert isinstance(get_method(LNLConfig(method="ce")), SmallLossCE)
    assert type(get_method(LNLConfig(method="coteaching"))) is CoTeaching
    assert isinstance(get_method(LNLConfig(method="ct_vog")), CoTeachingVOG)
    assert [METHODS[n].num_networks for n in ("ce", "coteaching", "ct_vog")] == [1, 2, 2]


def test_unknown_and_duplicate_method_names():
    cfg = LNLConfig.model_construct(**{**LNLConfig().__dict__, "method": "dividemix"})
    with pytest.raises(ValueError, match="unknown LNL method 'dividemix'; known: ce, "):
        get_method(cfg)

    class Again(SmallLossCE):
        name = "ce"

    with pytest.raises(ValueError, match="'ce' is already registered"):
        register_method(Again)


def test_uses_vog_only_for_ct_vog_with_mix():
    assert not get_method(LNLConfig(method="ce", mix=0.5)).uses_vog
    assert not get_method(LNLConfig(method="coteaching", mix=0.5)).uses_vog
    assert get_method(LNLConfig(method="ct_vog", mix=0.5)).uses_vog
    assert not get_method(LNLConfig(method="ct_vog", mix=0.0)).uses_vog


# ----------------------------------------------------------------------------- batch steps


def test_ce_step_trains_on_all_and_keeps_small_loss():
    batch = _batch([[0.9, 0.1, 0.5, 0.3, 2.0]], rate=0.4)  # R = floor(0.6 * 5) = 3
    step = get_method(LNLConfig(method="ce")).step(batch)
    assert step.clean.tolist() == [1, 2, 3] and step.sizes == [5]
    assert step.updates[0] is not None
    assert float(step.updates[0].detach()) == pytest.approx(np.mean([0.9, 0.1, 0.5, 0.3, 2.0]))


def test_coteaching_step_is_a_cross_update():
    batch = _batch([[0.1, 0.2, 0.9, 0.8], [0.9, 0.8, 0.1, 0.2]], rate=0.5)  # R = 2
    step = get_method(LNLConfig(method="coteaching")).step(batch)
    assert step.clean.tolist() == [0, 1]  # f's selection makes the partition
    # f minimises its loss on g's selection (2, 3); g on f's (0, 1)
    assert float(step.updates[0].detach()) == pytest.approx((0.9 + 0.8) / 2)
    assert float(step.updates[1].detach()) == pytest.approx((0.9 + 0.8) / 2)
    assert step.sizes == [2, 2]
    step.updates[0].backward()
    assert batch.losses[0].grad.tolist() == [0.0, 0.0, 0.5, 0.5]


def test_ct_vog_step_mixes_loss_and_vog():
    loss = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    vog = [9, 9, 9, 9, 9, 9, 9, 9, 0.1, 0.2]
    ct = get_method(LNLConfig(method="ct_vog", mix=0.5))
    # R = floor(0.6 * 10) = 6: 3 smallest-loss + 3 smallest-VOG among the rest
    step = ct.step(_batch([loss, loss], rate=0.4, vog=[vog, vog]))
    assert step.clean.tolist() == [0, 1, 2, 3, 8, 9]
    plain = ct.step(_batch([loss, loss], rate=0.4))  # VOG not yet available: small loss
    assert plain.clean.tolist() == [0, 1, 2, 3, 4, 5]


def test_coteaching_empty_selection_leaves_network_unchanged():
    step = get_method(LNLConfig(method="coteaching")).step(_batch([[0.5], [0.4]], rate=0.9))
    assert step.clean.size == 0 and step.updates == [None, None] and step.sizes == [0, 0]


# ----------------------------------------------------------------------------- engine


class _TrustAll(LNLMethod):
    """A toy method (not registered): one network on every sample, nothing is suspect."""

    name = "trust_all"
    num_networks = 1

    def step(self, batch: BatchLosses) -> BatchStep:
        return BatchStep(clean=np.arange(batch.size), updates=[batch.losses[0].mean()],
                         sizes=[batch.size])


def test_a_new_method_runs_on_the_engine_and_via_the_registry(monkeypatch):
    small = _Small()
    res = train_lnl(_TrustAll(_cfg()), _cfg(), small.source, small.data(), seed=0, tau=0.3)
    assert res.clean_idx.tolist() == small.train.tolist() and res.suspect_idx.size == 0
    assert res.peer is None and len(res.fit.history) == 3
    assert all(r["n_selected"] == 90 for r in res.fit.history)
    # registered under a name, run_lnl finds it through the config
    monkeypatch.setitem(METHODS, "trust_all", _TrustAll)
    cfg = _cfg().model_copy(update={"method": "trust_all"})
    again = run_lnl(cfg, small.source, small.train, small.given, num_classes=3, val=small.val,
                    test=None, seed=0, tau=0.3)
    assert [r["loss"] for r in again.fit.history] == [r["loss"] for r in res.fit.history]


def test_ce_on_the_engine_matches_a_hand_written_ce_loop():
    """The CE baseline on the seam: one network, plain SGD on every sample, small-loss partition."""
    small = _Small()
    cfg = _cfg(method="ce", head="linear", momentum=0.0, weight_decay=0.0, epochs=2)
    res = run_lnl(cfg, small.source, small.train, small.given, num_classes=3, val=small.val,
                  test=None, seed=4, tau=0.3)
    from labelrefine.models.heads import build_model

    net_seed, data_seed = _phase1_seeds(4, 1)
    net = build_model(cfg, 3, small.source.in_dim, net_seed[0])
    opt = torch.optim.SGD(net.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=2)
    rng = np.random.default_rng(data_seed)
    for keep in (1.0, 0.7):  # forget rate 0 in the first epoch, tau = 0.3 after the warm-up
        clean = []
        for idx, x in small.source.train_batches(small.train, cfg.batch_size, rng):
            loss = torch.nn.functional.cross_entropy(net(x), torch.from_numpy(small.given[idx]),
                                                     reduction="none")
            r = int(np.floor(keep * idx.size + 1e-9))
            clean.append(idx[np.sort(np.argsort(loss.detach().numpy(), kind="stable")[:r])])
            opt.zero_grad()
            loss.mean().backward()
            opt.step()
        sched.step()
    assert res.clean_idx.size == 63
    assert res.clean_idx.tolist() == np.unique(np.concatenate(clean)).tolist()
    torch.testing.assert_close(res.model.fc.weight.detach(), net.fc.weight.detach())


def test_engine_rejects_bad_method_output_and_vog_without_tracking():
    small = _Small()

    class _TwoUpdates(_TrustAll):
        def step(self, batch: BatchLosses) -> BatchStep:
            u = batch.losses[0].mean()
            return BatchStep(clean=np.arange(batch.size), updates=[u, u], sizes=[1, 1])

    with pytest.raises(ValueError, match="'trust_all' returned 2 updates for 1 networks"):
        train_lnl(_TwoUpdates(_cfg()), _cfg(), small.source, small.data(), seed=0, tau=0.3)
    cfg = _cfg(method="ct_vog", mix=0.5)
    with pytest.raises(ValueError, match="'ct_vog' selects by VOG"):
        train_lnl(get_method(cfg), cfg, small.source, small.data(), seed=0, tau=0.3,
                  track_vog=False)
    with pytest.raises(ValueError, match="init needs two networks for method 'coteaching'"):
        cfg = _cfg(method="coteaching")
        train_lnl(get_method(cfg), cfg, small.source, small.data(), seed=0, tau=0.3,
                  init=[None, None])


def test_lnl_data_names_the_bad_item():
    small = _Small()
    bad = small.given.copy()
    bad[7] = 3
    with pytest.raises(ValueError, match=r"labels\[7\] = 3: label 3 outside 0..2"):
        LNLData(small.train, bad, 3, small.val)
    with pytest.raises(ValueError, match="true_labels has 5 items"):
        LNLData(small.train, small.given, 3, small.val, true_labels=np.zeros(5, int))


def test_network_seeds_extend_without_changing_the_first_two():
    two, data2 = _phase1_seeds(11, 2)
    one, data1 = _phase1_seeds(11, 1)
    three, data3 = _phase1_seeds(11, 3)
    assert one == two[:1] and three[:2] == two and data1 == data2 == data3
    assert len(set(three) | {data3}) == 4


def test_select_clean_is_looked_up_in_the_methods_module():
    """Methods call the pure selection rule (tests may replace it there)."""
    assert methods_mod.select_clean.__module__ == "labelrefine.lnl.clean_samples"
