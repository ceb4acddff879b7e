"""VOG recorders: inline (training pass) and extra (end-of-epoch pass), driven by hand."""

from __future__ import annotations

import typing

import numpy as np
import pytest
import torch

from labelrefine.config import LNLConfig, VOGConfig
from labelrefine.lnl.recorders import (
    RECORDERS,
    ExtraPassVOG,
    InlineVOG,
    NoVOG,
    make_recorder,
    vog_dim,
    vog_gradients,
)
from labelrefine.lnl.vog import VOGTracker, last_layer_gradients
from labelrefine.models.heads import build_model


def _cfg(**vog) -> LNLConfig:
    return LNLConfig(head="mlp", hidden=5, warmup=3, vog={"window": 2, **vog})


def _nets(cfg: LNLConfig, k: int = 2):
    return [build_model(cfg, 3, 4, seed=s) for s in range(k)]


def _forward(net, x):
    h = net.embed(x)
    return h, net.fc(h)


def _data(n: int = 6, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 4, generator=g), torch.arange(n) % 3


def test_registry_covers_the_config_choices():
    field = VOGConfig.model_fields["pass_"].annotation
    assert set(RECORDERS) == set(typing.get_args(field))
    assert isinstance(make_recorder(_cfg(), _nets(_cfg()), 6, 8, track=True), InlineVOG)
    assert isinstance(make_recorder(_cfg(**{"pass": "extra"}), _nets(_cfg()), 6, 8, True),
                      ExtraPassVOG)
    off = make_recorder(_cfg(), _nets(_cfg()), 6, 8, track=False)
    assert isinstance(off, NoVOG) and not off.ready and off.last_scores() is None
    with pytest.raises(RuntimeError, match="not recorded"):
        off.scores()


def test_recording_starts_window_epochs_before_warmup_ends():
    cfg = _cfg()  # warmup 3, window 2 -> record from epoch 1
    rec = InlineVOG(_nets(cfg), 6, cfg, epochs=8)
    assert rec.start == 1 and not rec.recording(0) and rec.recording(1)
    assert InlineVOG(_nets(cfg), 6, cfg, epochs=2).start == 0  # short run: from the start


def test_inline_last_layer_matches_tracker_fed_by_hand():
    cfg = _cfg()
    nets = _nets(cfg)
    rec = InlineVOG(nets, 6, cfg, epochs=8)
    ref = VOGTracker(6, nets[0].embed_dim + 1, window=2)
    x, y = _data()
    pos = np.arange(6)
    for epoch in range(4):
        xe = x * (1 + 0.3 * epoch)
        outs = [_forward(net, xe) for net in nets]
        for half in (slice(0, 3), slice(3, 6)):  # two batches per epoch
            rec.on_batch(epoch, pos[half], [(h[half], z[half]) for h, z in outs], y[half])
        rec.end_epoch(epoch, lambda: iter(()), _forward)
        if rec.recording(epoch):
            h, z = outs[0]
            ref.update(pos, last_layer_gradients(h.detach(), torch.softmax(z.detach(), 1), y))
            ref.end_epoch()
    assert rec.ready
    np.testing.assert_allclose(rec.last_scores(), ref.scores(), rtol=1e-6)
    assert not np.allclose(rec.scores()[0], rec.scores()[1])  # one tracker per network


def test_inline_input_features_use_the_weights_of_the_moment():
    cfg = _cfg(gradient="input_features")
    nets = _nets(cfg, 1)
    rec = InlineVOG(nets, 6, cfg, epochs=2)
    assert not rec.deferred
    x, y = _data()
    h, z = _forward(nets[0], x)
    expect = vog_gradients(nets[0], "input_features", h, z, y).numpy()
    rec.on_batch(0, np.arange(6), [(h, z)], y)
    with torch.no_grad():
        nets[0].fc.weight.mul_(2)  # changes after the batch do not reach the stored gradients
    np.testing.assert_array_equal(rec.trackers[0]._buf[0], expect)


def test_extra_pass_reads_its_own_batches_and_ignores_training_outputs():
    cfg = _cfg(**{"pass": "extra"})
    nets = _nets(cfg, 1)
    rec = ExtraPassVOG(nets, 6, cfg, epochs=2)
    x, y = _data()
    rec.on_batch(0, np.arange(6), [_forward(nets[0], x * 100)], y)  # ignored
    calls = []

    def batches():
        calls.append(1)
        yield np.arange(6), np.arange(6), x, y

    for epoch in range(2):
        rec.end_epoch(epoch, batches, _forward)
    assert len(calls) == 2 and rec.ready
    h, z = _forward(nets[0], x)
    g = last_layer_gradients(h.detach(), torch.softmax(z.detach(), 1), y)
    np.testing.assert_allclose(rec.trackers[0]._buf[0], g.numpy(), rtol=1e-6)
    np.testing.assert_allclose(rec.last_scores(), 0.0, atol=1e-7)  # same weights: no variance


def test_input_feature_gradient_needs_an_mlp_head():
    linear = build_model(LNLConfig(head="linear"), 3, 4, seed=0)
    assert vog_dim(linear, "last_layer") == 5
    with pytest.raises(ValueError, match="'input_features' needs an MLP head"):
        vog_dim(linear, "input_features")
