"""The sampler registry: name -> how it scores, what it needs, how it explains a pick.

Everything that lists samplers derives from :data:`REGISTRY`: the config's allowed values
(``pipelines[].sampler``), the ``campaign step --sampler`` choices, the campaign's checks,
:func:`labelrefine.active.ranking.ranked` / ``explain`` and the model outputs a round computes
(:func:`labelrefine.active.round.propose` asks for :attr:`Sampler.needs` only).

Adding a sampler (docs/design.md, "Adding a sampler") is one entry here -- a score function
(pure numpy: higher = query first; put it in :mod:`labelrefine.active.scores` or here), the
inputs it needs and a one-line reason per pick -- plus its test.

This module is light (numpy only; the score functions and scipy are imported when used), so
the config and the command line can list names without loading scipy or torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: The model outputs a sampler may need, aligned with the pool: predicted probabilities, the
#: current labels, penultimate-layer embeddings of the pool and of the trusted set.
INPUTS = ("probs", "given_labels", "pool_features", "center_features")


@dataclass(frozen=True)
class ScoreInputs:
    """What a score function receives: ``n`` pool rows (ascending item order)."""

    n: int
    probs: np.ndarray | None
    given_labels: np.ndarray | None
    seed: int


#: ``reason(row, given, class_names) -> str``: why a pick was ranked high. ``row`` is the
#: item's probability vector (None when the sampler ran without a model), ``given`` its label.
ReasonFn = Callable[[np.ndarray | None, int | None, Sequence[str] | None], str]


@dataclass(frozen=True)
class Sampler:
    """One registered sampler.

    Exactly one of ``score`` (rank by a per-item score) and ``pick`` (choose a set, e.g.
    coreset; called by ``ranked`` with the pool features) is set. ``explain`` turns picks into
    reasons: ``explain(idx, probs, given_labels, class_names, distances=..., scores=...)``.
    """

    name: str
    needs: tuple[str, ...]
    summary: str
    explain: Callable[..., list[str]]
    score: Callable[[ScoreInputs], np.ndarray] | None = None
    pick: Callable[..., Any] | None = None

    def __post_init__(self) -> None:
        unknown = set(self.needs) - set(INPUTS)
        if unknown:
            raise ValueError(f"sampler {self.name!r}: unknown inputs {sorted(unknown)}")
        if (self.score is None) == (self.pick is None):
            raise ValueError(f"sampler {self.name!r}: give exactly one of score and pick")


def class_name(class_names: Sequence[str] | None, c: int) -> str:
    """``class_names[c]``, or ``c`` as text when there are no names."""
    if class_names is not None and 0 <= c < len(class_names):
        return str(class_names[c])
    return str(c)


def _top(row: np.ndarray) -> tuple[int, float, int]:
    top = np.argsort(-row, kind="stable")[:2]
    return int(top[0]), float(row[top[0]]), int(top[1])


def _with_given(msg: str, given: int | None, names: Sequence[str] | None) -> str:
    return msg if given is None else f"{msg}; given label {class_name(names, given)}"


def _entropy_level(row: np.ndarray) -> tuple[float, float, bool]:
    from scipy.special import entr

    from labelrefine.active.scores import JOINT_THRESHOLD

    h, log_c = float(entr(row).sum()), math.log(row.shape[0])
    return h, log_c, h / log_c > JOINT_THRESHOLD


def _random_reason(row: np.ndarray | None, given: int | None,
                   names: Sequence[str] | None) -> str:
    if row is None:
        return "random pick (seeded)"
    pred, pred_p, _ = _top(row)
    return _with_given(f"random pick (seeded); model predicts {class_name(names, pred)} at "
                       f"{pred_p:.2f}", given, names)


def _entropy_reason(row: np.ndarray | None, given: int | None,
                    names: Sequence[str] | None) -> str:
    assert row is not None
    pred, pred_p, _ = _top(row)
    h, log_c, high = _entropy_level(row)
    # Entropy ranks the pool; call it "high" only when it is, else say it is the least
    # certain left (a confident pick is ranked first in a confident pool).
    level = "high uncertainty" if high else "least certain left in the pool"
    return _with_given(f"{level} (entropy {h:.2f} of max {log_c:.2f}; top "
                       f"{class_name(names, pred)} {pred_p:.2f})", given, names)


def _margin_reason(row: np.ndarray | None, given: int | None,
                   names: Sequence[str] | None) -> str:
    assert row is not None
    pred, pred_p, second = _top(row)
    return _with_given(f"top two classes close: {class_name(names, pred)} {pred_p:.2f} vs "
                       f"{class_name(names, second)} {float(row[second]):.2f}", given, names)


def _disagreement(row: np.ndarray, given: int, names: Sequence[str] | None) -> str:
    pred, pred_p, _ = _top(row)
    g = class_name(names, given)
    if pred != given:
        return (f"model predicts {class_name(names, pred)} at {pred_p:.2f} against the given "
                f"label {g} ({float(row[given]):.2f})")
    return f"model agrees with the given label {g}, but only at {pred_p:.2f}"


def _confidence_reason(row: np.ndarray | None, given: int | None,
                       names: Sequence[str] | None) -> str:
    assert row is not None and given is not None
    return _disagreement(row, given, names)


def _joint_reason(row: np.ndarray | None, given: int | None,
                  names: Sequence[str] | None) -> str:
    assert row is not None and given is not None
    msg = _disagreement(row, given, names)
    h, log_c, high = _entropy_level(row)
    if high:
        msg += f"; ambiguous prediction (entropy {h:.2f} of max {log_c:.2f})"
    return msg


def per_item(reason: ReasonFn) -> Callable[..., list[str]]:
    """An ``explain`` function that calls ``reason`` once per picked position."""

    def explain(idx: np.ndarray, probs: np.ndarray | None, given_labels: np.ndarray | None,
                class_names: Sequence[str] | None, **_: Any) -> list[str]:
        return [reason(None if probs is None else probs[i],
                       None if given_labels is None else int(given_labels[i]), class_names)
                for i in idx]

    return explain


def _coreset_explain(idx: np.ndarray, probs: np.ndarray | None, given_labels: np.ndarray | None,
                     class_names: Sequence[str] | None, *, distances: np.ndarray | None = None,
                     scores: np.ndarray | None = None) -> list[str]:
    median = math.nan
    if distances is not None:
        finite = np.asarray(distances, dtype=np.float64)
        finite = finite[np.isfinite(finite)]
        if finite.size:
            median = float(np.median(finite))
    out = []
    for t, i in enumerate(idx):
        d = math.nan if distances is None else float(distances[i])
        if math.isfinite(d):
            out.append(f"unlike every clean sample (distance {d:.3g}, pool median {median:.3g})")
        else:
            extra = ""
            if scores is not None and math.isfinite(float(scores[t])):
                extra = f"; distance {float(scores[t]):.3g} to earlier picks"
            out.append(f"spread-out pick, no clean samples to compare with{extra}")
    return out


def _scores() -> Any:
    from labelrefine.active import scores  # scipy: imported when a sampler runs

    return scores


def _coreset_pick(*args: Any, **kwargs: Any) -> Any:
    from labelrefine.active.coreset import pick_for_ranking  # torch: imported when used

    return pick_for_ranking(*args, **kwargs)


def _label_quality() -> Any:
    from labelrefine.active import label_quality  # cleanlab: imported when a sampler runs

    return label_quality


def _cl_reason(row: np.ndarray | None, given: int | None, names: Sequence[str] | None) -> str:
    assert row is not None and given is not None
    return _disagreement(row, given, names) + " (low label quality)"


def _combined_reason(row: np.ndarray | None, given: int | None,
                     names: Sequence[str] | None) -> str:
    assert row is not None and given is not None
    msg = _disagreement(row, given, names)
    h, log_c, high = _entropy_level(row)
    if high:
        msg += f"; uncertain prediction (entropy {h:.2f} of max {log_c:.2f})"
    return msg


REGISTRY: dict[str, Sampler] = {
    s.name: s for s in (
        Sampler("random", (), "seeded random order",
                per_item(_random_reason), score=lambda x: _scores().random_scores(x.n, x.seed)),
        Sampler("entropy", ("probs",), "highest predictive entropy first",
                per_item(_entropy_reason), score=lambda x: _scores().entropy_scores(x.probs)),
        Sampler("margin", ("probs",), "smallest gap between the top two classes first",
                per_item(_margin_reason), score=lambda x: _scores().margin_scores(x.probs)),
        Sampler("joint", ("probs", "given_labels"),
                "confident disagreement with the given label, ambiguous items demoted",
                per_item(_joint_reason),
                score=lambda x: _scores().joint_scores(x.probs, x.given_labels)),
        Sampler("confidence", ("probs", "given_labels"),
                "least probability on the given label first (confident learning)",
                per_item(_confidence_reason),
                score=lambda x: _scores().confidence_scores(x.probs, x.given_labels)),
        Sampler("coreset", ("pool_features", "center_features"),
                "farthest from the clean set and from earlier picks (greedy k-center)",
                _coreset_explain, pick=_coreset_pick),
        Sampler("cl", ("probs", "given_labels"),
                "lowest cleanlab label quality first (normalized margin)",
                per_item(_cl_reason),
                score=lambda x: _label_quality().cl_scores(x.probs, x.given_labels)),
        Sampler("combined", ("probs", "given_labels"),
                "label-quality rank mixed with the entropy rank (weight 0.25 on entropy)",
                per_item(_combined_reason),
                score=lambda x: _label_quality().combined_scores(x.probs, x.given_labels)),
    )
}

#: Registered sampler names, in registry order.
SAMPLER_NAMES: tuple[str, ...] = tuple(REGISTRY)
#: Samplers that rank by a per-item score (``ours_plus`` ranks with these, per class).
SCORE_SAMPLER_NAMES: tuple[str, ...] = tuple(n for n, s in REGISTRY.items() if s.score)


def get_sampler(name: str) -> Sampler:
    """The registered sampler ``name``; ``ValueError`` listing the choices otherwise."""
    try:
        return REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown sampler {name!r}; choose one of {', '.join(SAMPLER_NAMES)}"
        ) from None


def sampler_needs(name: str) -> tuple[str, ...]:
    """The model outputs sampler ``name`` needs (a subset of :data:`INPUTS`)."""
    return get_sampler(name).needs
