"""Schedule derived from the training-set size; config values always win."""

from __future__ import annotations

import pytest

from labelrefine.config import parse_config
from labelrefine.lnl.adaptive import adaptive_schedule, apply_adaptive


def test_schedule_is_monotone_and_anchored():
    sizes = [50, 300, 1000, 4188, 17731, 50000]
    s = [adaptive_schedule(n) for n in sizes]
    assert [x["batch_size"] for x in s] == sorted(x["batch_size"] for x in s)
    assert [x["epochs"] for x in s] == sorted((x["epochs"] for x in s), reverse=True)
    # the measured HAM10000 setting: batch 64, lr 0.05, about 40 epochs, warm-up 10
    ham = adaptive_schedule(4188)
    assert ham["batch_size"] == 64 and ham["lr"] == pytest.approx(0.05)
    assert 35 <= ham["epochs"] <= 45 and ham["warmup"] == 10
    for n, x in zip(sizes, s, strict=True):
        assert 16 <= x["batch_size"] <= 256 and 20 <= x["epochs"] <= 200
        assert 1 <= x["warmup"] < x["epochs"] and x["epochs_per_round"] < x["epochs"]
        steps = -(-n // x["batch_size"]) * x["epochs"]
        assert steps >= 600  # small sets still get enough optimiser steps
    with pytest.raises(ValueError, match="n_train"):
        adaptive_schedule(0)


def _cfg(**lnl):
    return parse_config({"dataset": {"format": "medmnist", "npz": "x.npz"},
                         "lnl": {"auto_schedule": True, **lnl}})


def test_apply_fills_only_unset_fields():
    cfg = _cfg(epochs=7)
    out = apply_adaptive(cfg, 300)
    auto = adaptive_schedule(300)
    assert out.lnl.epochs == 7  # written in the config: kept
    assert out.lnl.batch_size == auto["batch_size"]
    # warm-up and epochs per round follow the 7 epochs that run, not the derived ones
    assert auto["warmup"] > 7 and out.lnl.warmup == 2 <= out.lnl.epochs
    assert out.active.epochs_per_round == 4
    derived = apply_adaptive(_cfg(), 300)
    assert derived.lnl.warmup == auto["warmup"] and derived.lnl.epochs == auto["epochs"]
    assert derived.active.epochs_per_round == auto["epochs_per_round"]
    assert apply_adaptive(_cfg(epochs=7, warmup=3), 300).lnl.warmup == 3  # set: kept
    assert out.active.lr == auto["lr"]
    assert cfg.lnl.batch_size == 256  # the input is not changed
    off = parse_config({"dataset": {"format": "medmnist", "npz": "x.npz"},
                        "lnl": {"auto_schedule": False}})
    assert apply_adaptive(off, 300) is off
