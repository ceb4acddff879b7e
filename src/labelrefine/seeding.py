"""Every seed a run derives from its run seed, by name (docs/design.md, "Seeds").

A run has one integer seed ``s`` (a sweep seed, or a campaign's ``--seed``). Everything random
in phases 1 and 2 is seeded by a value derived here, so that a simulated run and a campaign
with the same ``s`` draw exactly the same numbers, and so that a new component picks a named
derivation instead of inventing arithmetic. The formulas are fixed: changing one changes every
stored result.

=================================  ==============================  ==========================
what                               function                        value
=================================  ==============================  ==========================
phase 1 (noise draw, batch order)  the run seed itself             ``s``
simulated oracle                   :func:`oracle_seed`             ``s``
fresh network, variant ``o``       :func:`model_seed`              ``101 s + o``
training in round ``r``            :func:`round_seed`              ``1009 s + r``
sampler drawing round ``r``'s      :func:`sampler_seed`            ``7919 s + r``
queue
=================================  ==============================  ==========================

Rounds are numbered as in the simulated loop: round ``r >= 1`` buys the queue drawn with
``sampler_seed(s, r)`` and then trains with ``round_seed(s, r)``. A campaign's step ``t``
(``t = 0`` is phase 1) trains round ``t`` and draws the queue that round ``t + 1`` buys, so it
uses ``round_seed(s, t)`` and ``sampler_seed(s, t + 1)`` (see :func:`queue_round`).
"""

from __future__ import annotations

#: Multipliers of the run seed; distinct primes keep the derived streams apart.
MODEL_STRIDE = 101
ROUND_STRIDE = 1009
SAMPLER_STRIDE = 7919


def _check(seed: int, name: str = "seed") -> int:
    if isinstance(seed, bool) or int(seed) != seed:
        raise ValueError(f"{name} must be an integer, got {seed!r}")
    return int(seed)


def oracle_seed(seed: int) -> int:
    """Seed of the simulated oracle's per-item answers: the run seed."""
    return _check(seed)


def model_seed(seed: int, offset: int = 0) -> int:
    """Initial weights of a fresh network; ``offset`` tells apart networks of one run."""
    return MODEL_STRIDE * _check(seed) + _check(offset, "offset")


def round_seed(seed: int, rnd: int) -> int:
    """Training in round ``rnd`` (batch order, augmentation draw, a fresh network's init)."""
    return ROUND_STRIDE * _check(seed) + _check(rnd, "round")


def sampler_seed(seed: int, rnd: int) -> int:
    """The sampler that draws the queue bought in round ``rnd`` (``rnd >= 1``)."""
    return SAMPLER_STRIDE * _check(seed) + _check(rnd, "round")


#: Stride of the cross-validation streams of the cleanlab peers (fold split, training).
CV_SPLIT_STRIDE = 7919
CV_TRAIN_STRIDE = 1013
#: Offset that keeps the cross-validation networks apart from every other network of a run.
CV_MODEL_OFFSET = 10_000


def cv_split_seed(seed: int, offset: int) -> int:
    """The fold split of cross-validation number ``offset`` of a run (``< 2**32``)."""
    return (CV_SPLIT_STRIDE * _check(seed) + _check(offset, "offset")) % 2**32


def cv_model_offset(offset: int, fold: int) -> int:
    """:func:`model_seed` offset of fold ``fold``'s network in cross-validation ``offset``."""
    return CV_MODEL_OFFSET + 100 * _check(offset, "offset") + _check(fold, "fold")


def cv_train_seed(seed: int, offset: int, fold: int) -> int:
    """Training of fold ``fold``'s network in cross-validation ``offset``."""
    return CV_TRAIN_STRIDE * _check(seed) + 100 * _check(offset, "offset") + _check(fold, "fold")


def queue_round(step: int) -> int:
    """The simulated round whose queue a campaign step ``step`` draws (``step + 1``)."""
    return _check(step, "step") + 1
