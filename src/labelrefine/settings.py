"""Settings decided once: the defaults every entry point shares, and one frozen object with a
run's or a campaign's resolved settings (docs/design.md, "Settings"). Light: no torch.

* :data:`DEFAULT_SAMPLERS` -- the sampler a pipeline (or ``campaign step``) queries with when
  none is named; :func:`pipeline_sampler` -- the ranking a pipeline really uses, refusing a
  ``sampler`` it would ignore;
* :func:`resolve` -- the override rules (:func:`labelrefine.config.resolve_settings`), then
  the size-derived schedule (:func:`labelrefine.lnl.adaptive.adapt`): the :class:`Settings`
  of ``labelrefine lnl`` and of a campaign's first step. A sweep applies the same two steps
  in the other order (``apply_adaptive`` on the config, then ``cfg.resolve`` per run), which
  gives the same settings because the schedule sets neither the mix nor the budget;
* :func:`phase1_identity` -- what makes two runs' phase 1 the same computation (shared by the
  sweep's grouping and the pipelines' cache).
"""

from __future__ import annotations

from dataclasses import dataclass

from labelrefine.config import (
    ActiveConfig,
    LNLConfig,
    NoiseConfig,
    PipelineSpec,
    PlusConfig,
    phase1_method,
    resolve_settings,
)

#: The sampler each pipeline that takes one queries with when ``spec.sampler`` is unset;
#: ``campaign`` is ``campaign step --sampler``'s default (strategies ``paper`` and ``plus``).
DEFAULT_SAMPLERS: dict[str, str] = {
    "ours": "entropy",
    "al_only": "random",
    "ce_al": "random",
    "alc_coteaching": "joint",
    "campaign": "entropy",
}
#: Pipelines that rank their pool by a rule of their own (``spec.sampler`` does not apply),
#: with the name their result records: ``ours_plus`` records ``plus.sampler``.
OWN_RANKING: dict[str, str] = {
    "ours_plus": "plus.sampler",
    "ours_find": "finder",
    "cleanlab_relabel": "confidence",  # cleanlab's self-confidence: lowest p(given) first
}
#: The noise rate a campaign assumes (its phase-1 forget rate) when neither ``--noise-rate``
#: nor a config's single noise setting gives one.
CAMPAIGN_NOISE_RATE = 0.2


def pipeline_sampler(spec: PipelineSpec) -> str | None:
    """The ranking pipeline ``spec`` queries with: ``spec.sampler`` or its default
    (:data:`DEFAULT_SAMPLERS`), its own rule (:data:`OWN_RANKING`), or None for a pipeline
    that queries nothing. A ``sampler`` the pipeline would ignore is an error naming it."""
    if spec.name in DEFAULT_SAMPLERS:
        return spec.sampler or DEFAULT_SAMPLERS[spec.name]
    if spec.sampler is not None:
        where = ("; set plus.sampler instead" if spec.name == "ours_plus" else
                 f" (it ranks with {OWN_RANKING[spec.name]})" if spec.name in OWN_RANKING
                 else " (it queries nothing)")
        raise ValueError(f"pipeline {spec.name}: 'sampler: {spec.sampler}' does not apply"
                         f"{where}")
    if spec.name == "ours_plus":
        return (spec.plus or PlusConfig()).sampler
    return OWN_RANKING.get(spec.name)


def phase1_identity(method: str, mix: float, tau: float, epochs: int) -> tuple:
    """What makes two phase-1 computations the same (within one prepared data set and seed):
    the method, its mix ratio (0 for methods without one), the forget rate and the epochs."""
    return (str(method), float(mix), float(tau), int(epochs))


@dataclass(frozen=True)
class Settings:
    """A run's or a campaign's settings with every override and the size-derived schedule
    applied (:func:`resolve`): ``lnl`` (resolved mix, schedule), ``active`` (schedule, budget
    overrides), the forget rate ``tau`` and the ``seed``. The labels bought per round follow
    from ``active.budget(n_train)`` (a campaign's ``step --budget`` may set them per step)."""

    lnl: LNLConfig
    active: ActiveConfig
    tau: float
    seed: int

    def __post_init__(self) -> None:
        if not 0 <= self.tau < 1:
            raise ValueError(f"noise rate / forget rate must be in [0, 1), got {self.tau}")

    @property
    def mix(self) -> float:
        return self.lnl.mix

    @property
    def phase1_method(self) -> str:
        """What ``ours`` and a campaign train in phase 1
        (:func:`labelrefine.config.phase1_method`: ``lnl.method`` naming another is an
        error)."""
        return phase1_method(self.lnl)


def resolve(lnl: LNLConfig, active: ActiveConfig, *, n_train: int, seed: int,
            noise: NoiseConfig | None = None, spec: PipelineSpec | None = None,
            noise_rate: float | None = None) -> Settings:
    """The :class:`Settings` of a run on ``n_train`` training items: the override rules
    (:func:`labelrefine.config.resolve_settings`), then the size-derived schedule where the
    config leaves it open (:func:`labelrefine.lnl.adaptive.adapt`)."""
    from labelrefine.lnl.adaptive import adapt  # on use: the lnl package imports torch

    r = resolve_settings(lnl, active, noise, spec, noise_rate=noise_rate)
    lnl_a, active_a = adapt(r.lnl, r.active, int(n_train))
    return Settings(lnl=lnl_a, active=active_a, tau=float(r.tau), seed=int(seed))
